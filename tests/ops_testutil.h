/* Helpers shared by the CPU op suites (tests/test_ops_*.c): buffers, comparisons against
 * double-precision references, central finite differences, and the ISA variants. */
#ifndef ONEREC_OPS_TESTUTIL_H
#define ONEREC_OPS_TESTUTIL_H

#include "testutil.h"

#include "context_impl.h"
#include "cpu_impl.h"

/* Odd sizes: a single row or element, fewer than a vector, around and past the 32 reduction
 * lanes. */
static const int64_t k_rows[] = {1, 7, 131};
static const int64_t k_dims[] = {1, 3, 64, 130};
#define OT_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *const k_isas[] = {"avx512", "avx2", "scalar"};

static inline orx_backend *ot_be(onerec_context *ctx) { return &ctx->be; }

/* Points the context's CPU backend at one ISA's kernels; NULL if the CPU lacks it. */
static inline const orx_simd *ot_use_isa(onerec_context *ctx, const char *isa) {
  const orx_simd *s = orx_simd_get(isa);
  if (s) orx_cpu_of(&ctx->be)->simd = s;
  return s;
}

static inline float *ot_floats(size_t n, uint64_t seed, float lo, float hi) {
  float *x = malloc((n ? n : 1) * sizeof *x);
  assert_non_null(x);
  tu_fill(x, n, seed);
  for (size_t i = 0; i < n; i++) x[i] = lo + (x[i] + 1.0f) * 0.5f * (hi - lo);
  return x;
}

static inline float *ot_copy(const float *x, size_t n) {
  float *y = malloc((n ? n : 1) * sizeof *y);
  assert_non_null(y);
  if (n) memcpy(y, x, n * sizeof *y);
  return y;
}

static inline double *ot_doubles(const float *x, size_t n) {
  double *d = malloc((n ? n : 1) * sizeof *d);
  assert_non_null(d);
  for (size_t i = 0; i < n; i++) d[i] = x[i];
  return d;
}

static inline double *ot_zeros_d(size_t n) {
  double *d = calloc(n ? n : 1, sizeof *d);
  assert_non_null(d);
  return d;
}

/* |got - want| <= atol + rtol |want| element by element, reporting the worst one. */
static inline void ot_close(const float *got, const double *want, size_t n, double rtol,
                            double atol, const char *what) {
  size_t worst = 0;
  double wr = 0;
  for (size_t i = 0; i < n; i++) {
    double diff = fabs((double)got[i] - want[i]), tol = atol + rtol * fabs(want[i]);
    double r = diff <= tol ? 0.0 : tol > 0 ? diff / tol : INFINITY; /* NaN lands on INFINITY */
    if (r > wr) {
      wr = r;
      worst = i;
    }
  }
  if (wr > 1.0)
    fail_msg("%s: element %zu of %zu: got %.9g, want %.9g (rtol %g, atol %g)", what, worst, n,
             (double)got[worst], want[worst], rtol, atol);
}

/* got == want + base (an accumulated gradient: base is what the buffer held before). */
static inline void ot_close_acc(const float *got, const float *base, const double *want, size_t n,
                                double rtol, double atol, const char *what) {
  double *w = malloc((n ? n : 1) * sizeof *w);
  assert_non_null(w);
  for (size_t i = 0; i < n; i++) w[i] = want[i] + base[i];
  ot_close(got, w, n, rtol, atol, what);
  free(w);
}

static inline void ot_same_bits(const void *a, const void *b, size_t bytes, const char *what) {
  if (memcmp(a, b, bytes) != 0) {
    const unsigned char *x = a, *y = b;
    size_t i = 0;
    while (x[i] == y[i]) i++;
    fail_msg("%s: results differ (first at byte %zu of %zu)", what, i, bytes);
  }
}

/* Central differences of a scalar loss in double: grad[k] = (L(p + h e_k) - L(p - h e_k)) / 2h. */
typedef double (*ot_loss_fn)(void *state);
static inline void ot_fd(ot_loss_fn loss, void *state, double *p, size_t n, double h,
                         double *grad) {
  for (size_t k = 0; k < n; k++) {
    double save = p[k];
    p[k] = save + h;
    double lp = loss(state);
    p[k] = save - h;
    double lm = loss(state);
    p[k] = save;
    grad[k] = (lp - lm) / (2 * h);
  }
}

#endif
