/* Softmax cross-entropy op of the CPU backend, plain and label-smoothed, against a naive
 * double-precision reference and central finite differences, on every ISA variant the CPU
 * runs: ignored rows, dlogits written (not accumulated) and in place over the logits, huge and
 * masked logits, the loss-only path, bit-identical results for 1, 2 and 3 threads, bad targets
 * and bad smoothing values. */
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

#define IGNORE (-100)

/* From the definition, with the smoothed target q = (1 - e) onehot + e / v:
 * loss[r] = -sum_i q_i log softmax(x)_i and (if dl) dl = (softmax - q) * gs. */
static void ref_ce(double *loss, double *dl, const double *x, const int32_t *t, int64_t rows,
                   int64_t v, double gs, double e) {
  for (int64_t r = 0; r < rows; r++) {
    const double *xr = x + r * v;
    if (t[r] == IGNORE) {
      loss[r] = 0;
      if (dl)
        for (int64_t i = 0; i < v; i++) dl[r * v + i] = 0;
      continue;
    }
    double m = -INFINITY, s = 0;
    for (int64_t i = 0; i < v; i++) m = fmax(m, xr[i]);
    for (int64_t i = 0; i < v; i++) s += exp(xr[i] - m);
    loss[r] = 0;
    for (int64_t i = 0; i < v; i++) {
      double q = (i == t[r] ? 1.0 - e : 0.0) + e / (double)v;
      if (q > 0) loss[r] -= q * (xr[i] - m - log(s));
      if (dl) dl[r * v + i] = (exp(xr[i] - m) / s - q) * gs;
    }
  }
}

static int32_t *make_targets(int64_t rows, int64_t v, uint64_t seed) {
  int32_t *t = malloc((size_t)rows * sizeof *t);
  assert_non_null(t);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 3;
  for (int64_t r = 0; r < rows; r++) {
    float u = (tu_rand(&s) + 1.0f) * 0.5f;
    t[r] = (int32_t)(u * (float)v);
    if (t[r] >= v) t[r] = (int32_t)v - 1;
    if (r % 5 == 3) t[r] = IGNORE;
  }
  return t;
}

static void ce_case(onerec_context *ctx, const float *x, int64_t rows, int64_t v, const int32_t *t,
                    float e, const char *label) {
  orx_backend *be = ot_be(ctx);
  const float gs = 0.37f;
  size_t n = (size_t)(rows * v);
  float *loss = ot_floats((size_t)rows, 1, 5, 9), *loss2 = ot_floats((size_t)rows, 2, 5, 9);
  float *dl = ot_floats(n, 3, -9, 9); /* garbage: dlogits is written, never added to */
  double *xd = ot_doubles(x, n), *lr = ot_zeros_d((size_t)rows), *dlr = ot_zeros_d(n);
  ref_ce(lr, dlr, xd, t, rows, v, gs, e);
  char what[128];

  assert_ok(ORX_OP(be, cross_entropy, loss, dl, x, t, rows, v, IGNORE, gs, e));
  snprintf(what, sizeof what, "cross_entropy loss %s e=%g %lldx%lld", label, (double)e,
           (long long)rows, (long long)v);
  ot_close(loss, lr, (size_t)rows, 2e-6, 2e-6, what);
  snprintf(what, sizeof what, "cross_entropy dlogits %s e=%g %lldx%lld", label, (double)e,
           (long long)rows, (long long)v);
  ot_close(dl, dlr, n, 2e-6, 1e-7, what); /* p_t - 1 cancels: absolute error */
  for (int64_t r = 0; r < rows; r++)
    if (t[r] == IGNORE) {
      assert_true(loss[r] == 0.0f);
      for (int64_t i = 0; i < v; i++) assert_true(dl[r * v + i] == 0.0f);
    }

  /* the loss alone (no dlogits) */
  assert_ok(ORX_OP(be, cross_entropy, loss2, NULL, x, t, rows, v, IGNORE, gs, e));
  snprintf(what, sizeof what, "cross_entropy loss only %s %lldx%lld", label, (long long)rows,
           (long long)v);
  ot_close(loss2, lr, (size_t)rows, 2e-6, 2e-6, what);

  /* dlogits over the logits themselves */
  float *inplace = ot_copy(x, n);
  assert_ok(ORX_OP(be, cross_entropy, loss2, inplace, inplace, t, rows, v, IGNORE, gs, e));
  ot_same_bits(loss2, loss, (size_t)rows * sizeof *loss, "cross_entropy in place: loss");
  ot_same_bits(inplace, dl, n * sizeof *dl, "cross_entropy in place: dlogits");

  free(loss), free(loss2), free(dl), free(xd), free(lr), free(dlr), free(inplace);
}

static void cross_entropy_matches_reference(void **state) {
  (void)state;
  onerec_context *ctx = g_ctx[1];
  const orx_simd *best = orx_cpu_of(ot_be(ctx))->simd;
  for (size_t k = 0; k < OT_LEN(k_isas); k++) {
    if (!ot_use_isa(ctx, k_isas[k])) continue;
    for (size_t a = 0; a < OT_LEN(k_rows); a++)
      for (size_t b = 0; b < OT_LEN(k_dims); b++) {
        int64_t rows = k_rows[a], v = k_dims[b];
        float *x = ot_floats((size_t)(rows * v), 10 + a * 10 + b, -8, 8);
        int32_t *t = make_targets(rows, v, 20 + a * 10 + b);
        ce_case(ctx, x, rows, v, t, 0.0f, k_isas[k]);
        ce_case(ctx, x, rows, v, t, 0.1f, k_isas[k]);
        free(x), free(t);
      }
  }
  orx_cpu_of(ot_be(ctx))->simd = best;
  float *x = ot_floats(257 * 1000, 30, -8, 8);
  int32_t *t = make_targets(257, 1000, 31);
  ce_case(g_ctx[3], x, 257, 1000, t, 0.0f, "threads=3");
  ce_case(g_ctx[3], x, 257, 1000, t, 0.3f, "threads=3");
  free(x), free(t);
}

/* Logits of +-1e4 overflow any exp that does not subtract the max; masked (-inf) logits away
 * from the target just drop out (without smoothing: with it every logit is in the loss, so the
 * smoothed case takes the two rows without them). */
static void cross_entropy_is_stable(void **state) {
  (void)state;
  onerec_context *ctx = g_ctx[1];
  const orx_simd *best = orx_cpu_of(ot_be(ctx))->simd;
  const int64_t rows = 3, v = 77;
  for (size_t k = 0; k < OT_LEN(k_isas); k++) {
    if (!ot_use_isa(ctx, k_isas[k])) continue;
    float *x = ot_floats((size_t)(rows * v), 40, -1, 1);
    int32_t t[3] = {5, 70, 2};
    for (int64_t i = 0; i < v; i++) {
      x[i] *= 1e4f;
      x[v + i] += 1e4f;
      if (i % 4 == 1) x[2 * v + i] = -INFINITY;
    }
    ce_case(ctx, x, rows, v, t, 0.0f, k_isas[k]);
    ce_case(ctx, x, 2, v, t, 0.2f, k_isas[k]);
    free(x);
  }
  orx_cpu_of(ot_be(ctx))->simd = best;
}

typedef struct ce_fd {
  double *x, *loss;
  const int32_t *t;
  int64_t rows, v;
  double gs, e;
} ce_fd;

static double ce_loss(void *p) {
  ce_fd *s = p;
  ref_ce(s->loss, NULL, s->x, s->t, s->rows, s->v, s->gs, s->e);
  double l = 0;
  for (int64_t r = 0; r < s->rows; r++) l += s->loss[r];
  return l * s->gs;
}

static void dlogits_match_finite_differences(void **state) {
  (void)state;
  static const int64_t vs[] = {1, 3, 37};
  for (size_t k = 0; k < 2 * OT_LEN(vs); k++) { /* without, then with label smoothing 0.25 */
    const float e = k < OT_LEN(vs) ? 0.0f : 0.25f;
    const int64_t rows = 5, v = vs[k % OT_LEN(vs)];
    size_t n = (size_t)(rows * v);
    float *x = ot_floats(n, 50 + k, -3, 3), *loss = ot_floats((size_t)rows, 1, 0, 1);
    float *dl = ot_floats(n, 2, 0, 1);
    int32_t *t = make_targets(rows, v, 51 + k);
    assert_ok(ORX_OP(ot_be(g_ctx[1]), cross_entropy, loss, dl, x, t, rows, v, IGNORE, 0.5f, e));
    ce_fd s = {ot_doubles(x, n), ot_zeros_d((size_t)rows), t, rows, v, 0.5, e};
    double *g = ot_zeros_d(n);
    ot_fd(ce_loss, &s, s.x, n, 1e-5, g);
    ot_close(dl, g, n, 1e-4, 1e-6, "cross_entropy dlogits vs finite differences");
    free(x), free(loss), free(dl), free(t), free(s.x), free(s.loss), free(g);
  }
}

static void results_do_not_depend_on_threads(void **state) {
  (void)state;
  const int64_t rows = 1003, v = 333;
  float *x = ot_floats((size_t)(rows * v), 60, -8, 8), *loss[4], *dl[4];
  int32_t *t = make_targets(rows, v, 61);
  for (int c = 0; c < 2; c++) { /* plain and label-smoothed */
    const float e = c ? 0.1f : 0.0f;
    for (int k = 1; k <= 3; k++) {
      loss[k] = ot_floats((size_t)rows, 1, 0, 1), dl[k] = ot_floats((size_t)(rows * v), 2, 0, 1);
      assert_ok(
          ORX_OP(ot_be(g_ctx[k]), cross_entropy, loss[k], dl[k], x, t, rows, v, IGNORE, 1.0f, e));
    }
    for (int k = 2; k <= 3; k++) {
      ot_same_bits(loss[1], loss[k], (size_t)rows * sizeof(float), "cross_entropy loss");
      ot_same_bits(dl[1], dl[k], (size_t)(rows * v) * sizeof(float), "cross_entropy dlogits");
    }
    for (int k = 1; k <= 3; k++) free(loss[k]), free(dl[k]);
  }
  free(x), free(t);
}

static void bad_targets_and_sizes_fail(void **state) {
  (void)state;
  orx_backend *be = ot_be(g_ctx[3]);
  const int64_t rows = 600, v = 100;
  float *x = ot_floats((size_t)(rows * v), 70, -1, 1), *loss = ot_floats((size_t)rows, 1, 0, 1);
  float *dl = ot_floats((size_t)(rows * v), 2, 0, 1);
  float *loss0 = ot_copy(loss, (size_t)rows), *dl0 = ot_copy(dl, (size_t)(rows * v));
  int32_t *t = make_targets(rows, v, 71);
  static const int32_t bad[] = {100, -1, INT32_MAX, INT32_MIN};
  for (size_t k = 0; k < OT_LEN(bad); k++) {
    t[555] = bad[k];
    assert_status(ORX_OP(be, cross_entropy, loss, dl, x, t, rows, v, IGNORE, 1.0f, 0.0f),
                  ONEREC_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(onerec_last_error(), "555"));
  }
  /* nothing was written */
  ot_same_bits(loss, loss0, (size_t)rows * sizeof *loss, "loss after a bad target");
  ot_same_bits(dl, dl0, (size_t)(rows * v) * sizeof *dl, "dlogits after a bad target");
  /* an ignore index inside the vocabulary ignores that class */
  t[555] = 7;
  int32_t t1[2] = {7, 3};
  assert_ok(ORX_OP(be, cross_entropy, loss, dl, x, t1, 2, v, 7, 1.0f, 0.0f));
  assert_true(loss[0] == 0.0f && loss[1] > 0.0f);
  assert_status(ORX_OP(be, cross_entropy, loss, dl, x, t, -1, v, IGNORE, 1.0f, 0.0f), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, cross_entropy, loss, dl, x, t, rows, 0, IGNORE, 1.0f, 0.0f), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, cross_entropy, loss, dl, NULL, t, rows, v, IGNORE, 1.0f, 0.0f),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, cross_entropy, loss, dl, x, NULL, rows, v, IGNORE, 1.0f, 0.0f),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, cross_entropy, NULL, NULL, x, t, rows, v, IGNORE, 1.0f, 0.0f),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(ORX_OP(be, cross_entropy, NULL, NULL, NULL, NULL, 0, v, IGNORE, 1.0f, 0.0f));
  /* a smoothing outside [0, 1) */
  static const float bad_e[] = {-0.1f, 1.0f, 2.0f, NAN};
  for (size_t k = 0; k < OT_LEN(bad_e); k++) {
    assert_status(ORX_OP(be, cross_entropy, loss, dl, x, t1, 2, v, IGNORE, 1.0f, bad_e[k]),
                  ONEREC_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(onerec_last_error(), "smoothing"));
  }
  free(x), free(loss), free(dl), free(loss0), free(dl0), free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(cross_entropy_matches_reference),
      cmocka_unit_test(cross_entropy_is_stable),
      cmocka_unit_test(dlogits_match_finite_differences),
      cmocka_unit_test(results_do_not_depend_on_threads),
      cmocka_unit_test(bad_targets_and_sizes_fail),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
