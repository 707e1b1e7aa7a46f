/* Beam search against the PyTorch reference: tests/reference/fixtures/beam.h5 holds, for the
 * models and user batches of golden_dense.h5 and golden_moe.h5, a random catalogue and the
 * reference's constrained beam-search results (float64) at several beam widths. libonerec must
 * return the same items in the same order, with log-probabilities within 1e-4 relative.
 * Regenerate with /usr/bin/python3 tests/reference/make_beam_fixture.py */
#include "testutil.h"

#include "h5io.h"

#define FIXTURES "tests/reference/fixtures/"

static void *read_any(orx_h5 *h, hid_t loc, const char *name, orx_h5_type type, int rank,
                      int64_t *count) {
  if (!orx_h5_exists(h, loc, name)) return NULL;
  int64_t dims[4] = {-1, -1, -1, -1};
  assert_ok(orx_h5_read(h, loc, name, type, rank, dims, NULL, 0));
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= dims[i];
  size_t es = type == ORX_H5_F64 || type == ORX_H5_I64 ? 8 : 4;
  void *buf = malloc((size_t)(n ? n : 1) * es);
  assert_non_null(buf);
  assert_ok(orx_h5_read(h, loc, name, type, rank, dims, buf, (size_t)n * es));
  if (count) *count = n;
  return buf;
}

static void check_model(const char *name) {
  char path[128];
  snprintf(path, sizeof path, FIXTURES "golden_%s.h5", name);
  onerec_context *ctx = tu_cpu_context(2);
  onerec_model *m = NULL;
  assert_ok(onerec_model_load(ctx, path, &m));
  ONEREC_OPTS(onerec_model_config, c);
  assert_ok(onerec_model_config_get(m, &c));
  const int sid = c.item_input == ONEREC_ITEM_BY_SID;

  /* the golden batch */
  orx_h5 h;
  assert_ok(orx_h5_open(&h, path));
  hid_t in;
  assert_ok(orx_h5_group_open(&h, "golden/inputs", &in));
  int64_t batch = 0;
  assert_ok(orx_h5_attr_read_i64(&h, in, "batch", &batch));
  ONEREC_OPTS(onerec_user_batch, u, .batch = batch);
  int32_t *static_cat = read_any(&h, in, "static_cat", ORX_H5_I32, 2, NULL);
  float *static_num = read_any(&h, in, "static_num", ORX_H5_F32, 2, NULL);
  u.static_cat = static_cat;
  u.static_num = static_num;
  static const char *const seqs[3] = {"short_term", "positive", "lifelong"};
  onerec_seq_input *dst[3] = {&u.short_term, &u.positive, &u.lifelong};
  void *owned[12] = {0};
  for (int p = 0; p < 3; p++) {
    if (!orx_h5_exists(&h, in, seqs[p])) continue;
    char nm[64];
    snprintf(nm, sizeof nm, "%s/offsets", seqs[p]);
    dst[p]->offsets = owned[4 * p] = read_any(&h, in, nm, ORX_H5_I64, 1, NULL);
    snprintf(nm, sizeof nm, "%s/items", seqs[p]);
    dst[p]->items = owned[4 * p + 1] = read_any(&h, in, nm, ORX_H5_I32, sid ? 2 : 1, NULL);
    snprintf(nm, sizeof nm, "%s/cat", seqs[p]);
    dst[p]->cat = owned[4 * p + 2] = read_any(&h, in, nm, ORX_H5_I32, 2, NULL);
    snprintf(nm, sizeof nm, "%s/num", seqs[p]);
    dst[p]->num = owned[4 * p + 3] = read_any(&h, in, nm, ORX_H5_F32, 2, NULL);
  }
  orx_h5_group_close(in);
  orx_h5_close(&h);

  /* the catalogue and the expected results */
  assert_ok(orx_h5_open(&h, FIXTURES "beam.h5"));
  hid_t g;
  assert_ok(orx_h5_group_open(&h, name, &g));
  int64_t n = 0;
  int64_t *ids = read_any(&h, g, "item_ids", ORX_H5_I64, 1, &n);
  int32_t *codes = read_any(&h, g, "codes", ORX_H5_I32, 2, NULL);
  assert_non_null(ids);
  assert_non_null(codes);
  ONEREC_OPTS(onerec_catalog_opts, co, .levels = c.levels, .codes_per_level = c.codebook);
  onerec_catalog *cat = NULL;
  assert_ok(onerec_catalog_create(ctx, &co, &cat));
  assert_ok(onerec_catalog_add(cat, (size_t)n, ids, codes));
  assert_ok(onerec_catalog_commit(cat));
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = batch, .max_targets = batch * 128);
  onerec_session *s = NULL;
  assert_ok(onerec_session_create(m, NULL, &so, &s));
  static const int widths[] = {4, 16, 128};
  for (int w = 0; w < 3; w++) {
    char grp[64];
    snprintf(grp, sizeof grp, "%s/beam%d", name, widths[w]);
    hid_t sg;
    assert_ok(orx_h5_group_open(&h, grp, &sg));
    int64_t beam = 0, k = 0;
    assert_ok(orx_h5_attr_read_i64(&h, sg, "beam", &beam));
    assert_ok(orx_h5_attr_read_i64(&h, sg, "k", &k));
    int64_t *want = read_any(&h, sg, "items", ORX_H5_I64, 2, NULL);
    double *want_lp = read_any(&h, sg, "logp", ORX_H5_F64, 2, NULL);
    orx_h5_group_close(sg);
    ONEREC_OPTS(onerec_recommend_opts, o, .beam = (int32_t)beam, .k = (int32_t)k);
    int64_t *got = malloc((size_t)(batch * k) * sizeof *got);
    double *lp = malloc((size_t)(batch * k) * sizeof *lp);
    assert_ok(onerec_session_recommend(s, cat, &u, &o, got, lp, (size_t)(batch * k)));
    for (int64_t i = 0; i < batch * k; i++) {
      if (got[i] != want[i])
        fail_msg("%s beam %lld: user %lld rank %lld: item %lld, reference %lld", name,
                 (long long)beam, (long long)(i / k), (long long)(i % k), (long long)got[i],
                 (long long)want[i]);
      if (want[i] < 0) continue;
      if (!(fabs(lp[i] - want_lp[i]) <= 1e-4 * fabs(want_lp[i]) + 1e-6))
        fail_msg("%s beam %lld: user %lld rank %lld: logp %.9g, reference %.9g", name,
                 (long long)beam, (long long)(i / k), (long long)(i % k), lp[i], want_lp[i]);
    }
    free(got);
    free(lp);
    free(want);
    free(want_lp);
  }
  orx_h5_group_close(g);
  orx_h5_close(&h);
  onerec_session_free(s);
  onerec_catalog_free(cat);
  free(ids);
  free(codes);
  free(static_cat);
  free(static_num);
  for (int i = 0; i < 12; i++) free(owned[i]);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

static void test_beam_dense(void **state) {
  (void)state;
  check_model("dense");
}

static void test_beam_moe(void **state) {
  (void)state;
  check_model("moe");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_beam_dense),
      cmocka_unit_test(test_beam_moe),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
