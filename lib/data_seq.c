#include "data_seq.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

void orx_seq_free(orx_seq_data *d) {
  if (!d || !d->ctx) return;
  orx_host_free(d->ctx, d->user_ids);
  orx_host_free(d->ctx, d->offsets);
  orx_host_free(d->ctx, d->items);
  memset(d, 0, sizeof *d);
}


typedef struct user_line {
  int64_t user;
  int64_t line;
} user_line;

static int cmp_user_line(const void *a, const void *b) {
  const user_line *x = a, *y = b;
  if (x->user != y->user) return x->user < y->user ? -1 : 1;
  return x->line < y->line ? -1 : x->line > y->line;
}

onerec_status orx_seq_parse(const onerec_context *ctx, const char *name, const char *text,
                            size_t len, orx_seq_data *out) {
  memset(out, 0, sizeof *out);
  out->ctx = ctx;
  out->max_item_id = -1;
  /* Pass 1: upper bounds on lines and tokens, so pass 2 allocates nothing. */
  size_t lines = 0, tokens = 0;
  int in_tok = 0, line_has = 0;
  for (size_t i = 0; i < len; i++) {
    char c = text[i];
    if (c == '\n') {
      lines += line_has;
      in_tok = line_has = 0;
    } else if (is_space(c)) {
      in_tok = 0;
    } else {
      if (!in_tok) tokens++;
      in_tok = line_has = 1;
    }
  }
  lines += line_has;
  out->user_ids = orx_host_alloc(ctx, (lines ? lines : 1) * sizeof(int64_t));
  out->offsets = orx_host_alloc(ctx, (lines + 1) * sizeof(int64_t));
  out->items = orx_host_alloc(ctx, (tokens ? tokens : 1) * sizeof(int64_t));
  user_line *ul = malloc((lines ? lines : 1) * sizeof *ul);
  onerec_status s = ONEREC_OK;
  if (!out->user_ids || !out->offsets || !out->items || !ul) {
    s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory (%zu lines, %zu ids)", name, lines,
                 tokens);
    goto done;
  }
  out->offsets[0] = 0;
  int64_t n_users = 0, n_items = 0, line_no = 0;
  size_t i = 0;
  while (i < len) {
    line_no++;
    size_t end = i;
    while (end < len && text[end] != '\n') end++;
    int64_t ntok = 0;
    size_t p = i;
    while (1) {
      while (p < end && is_space(text[p])) p++;
      if (p >= end) break;
      size_t q = p;
      while (q < end && !is_space(text[q])) q++;
      int64_t v = 0;
      int rc = orx_parse_u63(text + p, text + q, &v);
      if (rc != 0) {
        int shown = (int)(q - p > 32 ? 32 : q - p);
        char tok[33];
        for (int k = 0; k < shown; k++) {
          unsigned char c = (unsigned char)text[p + (size_t)k];
          tok[k] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        tok[shown] = '\0';
        s = orx_fail(ONEREC_ERR_FORMAT,
                     "%s:%lld: %s '%s%s' is not %s (expected `user_id item_id ...`, "
                     "non-negative integers)",
                     name, (long long)line_no, ntok == 0 ? "user id" : "item id", tok,
                     q - p > 32 ? "..." : "",
                     rc == -2 ? "within int64 range" : "a non-negative integer");
        goto done;
      }
      if (ntok == 0) {
        out->user_ids[n_users] = v;
        ul[n_users].user = v;
        ul[n_users].line = line_no;
      } else {
        out->items[n_items++] = v;
        if (v > out->max_item_id) out->max_item_id = v;
      }
      ntok++;
      p = q;
    }
    if (ntok == 1) {
      s = orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: user %lld has no items", name, (long long)line_no,
                   (long long)out->user_ids[n_users]);
      goto done;
    }
    if (ntok > 0) out->offsets[++n_users] = n_items;
    i = end + 1;
  }
  out->n_users = n_users;
  out->n_items_total = n_items;
  qsort(ul, (size_t)n_users, sizeof *ul, cmp_user_line);
  for (int64_t u = 1; u < n_users; u++)
    if (ul[u].user == ul[u - 1].user) {
      s = orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: user %lld already has a line (line %lld)", name,
                   (long long)ul[u].line, (long long)ul[u].user, (long long)ul[u - 1].line);
      goto done;
    }
done:
  free(ul);
  if (s != ONEREC_OK) {
    orx_seq_free(out);
    out->ctx = ctx;
  }
  return s;
}

onerec_status orx_read_whole_file(const onerec_context *ctx, const char *path, char **buf,
                                  size_t *len) {
  *buf = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return orx_fail(ONEREC_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return orx_fail(ONEREC_ERR_IO, "%s: not a regular file", path);
  }
  long size = -1;
  if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
  if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return orx_fail(ONEREC_ERR_IO, "%s: cannot tell its size", path);
  }
  char *b = orx_host_alloc(ctx, (size_t)size + 1);
  if (!b) {
    fclose(f);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory reading %ld bytes", path, size);
  }
  size_t got = fread(b, 1, (size_t)size, f);
  int err = ferror(f);
  fclose(f);
  if (err || got != (size_t)size) {
    orx_host_free(ctx, b);
    return orx_fail(ONEREC_ERR_IO, "%s: read %zu of %ld bytes", path, got, size);
  }
  b[got] = '\0';
  *buf = b;
  *len = got;
  return ONEREC_OK;
}

onerec_status orx_seq_read(const onerec_context *ctx, const char *path, orx_seq_data *out) {
  memset(out, 0, sizeof *out);
  out->ctx = ctx;
  char *buf = NULL;
  size_t len = 0;
  onerec_status s = orx_read_whole_file(ctx, path, &buf, &len);
  if (s) return s;
  s = orx_seq_parse(ctx, path, buf, len, out);
  orx_host_free(ctx, buf);
  return s;
}

onerec_status orx_seq_train_csr(const orx_seq_data *d, int64_t **offsets, int64_t **items) {
  *offsets = NULL;
  *items = NULL;
  int64_t total = 0;
  for (int64_t u = 0; u < d->n_users; u++) total += orx_seq_train_len(d, u);
  int64_t *off = orx_host_alloc(d->ctx, (size_t)(d->n_users + 1) * sizeof(int64_t));
  int64_t *it = orx_host_alloc(d->ctx, (size_t)(total ? total : 1) * sizeof(int64_t));
  if (!off || !it) {
    orx_host_free(d->ctx, off);
    orx_host_free(d->ctx, it);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "sequence data: out of memory for the training part");
  }
  off[0] = 0;
  for (int64_t u = 0; u < d->n_users; u++) {
    int64_t n = orx_seq_train_len(d, u);
    memcpy(it + off[u], d->items + d->offsets[u], (size_t)n * sizeof(int64_t));
    off[u + 1] = off[u] + n;
  }
  *offsets = off;
  *items = it;
  return ONEREC_OK;
}
