/* The CPU kernel tables (cpu/simd_kernels.c compiled per ISA): every entry of every variant this
 * CPU runs against the scalar table on random data of every tail length and misaligned
 * pointers; the scalar table against double-precision definitions; exp's accuracy over its
 * whole normal range and at the extremes; softmax with huge, masked and fully masked rows;
 * bf16 conversion of special values. */
#include "testutil.h"

#include "simd.h"
#include "../lib/dropout_hash.h"

static const char *const k_isas[] = {"avx512", "avx2", "scalar"};
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static float *floats(size_t n, uint64_t seed, float lo, float hi) {
  float *x = malloc((n + 1) * sizeof *x); /* +1: room for a misaligned view */
  assert_non_null(x);
  tu_fill(x, n + 1, seed);
  for (size_t i = 0; i <= n; i++) x[i] = lo + (x[i] + 1.0f) * 0.5f * (hi - lo);
  return x;
}

static void close_f(const float *got, const float *want, size_t n, float rtol, float atol,
                    const char *isa, const char *what, int64_t len) {
  char msg[96];
  snprintf(msg, sizeof msg, "%s %s n=%lld", isa, what, (long long)len);
  tu_assert_close(got, want, n, rtol, atol, msg);
}

static void close_1(float got, float want, float rtol, float atol, const char *isa,
                    const char *what, int64_t len) {
  close_f(&got, &want, 1, rtol, atol, isa, what, len);
}

static void same(const void *a, const void *b, size_t bytes, const char *isa, const char *what,
                 int64_t len) {
  if (memcmp(a, b, bytes) != 0)
    fail_msg("%s %s n=%lld: differs from scalar", isa, what, (long long)len);
}

/* Every entry of table t against the scalar table on the same input, for one length. */
static void compare_tables(const orx_simd *t, int64_t n, int misalign, uint64_t seed) {
  const orx_simd *s = &orx_simd_scalar;
  const char *isa = t->isa;
  size_t sz = (size_t)n * sizeof(float);
  float *xb = floats((size_t)n, seed, -4, 4), *yb = floats((size_t)n, seed + 1, -4, 4);
  float *wb = floats((size_t)n, seed + 2, -2, 2), *db = floats((size_t)n, seed + 3, -1, 1);
  float *x = xb + misalign, *y = yb + misalign, *w = wb + misalign, *dy = db + misalign;
  float *a1 = malloc(sz + 4), *a2 = malloc(sz + 4), *b1 = malloc(sz + 4), *b2 = malloc(sz + 4);
  float *c1 = malloc(sz + 4), *c2 = malloc(sz + 4);
  assert_true(a1 && a2 && b1 && b2 && c1 && c2);

  same((float[]){t->max(x, n)}, (float[]){s->max(x, n)}, 4, isa, "max", n);

  memcpy(a1, x, sz), memcpy(a2, x, sz);
  float s1 = t->exp_sub_sum(a1, n, 1.5f), s2 = s->exp_sub_sum(a2, n, 1.5f);
  close_f(a1, a2, (size_t)n, 3e-7f, 0, isa, "exp_sub_sum values", n);
  close_1(s1, s2, 1e-6f, 0, isa, "exp_sub_sum sum", n);

  memcpy(a1, x, sz), memcpy(a2, x, sz);
  t->scale(a1, n, -0.3f), s->scale(a2, n, -0.3f);
  same(a1, a2, sz, isa, "scale", n); /* one rounding either way */

  /* dropout: exactly the mask of lib/dropout_hash.h (which CUDA shares), from any offset */
  memcpy(a1, x, sz);
  t->dropout(a1, n, 1000 + (uint64_t)n, seed, orx_drop_threshold(0.3f), 1.0f / 0.7f);
  for (int64_t i = 0; i < n; i++) {
    float want = orx_drop_bits(seed, 1000 + (uint64_t)n + (uint64_t)i) >= orx_drop_threshold(0.3f)
                     ? x[i] * (1.0f / 0.7f)
                     : 0.0f;
    a2[i] = want;
  }
  same(a1, a2, sz, isa, "dropout", n);

  memcpy(a1, y, sz), memcpy(a2, y, sz);
  t->axpy(a1, x, n, 0.7f), s->axpy(a2, x, n, 0.7f);
  close_f(a1, a2, (size_t)n, 2.5e-7f, 5e-7f, isa, "axpy", n);

  float mag = 0; /* rounding scales with sum |x y|, whatever the sum */
  for (int64_t i = 0; i < n; i++) mag += fabsf(x[i] * y[i]);
  close_1(t->dot(x, y, n), s->dot(x, y, n), 0, 1e-6f * mag, isa, "dot", n);

  float m1, m2;
  float l1 = t->softmax(a1, x, n, 0.8f, &m1), l2 = s->softmax(a2, x, n, 0.8f, &m2);
  close_f(a1, a2, (size_t)n, 1e-6f, 1e-9f, isa, "softmax", n);
  same(&m1, &m2, 4, isa, "softmax max", n);
  close_1(l1, l2, 1e-6f, 1e-7f, isa, "softmax log-sum", n);
  l1 = t->logsumexp(x, n, &m1), l2 = s->logsumexp(x, n, &m2);
  same(&m1, &m2, 4, isa, "logsumexp max", n);
  close_1(l1, l2, 1e-6f, 1e-7f, isa, "logsumexp", n);

  s->softmax(c1, x, n, 1.0f, &m1); /* a probability row for the backward */
  memcpy(a1, w, sz), memcpy(a2, w, sz);
  t->softmax_bwd(a1, dy, c1, n), s->softmax_bwd(a2, dy, c1, n);
  close_f(a1, a2, (size_t)n, 1e-6f, 5e-7f, isa, "softmax_bwd", n);

  float r1 = t->rmsnorm(a1, x, w, n, 1e-5f), r2 = s->rmsnorm(a2, x, w, n, 1e-5f);
  close_f(a1, a2, (size_t)n, 1e-6f, 1e-7f, isa, "rmsnorm", n);
  close_1(r1, r2, 1e-6f, 0, isa, "rmsnorm rstd", n);

  memcpy(a1, y, sz), memcpy(a2, y, sz), memcpy(b1, w, sz), memcpy(b2, w, sz);
  t->rmsnorm_bwd(a1, b1, dy, x, w, n, r2), s->rmsnorm_bwd(a2, b2, dy, x, w, n, r2);
  close_f(a1, a2, (size_t)n, 1e-6f, 1e-6f, isa, "rmsnorm_bwd dx", n);
  close_f(b1, b2, (size_t)n, 1e-6f, 5e-7f, isa, "rmsnorm_bwd dw", n);

  t->swiglu(a1, x, y, n), s->swiglu(a2, x, y, n);
  close_f(a1, a2, (size_t)n, 1e-6f, 1e-7f, isa, "swiglu", n);
  memcpy(a1, w, sz), memcpy(a2, w, sz), memcpy(b1, y, sz), memcpy(b2, y, sz);
  t->swiglu_bwd(a1, b1, dy, x, y, n), s->swiglu_bwd(a2, b2, dy, x, y, n);
  close_f(a1, a2, (size_t)n, 1e-6f, 5e-7f, isa, "swiglu_bwd dgate", n);
  close_f(b1, b2, (size_t)n, 1e-6f, 5e-7f, isa, "swiglu_bwd dup", n);

  t->leaky_relu(a1, x, n, 0.1f), s->leaky_relu(a2, x, n, 0.1f);
  same(a1, a2, sz, isa, "leaky_relu", n);
  memcpy(a1, w, sz), memcpy(a2, w, sz);
  t->leaky_relu_bwd(a1, dy, x, n, 0.1f), s->leaky_relu_bwd(a2, dy, x, n, 0.1f);
  close_f(a1, a2, (size_t)n, 2.5e-7f, 5e-7f, isa, "leaky_relu_bwd", n);

  double q1 = t->sum_squares(x, n), q2 = s->sum_squares(x, n);
  same(&q1, &q2, sizeof q1, isa, "sum_squares", n); /* exact products, same order */

  orx_simd_adamw h = {.lr = 1e-2f,
                      .beta1 = 0.9f,
                      .beta2 = 0.95f,
                      .eps = 1e-8f,
                      .weight_decay = 0.1f,
                      .grad_scale = 0.5f,
                      .bc1 = 0.19f,
                      .bc2 = 0.0975f};
  memcpy(a1, w, sz), memcpy(a2, w, sz), memcpy(b1, y, sz), memcpy(b2, y, sz);
  for (int64_t i = 0; i < n; i++) c1[i] = c2[i] = fabsf(dy[i]);
  t->adamw(a1, x, b1, c1, n, &h), s->adamw(a2, x, b2, c2, n, &h);
  close_f(a1, a2, (size_t)n, 1e-6f, 5e-7f, isa, "adamw param", n);
  close_f(b1, b2, (size_t)n, 1e-6f, 5e-7f, isa, "adamw m", n);
  close_f(c1, c2, (size_t)n, 1e-6f, 5e-7f, isa, "adamw v", n);

  uint16_t *h1 = (uint16_t *)a1, *h2 = (uint16_t *)a2;
  t->f32_to_bf16(h1, x, n), s->f32_to_bf16(h2, x, n);
  same(h1, h2, (size_t)n * 2, isa, "f32_to_bf16", n);
  t->bf16_to_f32(b1, h1, n), s->bf16_to_f32(b2, h1, n);
  same(b1, b2, sz, isa, "bf16_to_f32", n);

  free(xb), free(yb), free(wb), free(db), free(a1), free(a2), free(b1), free(b2), free(c1);
  free(c2);
}

static void variants_match_scalar(void **state) {
  (void)state;
  int ran = 0;
  for (size_t v = 0; v < LEN(k_isas); v++) {
    const orx_simd *t = orx_simd_get(k_isas[v]);
    if (!t) continue;
    assert_string_equal(t->isa, k_isas[v]);
    ran++;
    /* every tail length of the 16- and 32-wide blocks, then longer rows */
    for (int64_t n = 1; n <= 70; n++) compare_tables(t, n, (int)(n & 1), 100 + (uint64_t)n);
    compare_tables(t, 131, 1, 7);
    compare_tables(t, 1000, 0, 8);
    compare_tables(t, 8192 + 5, 1, 9);
  }
  assert_true(ran >= 1); /* scalar at least */
  assert_non_null(orx_simd_best());
}

/* ---- the scalar table against the definitions ---- */

static void kernels_match_definitions(void **state) {
  (void)state;
  for (size_t v = 0; v < LEN(k_isas); v++) {
    const orx_simd *t = orx_simd_get(k_isas[v]);
    if (!t) continue;
    const int64_t n = 133;
    float *x = floats(n, 1, -5, 5), *y = floats(n, 2, -5, 5), *w = floats(n, 3, -1, 1);
    float *o = malloc(n * sizeof *o);
    assert_non_null(o);
    double dot = 0, mx = -INFINITY, ss = 0, se = 0, sq = 0;
    for (int64_t i = 0; i < n; i++) {
      dot += (double)x[i] * y[i], mx = fmax(mx, x[i]), ss += (double)x[i] * x[i];
      sq += (double)x[i] * x[i];
    }
    for (int64_t i = 0; i < n; i++) se += exp(x[i] - mx);
    assert_true(t->max(x, n) == (float)mx);
    close_1(t->dot(x, y, n), (float)dot, 1e-5f, 1e-5f, t->isa, "dot vs double", n);
    float m;
    float ls = t->softmax(o, x, n, 1.0f, &m);
    assert_true(m == (float)mx);
    close_1(ls, (float)log(se), 1e-6f, 1e-7f, t->isa, "log-sum vs double", n);
    for (int64_t i = 0; i < n; i++)
      close_1(o[i], (float)(exp(x[i] - mx) / se), 1e-6f, 1e-9f, t->isa, "softmax vs double", n);
    float r = t->rmsnorm(o, x, w, n, 1e-6f);
    double rd = 1.0 / sqrt(ss / n + 1e-6);
    close_1(r, (float)rd, 1e-6f, 0, t->isa, "rmsnorm rstd vs double", n);
    for (int64_t i = 0; i < n; i++)
      close_1(o[i], (float)(x[i] * rd * w[i]), 2e-6f, 1e-7f, t->isa, "rmsnorm vs double", n);
    t->swiglu(o, x, y, n);
    for (int64_t i = 0; i < n; i++)
      close_1(o[i], (float)(x[i] / (1 + exp(-(double)x[i])) * y[i]), 1e-6f, 1e-7f, t->isa,
              "swiglu vs double", n);
    double got = t->sum_squares(x, n);
    if (fabs(got - sq) > 1e-14 * sq) fail_msg("%s sum_squares %.17g vs %.17g", t->isa, got, sq);
    free(x), free(y), free(w), free(o);
  }
}

/* ---- exp ---- */

static void exp_is_accurate_over_its_range(void **state) {
  (void)state;
  const int64_t n = 1 << 20;
  float *x = malloc(n * sizeof *x), *e = malloc(n * sizeof *e);
  assert_true(x && e);
  for (size_t v = 0; v < LEN(k_isas); v++) {
    const orx_simd *t = orx_simd_get(k_isas[v]);
    if (!t) continue;
    for (int64_t i = 0; i < n; i++) x[i] = -87.0f + 175.0f * (float)i / (float)(n - 1);
    memcpy(e, x, n * sizeof *e);
    t->exp_sub_sum(e, n, 0.0f);
    double worst = 0;
    int64_t wi = 0;
    for (int64_t i = 0; i < n; i++) {
      double want = exp((double)x[i]), r = fabs(e[i] - want) / want;
      if (!(r <= worst)) worst = r, wi = i;
    }
    if (worst > 2e-7)
      fail_msg("%s: exp(%.9g) = %.9g, relative error %.3g > 2e-7", t->isa, (double)x[wi],
               (double)e[wi], worst);
  }
  free(x), free(e);
}

static void exp_handles_extremes(void **state) {
  (void)state;
  const float big = 88.72283f; /* first float whose exp overflows */
  float in[] = {0.0f, -0.0f, 1.0f,  -INFINITY, -1000.0f, -87.5f, 88.72f, nextafterf(big, 0.0f),
                big,  89.0f, 1e30f, INFINITY,  NAN};
  for (size_t v = 0; v < LEN(k_isas); v++) {
    const orx_simd *t = orx_simd_get(k_isas[v]);
    if (!t) continue;
    /* repeated so that both the vector body and the scalar tail see each value */
    float e[LEN(in) * 5];
    for (size_t r = 0; r < 5; r++) memcpy(e + r * LEN(in), in, sizeof in);
    t->exp_sub_sum(e, (int64_t)LEN(e), 0.0f);
    for (size_t r = 0; r < 5; r++) {
      const float *o = e + r * LEN(in);
      assert_true(o[0] == 1.0f && o[1] == 1.0f);
      close_1(o[2], (float)exp(1.0), 2e-7f, 0, t->isa, "exp(1)", 1);
      assert_true(o[3] == 0.0f && o[4] == 0.0f);
      assert_true(o[5] >= 0.0f && o[5] < 1.2e-38f); /* below the normal range: 0 or tiny */
      close_1(o[6], (float)exp((double)in[6]), 2e-7f, 0, t->isa, "exp(88.72)", 1);
      assert_true(isfinite(o[7]));
      close_1(o[7], (float)exp((double)in[7]), 2e-7f, 0, t->isa, "exp(just below overflow)", 1);
      assert_true(isinf(o[8]) && isinf(o[9]) && isinf(o[10]) && isinf(o[11]) && o[11] > 0);
      assert_true(isnan(o[12]));
    }
  }
}

/* ---- softmax rows that break naive code ---- */

static void softmax_survives_huge_and_masked_rows(void **state) {
  (void)state;
  const int64_t n = 77;
  for (size_t v = 0; v < LEN(k_isas); v++) {
    const orx_simd *t = orx_simd_get(k_isas[v]);
    if (!t) continue;
    float *x = floats(n, 5, -1, 1), o[77], m;
    for (int64_t i = 0; i < n; i++) x[i] = x[i] * 1e4f + (i == 40 ? 3e4f : 0.0f);
    float ls = t->softmax(o, x, n, 1.0f, &m);
    assert_true(m == x[40] && ls == 0.0f); /* every other entry is e^-(10^4) = 0 */
    for (int64_t i = 0; i < n; i++) assert_true(o[i] == (i == 40 ? 1.0f : 0.0f));

    for (int64_t i = 0; i < n; i++) x[i] = (i % 3) ? -INFINITY : 1e4f + (float)i;
    t->softmax(o, x, n, 1.0f, &m);
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
      if (i % 3) assert_true(o[i] == 0.0f);
      s += o[i];
    }
    assert_true(fabs(s - 1.0) < 1e-6);
    double z = 0;
    for (int64_t i = 0; i < n; i += 3) z += exp((double)(i - 75));
    close_1(o[75], (float)(1.0 / z), 1e-6f, 0, t->isa, "masked softmax", n);

    for (int64_t i = 0; i < n; i++) x[i] = -INFINITY;
    ls = t->softmax(o, x, n, 1.0f, &m);
    assert_true(m == -INFINITY && ls == -INFINITY);
    for (int64_t i = 0; i < n; i++) assert_true(o[i] == 0.0f);
    ls = t->logsumexp(x, n, &m);
    assert_true(m == -INFINITY && ls == -INFINITY);
    free(x);
  }
}

static void bf16_special_values(void **state) {
  (void)state;
  static const struct {
    uint32_t f;
    uint16_t h;
  } cases[] = {
      {0x00000000u, 0x0000}, {0x80000000u, 0x8000}, {0x3F800000u, 0x3F80}, /* 1 */
      {0x3F808000u, 0x3F80},                                               /* tie, even below */
      {0x3F818000u, 0x3F82},                                               /* tie, even above */
      {0x3F808001u, 0x3F81}, {0x7F7FFFFFu, 0x7F80},                        /* FLT_MAX -> inf */
      {0x7F800000u, 0x7F80}, {0xFF800000u, 0xFF80}, {0x00000001u, 0x0000}, /* denormal */
      {0x7F800001u, 0x7FC0},                                               /* sNaN -> qNaN */
      {0xFFC00001u, 0xFFC0}, {0x7FFFFFFFu, 0x7FFF},
  };
  for (size_t v = 0; v < LEN(k_isas); v++) {
    const orx_simd *t = orx_simd_get(k_isas[v]);
    if (!t) continue;
    for (size_t k = 0; k < LEN(cases); k++) {
      float x;
      uint16_t h;
      memcpy(&x, &cases[k].f, 4);
      t->f32_to_bf16(&h, &x, 1);
      if (h != cases[k].h)
        fail_msg("%s: 0x%08x -> 0x%04x, want 0x%04x", t->isa, cases[k].f, h, cases[k].h);
      float back;
      t->bf16_to_f32(&back, &h, 1);
      uint32_t bb;
      memcpy(&bb, &back, 4);
      assert_int_equal(bb, (uint32_t)h << 16);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(variants_match_scalar),
      cmocka_unit_test(kernels_match_definitions),
      cmocka_unit_test(exp_is_accurate_over_its_range),
      cmocka_unit_test(exp_handles_extremes),
      cmocka_unit_test(softmax_survives_huge_and_masked_rows),
      cmocka_unit_test(bf16_special_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
