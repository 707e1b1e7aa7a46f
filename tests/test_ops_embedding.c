/* Embedding gather and scatter-add ops of the CPU backend against naive references: absent
 * (negative) ids, repeated and hot ids, accumulation into a pre-filled table gradient, finite
 * differences, bit-identical results for 1, 2 and 3 threads, and ids past the table. */
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

/* ids in [-2, vocab): about one in (vocab + 2) absent; with hot != 0 half of them are id 1 */
static int32_t *make_ids(int64_t n, int64_t vocab, uint64_t seed, int hot) {
  int32_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
  assert_non_null(ids);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
  for (int64_t i = 0; i < n; i++) {
    float u = (tu_rand(&s) + 1.0f) * 0.5f;
    ids[i] = (int32_t)(u * (float)(vocab + 2)) - 2;
    if (ids[i] >= vocab) ids[i] = (int32_t)vocab - 1;
    if (hot && i % 2 == 0) ids[i] = 1;
  }
  return ids;
}

static void emb_case(onerec_context *ctx, int64_t n, int64_t d, int64_t vocab, uint64_t seed,
                     int hot, const char *label) {
  orx_backend *be = ot_be(ctx);
  int32_t *ids = make_ids(n, vocab, seed, hot);
  float *table = ot_floats((size_t)(vocab * d), seed + 1, -1, 1);
  float *out = ot_floats((size_t)(n * d), seed + 2, -1, 1);
  float *dout = ot_floats((size_t)(n * d), seed + 3, -1, 1);
  float *dt0 = ot_floats((size_t)(vocab * d), seed + 4, -1, 1),
        *dt = ot_copy(dt0, (size_t)(vocab * d));
  double *want = ot_zeros_d((size_t)(n * d)), *wdt = ot_zeros_d((size_t)(vocab * d));
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d; j++) {
      want[i * d + j] = ids[i] < 0 ? 0.0 : table[ids[i] * d + j];
      if (ids[i] >= 0) wdt[ids[i] * d + j] += dout[i * d + j];
    }
  assert_ok(ORX_OP(be, embedding_fwd, out, table, ids, n, d, vocab));
  assert_ok(ORX_OP(be, embedding_bwd, dt, dout, ids, n, d, vocab));
  char what[128];
  snprintf(what, sizeof what, "embedding_fwd %s n=%lld dim=%lld", label, (long long)n,
           (long long)d);
  ot_close(out, want, (size_t)(n * d), 0, 0, what); /* a copy: exact */
  snprintf(what, sizeof what, "embedding_bwd %s n=%lld dim=%lld", label, (long long)n,
           (long long)d);
  ot_close_acc(dt, dt0, wdt, (size_t)(vocab * d), 1e-5, 3e-5, what); /* float sums of many rows */
  free(ids), free(table), free(out), free(dout), free(dt0), free(dt), free(want), free(wdt);
}

static void embedding_matches_reference(void **state) {
  (void)state;
  onerec_context *ctx = g_ctx[1];
  const orx_simd *best = orx_cpu_of(ot_be(ctx))->simd;
  for (size_t v = 0; v < OT_LEN(k_isas); v++) {
    if (!ot_use_isa(ctx, k_isas[v])) continue;
    for (size_t a = 0; a < OT_LEN(k_rows); a++)
      for (size_t b = 0; b < OT_LEN(k_dims); b++) {
        emb_case(ctx, k_rows[a], k_dims[b], 11, 10 + a * 10 + b, 0, k_isas[v]);
        emb_case(ctx, k_rows[a], k_dims[b], 3, 20 + a * 10 + b, 1, k_isas[v]);
      }
  }
  orx_cpu_of(ot_be(ctx))->simd = best;
  emb_case(g_ctx[3], 3001, 70, 37, 1, 0, "threads=3");
  emb_case(g_ctx[3], 3001, 600, 37, 2, 1, "threads=3 hot, wide");
  emb_case(g_ctx[3], 5000, 16, 100000, 3, 0, "threads=3 big vocab");
}

typedef struct emb_fd {
  double *table, *r;
  const int32_t *ids;
  int64_t n, d;
} emb_fd;

static double emb_loss(void *p) {
  emb_fd *s = p;
  double l = 0;
  for (int64_t i = 0; i < s->n; i++)
    if (s->ids[i] >= 0)
      for (int64_t j = 0; j < s->d; j++) l += s->r[i * s->d + j] * s->table[s->ids[i] * s->d + j];
  return l;
}

static void embedding_bwd_matches_finite_differences(void **state) {
  (void)state;
  const int64_t n = 23, d = 5, vocab = 6;
  int32_t *ids = make_ids(n, vocab, 4, 1);
  float *table = ot_floats((size_t)(vocab * d), 5, -1, 1),
        *dout = ot_floats((size_t)(n * d), 6, -1, 1);
  float *dt = calloc((size_t)(vocab * d), sizeof *dt);
  assert_non_null(dt);
  assert_ok(ORX_OP(ot_be(g_ctx[1]), embedding_bwd, dt, dout, ids, n, d, vocab));
  emb_fd s = {ot_doubles(table, (size_t)(vocab * d)), ot_doubles(dout, (size_t)(n * d)), ids, n, d};
  double *g = ot_zeros_d((size_t)(vocab * d));
  ot_fd(emb_loss, &s, s.table, (size_t)(vocab * d), 1e-3, g);
  ot_close(dt, g, (size_t)(vocab * d), 1e-5, 1e-6, "embedding dtable vs finite differences");
  free(ids), free(table), free(dout), free(dt), free(s.table), free(s.r), free(g);
}

static void results_do_not_depend_on_threads(void **state) {
  (void)state;
  static const struct {
    int64_t n, d, vocab;
    int hot;
  } cases[] = {{5003, 70, 37, 0}, {5003, 70, 37, 1}, {2000, 900, 13, 1}, {4001, 33, 4000, 0}};
  for (size_t c = 0; c < OT_LEN(cases); c++) {
    int64_t n = cases[c].n, d = cases[c].d, vocab = cases[c].vocab;
    int32_t *ids = make_ids(n, vocab, 40 + c, cases[c].hot);
    float *dout = ot_floats((size_t)(n * d), 41 + c, -1, 1), *dt[4], *out[4];
    float *table = ot_floats((size_t)(vocab * d), 42 + c, -1, 1);
    for (int t = 1; t <= 3; t++) {
      dt[t] = ot_floats((size_t)(vocab * d), 43, -1, 1);
      out[t] = ot_floats((size_t)(n * d), 44, -1, 1);
      assert_ok(ORX_OP(ot_be(g_ctx[t]), embedding_bwd, dt[t], dout, ids, n, d, vocab));
      assert_ok(ORX_OP(ot_be(g_ctx[t]), embedding_fwd, out[t], table, ids, n, d, vocab));
    }
    for (int t = 2; t <= 3; t++) {
      ot_same_bits(dt[1], dt[t], (size_t)(vocab * d) * sizeof(float), "embedding_bwd");
      ot_same_bits(out[1], out[t], (size_t)(n * d) * sizeof(float), "embedding_fwd");
    }
    for (int t = 1; t <= 3; t++) free(dt[t]), free(out[t]);
    free(ids), free(dout), free(table);
  }
}

static void bad_ids_and_sizes_fail(void **state) {
  (void)state;
  for (int t = 1; t <= 3; t += 2) {
    orx_backend *be = ot_be(g_ctx[t]);
    const int64_t n = 2000, d = 40, vocab = 10;
    int32_t *ids = make_ids(n, vocab, 9, 0);
    ids[1777] = (int32_t)vocab; /* one past the table, late in the batch */
    float *table = ot_floats((size_t)(vocab * d), 1, -1, 1),
          *out = ot_floats((size_t)(n * d), 2, -1, 1);
    float *before = ot_copy(out, (size_t)(n * d)), *dt = ot_floats((size_t)(vocab * d), 3, -1, 1);
    float *dt_before = ot_copy(dt, (size_t)(vocab * d));
    assert_status(ORX_OP(be, embedding_fwd, out, table, ids, n, d, vocab),
                  ONEREC_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(onerec_last_error(), "1777"));
    assert_status(ORX_OP(be, embedding_bwd, dt, out, ids, n, d, vocab),
                  ONEREC_ERR_INVALID_ARGUMENT);
    /* nothing written at all, so a caller can report and carry on */
    ot_same_bits(out, before, (size_t)(n * d) * sizeof *out, "embedding_fwd after a bad id");
    ot_same_bits(dt, dt_before, (size_t)(vocab * d) * sizeof *dt, "embedding_bwd after a bad id");
    ids[1777] = INT32_MAX;
    assert_status(ORX_OP(be, embedding_fwd, out, table, ids, n, d, vocab),
                  ONEREC_ERR_INVALID_ARGUMENT);
    assert_status(ORX_OP(be, embedding_fwd, out, table, ids, -1, d, vocab), ONEREC_ERR_SHAPE);
    assert_status(ORX_OP(be, embedding_fwd, out, table, ids, n, -1, vocab), ONEREC_ERR_SHAPE);
    assert_status(ORX_OP(be, embedding_bwd, dt, out, ids, n, d, -1), ONEREC_ERR_SHAPE);
    assert_status(ORX_OP(be, embedding_fwd, out, NULL, ids, n, d, vocab),
                  ONEREC_ERR_INVALID_ARGUMENT);
    assert_status(ORX_OP(be, embedding_bwd, dt, out, NULL, n, d, vocab),
                  ONEREC_ERR_INVALID_ARGUMENT);
    assert_ok(ORX_OP(be, embedding_fwd, NULL, NULL, NULL, 0, d, vocab));
    assert_ok(ORX_OP(be, embedding_bwd, NULL, NULL, NULL, 0, d, vocab));
    /* every id absent: an empty table is fine */
    int32_t none[3] = {-1, -5, -1};
    float o3[6] = {1, 2, 3, 4, 5, 6};
    assert_ok(ORX_OP(be, embedding_fwd, o3, table, none, 3, 2, 0));
    for (int i = 0; i < 6; i++) assert_true(o3[i] == 0.0f);
    assert_ok(ORX_OP(be, embedding_bwd, dt, o3, none, 3, 2, 0));
    free(ids), free(table), free(out), free(before), free(dt), free(dt_before);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(embedding_matches_reference),
      cmocka_unit_test(embedding_bwd_matches_finite_differences),
      cmocka_unit_test(results_do_not_depend_on_threads),
      cmocka_unit_test(bad_ids_and_sizes_fail),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
