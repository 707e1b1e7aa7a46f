/* SwiGLU and leaky ReLU ops of the CPU backend (forward and backward) against naive
 * double-precision references and central finite differences, on every ISA variant the CPU
 * runs; padded row pitches, accumulation into pre-filled gradients, saturated gates,
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

static double silu(double z) { return z / (1.0 + exp(-z)); }
static double dsilu(double z) {
  double s = 1.0 / (1.0 + exp(-z));
  return s * (1.0 + z * (1.0 - s));
}

/* ---- swiglu: each operand in its own buffer with its own pitch ---- */

typedef struct sw_bufs {
  int64_t rows, d, lo, lg, lu, ldg, ldu, ldo;
  float *out, *g, *u, *dy, *dg, *du, *dg0, *du0;
} sw_bufs;

static void sw_init(sw_bufs *b, int64_t rows, int64_t d, int64_t pad, uint64_t seed, float span) {
  memset(b, 0, sizeof *b);
  b->rows = rows, b->d = d;
  b->lo = d + pad, b->lg = d + 2 * pad, b->lu = d + 3 * pad;
  b->ldg = d + pad, b->ldu = d + 2 * pad, b->ldo = d + 3 * pad;
  b->out = ot_floats((size_t)(rows * b->lo), seed, -1, 1);
  b->g = ot_floats((size_t)(rows * b->lg), seed + 1, -span, span);
  b->u = ot_floats((size_t)(rows * b->lu), seed + 2, -2, 2);
  b->dy = ot_floats((size_t)(rows * b->ldo), seed + 3, -1, 1);
  b->dg0 = ot_floats((size_t)(rows * b->ldg), seed + 4, -1, 1);
  b->du0 = ot_floats((size_t)(rows * b->ldu), seed + 5, -1, 1);
  b->dg = ot_copy(b->dg0, (size_t)(rows * b->ldg));
  b->du = ot_copy(b->du0, (size_t)(rows * b->ldu));
}

static void sw_free(sw_bufs *b) {
  free(b->out), free(b->g), free(b->u), free(b->dy), free(b->dg), free(b->du), free(b->dg0);
  free(b->du0);
}

static onerec_status sw_fwd(onerec_context *ctx, sw_bufs *b) {
  return ORX_OP(ot_be(ctx), swiglu_fwd, b->out, b->lo, b->g, b->lg, b->u, b->lu, b->rows, b->d);
}

static onerec_status sw_bwd(onerec_context *ctx, sw_bufs *b) {
  return ORX_OP(ot_be(ctx), swiglu_bwd, b->dg, b->ldg, b->du, b->ldu, b->dy, b->ldo, b->g, b->lg,
                b->u, b->lu, b->rows, b->d);
}

static void sw_check(onerec_context *ctx, int64_t rows, int64_t d, int64_t pad, uint64_t seed,
                     float span, const char *label) {
  sw_bufs b;
  sw_init(&b, rows, d, pad, seed, span);
  float *out_before = ot_copy(b.out, (size_t)(rows * b.lo));
  assert_ok(sw_fwd(ctx, &b));
  assert_ok(sw_bwd(ctx, &b));
  size_t n = (size_t)(rows * d);
  float *got = malloc(n * sizeof *got), *gdg = malloc(n * sizeof *gdg),
        *gdu = malloc(n * sizeof *gdu);
  float *bdg = malloc(n * sizeof *bdg), *bdu = malloc(n * sizeof *bdu);
  double *want = ot_zeros_d(n), *wdg = ot_zeros_d(n), *wdu = ot_zeros_d(n);
  assert_true(got && gdg && gdu && bdg && bdu);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = 0; i < d; i++) {
      size_t k = (size_t)(r * d + i);
      double g = b.g[r * b.lg + i], u = b.u[r * b.lu + i], dy = b.dy[r * b.ldo + i];
      got[k] = b.out[r * b.lo + i];
      want[k] = silu(g) * u;
      gdg[k] = b.dg[r * b.ldg + i], bdg[k] = b.dg0[r * b.ldg + i];
      gdu[k] = b.du[r * b.ldu + i], bdu[k] = b.du0[r * b.ldu + i];
      wdg[k] = dy * u * dsilu(g);
      wdu[k] = dy * silu(g);
    }
  /* the pitch padding is never written */
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = d; i < b.lo; i++) assert_true(b.out[r * b.lo + i] == out_before[r * b.lo + i]);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = d; i < b.ldg; i++) assert_true(b.dg[r * b.ldg + i] == b.dg0[r * b.ldg + i]);
  char what[128];
  snprintf(what, sizeof what, "swiglu_fwd %s %lldx%lld pad %lld", label, (long long)rows,
           (long long)d, (long long)pad);
  ot_close(got, want, n, 2e-6, 1e-7, what);
  snprintf(what, sizeof what, "swiglu_bwd dgate %s %lldx%lld", label, (long long)rows,
           (long long)d);
  ot_close_acc(gdg, bdg, wdg, n, 1e-5, 1e-6, what);
  snprintf(what, sizeof what, "swiglu_bwd dup %s %lldx%lld", label, (long long)rows, (long long)d);
  ot_close_acc(gdu, bdu, wdu, n, 1e-5, 1e-6, what);
  free(got), free(gdg), free(gdu), free(bdg), free(bdu), free(want), free(wdg), free(wdu);
  free(out_before);
  sw_free(&b);
}

static void swiglu_matches_reference(void **state) {
  (void)state;
  onerec_context *ctx = g_ctx[1];
  const orx_simd *best = orx_cpu_of(ot_be(ctx))->simd;
  for (size_t v = 0; v < OT_LEN(k_isas); v++) {
    if (!ot_use_isa(ctx, k_isas[v])) continue;
    for (size_t a = 0; a < OT_LEN(k_rows); a++)
      for (size_t c = 0; c < OT_LEN(k_dims); c++) {
        sw_check(ctx, k_rows[a], k_dims[c], 0, 40 + a * 10 + c, 6, k_isas[v]);
        sw_check(ctx, k_rows[a], k_dims[c], 5, 50 + a * 10 + c, 6, k_isas[v]);
      }
    /* gates far into saturation: silu -> 0 and -> identity, no NaN from exp overflow */
    sw_check(ctx, 7, 130, 1, 60, 200, k_isas[v]);
  }
  orx_cpu_of(ot_be(ctx))->simd = best;
  sw_check(g_ctx[3], 611, 130, 0, 70, 6, "threads=3 flat");
  sw_check(g_ctx[3], 611, 130, 3, 71, 6, "threads=3 pitched");
}

typedef struct sw_fd {
  double *g, *u, *r;
  size_t n;
} sw_fd;

static double sw_loss(void *p) {
  sw_fd *s = p;
  double l = 0;
  for (size_t i = 0; i < s->n; i++) l += s->r[i] * silu(s->g[i]) * s->u[i];
  return l;
}

static void swiglu_bwd_matches_finite_differences(void **state) {
  (void)state;
  sw_bufs b;
  sw_init(&b, 3, 37, 0, 80, 5);
  memset(b.dg, 0, 3 * 37 * sizeof *b.dg);
  memset(b.du, 0, 3 * 37 * sizeof *b.du);
  assert_ok(sw_bwd(g_ctx[1], &b));
  size_t n = 3 * 37;
  sw_fd s = {ot_doubles(b.g, n), ot_doubles(b.u, n), ot_doubles(b.dy, n), n};
  double *gg = ot_zeros_d(n), *gu = ot_zeros_d(n);
  ot_fd(sw_loss, &s, s.g, n, 1e-5, gg);
  ot_fd(sw_loss, &s, s.u, n, 1e-5, gu);
  ot_close(b.dg, gg, n, 1e-4, 1e-6, "swiglu dgate vs finite differences");
  ot_close(b.du, gu, n, 1e-4, 1e-6, "swiglu dup vs finite differences");
  free(s.g), free(s.u), free(s.r), free(gg), free(gu);
  sw_free(&b);
}

/* ---- leaky relu ---- */

/* inputs kept away from the kink at 0 (finite differences straddling it mean nothing) */
static float *leaky_inputs(size_t n, uint64_t seed) {
  float *x = ot_floats(n, seed, -3, 3);
  for (size_t i = 0; i < n; i++)
    if (fabsf(x[i]) < 0.01f) x[i] = x[i] < 0 ? -0.5f : 0.5f;
  return x;
}

static void leaky_check(onerec_context *ctx, int64_t n, float slope, uint64_t seed,
                        const char *label) {
  orx_backend *be = ot_be(ctx);
  float *x = leaky_inputs((size_t)n, seed), *out = ot_floats((size_t)n, seed + 1, -1, 1);
  float *dy = ot_floats((size_t)n, seed + 2, -1, 1), *dx0 = ot_floats((size_t)n, seed + 3, -1, 1);
  float *dx = ot_copy(dx0, (size_t)n);
  double *want = ot_zeros_d((size_t)n), *wdx = ot_zeros_d((size_t)n);
  for (int64_t i = 0; i < n; i++) {
    want[i] = x[i] > 0 ? (double)x[i] : (double)slope * x[i];
    wdx[i] = x[i] > 0 ? (double)dy[i] : (double)slope * dy[i];
  }
  assert_ok(ORX_OP(be, leaky_relu_fwd, out, x, n, slope));
  assert_ok(ORX_OP(be, leaky_relu_bwd, dx, dy, x, n, slope));
  char what[96];
  snprintf(what, sizeof what, "leaky_relu_fwd %s n=%lld", label, (long long)n);
  ot_close(out, want, (size_t)n, 1e-7, 0, what);
  snprintf(what, sizeof what, "leaky_relu_bwd %s n=%lld", label, (long long)n);
  ot_close_acc(dx, dx0, wdx, (size_t)n, 1e-6, 1e-7, what);
  /* in place */
  assert_ok(ORX_OP(be, leaky_relu_fwd, x, x, n, slope));
  ot_same_bits(x, out, (size_t)n * sizeof *x, "leaky_relu_fwd in place");
  free(x), free(out), free(dy), free(dx0), free(dx), free(want), free(wdx);
}

static void leaky_relu_matches_reference(void **state) {
  (void)state;
  onerec_context *ctx = g_ctx[1];
  const orx_simd *best = orx_cpu_of(ot_be(ctx))->simd;
  static const int64_t ns[] = {1, 3, 7, 64, 130, 131 * 130};
  for (size_t v = 0; v < OT_LEN(k_isas); v++) {
    if (!ot_use_isa(ctx, k_isas[v])) continue;
    for (size_t k = 0; k < OT_LEN(ns); k++) {
      leaky_check(ctx, ns[k], 0.01f, 90 + k, k_isas[v]);
      leaky_check(ctx, ns[k], 0.2f, 95 + k, k_isas[v]);
    }
  }
  orx_cpu_of(ot_be(ctx))->simd = best;
  leaky_check(g_ctx[3], 100003, 0.1f, 99, "threads=3");
}

typedef struct lk_fd {
  double *x, *r;
  size_t n;
  double slope;
} lk_fd;

static double lk_loss(void *p) {
  lk_fd *s = p;
  double l = 0;
  for (size_t i = 0; i < s->n; i++) l += s->r[i] * (s->x[i] > 0 ? s->x[i] : s->slope * s->x[i]);
  return l;
}

static void leaky_relu_bwd_matches_finite_differences(void **state) {
  (void)state;
  const size_t n = 67;
  float *x = leaky_inputs(n, 7), *dy = ot_floats(n, 8, -1, 1), *dx = calloc(n, sizeof *dx);
  assert_non_null(dx);
  assert_ok(ORX_OP(ot_be(g_ctx[1]), leaky_relu_bwd, dx, dy, x, (int64_t)n, 0.05f));
  lk_fd s = {ot_doubles(x, n), ot_doubles(dy, n), n, 0.05f};
  double *g = ot_zeros_d(n);
  ot_fd(lk_loss, &s, s.x, n, 1e-4, g);
  ot_close(dx, g, n, 1e-6, 1e-7, "leaky_relu dx vs finite differences");
  free(x), free(dy), free(dx), free(s.x), free(s.r), free(g);
}

static void results_do_not_depend_on_threads(void **state) {
  (void)state;
  sw_bufs b[4];
  float *lo[4], *ldx[4];
  const int64_t n = 200003;
  float *x = leaky_inputs((size_t)n, 3), *dy = ot_floats((size_t)n, 4, -1, 1);
  for (int t = 1; t <= 3; t++) {
    sw_init(&b[t], 517, 131, 0, 5, 6);
    assert_ok(sw_fwd(g_ctx[t], &b[t]));
    assert_ok(sw_bwd(g_ctx[t], &b[t]));
    lo[t] = ot_floats((size_t)n, 1, 0, 1), ldx[t] = ot_floats((size_t)n, 2, 0, 1);
    assert_ok(ORX_OP(ot_be(g_ctx[t]), leaky_relu_fwd, lo[t], x, n, 0.1f));
    assert_ok(ORX_OP(ot_be(g_ctx[t]), leaky_relu_bwd, ldx[t], dy, x, n, 0.1f));
  }
  size_t sz = 517 * 131 * sizeof(float);
  for (int t = 2; t <= 3; t++) {
    ot_same_bits(b[1].out, b[t].out, sz, "swiglu_fwd");
    ot_same_bits(b[1].dg, b[t].dg, sz, "swiglu_bwd dgate");
    ot_same_bits(b[1].du, b[t].du, sz, "swiglu_bwd dup");
    ot_same_bits(lo[1], lo[t], (size_t)n * sizeof(float), "leaky_relu_fwd");
    ot_same_bits(ldx[1], ldx[t], (size_t)n * sizeof(float), "leaky_relu_bwd");
  }
  for (int t = 1; t <= 3; t++) sw_free(&b[t]), free(lo[t]), free(ldx[t]);
  free(x), free(dy);
}

static void bad_arguments_fail(void **state) {
  (void)state;
  orx_backend *be = ot_be(g_ctx[1]);
  float a[16] = {0};
  assert_status(ORX_OP(be, swiglu_fwd, a, 4, a, 4, a, 4, -1, 4), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, swiglu_fwd, a, 4, a, 4, a, 4, 2, -4), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, swiglu_fwd, a, 3, a, 4, a, 4, 2, 4), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, swiglu_fwd, a, 4, a, 4, a, 2, 2, 4), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, swiglu_fwd, a, 4, NULL, 4, a, 4, 2, 4), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, swiglu_bwd, a, 4, a, 4, a, 4, a, 4, a, 4, -2, 4), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, swiglu_bwd, a, 4, a, 1, a, 4, a, 4, a, 4, 2, 4), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, swiglu_bwd, a, 4, a, 4, NULL, 4, a, 4, a, 4, 2, 4),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, leaky_relu_fwd, a, a, -1, 0.1f), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, leaky_relu_fwd, NULL, a, 4, 0.1f), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, leaky_relu_bwd, a, a, a, -5, 0.1f), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, leaky_relu_bwd, a, a, NULL, 4, 0.1f), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(ORX_OP(be, swiglu_fwd, NULL, 0, NULL, 0, NULL, 0, 0, 4));
  assert_ok(ORX_OP(be, swiglu_bwd, NULL, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0, 3, 0));
  assert_ok(ORX_OP(be, leaky_relu_fwd, NULL, NULL, 0, 0.1f));
  assert_ok(ORX_OP(be, leaky_relu_bwd, NULL, NULL, NULL, 0, 0.1f));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(swiglu_matches_reference),
      cmocka_unit_test(swiglu_bwd_matches_finite_differences),
      cmocka_unit_test(leaky_relu_matches_reference),
      cmocka_unit_test(leaky_relu_bwd_matches_finite_differences),
      cmocka_unit_test(results_do_not_depend_on_threads),
      cmocka_unit_test(bad_arguments_fail),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
