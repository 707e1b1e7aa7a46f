/* The model against the PyTorch reference (tests/reference/onerec_ref.py, float64): each fixture
 * holds a model written by the reference in libonerec's format, a batch of users and what the
 * reference computes for it. Encoder output, key mask, decoder logits and log-probabilities must
 * agree within 1e-4 relative; MoE expert loads exactly. Also: a save/load round trip gives
 * bit-identical results, results do not depend on the thread count, and a user's results do not
 * depend on the other users of its batch. Regenerate the fixtures with
 *   /usr/bin/python3 tests/reference/make_fixtures.py */
#include "testutil.h"

#include <pthread.h>
#include <unistd.h>

#include "h5io.h"
#include "model_impl.h"

#define FIXTURES "tests/reference/fixtures/"

typedef struct seq_data {
  int present;
  int64_t *offsets;
  int32_t *items, *cat;
  float *num;
} seq_data;

typedef struct targets {
  int64_t *offsets; /* NULL: one per user */
  int32_t *codes;
  float *logits;
  double *logp;
  int64_t n;
} targets;

typedef struct golden {
  onerec_model_config cfg;
  int64_t batch, T, d;
  int32_t *static_cat;
  float *static_num;
  seq_data seq[3];
  float *z;
  uint8_t *mask;
  targets t[2];
  int64_t *load, load_n;
} golden;

static const char *const k_seq_names[3] = {"short_term", "positive", "lifelong"};

/* Reads dataset `name` of any shape (rank given) into a fresh buffer; NULL if absent. */
static void *read_any(orx_h5 *h, hid_t loc, const char *name, orx_h5_type type, int rank,
                      int64_t *count) {
  if (!orx_h5_exists(h, loc, name)) return NULL;
  int64_t dims[4] = {-1, -1, -1, -1};
  assert_ok(orx_h5_read(h, loc, name, type, rank, dims, NULL, 0));
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= dims[i];
  size_t es = type == ORX_H5_F64 || type == ORX_H5_I64 ? 8 : type == ORX_H5_U8 ? 1 : 4;
  void *buf = malloc((size_t)(n ? n : 1) * es);
  assert_non_null(buf);
  assert_ok(orx_h5_read(h, loc, name, type, rank, dims, buf, (size_t)n * es));
  if (count) *count = n;
  return buf;
}

static void golden_load(golden *g, onerec_model *m, const char *path) {
  memset(g, 0, sizeof *g);
  g->cfg.sz = sizeof g->cfg;
  assert_ok(onerec_model_config_get(m, &g->cfg));
  g->T = onerec_model_encoder_len(m);
  g->d = g->cfg.d_model;
  int sid = g->cfg.item_input == ONEREC_ITEM_BY_SID;
  orx_h5 h;
  assert_ok(orx_h5_open(&h, path));
  hid_t in;
  assert_ok(orx_h5_group_open(&h, "golden/inputs", &in));
  assert_ok(orx_h5_attr_read_i64(&h, in, "batch", &g->batch));
  g->static_cat = read_any(&h, in, "static_cat", ORX_H5_I32, 2, NULL);
  g->static_num = read_any(&h, in, "static_num", ORX_H5_F32, 2, NULL);
  for (int p = 0; p < 3; p++) {
    if (!orx_h5_exists(&h, in, k_seq_names[p])) continue;
    char name[64];
    seq_data *s = &g->seq[p];
    s->present = 1;
    snprintf(name, sizeof name, "%s/offsets", k_seq_names[p]);
    s->offsets = read_any(&h, in, name, ORX_H5_I64, 1, NULL);
    snprintf(name, sizeof name, "%s/items", k_seq_names[p]);
    s->items = read_any(&h, in, name, ORX_H5_I32, sid ? 2 : 1, NULL);
    snprintf(name, sizeof name, "%s/cat", k_seq_names[p]);
    s->cat = read_any(&h, in, name, ORX_H5_I32, 2, NULL);
    snprintf(name, sizeof name, "%s/num", k_seq_names[p]);
    s->num = read_any(&h, in, name, ORX_H5_F32, 2, NULL);
  }
  orx_h5_group_close(in);
  hid_t gg;
  assert_ok(orx_h5_group_open(&h, "golden", &gg));
  g->z = read_any(&h, gg, "z", ORX_H5_F32, 3, NULL);
  g->mask = read_any(&h, gg, "mask", ORX_H5_U8, 2, NULL);
  g->load = read_any(&h, gg, "expert_load", ORX_H5_I64, 2, &g->load_n);
  const char *tn[2] = {"targets_a", "targets_b"};
  for (int i = 0; i < 2; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s/offsets", tn[i]);
    g->t[i].offsets = read_any(&h, gg, name, ORX_H5_I64, 1, NULL);
    snprintf(name, sizeof name, "%s/codes", tn[i]);
    int64_t nc = 0;
    g->t[i].codes = read_any(&h, gg, name, ORX_H5_I32, 2, &nc);
    g->t[i].n = nc / g->cfg.levels;
    snprintf(name, sizeof name, "%s/logits", tn[i]);
    g->t[i].logits = read_any(&h, gg, name, ORX_H5_F32, 3, NULL);
    snprintf(name, sizeof name, "%s/logp", tn[i]);
    g->t[i].logp = read_any(&h, gg, name, ORX_H5_F64, 1, NULL);
  }
  orx_h5_group_close(gg);
  orx_h5_close(&h);
  assert_non_null(g->z);
  assert_non_null(g->mask);
}

static void golden_free(golden *g) {
  free(g->static_cat);
  free(g->static_num);
  for (int p = 0; p < 3; p++) {
    free(g->seq[p].offsets);
    free(g->seq[p].items);
    free(g->seq[p].cat);
    free(g->seq[p].num);
  }
  free(g->z);
  free(g->mask);
  free(g->load);
  for (int i = 0; i < 2; i++) {
    free(g->t[i].offsets);
    free(g->t[i].codes);
    free(g->t[i].logits);
    free(g->t[i].logp);
  }
}

/* The fixture's batch, or only user `only` of it (>= 0) with its ragged rows re-based. */
static onerec_user_batch golden_users(const golden *g, int64_t only, int64_t off[3][2]) {
  ONEREC_OPTS(onerec_user_batch, u, .batch = g->batch);
  const onerec_model_config *c = &g->cfg;
  int64_t lv = c->item_input == ONEREC_ITEM_BY_SID ? c->levels : 1;
  u.static_cat = g->static_cat;
  u.static_num = g->static_num;
  if (only >= 0) {
    u.batch = 1;
    if (u.static_cat) u.static_cat += only * c->static_cat_count;
    if (u.static_num) u.static_num += only * c->static_num_count;
  }
  onerec_seq_input *dst[3] = {&u.short_term, &u.positive, &u.lifelong};
  for (int p = 0; p < 3; p++) {
    const seq_data *s = &g->seq[p];
    if (!s->present) continue;
    dst[p]->offsets = s->offsets;
    dst[p]->items = s->items;
    dst[p]->cat = s->cat;
    dst[p]->num = s->num;
    if (only >= 0) {
      int64_t lo = s->offsets[only];
      off[p][0] = 0;
      off[p][1] = s->offsets[only + 1] - lo;
      dst[p]->offsets = off[p];
      dst[p]->items = s->items + lo * lv;
      if (s->cat) dst[p]->cat = s->cat + lo * c->seq_cat_count;
      if (s->num) dst[p]->num = s->num + lo * c->seq_num_count;
    }
  }
  return u;
}

static double rms(const float *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return sqrt(s / (double)(n ? n : 1));
}

/* Within 1e-4 relative of the reference; values far below the array's scale get an absolute
 * floor of 1e-5 x its RMS (relative error is meaningless at zero crossings). */
static void assert_golden(const float *got, const float *want, size_t n, const char *what) {
  tu_assert_close(got, want, n, 1e-4f, (float)(1e-5 * rms(want, n)), what);
}

typedef struct outputs {
  float *z, *logits[2];
  uint8_t *mask;
  double *logp[2];
} outputs;

/* train = 1: a training session, which keeps every layer's activations */
static void run_session(onerec_context *ctx, onerec_model *m, const golden *g, outputs *o,
                        int train) {
  const int64_t L = g->cfg.levels, K = g->cfg.codebook;
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = 4, .max_targets = 8);
  onerec_session *s = NULL;
  assert_ok(orx_session_create(m, ctx, &so, train, &s));
  int64_t off[3][2];
  onerec_user_batch u = golden_users(g, -1, off);
  size_t nz = (size_t)(g->batch * g->T * g->d);
  o->z = malloc(nz * sizeof(float));
  o->mask = malloc((size_t)(g->batch * g->T));
  assert_ok(onerec_session_encode(s, &u, o->z, nz, o->mask));
  for (int i = 0; i < 2; i++) {
    size_t nl = (size_t)(g->t[i].n * L * K);
    o->logits[i] = malloc(nl * sizeof(float));
    o->logp[i] = malloc((size_t)g->t[i].n * sizeof(double));
    assert_ok(onerec_session_decode(s, g->t[i].offsets, g->t[i].codes, o->logits[i], nl));
  }
  for (int i = 0; i < 2; i++)
    assert_ok(onerec_session_score(s, &u, g->t[i].offsets, g->t[i].codes, o->logp[i],
                                   (size_t)g->t[i].n));
  onerec_session_free(s);
}

static void run_all(onerec_context *ctx, onerec_model *m, const golden *g, outputs *o) {
  run_session(ctx, m, g, o, 0);
}

static void outputs_free(outputs *o) {
  free(o->z);
  free(o->mask);
  for (int i = 0; i < 2; i++) {
    free(o->logits[i]);
    free(o->logp[i]);
  }
}

/* The outputs of run_all against the reference's. */
static void compare_golden(const char *fixture, const golden *g, const outputs *o) {
  const int64_t L = g->cfg.levels, K = g->cfg.codebook, nT = g->batch * g->T;
  for (int64_t i = 0; i < nT; i++)
    if (o->mask[i] != g->mask[i])
      fail_msg("%s: key mask [%lld, %lld] = %d, reference %d", fixture, (long long)(i / g->T),
               (long long)(i % g->T), o->mask[i], g->mask[i]);
  assert_golden(o->z, g->z, (size_t)(nT * g->d), "z_enc");
  for (int i = 0; i < 2; i++) {
    assert_golden(o->logits[i], g->t[i].logits, (size_t)(g->t[i].n * L * K),
                  i ? "logits (one target per user)" : "logits (grouped targets)");
    for (int64_t r = 0; r < g->t[i].n; r++)
      if (fabs(o->logp[i][r] - g->t[i].logp[r]) > 1e-4 * fabs(g->t[i].logp[r]) + 1e-5)
        fail_msg("%s: log p of target %lld: %.8g, reference %.8g", fixture, (long long)r,
                 o->logp[i][r], g->t[i].logp[r]);
  }
}

static void check_golden(const char *fixture) {
  char path[256];
  snprintf(path, sizeof path, FIXTURES "%s", fixture);
  onerec_context *ctx = tu_cpu_context(2);
  onerec_model *m = NULL;
  assert_ok(onerec_model_load(ctx, path, &m));
  golden g;
  golden_load(&g, m, path);
  const int64_t L = g.cfg.levels, K = g.cfg.codebook, nT = g.batch * g.T;

  outputs o;
  run_all(ctx, m, &g, &o);
  compare_golden(fixture, &g, &o);

  /* MoE: the tokens routed to each expert by one encode + one decode */
  if (g.load) {
    ONEREC_OPTS(onerec_session_opts, so, .max_batch = 4, .max_targets = 8);
    onerec_session *s = NULL;
    assert_ok(onerec_session_create(m, ctx, &so, &s));
    int64_t off[3][2];
    onerec_user_batch u = golden_users(&g, -1, off);
    assert_ok(onerec_session_encode(s, &u, NULL, 0, NULL));
    float *lg = malloc((size_t)(g.t[0].n * L * K) * sizeof(float));
    assert_ok(onerec_session_decode(s, g.t[0].offsets, g.t[0].codes, lg,
                                    (size_t)(g.t[0].n * L * K)));
    free(lg);
    int32_t layers = 0;
    int64_t *load = calloc((size_t)g.load_n, sizeof *load);
    assert_ok(onerec_session_expert_load(s, load, (size_t)g.load_n, &layers, 1));
    assert_int_equal((int64_t)layers * g.cfg.experts, g.load_n);
    for (int64_t i = 0; i < g.load_n; i++)
      if (load[i] != g.load[i])
        fail_msg("%s: MoE layer %lld expert %lld got %lld tokens, reference %lld", fixture,
                 (long long)(i / g.cfg.experts), (long long)(i % g.cfg.experts),
                 (long long)load[i], (long long)g.load[i]);
    assert_ok(onerec_session_expert_load(s, load, (size_t)g.load_n, NULL, 0));
    for (int64_t i = 0; i < g.load_n; i++) assert_int_equal(load[i], 0); /* it was reset */
    free(load);
    onerec_session_free(s);
  }

  /* save + load: bit-identical results */
  char tmp[] = "/tmp/onerec_golden_XXXXXX";
  int fd = mkstemp(tmp);
  assert_true(fd >= 0);
  close(fd);
  assert_ok(onerec_model_save(m, tmp));
  onerec_model *m2 = NULL;
  assert_ok(onerec_model_load(ctx, tmp, &m2));
  remove(tmp);
  assert_int_equal(onerec_model_param_count(m2), onerec_model_param_count(m));
  outputs o2;
  run_all(ctx, m2, &g, &o2);
  assert_memory_equal(o2.z, o.z, (size_t)(nT * g.d) * sizeof(float));
  assert_memory_equal(o2.logits[0], o.logits[0], (size_t)(g.t[0].n * L * K) * sizeof(float));
  outputs_free(&o2);
  onerec_model_free(m2);

  /* generation's call: prefixes of length len, only the last position's logits; causality
   * makes them those of the full teacher-forced pass at position len - 1 */
  {
    ONEREC_OPTS(onerec_session_opts, so, .max_batch = 4, .max_targets = 8);
    onerec_session *s = NULL;
    assert_ok(onerec_session_create(m, ctx, &so, &s));
    int64_t off[3][2];
    onerec_user_batch u = golden_users(&g, -1, off);
    assert_ok(onerec_session_encode(s, &u, NULL, 0, NULL));
    const targets *t = &g.t[0];
    orx_groups gr = {g.batch, t->offsets, 0};
    float *lg = malloc((size_t)(t->n * K) * sizeof(float)), *want = malloc((size_t)(t->n * K) * 4);
    for (int64_t len = 1; len <= L; len++) {
      assert_ok(orx_decoder_stage(m, t->codes, t->n, len, s->h_dec_ids));
      assert_ok(ORX_OP(&ctx->be, copy, s->dec_ids, s->h_dec_ids,
                       (size_t)(t->n * len) * sizeof(int32_t), ORX_COPY_H2D));
      assert_ok(orx_decoder_forward(s, t->n, len, &gr, 1));
      assert_ok(ORX_OP(&ctx->be, copy, lg, s->logits, (size_t)(t->n * K) * sizeof(float),
                       ORX_COPY_D2H));
      for (int64_t r = 0; r < t->n; r++)
        memcpy(want + r * K, o.logits[0] + (r * L + len - 1) * K, (size_t)K * sizeof(float));
      tu_assert_close(lg, want, (size_t)(t->n * K), 1e-5f, (float)(1e-5 * rms(want, (size_t)(t->n * K))),
                      "last-position logits of a prefix");
    }
    free(lg);
    free(want);
    onerec_session_free(s);
  }

  /* a training session (every layer's activations kept) computes the same */
  run_session(ctx, m, &g, &o2, 1);
  assert_memory_equal(o2.z, o.z, (size_t)(nT * g.d) * sizeof(float));
  assert_memory_equal(o2.logits[0], o.logits[0], (size_t)(g.t[0].n * L * K) * sizeof(float));
  outputs_free(&o2);

  /* one thread: bit-identical (the CPU kernels promise that for any thread count) */
  onerec_context *ctx1 = tu_cpu_context(1);
  run_all(ctx1, m, &g, &o2);
  assert_memory_equal(o2.z, o.z, (size_t)(nT * g.d) * sizeof(float));
  assert_memory_equal(o2.logits[1], o.logits[1], (size_t)(g.t[1].n * L * K) * sizeof(float));
  outputs_free(&o2);

  /* each user alone: the same encoder output as inside the batch */
  {
    ONEREC_OPTS(onerec_session_opts, so, .max_batch = 1);
    onerec_session *s = NULL;
    assert_ok(onerec_session_create(m, ctx1, &so, &s));
    float *z1 = malloc((size_t)(g.T * g.d) * sizeof(float));
    uint8_t *mk = malloc((size_t)g.T);
    for (int64_t b = 0; b < g.batch; b++) {
      int64_t off[3][2];
      onerec_user_batch u = golden_users(&g, b, off);
      assert_ok(onerec_session_encode(s, &u, z1, (size_t)(g.T * g.d), mk));
      assert_memory_equal(mk, o.mask + b * g.T, (size_t)g.T);
      char what[64];
      snprintf(what, sizeof what, "user %lld encoded alone", (long long)b);
      /* not bit-identical: sgemm blocks a 1-user batch differently */
      tu_assert_close(z1, o.z + b * g.T * g.d, (size_t)(g.T * g.d), 1e-5f,
                      (float)(1e-5 * rms(o.z, (size_t)(nT * g.d))), what);
    }
    free(z1);
    free(mk);
    onerec_session_free(s);
  }
  onerec_context_free(ctx1);

  outputs_free(&o);
  golden_free(&g);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

/* 8 threads share one model, each with its own context and session, repeating the fixture's
 * encode + decode calls: every result is bit-identical to a single-threaded run. */
typedef struct thread_job {
  const onerec_model *m;
  const golden *g;
  outputs o;
  onerec_status st;
  char err[256];
} thread_job;

static void *thread_main(void *arg) {
  thread_job *j = arg;
  const golden *g = j->g;
  const int64_t L = g->cfg.levels, K = g->cfg.codebook;
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = 1);
  onerec_context *ctx = NULL;
  onerec_session *s = NULL;
  j->st = onerec_context_create(&co, &ctx);
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = 4, .max_targets = 8);
  if (!j->st) j->st = onerec_session_create(j->m, ctx, &so, &s);
  int64_t off[3][2];
  onerec_user_batch u = golden_users(g, -1, off);
  size_t nz = (size_t)(g->batch * g->T * g->d);
  j->o.z = malloc(nz * sizeof(float));
  j->o.mask = malloc((size_t)(g->batch * g->T));
  for (int i = 0; i < 2; i++) {
    j->o.logits[i] = malloc((size_t)(g->t[i].n * L * K) * sizeof(float));
    j->o.logp[i] = malloc((size_t)g->t[i].n * sizeof(double));
  }
  for (int rep = 0; rep < 3 && !j->st; rep++) {
    j->st = onerec_session_encode(s, &u, j->o.z, nz, j->o.mask);
    for (int i = 0; i < 2 && !j->st; i++)
      j->st = onerec_session_decode(s, g->t[i].offsets, g->t[i].codes, j->o.logits[i],
                                    (size_t)(g->t[i].n * L * K));
    for (int i = 0; i < 2 && !j->st; i++)
      j->st = onerec_session_score(s, &u, g->t[i].offsets, g->t[i].codes, j->o.logp[i],
                                   (size_t)g->t[i].n);
  }
  if (j->st) snprintf(j->err, sizeof j->err, "%s", onerec_last_error());
  onerec_session_free(s);
  onerec_context_free(ctx);
  return NULL;
}

static void test_threads_share_model(void **state) {
  (void)state;
  const char *path = FIXTURES "golden_moe.h5";
  onerec_context *ctx = tu_cpu_context(1);
  onerec_model *m = NULL;
  assert_ok(onerec_model_load(ctx, path, &m));
  golden g;
  golden_load(&g, m, path);
  const int64_t L = g.cfg.levels, K = g.cfg.codebook;
  outputs ref;
  run_all(ctx, m, &g, &ref);
  enum { NT = 8 };
  pthread_t th[NT];
  thread_job jobs[NT];
  memset(jobs, 0, sizeof jobs);
  for (int t = 0; t < NT; t++) {
    jobs[t].m = m;
    jobs[t].g = &g;
    assert_int_equal(pthread_create(&th[t], NULL, thread_main, &jobs[t]), 0);
  }
  for (int t = 0; t < NT; t++) pthread_join(th[t], NULL);
  for (int t = 0; t < NT; t++) {
    if (jobs[t].st) fail_msg("thread %d: %s", t, jobs[t].err);
    assert_memory_equal(jobs[t].o.z, ref.z, (size_t)(g.batch * g.T * g.d) * sizeof(float));
    assert_memory_equal(jobs[t].o.mask, ref.mask, (size_t)(g.batch * g.T));
    for (int i = 0; i < 2; i++) {
      assert_memory_equal(jobs[t].o.logits[i], ref.logits[i],
                          (size_t)(g.t[i].n * L * K) * sizeof(float));
      assert_memory_equal(jobs[t].o.logp[i], ref.logp[i], (size_t)g.t[i].n * sizeof(double));
    }
    outputs_free(&jobs[t].o);
  }
  outputs_free(&ref);
  golden_free(&g);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

/* The same fixtures on the CUDA backend, where one is usable (skipped otherwise). */
static void test_golden_cuda(void **state) {
  (void)state;
  char why[256];
  if (onerec_backend_probe("cuda", why, sizeof why) != ONEREC_OK) {
    print_message("cuda unavailable (%s): skipped\n", why);
    skip();
  }
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cuda");
  onerec_context *ctx = NULL;
  assert_ok(onerec_context_create(&co, &ctx));
  static const char *const names[] = {"golden_dense.h5", "golden_moe.h5", "golden_partial.h5"};
  for (int i = 0; i < 3; i++) {
    char path[256];
    snprintf(path, sizeof path, FIXTURES "%s", names[i]);
    onerec_model *m = NULL;
    assert_ok(onerec_model_load(ctx, path, &m));
    golden g;
    golden_load(&g, m, path);
    outputs o;
    run_all(ctx, m, &g, &o);
    compare_golden(names[i], &g, &o);
    outputs_free(&o);
    golden_free(&g);
    onerec_model_free(m);
  }
  onerec_context_free(ctx);
}

static void test_golden_dense(void **state) {
  (void)state;
  check_golden("golden_dense.h5");
}

static void test_golden_moe(void **state) {
  (void)state;
  check_golden("golden_moe.h5");
}

static void test_golden_partial(void **state) {
  (void)state;
  check_golden("golden_partial.h5");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_dense),
      cmocka_unit_test(test_golden_moe),
      cmocka_unit_test(test_golden_partial),
      cmocka_unit_test(test_threads_share_model),
      cmocka_unit_test(test_golden_cuda),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
