/* Batched strided matmul of the CPU backend against a naive double-precision reference:
 * transposes, batch strides (broadcast included), padded pitches, alpha/beta, bf16 inputs,
 * the threaded split, repeatability and bad arguments. */
#include "testutil.h"

#include "context_impl.h"

typedef struct mm_case {
  int ta, tb;
  int64_t batch, m, n, k;
  int64_t pad; /* extra elements per row of A, B and C (pitches larger than minimal) */
  int bcast_a, bcast_b; /* batch stride 0: one matrix for every batch item */
  float alpha, beta;
  onerec_dtype dtype;
} mm_case;

/* The operands of one case, A and B kept in f32 (rounded to bf16 values for a bf16 case, so the
 * reference sees exactly what the op sees) and, for bf16, as the uint16 the op reads. */
typedef struct mm_data {
  mm_case c;
  int64_t lda, ldb, ldc, sa, sb, sc;
  size_t na, nb, nc;
  float *a, *b, *c0;
  uint16_t *a16, *b16;
} mm_data;

static uint16_t to_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  u += 0x7FFFu + ((u >> 16) & 1u); /* round to nearest even */
  return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float x;
  memcpy(&x, &u, 4);
  return x;
}

static void mm_init(mm_data *d, const mm_case *c, uint64_t seed) {
  memset(d, 0, sizeof *d);
  d->c = *c;
  int64_t ar = c->ta ? c->k : c->m, ac = c->ta ? c->m : c->k;
  int64_t br = c->tb ? c->n : c->k, bc = c->tb ? c->k : c->n;
  d->lda = ac + c->pad;
  d->ldb = bc + c->pad;
  d->ldc = c->n + c->pad;
  /* batch strides a little past the matrix, so items do not sit back to back */
  d->sa = c->bcast_a ? 0 : ar * d->lda + 7;
  d->sb = c->bcast_b ? 0 : br * d->ldb + 5;
  d->sc = c->m * d->ldc + 3;
  d->na = (size_t)((c->batch - 1) * d->sa + ar * d->lda);
  d->nb = (size_t)((c->batch - 1) * d->sb + br * d->ldb);
  d->nc = (size_t)((c->batch - 1) * d->sc + c->m * d->ldc);
  d->a = malloc(d->na * sizeof *d->a);
  d->b = malloc(d->nb * sizeof *d->b);
  d->c0 = malloc(d->nc * sizeof *d->c0);
  assert_true(d->a && d->b && d->c0);
  tu_fill(d->a, d->na, seed);
  tu_fill(d->b, d->nb, seed + 1);
  tu_fill(d->c0, d->nc, seed + 2);
  if (c->dtype == ONEREC_BF16) {
    d->a16 = malloc(d->na * sizeof *d->a16);
    d->b16 = malloc(d->nb * sizeof *d->b16);
    assert_true(d->a16 && d->b16);
    for (size_t i = 0; i < d->na; i++) d->a[i] = from_bf16(d->a16[i] = to_bf16(d->a[i]));
    for (size_t i = 0; i < d->nb; i++) d->b[i] = from_bf16(d->b16[i] = to_bf16(d->b[i]));
  }
}

static void mm_free(mm_data *d) {
  free(d->a);
  free(d->b);
  free(d->c0);
  free(d->a16);
  free(d->b16);
}

static orx_matmul_args mm_args(const mm_data *d, float *c) {
  const mm_case *k = &d->c;
  int bf = k->dtype == ONEREC_BF16;
  orx_matmul_args a = {.trans_a = k->ta, .trans_b = k->tb, .batch = k->batch, .m = k->m,
                       .n = k->n, .k = k->k,
                       .a = bf ? (const void *)d->a16 : (const void *)d->a, .lda = d->lda,
                       .stride_a = d->sa,
                       .b = bf ? (const void *)d->b16 : (const void *)d->b, .ldb = d->ldb,
                       .stride_b = d->sb, .c = c, .ldc = d->ldc, .stride_c = d->sc,
                       .alpha = k->alpha, .beta = k->beta, .dtype = k->dtype};
  return a;
}

/* C as the op must leave it: reference values inside each m x n block, C0 in the padding. */
static float *mm_reference(const mm_data *d) {
  const mm_case *c = &d->c;
  float *want = malloc(d->nc * sizeof *want);
  assert_non_null(want);
  memcpy(want, d->c0, d->nc * sizeof *want);
  for (int64_t b = 0; b < c->batch; b++)
    for (int64_t i = 0; i < c->m; i++)
      for (int64_t j = 0; j < c->n; j++) {
        double s = 0;
        for (int64_t p = 0; p < c->k; p++) {
          double x = c->ta ? d->a[b * d->sa + p * d->lda + i] : d->a[b * d->sa + i * d->lda + p];
          double y = c->tb ? d->b[b * d->sb + j * d->ldb + p] : d->b[b * d->sb + p * d->ldb + j];
          s += x * y;
        }
        size_t at = (size_t)(b * d->sc + i * d->ldc + j);
        want[at] = (float)(c->alpha * s + c->beta * (double)d->c0[at]);
      }
  return want;
}

/* Runs the case on ctx and returns the resulting C (caller frees). */
static float *mm_run(onerec_context *ctx, const mm_data *d) {
  float *c = malloc(d->nc * sizeof *c);
  assert_non_null(c);
  memcpy(c, d->c0, d->nc * sizeof *c);
  orx_matmul_args a = mm_args(d, c);
  assert_ok(ORX_OP(&ctx->be, matmul, &a));
  return c;
}

static void check_mm(onerec_context *ctx, const mm_case *c, uint64_t seed) {
  mm_data d;
  mm_init(&d, c, seed);
  float *got = mm_run(ctx, &d), *want = mm_reference(&d);
  char what[128];
  snprintf(what, sizeof what, "matmul ta=%d tb=%d batch=%lld %lldx%lldx%lld %s", c->ta, c->tb,
           (long long)c->batch, (long long)c->m, (long long)c->n, (long long)c->k,
           onerec_dtype_name(c->dtype));
  /* f32 accumulation over k terms of size ~1 */
  tu_assert_close(got, want, d.nc, 1e-5f, 2e-6f * (float)c->k, what);
  free(got);
  free(want);
  mm_free(&d);
}

static onerec_context *g_ctx1, *g_ctx2, *g_ctx3;

static void test_transposes(void **state) {
  (void)state;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      mm_case c = {.ta = ta, .tb = tb, .batch = 1, .m = 13, .n = 11, .k = 7, .alpha = 1,
                   .dtype = ONEREC_F32};
      check_mm(g_ctx2, &c, 1);
      c.pad = 5; /* pitches past the minimum, beta folding in the old C */
      c.alpha = -0.75f;
      c.beta = 0.5f;
      check_mm(g_ctx2, &c, 2);
    }
}

static void test_batched_strides(void **state) {
  (void)state;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      mm_case c = {.ta = ta, .tb = tb, .batch = 4, .m = 9, .n = 17, .k = 33, .pad = 3,
                   .alpha = 1.5f, .beta = 1, .dtype = ONEREC_F32};
      check_mm(g_ctx2, &c, 3);
      c.bcast_b = 1; /* one weight matrix for every item, as a linear layer does */
      check_mm(g_ctx2, &c, 4);
      c.bcast_b = 0;
      c.bcast_a = 1;
      check_mm(g_ctx3, &c, 5);
    }
  /* a batch of many small items spread over the pool */
  mm_case many = {.batch = 37, .m = 20, .n = 24, .k = 40, .tb = 1, .alpha = 1,
                  .dtype = ONEREC_F32};
  check_mm(g_ctx3, &many, 6);
}

static void test_tiny(void **state) {
  (void)state;
  mm_case one = {.batch = 1, .m = 1, .n = 1, .k = 1, .alpha = 2, .beta = -1,
                 .dtype = ONEREC_F32};
  check_mm(g_ctx2, &one, 7);
  mm_case row = {.ta = 1, .batch = 3, .m = 1, .n = 5, .k = 2, .pad = 1, .alpha = 1,
                 .dtype = ONEREC_F32};
  check_mm(g_ctx2, &row, 8);
  mm_case col = {.tb = 1, .batch = 2, .m = 6, .n = 1, .k = 3, .alpha = 1, .beta = 0.25f,
                 .dtype = ONEREC_F32};
  check_mm(g_ctx2, &col, 9);
}

static void test_bf16(void **state) {
  (void)state;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      mm_case c = {.ta = ta, .tb = tb, .batch = 3, .m = 21, .n = 10, .k = 19, .pad = 2,
                   .alpha = 1, .beta = 0.5f, .dtype = ONEREC_BF16};
      check_mm(g_ctx2, &c, 10);
      c.bcast_a = 1;
      check_mm(g_ctx2, &c, 11);
    }
  mm_case big = {.batch = 1, .m = 300, .n = 200, .k = 100, .alpha = 1, .dtype = ONEREC_BF16};
  check_mm(g_ctx3, &big, 12);
}

/* Big enough for the pool to split one matrix into row (or column) blocks. */
static void test_threaded_split(void **state) {
  (void)state;
  onerec_context *ctxs[3] = {g_ctx1, g_ctx2, g_ctx3};
  mm_case tall = {.batch = 1, .m = 300, .n = 200, .k = 100, .pad = 3, .alpha = 1, .beta = 0.5f,
                  .dtype = ONEREC_F32};
  mm_case wide = {.tb = 1, .batch = 1, .m = 40, .n = 500, .k = 100, .pad = 4, .alpha = 1,
                  .dtype = ONEREC_F32};
  mm_case two = {.ta = 1, .batch = 2, .m = 150, .n = 130, .k = 90, .alpha = 1,
                 .dtype = ONEREC_F32};
  for (int t = 0; t < 3; t++) {
    check_mm(ctxs[t], &tall, 13);
    check_mm(ctxs[t], &wide, 14);
    check_mm(ctxs[t], &two, 15);
  }
}

/* The same thread count twice gives the same bits; other thread counts split the work
 * differently (and BLAS blocks differently), so they only need to agree closely. */
static void test_repeatable(void **state) {
  (void)state;
  mm_case c = {.batch = 1, .m = 300, .n = 200, .k = 100, .alpha = 1, .beta = 1,
               .dtype = ONEREC_F32};
  mm_data d;
  mm_init(&d, &c, 16);
  float *r1[2] = {mm_run(g_ctx1, &d), mm_run(g_ctx1, &d)};
  float *r3[2] = {mm_run(g_ctx3, &d), mm_run(g_ctx3, &d)};
  float *r2 = mm_run(g_ctx2, &d);
  assert_memory_equal(r1[0], r1[1], d.nc * sizeof(float));
  assert_memory_equal(r3[0], r3[1], d.nc * sizeof(float));
  tu_assert_close(r3[0], r1[0], d.nc, 1e-5f, 1e-5f, "3 threads vs 1");
  tu_assert_close(r2, r1[0], d.nc, 1e-5f, 1e-5f, "2 threads vs 1");
  free(r1[0]);
  free(r1[1]);
  free(r3[0]);
  free(r3[1]);
  free(r2);
  mm_free(&d);
}

static void test_bad_args(void **state) {
  (void)state;
  mm_case c = {.batch = 2, .m = 8, .n = 6, .k = 4, .alpha = 1, .dtype = ONEREC_F32};
  mm_data d;
  mm_init(&d, &c, 17);
  float *out = malloc(d.nc * sizeof *out);
  assert_non_null(out);
  memcpy(out, d.c0, d.nc * sizeof *out);
  const orx_matmul_args good = mm_args(&d, out);
  orx_backend *be = &g_ctx2->be;
  orx_matmul_args a;
#define BAD(field, value, code)                             \
  do {                                                      \
    a = good;                                               \
    a.field = value;                                        \
    assert_status(ORX_OP(be, matmul, &a), code);            \
  } while (0)
  BAD(m, 0, ONEREC_ERR_SHAPE);
  BAD(n, -2, ONEREC_ERR_SHAPE);
  BAD(k, 0, ONEREC_ERR_SHAPE);
  BAD(batch, 0, ONEREC_ERR_SHAPE);
  BAD(lda, 3, ONEREC_ERR_SHAPE); /* A is 8 x 4 */
  BAD(ldb, 5, ONEREC_ERR_SHAPE); /* B is 4 x 6 */
  BAD(ldc, 5, ONEREC_ERR_SHAPE);
  BAD(dtype, ONEREC_I32, ONEREC_ERR_DTYPE);
  BAD(dtype, (onerec_dtype)77, ONEREC_ERR_DTYPE);
#undef BAD
  /* a transposed A is 4 x 8: lda 4 is now too small */
  a = good;
  a.trans_a = 1;
  a.lda = 4;
  assert_status(ORX_OP(be, matmul, &a), ONEREC_ERR_SHAPE);
  /* nothing was written by the failed calls */
  assert_memory_equal(out, d.c0, d.nc * sizeof *out);
  free(out);
  mm_free(&d);
}

static int setup(void **state) {
  (void)state;
  g_ctx1 = tu_cpu_context(1);
  g_ctx2 = tu_cpu_context(2);
  g_ctx3 = tu_cpu_context(3);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  onerec_context_free(g_ctx1);
  onerec_context_free(g_ctx2);
  onerec_context_free(g_ctx3);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_transposes),     cmocka_unit_test(test_batched_strides),
      cmocka_unit_test(test_tiny),           cmocka_unit_test(test_bf16),
      cmocka_unit_test(test_threaded_split), cmocka_unit_test(test_repeatable),
      cmocka_unit_test(test_bad_args),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
