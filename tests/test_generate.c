/* Generation: constrained beam search and sampling (lib/generate.c, beam_search.c,
 * sampling.c) against an independent brute force: every catalogue item scored exactly with
 * onerec_session_score, then sorted. With a beam at least as wide as the catalogue the beam
 * top k must be the exact top k; with narrower beams every result must be a real, distinct,
 * committed item, best first, whose log-probability is its exact score. Also: retired items are
 * never generated, batching and chunking do not change results, sampling is deterministic for a
 * seed and draws from the constrained distribution, 8 threads sharing one model agree with one
 * thread, and bad arguments fail cleanly. */
#include "testutil.h"

#include <pthread.h>

#include "model_impl.h"

#define LEVELS 3
#define CODES 8

/* A small model with every pathway, LEVELS x CODES semantic IDs. */
static onerec_model_config small_cfg(void) {
  ONEREC_OPTS(onerec_model_config, c);
  assert_ok(onerec_model_config_preset("0.015B", &c));
  c.enc_layers = c.dec_layers = 2;
  c.d_model = 16;
  c.heads = 2;
  c.ffn_dim = 24;
  c.levels = LEVELS;
  c.codebook = CODES;
  c.short_len = 4;
  c.positive_len = 5;
  c.lifelong_queries = 3;
  c.lifelong_tokens = 6;
  c.lifelong_cluster_max = 3;
  c.lifelong_max_items = 40;
  c.static_cat_vocab[0] = 50;
  c.static_emb_dim = 4;
  c.item_dim = 8;
  c.seq_cat_vocab[0] = 30;
  c.seq_cat_dim[0] = 8;
  c.seq_cat_dim[1] = 4;
  c.seq_cat_dim[2] = 4;
  /* larger weights than the default 0.02 make the distributions far from uniform, so wrong
   * rankings cannot pass by ties */
  c.init_std = 0.5f;
  return c;
}

typedef struct users {
  int64_t batch;
  int32_t *static_cat;
  int64_t *off[3];
  int32_t *items[3], *cat[3];
  float *num[3];
} users;

static uint64_t next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static void users_make(users *u, int64_t batch, uint64_t seed) {
  uint64_t s = seed * 2654435761u + 17;
  memset(u, 0, sizeof *u);
  u->batch = batch;
  u->static_cat = malloc((size_t)batch * 3 * sizeof(int32_t));
  for (int64_t i = 0; i < batch * 3; i++) u->static_cat[i] = (int32_t)(next(&s) % 4);
  for (int p = 0; p < 3; p++) {
    u->off[p] = malloc((size_t)(batch + 1) * sizeof(int64_t));
    u->off[p][0] = 0;
    for (int64_t b = 0; b < batch; b++) u->off[p][b + 1] = u->off[p][b] + 1 + (int64_t)(next(&s) % 12);
    int64_t n = u->off[p][batch];
    u->items[p] = malloc((size_t)n * LEVELS * sizeof(int32_t));
    u->cat[p] = malloc((size_t)n * 3 * sizeof(int32_t));
    u->num[p] = malloc((size_t)n * 3 * sizeof(float));
    for (int64_t i = 0; i < n * LEVELS; i++) u->items[p][i] = (int32_t)(next(&s) % CODES);
    for (int64_t i = 0; i < n * 3; i++) u->cat[p][i] = (int32_t)(next(&s) % 16);
    for (int64_t i = 0; i < n * 3; i++) u->num[p][i] = (float)(next(&s) % 1000) / 1000.0f;
  }
}

static void users_free(users *u) {
  free(u->static_cat);
  for (int p = 0; p < 3; p++) {
    free(u->off[p]);
    free(u->items[p]);
    free(u->cat[p]);
    free(u->num[p]);
  }
}

/* The batch of users [b0, b0 + n) of u (offsets rebased into off_tmp[3][n + 1]). */
static onerec_user_batch view(const users *u, int64_t b0, int64_t n, int64_t *off_tmp) {
  ONEREC_OPTS(onerec_user_batch, v, .batch = n);
  v.static_cat = u->static_cat + b0 * 3;
  onerec_seq_input *seq[3] = {&v.short_term, &v.positive, &v.lifelong};
  for (int p = 0; p < 3; p++) {
    int64_t *o = off_tmp + p * (n + 1), base = u->off[p][b0];
    for (int64_t i = 0; i <= n; i++) o[i] = u->off[p][b0 + i] - base;
    seq[p]->offsets = o;
    seq[p]->items = u->items[p] + base * LEVELS;
    seq[p]->cat = u->cat[p] + base * 3;
    seq[p]->num = u->num[p] + base * 3;
  }
  return v;
}

/* n distinct random semantic IDs with ids 1000 + 7 i. */
static onerec_catalog *catalog_make(onerec_context *ctx, int64_t n, uint64_t seed,
                                    int64_t **ids_out, int32_t **codes_out) {
  ONEREC_OPTS(onerec_catalog_opts, o, .levels = LEVELS, .codes_per_level = CODES);
  onerec_catalog *cat = NULL;
  assert_ok(onerec_catalog_create(ctx, &o, &cat));
  uint8_t used[CODES * CODES * CODES] = {0};
  assert_true(n <= CODES * CODES * CODES);
  int64_t *ids = malloc((size_t)n * sizeof *ids);
  int32_t *codes = malloc((size_t)n * LEVELS * sizeof *codes);
  uint64_t s = seed * 77 + 3;
  for (int64_t i = 0; i < n; i++) {
    int v;
    do v = (int)(next(&s) % (CODES * CODES * CODES));
    while (used[v]);
    used[v] = 1;
    ids[i] = 1000 + 7 * i;
    codes[i * 3] = v / (CODES * CODES);
    codes[i * 3 + 1] = (v / CODES) % CODES;
    codes[i * 3 + 2] = v % CODES;
  }
  assert_ok(onerec_catalog_add(cat, (size_t)n, ids, codes));
  assert_ok(onerec_catalog_commit(cat));
  *ids_out = ids;
  *codes_out = codes;
  return cat;
}

typedef struct scored {
  int64_t id;
  double logp;
} scored;

static int by_logp(const void *pa, const void *pb) {
  const scored *a = pa, *b = pb;
  return a->logp > b->logp ? -1 : a->logp < b->logp ? 1 : (a->id > b->id) - (a->id < b->id);
}

/* Exact scores of all n items (ids, codes) for every user: ex[b * n + i], sorted per user. */
static scored *exact_all(const onerec_model *m, const users *u, int64_t n, const int64_t *ids,
                         const int32_t *codes) {
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = 1, .max_targets = n);
  onerec_session *s = NULL;
  assert_ok(onerec_session_create(m, NULL, &so, &s));
  scored *ex = malloc((size_t)(u->batch * n) * sizeof *ex);
  double *lp = malloc((size_t)n * sizeof *lp);
  int64_t tmp[3 * 2], toff[2] = {0, n};
  for (int64_t b = 0; b < u->batch; b++) {
    onerec_user_batch v = view(u, b, 1, tmp);
    assert_ok(onerec_session_score(s, &v, toff, codes, lp, (size_t)n));
    for (int64_t i = 0; i < n; i++) ex[b * n + i] = (scored){ids[i], lp[i]};
    qsort(ex + b * n, (size_t)n, sizeof *ex, by_logp);
  }
  free(lp);
  onerec_session_free(s);
  return ex;
}

static double exact_of(const scored *ex, int64_t n, int64_t id) {
  for (int64_t i = 0; i < n; i++)
    if (ex[i].id == id) return ex[i].logp;
  return NAN; /* not a catalogue item */
}

typedef struct fixture {
  onerec_context *ctx;
  onerec_model *m;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->ctx = tu_cpu_context(1);
  onerec_model_config c = small_cfg();
  assert_ok(onerec_model_create(f->ctx, &c, 5, &f->m));
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  onerec_model_free(f->m);
  onerec_context_free(f->ctx);
  free(f);
  return 0;
}

static void recommend(onerec_session *s, onerec_catalog *cat, const users *u,
                      const onerec_recommend_opts *o, int64_t *items, double *lp) {
  int64_t tmp[3 * 65];
  assert_true(u->batch <= 64);
  onerec_user_batch v = view(u, 0, u->batch, tmp);
  assert_ok(onerec_session_recommend(s, cat, &v, o, items, lp, (size_t)(u->batch * o->k)));
}

/* Wide beams give the exact top k; narrow beams give legal, distinct, sorted, exactly scored
 * items. */
static void test_beam_vs_brute_force(void **state) {
  fixture *f = *state;
  const int64_t N = 150, B = 3;
  int64_t *ids;
  int32_t *codes;
  onerec_catalog *cat = catalog_make(f->ctx, N, 1, &ids, &codes);
  users u;
  users_make(&u, B, 11);
  scored *ex = exact_all(f->m, &u, N, ids, codes);
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = B, .max_targets = B * 256);
  onerec_session *s = NULL;
  assert_ok(onerec_session_create(f->m, NULL, &so, &s));
  static const int beams[] = {256, 150, 64, 16, 4, 1};
  for (size_t bi = 0; bi < sizeof beams / sizeof *beams; bi++) {
    const int beam = beams[bi], k = beam < 20 ? beam : 20;
    ONEREC_OPTS(onerec_recommend_opts, o, .beam = beam, .k = k);
    int64_t items[3 * 20];
    double lp[3 * 20];
    recommend(s, cat, &u, &o, items, lp);
    for (int64_t b = 0; b < B; b++) {
      const scored *e = ex + b * N;
      for (int i = 0; i < k; i++) {
        int64_t id = items[b * k + i];
        double want = exact_of(e, N, id);
        if (isnan(want)) fail_msg("beam %d user %lld: item %lld is not in the catalogue", beam,
                                  (long long)b, (long long)id);
        if (fabs(lp[b * k + i] - want) > 1e-4 * (1 + fabs(want)))
          fail_msg("beam %d: logp %.8g, exact %.8g", beam, lp[b * k + i], want);
        if (i > 0) assert_true(lp[b * k + i] <= lp[b * k + i - 1]);
        for (int q = 0; q < i; q++) assert_true(items[b * k + q] != id);
        if (beam >= N) { /* every prefix survives: the exact ranking */
          if (id != e[i].id && fabs(e[i].logp - want) > 1e-5)
            fail_msg("beam %d user %lld rank %d: item %lld, exact top is %lld", beam,
                     (long long)b, i, (long long)id, (long long)e[i].id);
        }
      }
      if (beam == 1) /* greedy cannot beat the best */
        assert_true(lp[b * k] <= e[0].logp + 1e-5);
    }
  }
  onerec_session_free(s);
  free(ex);
  users_free(&u);
  free(ids);
  free(codes);
  onerec_catalog_free(cat);
}

/* An ensemble (onerec_sessions_recommend): a model with a second session of itself gives the
 * model's own results, bit for bit; two different models with a beam as wide as the catalogue give the
 * exact top k of the mean of their exact log-probabilities; bad ensembles fail cleanly. */
static void test_ensemble(void **state) {
  fixture *f = *state;
  const int64_t N = 120, B = 3;
  const int k = 10;
  int64_t *ids;
  int32_t *codes;
  onerec_catalog *cat = catalog_make(f->ctx, N, 4, &ids, &codes);
  users u;
  users_make(&u, B, 21);
  onerec_model_config c = small_cfg();
  onerec_model *m2 = NULL;
  assert_ok(onerec_model_create(f->ctx, &c, 99, &m2));
  scored *ea = exact_all(f->m, &u, N, ids, codes), *eb = exact_all(m2, &u, N, ids, codes);
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = B, .max_targets = B * 128);
  onerec_session *sa = NULL, *sa2 = NULL, *sb = NULL;
  assert_ok(onerec_session_create(f->m, NULL, &so, &sa));
  assert_ok(onerec_session_create(f->m, NULL, &so, &sa2));
  assert_ok(onerec_session_create(m2, NULL, &so, &sb));
  int64_t tmp[3 * 4], one[3 * 10], two[3 * 10];
  double lp1[3 * 10], lp2[3 * 10];
  onerec_user_batch v = view(&u, 0, B, tmp);

  /* the same model twice: its own ranking and scores */
  ONEREC_OPTS(onerec_recommend_opts, o, .beam = 16, .k = k);
  assert_ok(onerec_session_recommend(sa, cat, &v, &o, one, lp1, (size_t)(B * k)));
  onerec_session *twice[2] = {sa, sa2};
  assert_ok(onerec_sessions_recommend(twice, 2, cat, &v, &o, two, lp2, (size_t)(B * k)));
  assert_memory_equal(one, two, sizeof one);
  assert_memory_equal(lp1, lp2, sizeof lp1); /* the mean of equal terms is exact */

  /* two models, beam >= catalogue: the exact top k of the mean */
  ONEREC_OPTS(onerec_recommend_opts, wide, .beam = 128, .k = k);
  onerec_session *pair[2] = {sa, sb};
  assert_ok(onerec_sessions_recommend(pair, 2, cat, &v, &wide, two, lp2, (size_t)(B * k)));
  int differs = 0; /* the mean's ranking is not simply the first model's */
  for (int64_t b = 0; b < B; b++) {
    scored mean[120];
    for (int64_t i = 0; i < N; i++)
      mean[i] = (scored){ids[i], 0.5 * (exact_of(ea + b * N, N, ids[i]) +
                                         exact_of(eb + b * N, N, ids[i]))};
    qsort(mean, (size_t)N, sizeof *mean, by_logp);
    for (int i = 0; i < k; i++) {
      const int64_t id = two[b * k + i];
      const double want = exact_of(mean, N, id);
      if (isnan(want)) fail_msg("ensemble user %lld: item %lld is not in the catalogue",
                                (long long)b, (long long)id);
      if (fabs(lp2[b * k + i] - want) > 1e-4 * (1 + fabs(want)))
        fail_msg("ensemble user %lld rank %d: logp %.8g, mean of exact %.8g", (long long)b, i,
                 lp2[b * k + i], want);
      if (id != mean[i].id && fabs(mean[i].logp - want) > 1e-5)
        fail_msg("ensemble user %lld rank %d: item %lld, exact top is %lld", (long long)b, i,
                 (long long)id, (long long)mean[i].id);
      differs |= id != ea[b * N + i].id;
    }
  }
  assert_true(differs);

  /* bad ensembles */
  const onerec_status E = ONEREC_ERR_INVALID_ARGUMENT;
  assert_status(onerec_sessions_recommend(NULL, 2, cat, &v, &o, two, lp2, 30), E);
  assert_status(onerec_sessions_recommend(pair, 0, cat, &v, &o, two, lp2, 30), E);
  assert_status(onerec_sessions_recommend(pair, ONEREC_MAX_ENSEMBLE + 1, cat, &v, &o, two, lp2, 30),
                E);
  onerec_session *dup[2] = {sa, sa}, *hole[2] = {sa, NULL};
  assert_status(onerec_sessions_recommend(dup, 2, cat, &v, &o, two, lp2, 30), E);
  assert_non_null(strstr(onerec_last_error(), "own session"));
  assert_status(onerec_sessions_recommend(hole, 2, cat, &v, &o, two, lp2, 30), E);
  ONEREC_OPTS(onerec_recommend_opts, smp, .mode = ONEREC_GEN_SAMPLE, .k = 4, .seed = 1);
  assert_status(onerec_sessions_recommend(pair, 2, cat, &v, &smp, two, lp2, 30), E);
  assert_non_null(strstr(onerec_last_error(), "beam search only"));
  c.codebook = CODES + 1; /* another codebook than the catalogue's */
  onerec_model *m3 = NULL;
  onerec_session *sc = NULL;
  assert_ok(onerec_model_create(f->ctx, &c, 7, &m3));
  assert_ok(onerec_session_create(m3, NULL, &so, &sc));
  onerec_session *mixed[2] = {sa, sc};
  assert_status(onerec_sessions_recommend(mixed, 2, cat, &v, &o, two, lp2, 30), E);
  assert_non_null(strstr(onerec_last_error(), "session 1"));

  onerec_session_free(sc);
  onerec_model_free(m3);
  onerec_session_free(sa);
  onerec_session_free(sa2);
  onerec_session_free(sb);
  onerec_model_free(m2);
  free(ea);
  free(eb);
  users_free(&u);
  free(ids);
  free(codes);
  onerec_catalog_free(cat);
}

/* Random catalogues, some items retired: nothing generated is outside the committed set. */
static void test_legality_retired(void **state) {
  fixture *f = *state;
  users u;
  users_make(&u, 4, 3);
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = 4, .max_targets = 4 * 64);
  onerec_session *s = NULL;
  assert_ok(onerec_session_create(f->m, NULL, &so, &s));
  for (uint64_t trial = 0; trial < 4; trial++) {
    const int64_t N = 5 + (int64_t)trial * 60;
    int64_t *ids;
    int32_t *codes;
    onerec_catalog *cat = catalog_make(f->ctx, N, 100 + trial, &ids, &codes);
    /* retire every other item: the live ones are ids[odd] */
    int64_t nr = (N + 1) / 2;
    int64_t *gone = malloc((size_t)nr * sizeof *gone);
    for (int64_t i = 0; i < nr; i++) gone[i] = ids[2 * i];
    assert_ok(onerec_catalog_retire(cat, (size_t)nr, gone));
    assert_ok(onerec_catalog_commit(cat));
    const int64_t live = N - nr;
    for (int mode = 0; mode < 2; mode++) {
      ONEREC_OPTS(onerec_recommend_opts, o, .mode = mode, .beam = 64, .k = 8, .seed = trial,
                  .top_k = mode ? 3 : 0, .top_p = mode ? 0.9f : 0.0f);
      int64_t items[4 * 8];
      double lp[4 * 8];
      recommend(s, cat, &u, &o, items, lp);
      for (int i = 0; i < 4 * 8; i++) {
        if (mode == 0 && i % 8 >= live) { /* fewer items than k: padded */
          assert_int_equal(items[i], -1);
          assert_true(isinf(lp[i]) && lp[i] < 0);
          continue;
        }
        int64_t id = items[i];
        assert_true(id >= 1000 && (id - 1000) % 7 == 0);
        int64_t idx = (id - 1000) / 7;
        assert_true(idx < N && idx % 2 == 1);
        assert_true(lp[i] <= 0.0 && isfinite(lp[i]));
      }
    }
    free(gone);
    free(ids);
    free(codes);
    onerec_catalog_free(cat);
  }
  /* an empty catalogue: only padding */
  ONEREC_OPTS(onerec_catalog_opts, co, .levels = LEVELS, .codes_per_level = CODES);
  onerec_catalog *empty = NULL;
  assert_ok(onerec_catalog_create(f->ctx, &co, &empty));
  ONEREC_OPTS(onerec_recommend_opts, o, .beam = 4, .k = 2);
  int64_t items[8];
  double lp[8];
  recommend(s, empty, &u, &o, items, lp);
  for (int i = 0; i < 8; i++) assert_int_equal(items[i], -1);
  onerec_catalog_free(empty);
  onerec_session_free(s);
  users_free(&u);
}

/* Users in one call = each alone; chunked (max_targets = beam) = all at once. */
static void test_batching(void **state) {
  fixture *f = *state;
  const int64_t N = 200, B = 5;
  int64_t *ids;
  int32_t *codes;
  onerec_catalog *cat = catalog_make(f->ctx, N, 9, &ids, &codes);
  users u;
  users_make(&u, B, 21);
  ONEREC_OPTS(onerec_session_opts, big, .max_batch = B, .max_targets = B * 32);
  ONEREC_OPTS(onerec_session_opts, small, .max_batch = B, .max_targets = 32);
  onerec_session *s1 = NULL, *s2 = NULL;
  assert_ok(onerec_session_create(f->m, NULL, &big, &s1));
  assert_ok(onerec_session_create(f->m, NULL, &small, &s2));
  for (int mode = 0; mode < 2; mode++) {
    ONEREC_OPTS(onerec_recommend_opts, o, .mode = mode, .beam = 32, .k = 10, .seed = 4);
    int64_t all[5 * 10], chunked[5 * 10], one[10];
    double lall[5 * 10], lchunk[5 * 10], lone[10];
    recommend(s1, cat, &u, &o, all, lall);
    recommend(s2, cat, &u, &o, chunked, lchunk);
    for (int i = 0; i < B * 10; i++) {
      assert_int_equal(all[i], chunked[i]);
      assert_true(fabs(lall[i] - lchunk[i]) <= 1e-5 * (1 + fabs(lall[i])));
    }
    for (int64_t b = 0; b < B; b++) {
      int64_t tmp[3 * 2];
      onerec_user_batch v = view(&u, b, 1, tmp);
      assert_ok(onerec_session_recommend(s2, cat, &v, &o, one, lone, 10));
      for (int i = 0; i < 10; i++) {
        if (mode == 1) continue; /* a user's draws depend on its place in the batch */
        assert_int_equal(one[i], all[b * 10 + i]);
        if (!(fabs(lone[i] - lall[b * 10 + i]) <= 1e-4 * (1 + fabs(lone[i]))))
          fail_msg("user %lld rank %d: alone %.9g, batched %.9g", (long long)b, i, lone[i],
                   lall[b * 10 + i]);
      }
    }
  }
  onerec_session_free(s1);
  onerec_session_free(s2);
  users_free(&u);
  free(ids);
  free(codes);
  onerec_catalog_free(cat);
}

/* Same seed, same draws; another seed, other draws; top_k = 1 is greedy = beam 1; every draw is
 * a catalogue item with its exact log-probability. */
static void test_sampling(void **state) {
  fixture *f = *state;
  const int64_t N = 300, B = 2, k = 64;
  int64_t *ids;
  int32_t *codes;
  onerec_catalog *cat = catalog_make(f->ctx, N, 5, &ids, &codes);
  users u;
  users_make(&u, B, 8);
  scored *ex = exact_all(f->m, &u, N, ids, codes);
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = B, .max_targets = B * k);
  onerec_session *s = NULL;
  assert_ok(onerec_session_create(f->m, NULL, &so, &s));
  int64_t a[2 * 64], b2[2 * 64], c[2 * 64];
  double la[2 * 64], lb[2 * 64], lc[2 * 64];
  ONEREC_OPTS(onerec_recommend_opts, o, .mode = ONEREC_GEN_SAMPLE, .k = (int32_t)k, .seed = 42,
              .temperature = 1.5f);
  recommend(s, cat, &u, &o, a, la);
  recommend(s, cat, &u, &o, b2, lb);
  assert_memory_equal(a, b2, sizeof a);
  assert_memory_equal(la, lb, sizeof la);
  o.seed = 43;
  recommend(s, cat, &u, &o, c, lc);
  int differ = 0, distinct = 0;
  for (int i = 0; i < B * k; i++) {
    differ += a[i] != c[i];
    double want = exact_of(ex + (i / k) * N, N, a[i]);
    assert_false(isnan(want));
    assert_true(fabs(la[i] - want) <= 1e-4 * (1 + fabs(want)));
    int seen = 0;
    for (int q = (int)((i / k) * k); q < i; q++) seen |= a[q] == a[i];
    distinct += !seen;
  }
  assert_true(differ > 0);
  assert_true(distinct > 4); /* temperature 1.5 over 300 items: not one item */
  /* top_k = 1: every draw is the greedy path */
  ONEREC_OPTS(onerec_recommend_opts, g1, .mode = ONEREC_GEN_SAMPLE, .k = 4, .top_k = 1, .seed = 1);
  ONEREC_OPTS(onerec_recommend_opts, bm, .beam = 1, .k = 1);
  int64_t gi[2 * 4], bi[2];
  double gl[2 * 4], bl[2];
  recommend(s, cat, &u, &g1, gi, gl);
  recommend(s, cat, &u, &bm, bi, bl);
  for (int i = 0; i < B * 4; i++) assert_int_equal(gi[i], bi[i / 4]);
  /* a tiny top_p keeps only the best code of each step: greedy too */
  ONEREC_OPTS(onerec_recommend_opts, p0, .mode = ONEREC_GEN_SAMPLE, .k = 4, .top_p = 1e-6f,
              .seed = 2);
  recommend(s, cat, &u, &p0, gi, gl);
  for (int i = 0; i < B * 4; i++) assert_int_equal(gi[i], bi[i / 4]);
  onerec_session_free(s);
  free(ex);
  users_free(&u);
  free(ids);
  free(codes);
  onerec_catalog_free(cat);
}

/* The draws follow the constrained distribution: p(item) = prod_j softmax over the legal codes
 * of its prefix (teacher-forced logits from onerec_session_decode, renormalised here by hand),
 * within 5 standard errors over 4096 draws. */
static void test_sampling_distribution(void **state) {
  fixture *f = *state;
  const int64_t N = 6, D = 4096;
  int64_t *ids;
  int32_t *codes;
  onerec_catalog *cat = catalog_make(f->ctx, N, 12, &ids, &codes);
  users u;
  users_make(&u, 1, 31);
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = 1, .max_targets = D);
  onerec_session *s = NULL;
  assert_ok(onerec_session_create(f->m, NULL, &so, &s));
  int64_t tmp[3 * 2], toff[2] = {0, N};
  onerec_user_batch v = view(&u, 0, 1, tmp);
  assert_ok(onerec_session_encode(s, &v, NULL, 0, NULL));
  float *logits = malloc((size_t)(N * LEVELS * CODES) * sizeof *logits);
  assert_ok(onerec_session_decode(s, toff, codes, logits, (size_t)(N * LEVELS * CODES)));
  double want[6];
  for (int64_t i = 0; i < N; i++) {
    want[i] = 1.0;
    for (int j = 0; j < LEVELS; j++) {
      const float *lg = logits + (i * LEVELS + j) * CODES;
      double z = 0.0;
      for (int c = 0; c < CODES; c++) { /* legal: some item shares the prefix and has code c */
        int legal = 0;
        for (int64_t q = 0; q < N && !legal; q++)
          legal = !memcmp(codes + q * LEVELS, codes + i * LEVELS, (size_t)j * sizeof(int32_t)) &&
                  codes[q * LEVELS + j] == c;
        if (legal) z += exp((double)lg[c]);
      }
      want[i] *= exp((double)lg[codes[i * LEVELS + j]]) / z;
    }
  }
  ONEREC_OPTS(onerec_recommend_opts, o, .mode = ONEREC_GEN_SAMPLE, .k = (int32_t)D, .seed = 77);
  int64_t *items = malloc((size_t)D * sizeof *items);
  assert_ok(onerec_session_recommend(s, cat, &v, &o, items, NULL, (size_t)D));
  double total = 0.0;
  for (int64_t i = 0; i < N; i++) {
    int64_t n = 0;
    for (int64_t r = 0; r < D; r++) n += items[r] == ids[i];
    double f_ = (double)n / (double)D, se = sqrt(want[i] * (1 - want[i]) / (double)D);
    if (fabs(f_ - want[i]) > 5 * se + 1e-3)
      fail_msg("item %lld: drawn %.4f, expected %.4f (se %.4f)", (long long)i, f_, want[i], se);
    total += want[i];
  }
  assert_true(fabs(total - 1.0) < 1e-6);
  free(items);
  free(logits);
  onerec_session_free(s);
  users_free(&u);
  free(ids);
  free(codes);
  onerec_catalog_free(cat);
}

typedef struct thread_arg {
  const onerec_model *m;
  onerec_catalog *cat;
  const users *u;
  int mode;
  int64_t items[4 * 16];
  double lp[4 * 16];
  onerec_status st;
} thread_arg;

static void *worker(void *p) {
  thread_arg *a = p;
  a->st = ONEREC_ERR_INTERNAL;
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = 1, .seed = 1);
  onerec_context *ctx = NULL;
  if (onerec_context_create(&co, &ctx)) return NULL;
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = 4, .max_targets = 4 * 32);
  onerec_session *s = NULL;
  if (!onerec_session_create(a->m, ctx, &so, &s)) {
    ONEREC_OPTS(onerec_recommend_opts, o, .mode = a->mode, .beam = 32, .k = 16, .seed = 3);
    int64_t tmp[3 * 5];
    onerec_user_batch v = view(a->u, 0, a->u->batch, tmp);
    a->st = onerec_session_recommend(s, a->cat, &v, &o, a->items, a->lp, 4 * 16);
    onerec_session_free(s);
  }
  onerec_context_free(ctx);
  return NULL;
}

/* 8 threads, one shared model and catalogue, a session (and context) each. */
static void test_threads(void **state) {
  fixture *f = *state;
  int64_t *ids;
  int32_t *codes;
  onerec_catalog *cat = catalog_make(f->ctx, 180, 2, &ids, &codes);
  users u;
  users_make(&u, 4, 5);
  thread_arg ref[2], args[8];
  for (int mode = 0; mode < 2; mode++) {
    memset(&ref[mode], 0, sizeof ref[mode]);
    ref[mode] = (thread_arg){.m = f->m, .cat = cat, .u = &u, .mode = mode};
    worker(&ref[mode]);
    assert_int_equal(ref[mode].st, ONEREC_OK);
  }
  pthread_t th[8];
  for (int i = 0; i < 8; i++) {
    memset(&args[i], 0, sizeof args[i]);
    args[i] = (thread_arg){.m = f->m, .cat = cat, .u = &u, .mode = i % 2};
    assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
  }
  for (int i = 0; i < 8; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < 8; i++) {
    assert_int_equal(args[i].st, ONEREC_OK);
    assert_memory_equal(args[i].items, ref[i % 2].items, sizeof args[i].items);
    assert_memory_equal(args[i].lp, ref[i % 2].lp, sizeof args[i].lp);
  }
  users_free(&u);
  free(ids);
  free(codes);
  onerec_catalog_free(cat);
}

static void test_bad_args(void **state) {
  fixture *f = *state;
  int64_t *ids;
  int32_t *codes;
  onerec_catalog *cat = catalog_make(f->ctx, 20, 3, &ids, &codes);
  users u;
  users_make(&u, 2, 1);
  int64_t tmp[3 * 3];
  onerec_user_batch v = view(&u, 0, 2, tmp);
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = 2, .max_targets = 16);
  onerec_session *s = NULL;
  assert_ok(onerec_session_create(f->m, NULL, &so, &s));
  int64_t items[64];
  double lp[64];
  ONEREC_OPTS(onerec_recommend_opts, o, .beam = 8, .k = 4);
  const onerec_status E = ONEREC_ERR_INVALID_ARGUMENT;
  assert_status(onerec_session_recommend(NULL, cat, &v, &o, items, lp, 64), E);
  assert_status(onerec_session_recommend(s, NULL, &v, &o, items, lp, 64), E);
  assert_status(onerec_session_recommend(s, cat, NULL, &o, items, lp, 64), E);
  assert_status(onerec_session_recommend(s, cat, &v, &o, NULL, lp, 64), E);
  assert_status(onerec_session_recommend(s, cat, &v, &o, items, lp, 7),
                ONEREC_ERR_BUFFER_TOO_SMALL);
  assert_ok(onerec_session_recommend(s, cat, &v, &o, items, NULL, 8)); /* logp optional */
  assert_status(onerec_session_recommend(s, cat, &v, NULL, items, lp, 64), /* beam 64 > 16 */
                ONEREC_ERR_INVALID_ARGUMENT);
  onerec_recommend_opts bad = o;
  bad.beam = ONEREC_MAX_BEAM + 1;
  assert_status(onerec_session_recommend(s, cat, &v, &bad, items, lp, 64), E);
  bad = o;
  bad.beam = 32; /* > max_targets */
  assert_status(onerec_session_recommend(s, cat, &v, &bad, items, lp, 64), E);
  assert_non_null(strstr(onerec_last_error(), "max_targets"));
  bad = o;
  bad.k = 9;
  assert_status(onerec_session_recommend(s, cat, &v, &bad, items, lp, 64), E);
  bad = o;
  bad.mode = 7;
  assert_status(onerec_session_recommend(s, cat, &v, &bad, items, lp, 64), E);
  bad = o;
  bad.mode = ONEREC_GEN_SAMPLE;
  bad.temperature = -1.0f;
  assert_status(onerec_session_recommend(s, cat, &v, &bad, items, lp, 64), E);
  bad.temperature = 1.0f;
  bad.top_p = 1.5f;
  assert_status(onerec_session_recommend(s, cat, &v, &bad, items, lp, 64), E);
  bad.top_p = 0.5f;
  bad.top_k = -1;
  assert_status(onerec_session_recommend(s, cat, &v, &bad, items, lp, 64), E);
  bad.top_k = 0;
  bad.k = 17; /* samples > max_targets */
  assert_status(onerec_session_recommend(s, cat, &v, &bad, items, lp, 64), E);
  bad = o;
  bad.sz = 3;
  assert_status(onerec_session_recommend(s, cat, &v, &bad, items, lp, 64), E);
  /* a catalogue of another shape */
  ONEREC_OPTS(onerec_catalog_opts, co, .levels = 2, .codes_per_level = CODES);
  onerec_catalog *other = NULL;
  assert_ok(onerec_catalog_create(f->ctx, &co, &other));
  assert_status(onerec_session_recommend(s, other, &v, &o, items, lp, 64), E);
  onerec_catalog_free(other);
  /* bad users: batch out of range, an id outside its vocabulary */
  onerec_user_batch bu = v;
  bu.batch = 3;
  assert_status(onerec_session_recommend(s, cat, &bu, &o, items, lp, 64), E);
  int32_t bad_codes[LEVELS * 64];
  memcpy(bad_codes, u.items[0], sizeof(int32_t) * LEVELS * (size_t)u.off[0][2]);
  bad_codes[1] = CODES + 3;
  bu = v;
  bu.short_term.items = bad_codes;
  assert_status(onerec_session_recommend(s, cat, &bu, &o, items, lp, 64), E);
  /* the session still works afterwards */
  assert_ok(onerec_session_recommend(s, cat, &v, &o, items, lp, 64));
  onerec_session_free(s);
  users_free(&u);
  free(ids);
  free(codes);
  onerec_catalog_free(cat);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_beam_vs_brute_force), cmocka_unit_test(test_legality_retired),
      cmocka_unit_test(test_batching),            cmocka_unit_test(test_sampling),
      cmocka_unit_test(test_sampling_distribution), cmocka_unit_test(test_threads),
      cmocka_unit_test(test_bad_args),            cmocka_unit_test(test_ensemble),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
