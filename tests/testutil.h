/* Helpers shared by the cmocka suites. */
#ifndef ONEREC_TESTUTIL_H
#define ONEREC_TESTUTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "onerec/onerec.h"

/* Asserts a libonerec call succeeds; on failure prints the status and last-error message. */
#define assert_ok(call)                                                                    \
  do {                                                                                     \
    onerec_status s_ = (call);                                                             \
    if (s_ != ONEREC_OK)                                                                   \
      fail_msg("%s -> %s: %s", #call, onerec_status_str(s_), onerec_last_error());         \
  } while (0)

/* Asserts a call fails with `code` and leaves a non-empty message. */
#define assert_status(call, code)                                                          \
  do {                                                                                     \
    onerec_clear_error();                                                                  \
    onerec_status s_ = (call);                                                             \
    if (s_ != (code))                                                                      \
      fail_msg("%s -> %s (%d), expected %s: %s", #call, onerec_status_str(s_), (int)s_,    \
               onerec_status_str(code), onerec_last_error());                              \
    if ((code) != ONEREC_OK && onerec_last_error()[0] == '\0')                             \
      fail_msg("%s failed without a message", #call);                                      \
  } while (0)

/* Deterministic uniform floats in [-1, 1) (xorshift64*). */
static inline float tu_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return (float)((x * 2685821657736338717ull) >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}

static inline void tu_fill(float *x, size_t n, uint64_t seed) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) x[i] = tu_rand(&s);
}

/* max_i |a_i - b_i| / (atol + rtol |b_i|) <= 1, reporting the worst element otherwise. */
static inline void tu_assert_close(const float *a, const float *b, size_t n, float rtol,
                                   float atol, const char *what) {
  size_t worst = 0;
  double wr = 0;
  for (size_t i = 0; i < n; i++) {
    double r = fabs((double)a[i] - b[i]) / (atol + rtol * fabs((double)b[i]));
    if (!(r <= wr)) { /* catches NaN too */
      wr = isnan(r) ? INFINITY : r;
      worst = i;
    }
  }
  if (wr > 1.0)
    fail_msg("%s: element %zu: got %.8g, want %.8g (rtol %g, atol %g)", what, worst,
             (double)a[worst], (double)b[worst], rtol, atol);
}

/* The number after "key": in the JSON text s (the CLI's output); fails the test without it. */
static inline double tu_json_num(const char *s, const char *key) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":", key);
  const char *p = strstr(s, k);
  if (!p) fail_msg("no %s in %s", k, s);
  return strtod(p + strlen(k), NULL);
}

/* Reads at most len - 1 bytes of the file at path into buf and NUL-terminates them; returns
 * the bytes read, or -1 when it cannot be opened. */
static inline int tu_read_file(const char *path, char *buf, size_t len) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  int n = (int)fread(buf, 1, len - 1, f);
  buf[n] = '\0';
  fclose(f);
  return n;
}

/* A CPU context with `threads` threads (tests of the op kernels run through its backend). */
static inline onerec_context *tu_cpu_context(int threads) {
  ONEREC_OPTS(onerec_context_opts, o, .backend = "cpu", .threads = threads, .seed = 1);
  onerec_context *ctx = NULL;
  if (onerec_context_create(&o, &ctx) != ONEREC_OK)
    fail_msg("cpu context: %s", onerec_last_error());
  return ctx;
}

#endif
