/* The option parser every `onerec` command uses (the contract is in cli.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The accepted range as words for a message, "" when the kind is unbounded. */
static void int_range(const cli_opt *o, char *buf, size_t len) {
  int lo = o->imin > CLI_INT_MIN, hi = o->imax < CLI_INT_MAX;
  if (lo && hi)
    snprintf(buf, len, " %lld..%lld", o->imin, o->imax);
  else if (lo)
    snprintf(buf, len, " (at least %lld)", o->imin);
  else if (hi)
    snprintf(buf, len, " (at most %lld)", o->imax);
  else
    buf[0] = '\0';
}

static void real_range(const cli_opt *o, char *buf, size_t len) {
  int lo = o->rmin > -INFINITY, hi = o->rmax < INFINITY;
  int olo = (o->open & CLI_OPEN_LO) != 0, ohi = (o->open & CLI_OPEN_HI) != 0;
  if (lo && hi)
    snprintf(buf, len, " %c%g, %g%c", olo ? '(' : '[', o->rmin, o->rmax, ohi ? ')' : ']');
  else if (lo)
    snprintf(buf, len, " (%s %g)", olo ? "more than" : "at least", o->rmin);
  else if (hi)
    snprintf(buf, len, " (%s %g)", ohi ? "less than" : "at most", o->rmax);
  else
    buf[0] = '\0';
}

/* Stores v (the text of option o's value) in o's variable; 0, or 2 after the message. */
static int set_value(const char *cmd, const cli_opt *o, const char *v) {
  char range[96];
  char *end = NULL;
  switch (o->kind) {
    case CLI_KIND_STR:
      *o->str = v;
      return 0;
    case CLI_KIND_FLAG:
      *o->flag = 1;
      return 0;
    case CLI_KIND_INT: {
      errno = 0;
      long long x = strtoll(v, &end, 10);
      if (end == v || *end) {
        fprintf(stderr, "onerec %s: %s: '%s' is not an integer\n", cmd, o->name, v);
        return 2;
      }
      if (errno == ERANGE || x < o->imin || x > o->imax) {
        int_range(o, range, sizeof range);
        fprintf(stderr, "onerec %s: %s: '%s' is out of range%s\n", cmd, o->name, v, range);
        return 2;
      }
      *o->i = x;
      return 0;
    }
    case CLI_KIND_REAL: {
      double x = strtod(v, &end);
      if (end == v || *end || !isfinite(x)) {
        fprintf(stderr, "onerec %s: %s: '%s' is not a finite number\n", cmd, o->name, v);
        return 2;
      }
      int below = (o->open & CLI_OPEN_LO) ? !(x > o->rmin) : !(x >= o->rmin);
      int above = (o->open & CLI_OPEN_HI) ? !(x < o->rmax) : !(x <= o->rmax);
      if (below || above) {
        real_range(o, range, sizeof range);
        fprintf(stderr, "onerec %s: %s: '%s' is out of range%s\n", cmd, o->name, v, range);
        return 2;
      }
      *o->r = x;
      return 0;
    }
  }
  return 2;
}

int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, size_t n_opts,
              void (*usage)(FILE *), const char **pos, int n_pos) {
  int n_filled = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      if (n_filled >= n_pos) {
        fprintf(stderr, "onerec %s: unexpected argument '%s'\n", cmd, a);
        usage(stderr);
        return 2;
      }
      pos[n_filled++] = a;
      continue;
    }
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    }
    size_t k = 0;
    while (k < n_opts && strcmp(a, opts[k].name)) k++;
    if (k == n_opts) {
      fprintf(stderr, "onerec %s: unknown option '%s'\n", cmd, a);
      usage(stderr);
      return 2;
    }
    const char *v = NULL;
    if (opts[k].kind != CLI_KIND_FLAG) {
      if (i + 1 >= argc) {
        fprintf(stderr, "onerec %s: %s needs a value\n", cmd, a);
        usage(stderr);
        return 2;
      }
      v = argv[++i];
    }
    if (set_value(cmd, &opts[k], v)) return 2;
  }
  return CLI_PARSED;
}
