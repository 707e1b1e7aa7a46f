/* RMSNorm and softmax ops of the CPU backend (forward and backward) against naive
 * double-precision references and central finite differences, on every ISA variant the CPU
 * runs; accumulation into pre-filled gradients, in-place softmax, huge and masked (-inf) logits,
 * bit-identical results for 1, 2 and 3 threads, and bad arguments. */
#include "ops_testutil.h"

static onerec_context *g_ctx[4]; /* index = threads (1..3) */

static int setup(void **state) {
  (void)state;
  for (int t = 1; t <= 3; t++) g_ctx[t] = tu_cpu_context(t);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int t = 1; t <= 3; t++) onerec_context_free(g_ctx[t]);
  return 0;
}

/* ---- double references ---- */

static void ref_rms_fwd(double *out, double *rstd, const double *x, const double *w, int64_t rows,
                        int64_t d, double eps) {
  for (int64_t r = 0; r < rows; r++) {
    double ss = 0;
    for (int64_t i = 0; i < d; i++) ss += x[r * d + i] * x[r * d + i];
    double rs = 1.0 / sqrt(ss / (double)d + eps);
    if (rstd) rstd[r] = rs;
    for (int64_t i = 0; i < d; i++) out[r * d + i] = x[r * d + i] * rs * w[i];
  }
}

static void ref_rms_bwd(double *dx, double *dw, const double *dy, const double *x, const double *w,
                        int64_t rows, int64_t d, double eps) {
  for (int64_t r = 0; r < rows; r++) {
    const double *xr = x + r * d, *g = dy + r * d;
    double ss = 0, dot = 0;
    for (int64_t i = 0; i < d; i++) ss += xr[i] * xr[i];
    double rs = 1.0 / sqrt(ss / (double)d + eps);
    for (int64_t i = 0; i < d; i++) dot += g[i] * w[i] * xr[i];
    for (int64_t i = 0; i < d; i++) {
      dx[r * d + i] = rs * w[i] * g[i] - xr[i] * rs * rs * rs / (double)d * dot;
      dw[i] += g[i] * xr[i] * rs;
    }
  }
}

static void ref_softmax(double *y, const double *x, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; r++) {
    double m = -INFINITY, s = 0;
    for (int64_t i = 0; i < d; i++) m = fmax(m, x[r * d + i]);
    for (int64_t i = 0; i < d; i++) s += m == -INFINITY ? 0 : exp(x[r * d + i] - m);
    for (int64_t i = 0; i < d; i++) y[r * d + i] = m == -INFINITY ? 0 : exp(x[r * d + i] - m) / s;
  }
}

static void ref_softmax_bwd(double *dx, const double *dy, const double *y, int64_t rows,
                            int64_t d) {
  for (int64_t r = 0; r < rows; r++) {
    double dot = 0;
    for (int64_t i = 0; i < d; i++) dot += dy[r * d + i] * y[r * d + i];
    for (int64_t i = 0; i < d; i++) dx[r * d + i] = y[r * d + i] * (dy[r * d + i] - dot);
  }
}

/* ---- rmsnorm ---- */

static void rms_case(onerec_context *ctx, int64_t rows, int64_t d, uint64_t seed, const char *isa) {
  orx_backend *be = ot_be(ctx);
  const float eps = 1e-5f;
  size_t n = (size_t)(rows * d);
  float *x = ot_floats(n, seed, -2, 2), *w = ot_floats((size_t)d, seed + 1, -1.5f, 1.5f);
  float *dy = ot_floats(n, seed + 2, -1, 1);
  float *out = ot_floats(n, seed + 3, -9, 9), *rstd = ot_floats((size_t)rows, seed + 4, 0, 1);
  float *dx0 = ot_floats(n, seed + 5, -1, 1), *dw0 = ot_floats((size_t)d, seed + 6, -1, 1);
  float *dx = ot_copy(dx0, n), *dw = ot_copy(dw0, (size_t)d);
  double *xd = ot_doubles(x, n), *wd = ot_doubles(w, (size_t)d), *dyd = ot_doubles(dy, n);
  double *outr = ot_zeros_d(n), *rstdr = ot_zeros_d((size_t)rows);
  double *dxr = ot_zeros_d(n), *dwr = ot_zeros_d((size_t)d);
  char what[96];

  assert_ok(ORX_OP(be, rmsnorm_fwd, out, rstd, x, w, rows, d, eps));
  ref_rms_fwd(outr, rstdr, xd, wd, rows, d, eps);
  snprintf(what, sizeof what, "rmsnorm_fwd %s %lldx%lld out", isa, (long long)rows, (long long)d);
  ot_close(out, outr, n, 2e-6, 1e-6, what);
  snprintf(what, sizeof what, "rmsnorm_fwd %s %lldx%lld rstd", isa, (long long)rows, (long long)d);
  ot_close(rstd, rstdr, (size_t)rows, 2e-6, 0, what);

  /* rstd is optional; out may be x itself */
  float *inplace = ot_copy(x, n);
  assert_ok(ORX_OP(be, rmsnorm_fwd, inplace, NULL, inplace, w, rows, d, eps));
  ot_same_bits(inplace, out, n * sizeof *out, "rmsnorm_fwd in place, no rstd");

  assert_ok(ORX_OP(be, rmsnorm_bwd, dx, dw, dy, x, w, rstd, rows, d));
  ref_rms_bwd(dxr, dwr, dyd, xd, wd, rows, d, eps);
  snprintf(what, sizeof what, "rmsnorm_bwd %s %lldx%lld dx", isa, (long long)rows, (long long)d);
  ot_close_acc(dx, dx0, dxr, n, 1e-5, 2e-6, what);
  snprintf(what, sizeof what, "rmsnorm_bwd %s %lldx%lld dw", isa, (long long)rows, (long long)d);
  ot_close_acc(dw, dw0, dwr, (size_t)d, 1e-5, 1e-5, what);

  free(x), free(w), free(dy), free(out), free(rstd), free(dx0), free(dw0), free(dx), free(dw);
  free(xd), free(wd), free(dyd), free(outr), free(rstdr), free(dxr), free(dwr), free(inplace);
}

static void rmsnorm_matches_reference(void **state) {
  (void)state;
  onerec_context *ctx = g_ctx[1];
  const orx_simd *best = orx_cpu_of(ot_be(ctx))->simd;
  for (size_t v = 0; v < OT_LEN(k_isas); v++) {
    if (!ot_use_isa(ctx, k_isas[v])) continue;
    for (size_t a = 0; a < OT_LEN(k_rows); a++)
      for (size_t b = 0; b < OT_LEN(k_dims); b++)
        rms_case(ctx, k_rows[a], k_dims[b], 100 + a * 10 + b, k_isas[v]);
  }
  orx_cpu_of(ot_be(ctx))->simd = best;
  /* large rows, through the pool */
  rms_case(g_ctx[3], 513, 130, 7, "threads=3");
}

typedef struct rms_fd {
  double *x, *w, *r;
  int64_t rows, d;
  double eps;
  double *tmp;
} rms_fd;

static double rms_loss(void *p) {
  rms_fd *s = p;
  ref_rms_fwd(s->tmp, NULL, s->x, s->w, s->rows, s->d, s->eps);
  double l = 0;
  for (int64_t i = 0; i < s->rows * s->d; i++) l += s->r[i] * s->tmp[i];
  return l;
}

static void rmsnorm_bwd_matches_finite_differences(void **state) {
  (void)state;
  orx_backend *be = ot_be(g_ctx[1]);
  static const int64_t dims[] = {1, 3, 37};
  for (size_t k = 0; k < OT_LEN(dims); k++) {
    const int64_t rows = 3, d = dims[k];
    size_t n = (size_t)(rows * d);
    float *x = ot_floats(n, 11 + k, -2, 2), *w = ot_floats((size_t)d, 12 + k, -1.5f, 1.5f);
    float *dy = ot_floats(n, 13 + k, -1, 1), *out = ot_floats(n, 1, 0, 1);
    float *rstd = ot_floats((size_t)rows, 1, 0, 1);
    float *dx = calloc(n, sizeof *dx), *dw = calloc((size_t)d, sizeof *dw);
    assert_true(dx && dw);
    assert_ok(ORX_OP(be, rmsnorm_fwd, out, rstd, x, w, rows, d, 1e-5f));
    assert_ok(ORX_OP(be, rmsnorm_bwd, dx, dw, dy, x, w, rstd, rows, d));
    rms_fd s = {ot_doubles(x, n), ot_doubles(w, (size_t)d), ot_doubles(dy, n), rows, d, 1e-5f,
                ot_zeros_d(n)};
    double *gx = ot_zeros_d(n), *gw = ot_zeros_d((size_t)d);
    ot_fd(rms_loss, &s, s.x, n, 1e-5, gx);
    ot_fd(rms_loss, &s, s.w, (size_t)d, 1e-5, gw);
    ot_close(dx, gx, n, 1e-4, 1e-5, "rmsnorm dx vs finite differences");
    ot_close(dw, gw, (size_t)d, 1e-4, 1e-5, "rmsnorm dw vs finite differences");
    free(x), free(w), free(dy), free(out), free(rstd), free(dx), free(dw);
    free(s.x), free(s.w), free(s.r), free(s.tmp), free(gx), free(gw);
  }
}

/* ---- softmax ---- */

static void softmax_case(onerec_context *ctx, float *x, int64_t rows, int64_t d, uint64_t seed,
                         const char *label) {
  orx_backend *be = ot_be(ctx);
  size_t n = (size_t)(rows * d);
  float *y = ot_floats(n, seed + 1, -1, 1), *dy = ot_floats(n, seed + 2, -1, 1);
  float *dx0 = ot_floats(n, seed + 3, -1, 1), *dx = ot_copy(dx0, n);
  double *xd = ot_doubles(x, n), *yr = ot_zeros_d(n), *dxr = ot_zeros_d(n);
  char what[128];

  assert_ok(ORX_OP(be, softmax_fwd, y, x, rows, d));
  ref_softmax(yr, xd, rows, d);
  snprintf(what, sizeof what, "softmax_fwd %s %lldx%lld", label, (long long)rows, (long long)d);
  ot_close(y, yr, n, 2e-6, 1e-9, what);

  float *inplace = ot_copy(x, n);
  assert_ok(ORX_OP(be, softmax_fwd, inplace, inplace, rows, d));
  ot_same_bits(inplace, y, n * sizeof *y, "softmax_fwd in place");

  /* the backward of the op's own forward output, against the reference formula on it */
  double *yd = ot_doubles(y, n), *dyd = ot_doubles(dy, n);
  assert_ok(ORX_OP(be, softmax_bwd, dx, dy, y, rows, d));
  ref_softmax_bwd(dxr, dyd, yd, rows, d);
  snprintf(what, sizeof what, "softmax_bwd %s %lldx%lld", label, (long long)rows, (long long)d);
  ot_close_acc(dx, dx0, dxr, n, 1e-5, 1e-6, what);

  free(y), free(dy), free(dx0), free(dx), free(xd), free(yr), free(dxr), free(inplace);
  free(yd), free(dyd);
}

static void softmax_matches_reference(void **state) {
  (void)state;
  onerec_context *ctx = g_ctx[1];
  const orx_simd *best = orx_cpu_of(ot_be(ctx))->simd;
  for (size_t v = 0; v < OT_LEN(k_isas); v++) {
    if (!ot_use_isa(ctx, k_isas[v])) continue;
    for (size_t a = 0; a < OT_LEN(k_rows); a++)
      for (size_t b = 0; b < OT_LEN(k_dims); b++) {
        int64_t rows = k_rows[a], d = k_dims[b];
        float *x = ot_floats((size_t)(rows * d), 200 + a * 10 + b, -6, 6);
        softmax_case(ctx, x, rows, d, 300 + a * 10 + b, k_isas[v]);
        free(x);
      }
  }
  orx_cpu_of(ot_be(ctx))->simd = best;
  float *x = ot_floats(517 * 130, 5, -6, 6);
  softmax_case(g_ctx[3], x, 517, 130, 6, "threads=3");
  free(x);
}

/* Logits of 1e4 overflow exp in any softmax that forgets to subtract the max; -inf entries
 * (masks) get exactly 0 and a row of nothing but -inf gets all zeros. */
static void softmax_is_stable_and_masks(void **state) {
  (void)state;
  onerec_context *ctx = g_ctx[1];
  const orx_simd *best = orx_cpu_of(ot_be(ctx))->simd;
  const int64_t rows = 4, d = 67;
  for (size_t v = 0; v < OT_LEN(k_isas); v++) {
    if (!ot_use_isa(ctx, k_isas[v])) continue;
    float *x = ot_floats((size_t)(rows * d), 9, -1, 1);
    for (int64_t i = 0; i < d; i++) {
      x[i] *= 1e4f;                             /* row 0: huge spread */
      x[d + i] = 1e4f + x[d + i];               /* row 1: huge offset */
      if (i % 3 == 0) x[2 * d + i] = -INFINITY; /* row 2: masked */
      x[3 * d + i] = -INFINITY;                 /* row 3: fully masked */
    }
    softmax_case(ctx, x, rows, d, 10, k_isas[v]);
    float *y = ot_floats((size_t)(rows * d), 1, -1, 1);
    assert_ok(ORX_OP(ot_be(ctx), softmax_fwd, y, x, rows, d));
    for (int64_t i = 0; i < d; i++) {
      if (i % 3 == 0) assert_true(y[2 * d + i] == 0.0f);
      assert_true(y[3 * d + i] == 0.0f);
    }
    free(x), free(y);
  }
  orx_cpu_of(ot_be(ctx))->simd = best;
}

typedef struct sm_fd {
  double *x, *r, *tmp;
  int64_t rows, d;
} sm_fd;

static double sm_loss(void *p) {
  sm_fd *s = p;
  ref_softmax(s->tmp, s->x, s->rows, s->d);
  double l = 0;
  for (int64_t i = 0; i < s->rows * s->d; i++) l += s->r[i] * s->tmp[i];
  return l;
}

static void softmax_bwd_matches_finite_differences(void **state) {
  (void)state;
  orx_backend *be = ot_be(g_ctx[1]);
  static const int64_t dims[] = {1, 3, 37};
  for (size_t k = 0; k < OT_LEN(dims); k++) {
    const int64_t rows = 3, d = dims[k];
    size_t n = (size_t)(rows * d);
    float *x = ot_floats(n, 21 + k, -3, 3), *dy = ot_floats(n, 22 + k, -1, 1);
    float *y = ot_floats(n, 1, 0, 1), *dx = calloc(n, sizeof *dx);
    assert_non_null(dx);
    assert_ok(ORX_OP(be, softmax_fwd, y, x, rows, d));
    assert_ok(ORX_OP(be, softmax_bwd, dx, dy, y, rows, d));
    sm_fd s = {ot_doubles(x, n), ot_doubles(dy, n), ot_zeros_d(n), rows, d};
    double *g = ot_zeros_d(n);
    ot_fd(sm_loss, &s, s.x, n, 1e-5, g);
    ot_close(dx, g, n, 1e-4, 1e-6, "softmax dx vs finite differences");
    free(x), free(dy), free(y), free(dx), free(s.x), free(s.r), free(s.tmp), free(g);
  }
}

/* ---- threads ---- */

static void results_do_not_depend_on_threads(void **state) {
  (void)state;
  const int64_t rows = 1031, d = 130;
  size_t n = (size_t)(rows * d);
  float *x = ot_floats(n, 31, -2, 2), *w = ot_floats((size_t)d, 32, -1, 1);
  float *dy = ot_floats(n, 33, -1, 1);
  float *out[4], *rstd[4], *dx[4], *dw[4], *y[4], *dsx[4];
  for (int t = 1; t <= 3; t++) {
    orx_backend *be = ot_be(g_ctx[t]);
    out[t] = ot_floats(n, 1, 0, 1), rstd[t] = ot_floats((size_t)rows, 1, 0, 1);
    dx[t] = ot_floats(n, 2, -1, 1), dw[t] = ot_floats((size_t)d, 3, -1, 1);
    y[t] = ot_floats(n, 1, 0, 1), dsx[t] = ot_floats(n, 4, -1, 1);
    assert_ok(ORX_OP(be, rmsnorm_fwd, out[t], rstd[t], x, w, rows, d, 1e-6f));
    assert_ok(ORX_OP(be, rmsnorm_bwd, dx[t], dw[t], dy, x, w, rstd[t], rows, d));
    assert_ok(ORX_OP(be, softmax_fwd, y[t], x, rows, d));
    assert_ok(ORX_OP(be, softmax_bwd, dsx[t], dy, y[t], rows, d));
  }
  for (int t = 2; t <= 3; t++) {
    ot_same_bits(out[1], out[t], n * sizeof(float), "rmsnorm_fwd out");
    ot_same_bits(rstd[1], rstd[t], (size_t)rows * sizeof(float), "rmsnorm_fwd rstd");
    ot_same_bits(dx[1], dx[t], n * sizeof(float), "rmsnorm_bwd dx");
    ot_same_bits(dw[1], dw[t], (size_t)d * sizeof(float), "rmsnorm_bwd dw");
    ot_same_bits(y[1], y[t], n * sizeof(float), "softmax_fwd");
    ot_same_bits(dsx[1], dsx[t], n * sizeof(float), "softmax_bwd");
  }
  for (int t = 1; t <= 3; t++)
    free(out[t]), free(rstd[t]), free(dx[t]), free(dw[t]), free(y[t]), free(dsx[t]);
  free(x), free(w), free(dy);
}

/* ---- errors ---- */

static void bad_arguments_fail(void **state) {
  (void)state;
  orx_backend *be = ot_be(g_ctx[1]);
  float b[8] = {1, 2, 3, 4, 5, 6, 7, 8}, r[2];
  assert_status(ORX_OP(be, rmsnorm_fwd, b, r, b, b, -1, 4, 1e-5f), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, rmsnorm_fwd, b, r, b, b, 2, 0, 1e-5f), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, rmsnorm_fwd, b, r, b, b, 2, -4, 1e-5f), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, rmsnorm_fwd, NULL, r, b, b, 2, 4, 1e-5f), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, rmsnorm_fwd, b, r, b, b, 2, 4, -1.0f), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, rmsnorm_fwd, b, r, b, b, 2, 4, NAN), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, rmsnorm_bwd, b, b, b, b, b, r, -2, 4), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, rmsnorm_bwd, b, b, b, b, b, NULL, 2, 4), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, softmax_fwd, b, b, -1, 4), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, softmax_fwd, b, b, 2, 0), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, softmax_fwd, NULL, b, 2, 4), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, softmax_bwd, b, b, b, 2, -1), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, softmax_bwd, b, NULL, b, 2, 4), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, softmax_bwd, b, b, NULL, 2, 4), ONEREC_ERR_INVALID_ARGUMENT);
  /* zero rows: nothing to do, nothing touched (NULL buffers included) */
  assert_ok(ORX_OP(be, rmsnorm_fwd, NULL, NULL, NULL, NULL, 0, 4, 1e-5f));
  assert_ok(ORX_OP(be, rmsnorm_bwd, NULL, NULL, NULL, NULL, NULL, NULL, 0, 4));
  assert_ok(ORX_OP(be, softmax_fwd, NULL, NULL, 0, 4));
  assert_ok(ORX_OP(be, softmax_bwd, NULL, NULL, NULL, 0, 4));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rmsnorm_matches_reference),
      cmocka_unit_test(rmsnorm_bwd_matches_finite_differences),
      cmocka_unit_test(softmax_matches_reference),
      cmocka_unit_test(softmax_is_stable_and_masks),
      cmocka_unit_test(softmax_bwd_matches_finite_differences),
      cmocka_unit_test(results_do_not_depend_on_threads),
      cmocka_unit_test(bad_arguments_fail),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
