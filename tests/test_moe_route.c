/* CPU MoE routing ops (cpu/moe_route.c): top-k selection with the balancing bias and row
 * scaling (forward and backward), against naive references; thread-count invariance; bad input. */
#include "testutil.h"

#include "context_impl.h"

/* Naive top-k: k passes, each taking the best expert not yet taken (ties to the lower index). */
static void topk_ref(int32_t *idx, float *gates, const float *p, const float *bias, int64_t rows,
                     int64_t e, int64_t k) {
  for (int64_t r = 0; r < rows; r++) {
    int taken[64] = {0};
    for (int64_t s = 0; s < k; s++) {
      int64_t best = -1;
      for (int64_t j = 0; j < e; j++) {
        if (taken[j]) continue;
        float v = p[r * e + j] + (bias ? bias[j] : 0.0f);
        float bv = best < 0 ? 0 : p[r * e + best] + (bias ? bias[best] : 0.0f);
        if (best < 0 || v > bv) best = j;
      }
      taken[best] = 1;
      idx[r * k + s] = (int32_t)best;
      gates[r * k + s] = p[r * e + best];
    }
  }
}

static void test_topk(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2), *ctx1 = tu_cpu_context(1);
  orx_backend *be = &ctx->be, *be1 = &ctx1->be;
  const int64_t rows = 1000, E = 24;
  float *p = malloc(rows * E * sizeof *p), bias[24];
  tu_fill(p, (size_t)(rows * E), 3);
  tu_fill(bias, 24, 4);
  for (int64_t j = 0; j < E; j++) bias[j] *= 0.3f;
  /* rows 0..9 hold ties: every score equal, or pairs of equal scores */
  for (int64_t j = 0; j < E; j++) p[j] = 0.5f;
  for (int64_t j = 0; j < E; j++) p[E + j] = (float)(j / 2);
  const int64_t ks[] = {1, 2, 4, 24};
  for (size_t t = 0; t < sizeof ks / sizeof *ks; t++) {
    const int64_t k = ks[t];
    int32_t *idx = malloc(rows * k * sizeof *idx), *want = malloc(rows * k * sizeof *want),
            *idx1 = malloc(rows * k * sizeof *idx1);
    float *g = malloc(rows * k * sizeof *g), *gw = malloc(rows * k * sizeof *gw),
          *g1 = malloc(rows * k * sizeof *g1);
    for (int b = 0; b < 2; b++) {
      const float *bs = b ? bias : NULL;
      assert_ok(ORX_OP(be, moe_topk, idx, g, p, bs, rows, E, k));
      assert_ok(ORX_OP(be1, moe_topk, idx1, g1, p, bs, rows, E, k));
      topk_ref(want, gw, p, bs, rows, E, k);
      assert_memory_equal(idx, want, (size_t)(rows * k) * sizeof *idx);
      assert_memory_equal(g, gw, (size_t)(rows * k) * sizeof *g);
      assert_memory_equal(idx1, idx, (size_t)(rows * k) * sizeof *idx);
      if (!bs) { /* the tie rows: the lowest experts win */
        for (int64_t s = 0; s < k; s++) assert_int_equal(idx[s], s);
        if (k >= 2) {
          assert_int_equal(idx[k + 0], 22);
          assert_int_equal(idx[k + 1], 23);
        }
      }
    }
    free(idx);
    free(want);
    free(idx1);
    free(g);
    free(gw);
    free(g1);
  }
  /* the bias moves the choice but not the gate */
  float pr[3] = {0.5f, 0.3f, 0.2f}, bb[3] = {0.0f, 0.0f, 0.4f}, gate;
  int32_t ix;
  assert_ok(ORX_OP(be, moe_topk, &ix, &gate, pr, bb, 1, 3, 1));
  assert_int_equal(ix, 2);
  assert_true(gate == 0.2f);

  int32_t i1;
  float g1;
  assert_status(ORX_OP(be, moe_topk, &i1, &g1, pr, NULL, 1, 3, 4), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, moe_topk, &i1, &g1, pr, NULL, 1, 3, 0), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, moe_topk, NULL, &g1, pr, NULL, 1, 3, 1), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(ORX_OP(be, moe_topk, NULL, NULL, NULL, NULL, 0, 3, 1)); /* no rows: nothing to do */
  free(p);
  onerec_context_free(ctx);
  onerec_context_free(ctx1);
}

static void test_scale_rows(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  orx_backend *be = &ctx->be;
  const int64_t rows = 700, dim = 37;
  const size_t n = (size_t)(rows * dim);
  float *x = malloc(n * sizeof *x), *out = malloc(n * sizeof *out), *s = malloc(rows * sizeof *s);
  float *dout = malloc(n * sizeof *dout), *dx = malloc(n * sizeof *dx), *ds = malloc(rows * 4);
  float *dx0 = malloc(n * sizeof *dx0), *ds0 = malloc(rows * 4);
  tu_fill(x, n, 1);
  tu_fill(s, (size_t)rows, 2);
  tu_fill(dout, n, 3);
  tu_fill(dx0, n, 4);
  tu_fill(ds0, (size_t)rows, 5);
  assert_ok(ORX_OP(be, scale_rows, out, x, s, rows, dim));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < dim; c++) assert_true(out[r * dim + c] == x[r * dim + c] * s[r]);
  memcpy(dx, x, n * sizeof *x); /* in place */
  assert_ok(ORX_OP(be, scale_rows, dx, dx, s, rows, dim));
  assert_memory_equal(dx, out, n * sizeof *dx);

  /* backward accumulates into both gradients */
  memcpy(dx, dx0, n * sizeof *dx);
  memcpy(ds, ds0, (size_t)rows * sizeof *ds);
  assert_ok(ORX_OP(be, scale_rows_bwd, dx, ds, dout, x, s, rows, dim));
  for (int64_t r = 0; r < rows; r++) {
    double acc = 0;
    for (int64_t c = 0; c < dim; c++) {
      acc += (double)dout[r * dim + c] * x[r * dim + c];
      float want = dx0[r * dim + c] + dout[r * dim + c] * s[r];
      assert_true(fabsf(dx[r * dim + c] - want) <= 1e-6f * (1.0f + fabsf(want)));
    }
    float want = ds0[r] + (float)acc;
    assert_true(fabsf(ds[r] - want) <= 1e-5f * (1.0f + fabsf(want)));
  }
  /* finite differences of L = sum dout * scale_rows(x, s) with respect to s[5] */
  {
    double h = 1e-3, lp = 0, lm = 0;
    float keep = s[5];
    for (int sign = 0; sign < 2; sign++) {
      s[5] = keep + (float)(sign ? -h : h);
      assert_ok(ORX_OP(be, scale_rows, out, x, s, rows, dim));
      double l = 0;
      for (size_t i = 0; i < n; i++) l += (double)dout[i] * out[i];
      if (sign) lm = l; else lp = l;
    }
    s[5] = keep;
    double fd = (lp - lm) / (2 * h);
    assert_true(fabs(fd - (ds[5] - ds0[5])) < 1e-2 * (1 + fabs(fd)));
  }
  /* either gradient may be skipped */
  memcpy(dx, dx0, n * sizeof *dx);
  assert_ok(ORX_OP(be, scale_rows_bwd, dx, NULL, dout, NULL, s, rows, dim));
  memcpy(ds, ds0, (size_t)rows * sizeof *ds);
  assert_ok(ORX_OP(be, scale_rows_bwd, NULL, ds, dout, x, NULL, rows, dim));
  assert_status(ORX_OP(be, scale_rows, out, x, s, -1, dim), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, scale_rows, out, NULL, s, rows, dim), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, scale_rows_bwd, dx, NULL, dout, x, NULL, rows, dim),
                ONEREC_ERR_INVALID_ARGUMENT);
  free(x);
  free(out);
  free(s);
  free(dout);
  free(dx);
  free(ds);
  free(dx0);
  free(ds0);
  onerec_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_topk),
      cmocka_unit_test(test_scale_rows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
