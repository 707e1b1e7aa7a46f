/* Elementwise ops, reductions, AdamW and dtype conversion of the CPU backend against naive
 * references, on every ISA variant the CPU runs: axpy, scale, add_bias, bias_bwd (with finite
 * differences and accumulation), sum_squares, several AdamW steps, f32 <-> bf16 rounding on
 * random bit patterns and special values, bit-identical results for 1, 2 and 3 threads, and bad
 * arguments. */
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

static const int64_t k_ns[] = {1, 3, 7, 64, 130, 131 * 130, 100003};

/* Runs body once per ISA variant on the 1-thread context, then restores the best one. */
#define FOR_EACH_ISA(ctx, isa, ...)                       \
  do {                                                    \
    const orx_simd *best_ = orx_cpu_of(ot_be(ctx))->simd; \
    for (size_t v_ = 0; v_ < OT_LEN(k_isas); v_++) {      \
      const char *isa = k_isas[v_];                       \
      if (!ot_use_isa(ctx, isa)) continue;                \
      __VA_ARGS__;                                        \
    }                                                     \
    orx_cpu_of(ot_be(ctx))->simd = best_;                 \
  } while (0)

/* ---- dropout ---- */

/* The kept fraction is 1 - p within 5 sigma, kept entries are exactly x / (1 - p) and dropped
 * ones 0, the mask depends on (seed, index) only (not the threads, and the same call on another
 * buffer drops the same entries: the backward pass), another seed gives another mask, p = 0
 * changes nothing, and p outside [0, 1) is refused. */
static void test_dropout(void **state) {
  (void)state;
  const int64_t n = 100003;
  const float ps[3] = {0.1f, 0.3f, 0.5f};
  for (int k = 0; k < 3; k++) {
    const float p = ps[k];
    float *x = ot_floats((size_t)n, 3, -2, 2), *ref = malloc((size_t)n * sizeof(float));
    float *g = ot_floats((size_t)n, 4, 1, 2);
    assert_non_null(ref);
    memcpy(ref, x, (size_t)n * sizeof(float));
    assert_ok(ORX_OP(ot_be(g_ctx[1]), dropout, x, n, p, 77));
    assert_ok(ORX_OP(ot_be(g_ctx[3]), dropout, g, n, p, 77));
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++) {
      int k1 = x[i] != 0.0f, k2 = g[i] != 0.0f;
      assert_int_equal(k1, k2 || ref[i] == 0.0f);
      if (x[i] != 0.0f) {
        assert_true(x[i] == ref[i] * (1.0f / (1.0f - p)));
        kept++;
      }
    }
    const double mean = (double)n * (1.0 - p), sd = sqrt((double)n * p * (1.0 - p));
    assert_true(fabs((double)kept - mean) < 5.0 * sd);
    /* another seed: another mask (agreement only at chance level) */
    float *y = ot_floats((size_t)n, 4, 1, 2);
    assert_ok(ORX_OP(ot_be(g_ctx[2]), dropout, y, n, p, 78));
    int64_t same = 0;
    for (int64_t i = 0; i < n; i++) same += (y[i] != 0.0f) == (g[i] != 0.0f);
    const double chance = (double)n * ((1.0 - p) * (1.0 - p) + (double)p * p);
    assert_true(fabs((double)same - chance) < 0.02 * (double)n);
    free(x);
    free(ref);
    free(g);
    free(y);
  }
  float z[4] = {1, 2, 3, 4};
  assert_ok(ORX_OP(ot_be(g_ctx[1]), dropout, z, 4, 0.0f, 5));
  assert_true(z[0] == 1 && z[3] == 4);
  assert_status(ORX_OP(ot_be(g_ctx[1]), dropout, z, 4, 1.0f, 5), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(ot_be(g_ctx[1]), dropout, z, 4, -0.1f, 5), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(ot_be(g_ctx[1]), dropout, z, 4, NAN, 5), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(ot_be(g_ctx[1]), dropout, NULL, 4, 0.5f, 5), ONEREC_ERR_INVALID_ARGUMENT);
}

/* ---- axpy, scale ---- */

static void axpy_scale_case(onerec_context *ctx, int64_t n, const char *label) {
  orx_backend *be = ot_be(ctx);
  float *x = ot_floats((size_t)n, 1 + (uint64_t)n, -2, 2), *y0 = ot_floats((size_t)n, 2, -2, 2);
  float *y = ot_copy(y0, (size_t)n), *z = ot_copy(y0, (size_t)n);
  double *wy = ot_zeros_d((size_t)n), *wz = ot_zeros_d((size_t)n);
  for (int64_t i = 0; i < n; i++) {
    wy[i] = (double)y0[i] + (double)-0.75f * x[i];
    wz[i] = (double)y0[i] * 1.25;
  }
  assert_ok(ORX_OP(be, axpy, y, x, -0.75f, n));
  assert_ok(ORX_OP(be, scale, z, 1.25f, n));
  char what[96];
  snprintf(what, sizeof what, "axpy %s n=%lld", label, (long long)n);
  ot_close(y, wy, (size_t)n, 1.2e-7, 1e-7, what);
  snprintf(what, sizeof what, "scale %s n=%lld", label, (long long)n);
  ot_close(z, wz, (size_t)n, 6e-8, 0, what);
  free(x), free(y0), free(y), free(z), free(wy), free(wz);
}

static void axpy_and_scale_match_reference(void **state) {
  (void)state;
  FOR_EACH_ISA(g_ctx[1], isa,
               for (size_t k = 0; k < OT_LEN(k_ns); k++) axpy_scale_case(g_ctx[1], k_ns[k], isa));
  axpy_scale_case(g_ctx[3], 300007, "threads=3");
}

/* ---- add_bias, bias_bwd ---- */

static void bias_case(onerec_context *ctx, int64_t rows, int64_t d, const char *label) {
  orx_backend *be = ot_be(ctx);
  size_t n = (size_t)(rows * d);
  float *x0 = ot_floats(n, 10, -1, 1), *x = ot_copy(x0, n), *bias = ot_floats((size_t)d, 11, -1, 1);
  float *dout = ot_floats(n, 12, -1, 1), *db0 = ot_floats((size_t)d, 13, -1, 1);
  float *db = ot_copy(db0, (size_t)d);
  double *wx = ot_zeros_d(n), *wdb = ot_zeros_d((size_t)d);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t i = 0; i < d; i++) {
      wx[r * d + i] = (double)x0[r * d + i] + bias[i];
      wdb[i] += dout[r * d + i];
    }
  assert_ok(ORX_OP(be, add_bias, x, bias, rows, d));
  assert_ok(ORX_OP(be, bias_bwd, db, dout, rows, d));
  char what[96];
  snprintf(what, sizeof what, "add_bias %s %lldx%lld", label, (long long)rows, (long long)d);
  ot_close(x, wx, n, 6e-8, 0, what);
  snprintf(what, sizeof what, "bias_bwd %s %lldx%lld", label, (long long)rows, (long long)d);
  /* float partial sums of up to a few thousand rows */
  ot_close_acc(db, db0, wdb, (size_t)d, 1e-5, 2e-7 * (double)rows + 1e-7, what);
  free(x0), free(x), free(bias), free(dout), free(db0), free(db), free(wx), free(wdb);
}

static void bias_ops_match_reference(void **state) {
  (void)state;
  FOR_EACH_ISA(
      g_ctx[1], isa,
      for (size_t a = 0; a < OT_LEN(k_rows); a++) for (size_t b = 0; b < OT_LEN(k_dims); b++)
          bias_case(g_ctx[1], k_rows[a], k_dims[b], isa));
  bias_case(g_ctx[3], 5003, 70, "threads=3 many rows");
  bias_case(g_ctx[3], 2, 40001, "threads=3 few long rows");
  bias_case(g_ctx[3], 700, 2100, "threads=3 wide");
}

typedef struct bias_fd {
  double *x, *bias, *r;
  int64_t rows, d;
} bias_fd;

static double bias_loss(void *p) {
  bias_fd *s = p;
  double l = 0;
  for (int64_t r = 0; r < s->rows; r++)
    for (int64_t i = 0; i < s->d; i++) l += s->r[r * s->d + i] * (s->x[r * s->d + i] + s->bias[i]);
  return l;
}

static void bias_bwd_matches_finite_differences(void **state) {
  (void)state;
  const int64_t rows = 9, d = 13;
  float *x = ot_floats((size_t)(rows * d), 20, -1, 1), *bias = ot_floats((size_t)d, 21, -1, 1);
  float *dout = ot_floats((size_t)(rows * d), 22, -1, 1), *db = calloc((size_t)d, sizeof *db);
  assert_non_null(db);
  assert_ok(ORX_OP(ot_be(g_ctx[1]), bias_bwd, db, dout, rows, d));
  bias_fd s = {ot_doubles(x, (size_t)(rows * d)), ot_doubles(bias, (size_t)d),
               ot_doubles(dout, (size_t)(rows * d)), rows, d};
  double *g = ot_zeros_d((size_t)d);
  ot_fd(bias_loss, &s, s.bias, (size_t)d, 1e-3, g);
  ot_close(db, g, (size_t)d, 1e-6, 1e-6, "bias_bwd vs finite differences");
  free(x), free(bias), free(dout), free(db), free(s.x), free(s.bias), free(s.r), free(g);
}

/* ---- sum_squares ---- */

static void sum_squares_matches_reference(void **state) {
  (void)state;
  double first[OT_LEN(k_ns)];
  int have = 0;
  FOR_EACH_ISA(g_ctx[1], isa, {
    for (size_t k = 0; k < OT_LEN(k_ns); k++) {
      int64_t n = k_ns[k];
      float *x = ot_floats((size_t)n, 30 + k, -3, 3);
      long double want = 0;
      for (int64_t i = 0; i < n; i++) want += (long double)x[i] * x[i];
      double got = -1;
      assert_ok(ORX_OP(ot_be(g_ctx[1]), sum_squares, &got, x, n));
      if (fabs(got - (double)want) > 1e-13 * (double)want)
        fail_msg("sum_squares %s n=%lld: got %.17g, want %.17g", isa, (long long)n, got,
                 (double)want);
      /* every product is exact in double: the variants agree to the bit */
      if (!have)
        first[k] = got;
      else if (got != first[k])
        fail_msg("sum_squares %s n=%lld: %.17g differs from %s's %.17g", isa, (long long)n, got,
                 k_isas[0], first[k]);
      free(x);
    }
    have = 1;
  });
  double z = -1;
  assert_ok(ORX_OP(ot_be(g_ctx[1]), sum_squares, &z, NULL, 0));
  assert_true(z == 0.0);
}

/* ---- AdamW ---- */

typedef struct adam_ref {
  double *p, *m, *v;
} adam_ref;

static void ref_adamw(adam_ref *r, const float *g, int64_t n, const orx_adamw_args *a) {
  double b1 = a->beta1, b2 = a->beta2;
  double bc1 = 1 - pow(b1, (double)a->step), bc2 = 1 - pow(b2, (double)a->step);
  for (int64_t i = 0; i < n; i++) {
    double gi = (double)g[i] * a->grad_scale;
    r->m[i] = b1 * r->m[i] + (1 - b1) * gi;
    r->v[i] = b2 * r->v[i] + (1 - b2) * gi * gi;
    double mh = r->m[i] / bc1, vh = r->v[i] / bc2;
    r->p[i] -= (double)a->lr * (mh / (sqrt(vh) + a->eps) + (double)a->weight_decay * r->p[i]);
  }
}

static void adamw_case(onerec_context *ctx, int64_t n, const char *label) {
  float *p = ot_floats((size_t)n, 40, -1, 1), *m = calloc((size_t)n, 4), *v = calloc((size_t)n, 4);
  assert_true(m && v);
  adam_ref r = {ot_doubles(p, (size_t)n), ot_zeros_d((size_t)n), ot_zeros_d((size_t)n)};
  orx_adamw_args a = {.param = p,
                      .m = m,
                      .v = v,
                      .n = n,
                      .lr = 1e-2f,
                      .beta1 = 0.9f,
                      .beta2 = 0.95f,
                      .eps = 1e-8f,
                      .weight_decay = 0.1f,
                      .grad_scale = 0.5f};
  char what[96];
  for (int64_t t = 1; t <= 5; t++) {
    float *g = ot_floats((size_t)n, 41 + (uint64_t)t, -3, 3);
    a.grad = g;
    a.step = t;
    assert_ok(ORX_OP(ot_be(ctx), adamw, &a));
    ref_adamw(&r, g, n, &a);
    free(g);
    snprintf(what, sizeof what, "adamw %s n=%lld step %lld param", label, (long long)n,
             (long long)t);
    ot_close(p, r.p, (size_t)n, 1e-6, 1e-7, what);
    snprintf(what, sizeof what, "adamw %s n=%lld step %lld m", label, (long long)n, (long long)t);
    ot_close(m, r.m, (size_t)n, 1e-6, 1e-7, what);
    snprintf(what, sizeof what, "adamw %s n=%lld step %lld v", label, (long long)n, (long long)t);
    ot_close(v, r.v, (size_t)n, 1e-6, 1e-7, what);
  }
  free(p), free(m), free(v), free(r.p), free(r.m), free(r.v);
}

static void adamw_matches_reference(void **state) {
  (void)state;
  FOR_EACH_ISA(g_ctx[1], isa,
               for (size_t k = 0; k < OT_LEN(k_ns); k++) adamw_case(g_ctx[1], k_ns[k], isa));
  adamw_case(g_ctx[3], 300007, "threads=3");
}

/* A late step: the bias corrections tend to 1 and beta2^t must not lose its digits. */
static void adamw_late_step(void **state) {
  (void)state;
  float p[3] = {0.5f, -0.25f, 1.0f}, g[3] = {0.1f, -0.2f, 0.0f};
  float m[3] = {0.01f, -0.02f, 0.0f}, v[3] = {1e-4f, 4e-4f, 0.0f};
  adam_ref r = {ot_doubles(p, 3), ot_doubles(m, 3), ot_doubles(v, 3)};
  orx_adamw_args a = {.param = p,
                      .grad = g,
                      .m = m,
                      .v = v,
                      .n = 3,
                      .lr = 3e-4f,
                      .beta1 = 0.9f,
                      .beta2 = 0.999f,
                      .eps = 1e-8f,
                      .weight_decay = 0.0f,
                      .grad_scale = 1.0f,
                      .step = 12345};
  assert_ok(ORX_OP(ot_be(g_ctx[1]), adamw, &a));
  ref_adamw(&r, g, 3, &a);
  ot_close(p, r.p, 3, 1e-7, 1e-9, "adamw step 12345");
  free(r.p), free(r.m), free(r.v);
}

/* ---- conversion ---- */

/* Independent reference: the nearest of the two bf16 values around x, ties to the even one,
 * chosen by comparing in double. */
static uint16_t ref_to_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if (isnan(x)) return 0; /* checked separately */
  uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
  uint32_t ulo = (uint32_t)lo << 16, uhi = (uint32_t)hi << 16;
  float flo, fhi;
  memcpy(&flo, &ulo, 4);
  memcpy(&fhi, &uhi, 4);
  if ((u & 0xFFFFu) == 0) return lo;
  /* hi may be the next binade or infinity; compare magnitudes in double */
  double dl = fabs((double)x - (double)flo);
  double dh = isinf(fhi) ? ldexp(1.0, 128) - fabs((double)x) : fabs((double)fhi - (double)x);
  if (dl < dh) return lo;
  if (dh < dl) return hi;
  return (lo & 1) ? hi : lo;
}

static float ref_from_bf16(uint16_t h) {
  int sign = h >> 15, e = (h >> 7) & 0xFF, mant = h & 0x7F;
  double v;
  if (e == 0xFF)
    v = mant ? NAN : INFINITY;
  else if (e == 0)
    v = ldexp((double)mant, -126 - 7);
  else
    v = ldexp(1.0 + mant / 128.0, e - 127);
  return (float)(sign ? -v : v);
}

static void convert_rounds_to_nearest_even(void **state) {
  (void)state;
  const size_t nr = 200000;
  static const uint32_t special[] = {
      0x00000000u, 0x80000000u, 0x3F800000u, 0x3F808000u, /* tie -> even (down) */
      0x3F818000u,                                        /* tie -> even (up) */
      0x3F808001u, 0x3F807FFFu, 0x7F7FFFFFu,              /* FLT_MAX rounds to inf */
      0x7F7F7FFFu, 0x7F800000u, 0xFF800000u, 0x00000001u, /* smallest denormal */
      0x007FFFFFu, 0x00008000u, 0x00018000u, 0x7F800001u, /* signalling NaN */
      0x7FC00000u, 0xFFFFFFFFu, 0x7FFF8000u, 0xFF800001u};
  size_t n = nr + OT_LEN(special);
  uint32_t *bits = malloc(n * 4);
  float *x = malloc(n * 4), *back = malloc(n * 4);
  uint16_t *h = malloc(n * 2);
  assert_true(bits && x && back && h);
  uint64_t s = 77;
  for (size_t i = 0; i < nr; i++) {
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    bits[i] = (uint32_t)((s * 2685821657736338717ull) >> 32);
  }
  memcpy(bits + nr, special, sizeof special);
  memcpy(x, bits, n * 4);
  FOR_EACH_ISA(g_ctx[1], isa, {
    memset(h, 0, n * 2);
    assert_ok(ORX_OP(ot_be(g_ctx[1]), convert, h, ONEREC_BF16, x, ONEREC_F32, (int64_t)n));
    assert_ok(ORX_OP(ot_be(g_ctx[1]), convert, back, ONEREC_F32, h, ONEREC_BF16, (int64_t)n));
    for (size_t i = 0; i < n; i++) {
      if (isnan(x[i])) {
        if ((h[i] & 0x7F80u) != 0x7F80u || (h[i] & 0x7Fu) == 0 || (h[i] >> 15) != (bits[i] >> 31))
          fail_msg("%s: NaN 0x%08x -> bf16 0x%04x (not a NaN of the same sign)", isa, bits[i],
                   h[i]);
        assert_true(isnan(back[i]));
        continue;
      }
      if (h[i] != ref_to_bf16(x[i]))
        fail_msg("%s: 0x%08x (%.9g) -> bf16 0x%04x, want 0x%04x", isa, bits[i], (double)x[i], h[i],
                 ref_to_bf16(x[i]));
      float want = ref_from_bf16(h[i]);
      if (memcmp(&back[i], &want, 4) != 0)
        fail_msg("%s: bf16 0x%04x -> %.9g, want %.9g", isa, h[i], (double)back[i], (double)want);
    }
  });
  free(bits), free(x), free(back), free(h);
}

static void convert_copies_and_refuses(void **state) {
  (void)state;
  orx_backend *be = ot_be(g_ctx[3]);
  const int64_t n = 100003;
  float *a = ot_floats((size_t)n, 50, -1, 1), *b = ot_floats((size_t)n, 51, -1, 1);
  assert_ok(ORX_OP(be, convert, b, ONEREC_F32, a, ONEREC_F32, n));
  ot_same_bits(a, b, (size_t)n * 4, "f32 -> f32 copy");
  int32_t iv[5] = {1, -2, 3, INT32_MAX, INT32_MIN}, iw[5] = {0};
  assert_ok(ORX_OP(be, convert, iw, ONEREC_I32, iv, ONEREC_I32, 5));
  ot_same_bits(iv, iw, sizeof iv, "i32 -> i32 copy");
  uint16_t hv[4] = {1, 0x7FC0, 0x8000, 0x3F80}, hw[4] = {0};
  assert_ok(ORX_OP(be, convert, hw, ONEREC_BF16, hv, ONEREC_BF16, 4));
  ot_same_bits(hv, hw, sizeof hv, "bf16 -> bf16 copy");
  /* overlapping same-type copy behaves as memmove */
  float *c = ot_copy(a, (size_t)n);
  assert_ok(ORX_OP(be, convert, c + 1, ONEREC_F32, c, ONEREC_F32, n - 1));
  ot_same_bits(c + 1, a, (size_t)(n - 1) * 4, "overlapping f32 copy");
  assert_status(ORX_OP(be, convert, b, ONEREC_BF16, b, ONEREC_F32, n), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, convert, b, ONEREC_F32, iv, ONEREC_I32, 5), ONEREC_ERR_DTYPE);
  assert_status(ORX_OP(be, convert, iw, ONEREC_I32, a, ONEREC_F32, 5), ONEREC_ERR_DTYPE);
  assert_status(ORX_OP(be, convert, b, (onerec_dtype)99, a, ONEREC_F32, 5), ONEREC_ERR_DTYPE);
  assert_status(ORX_OP(be, convert, b, ONEREC_F32, a, ONEREC_F32, -1), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, convert, NULL, ONEREC_F32, a, ONEREC_F32, 3),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(ORX_OP(be, convert, NULL, ONEREC_F32, NULL, ONEREC_BF16, 0));
  free(a), free(b), free(c);
}

/* ---- threads, errors ---- */

static void results_do_not_depend_on_threads(void **state) {
  (void)state;
  const int64_t rows = 3001, d = 77, n = 400009;
  float *dout = ot_floats((size_t)(rows * d), 60, -1, 1), *x = ot_floats((size_t)n, 61, -1, 1);
  float *g = ot_floats((size_t)n, 62, -1, 1);
  float *db[4], *y[4], *p[4], *m[4], *v[4];
  double sq[4];
  for (int t = 1; t <= 3; t++) {
    orx_backend *be = ot_be(g_ctx[t]);
    db[t] = ot_floats((size_t)d, 63, -1, 1), y[t] = ot_floats((size_t)n, 64, -1, 1);
    p[t] = ot_floats((size_t)n, 65, -1, 1), m[t] = ot_floats((size_t)n, 66, -1, 1);
    v[t] = ot_floats((size_t)n, 67, 0, 1);
    assert_ok(ORX_OP(be, bias_bwd, db[t], dout, rows, d));
    assert_ok(ORX_OP(be, axpy, y[t], x, 0.3f, n));
    assert_ok(ORX_OP(be, sum_squares, &sq[t], x, n));
    orx_adamw_args a = {.param = p[t],
                        .grad = g,
                        .m = m[t],
                        .v = v[t],
                        .n = n,
                        .lr = 1e-3f,
                        .beta1 = 0.9f,
                        .beta2 = 0.99f,
                        .eps = 1e-8f,
                        .weight_decay = 0.01f,
                        .grad_scale = 1.0f,
                        .step = 3};
    assert_ok(ORX_OP(be, adamw, &a));
  }
  for (int t = 2; t <= 3; t++) {
    ot_same_bits(db[1], db[t], (size_t)d * 4, "bias_bwd");
    ot_same_bits(y[1], y[t], (size_t)n * 4, "axpy");
    ot_same_bits(&sq[1], &sq[t], sizeof sq[1], "sum_squares");
    ot_same_bits(p[1], p[t], (size_t)n * 4, "adamw param");
    ot_same_bits(v[1], v[t], (size_t)n * 4, "adamw v");
  }
  for (int t = 1; t <= 3; t++) free(db[t]), free(y[t]), free(p[t]), free(m[t]), free(v[t]);
  free(dout), free(x), free(g);
}

static void bad_arguments_fail(void **state) {
  (void)state;
  orx_backend *be = ot_be(g_ctx[1]);
  float a[8] = {0};
  double d;
  assert_status(ORX_OP(be, axpy, a, a, 1.0f, -1), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, axpy, a, NULL, 1.0f, 3), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, scale, a, 1.0f, -1), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, scale, NULL, 1.0f, 3), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, add_bias, a, a, -1, 2), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, add_bias, a, a, 2, -2), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, add_bias, a, NULL, 2, 2), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, bias_bwd, a, a, -2, 2), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, bias_bwd, NULL, a, 2, 2), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, sum_squares, &d, a, -1), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, sum_squares, NULL, a, 3), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, sum_squares, &d, NULL, 3), ONEREC_ERR_INVALID_ARGUMENT);
  orx_adamw_args ok = {.param = a,
                       .grad = a,
                       .m = a,
                       .v = a,
                       .n = 8,
                       .lr = 1e-3f,
                       .beta1 = 0.9f,
                       .beta2 = 0.999f,
                       .eps = 1e-8f,
                       .grad_scale = 1.0f,
                       .step = 1};
  orx_adamw_args bad = ok;
  bad.step = 0;
  assert_status(ORX_OP(be, adamw, &bad), ONEREC_ERR_INVALID_ARGUMENT);
  bad = ok, bad.n = -1;
  assert_status(ORX_OP(be, adamw, &bad), ONEREC_ERR_SHAPE);
  bad = ok, bad.beta2 = 1.0f;
  assert_status(ORX_OP(be, adamw, &bad), ONEREC_ERR_INVALID_ARGUMENT);
  bad = ok, bad.m = NULL;
  assert_status(ORX_OP(be, adamw, &bad), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(ORX_OP(be, adamw, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(ORX_OP(be, adamw, &ok));
  assert_ok(ORX_OP(be, axpy, NULL, NULL, 1.0f, 0));
  assert_ok(ORX_OP(be, scale, NULL, 1.0f, 0));
  assert_ok(ORX_OP(be, add_bias, NULL, NULL, 0, 5));
  assert_ok(ORX_OP(be, bias_bwd, NULL, NULL, 5, 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dropout),
      cmocka_unit_test(axpy_and_scale_match_reference),
      cmocka_unit_test(bias_ops_match_reference),
      cmocka_unit_test(bias_bwd_matches_finite_differences),
      cmocka_unit_test(sum_squares_matches_reference),
      cmocka_unit_test(adamw_matches_reference),
      cmocka_unit_test(adamw_late_step),
      cmocka_unit_test(convert_rounds_to_nearest_even),
      cmocka_unit_test(convert_copies_and_refuses),
      cmocka_unit_test(results_do_not_depend_on_threads),
      cmocka_unit_test(bad_arguments_fail),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
