/* The RQ-Kmeans tokenizer: the CPU k-means kernels against naive double-precision references
 * (every ISA copy, thread counts), known clusters recovered exactly, encode / decode against a
 * naive residual walk, determinism, metrics on hand-built codes, collision resolution (also with
 * full prefixes), balancing, re-seeding, sampling, save / load, and rejected files and
 * arguments. */
#include <unistd.h>

#include "context_impl.h"
#include "h5io.h"
#include "onerec/tokenizer.h"
#include "testutil.h"

static char g_dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/onerec-tok-XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  return system(cmd);
}

static void path_in_dir(char *out, size_t len, const char *name) {
  snprintf(out, len, "%s/%s", g_dir, name);
}

/* standard normal (Box-Muller over tu_rand) */
static float gauss(uint64_t *s) {
  double u1 = (tu_rand(s) + 1.0) * 0.5, u2 = (tu_rand(s) + 1.0) * 0.5;
  if (u1 < 1e-12) u1 = 1e-12;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static float *alloc_f(size_t n) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  assert_non_null(p);
  return p;
}

static int32_t *alloc_i(size_t n) {
  int32_t *p = malloc((n ? n : 1) * sizeof *p);
  assert_non_null(p);
  return p;
}

static onerec_tokenizer *fit(onerec_context *ctx, const float *x, int64_t n, int64_t d,
                             const onerec_tokenizer_opts *o) {
  onerec_tokenizer *t = NULL;
  assert_ok(onerec_tokenizer_fit(ctx, x, n, d, o, &t));
  assert_non_null(t);
  return t;
}

static float *codebook(const onerec_tokenizer *t, int level, int K, int64_t d) {
  float *cb = alloc_f((size_t)K * d);
  assert_ok(onerec_tokenizer_codebook(t, level, cb, (size_t)K * d));
  return cb;
}

static double sqdist_d(const float *a, const float *b, int64_t d) {
  double s = 0;
  for (int64_t j = 0; j < d; j++) {
    double e = (double)a[j] - (double)b[j];
    s += e * e;
  }
  return s;
}

/* ---- kernels ---- */

typedef struct kernel_out {
  float norms[600];
  int32_t idx[600];
  float dist[600];
  float cent[50 * 37];
  int64_t counts[50];
  float y[600 * 37];
  float mind[600];
  double mind_sum;
} kernel_out;

enum { KR = 600, KD = 37, KK = 1100, UK = 50 };

/* Runs every k-means op once on fixed inputs, checking each against a naive reference. */
static void run_kernels(onerec_context *ctx, const float *x, const float *c, kernel_out *o) {
  orx_backend *be = &ctx->be;
  float *cnorm = alloc_f(KK);
  assert_ok(be->ops->row_sq_norms(be, o->norms, x, KD, KR, KD));
  assert_ok(be->ops->row_sq_norms(be, cnorm, c, KD, KK, KD));
  for (int r = 0; r < KR; r++) {
    double s = 0;
    for (int j = 0; j < KD; j++) s += (double)x[r * KD + j] * x[r * KD + j];
    assert_true(fabs(o->norms[r] - s) <= 1e-5 * s + 1e-6);
  }
  orx_kmeans_assign_args a = {.x = x, .ldx = KD, .rows = KR, .dim = KD, .xnorm = o->norms,
                              .c = c, .cnorm = cnorm, .k = KK, .idx = o->idx, .dist = o->dist};
  assert_ok(be->ops->kmeans_assign(be, &a));
  for (int r = 0; r < KR; r++) {
    double best = INFINITY;
    for (int j = 0; j < KK; j++) {
      double d = sqdist_d(x + r * KD, c + j * KD, KD);
      if (d < best) best = d;
    }
    assert_true(o->idx[r] >= 0 && o->idx[r] < KK);
    /* the chosen centroid is the nearest up to float rounding of the expanded distance */
    assert_true(sqdist_d(x + r * KD, c + o->idx[r] * KD, KD) <= best + 1e-4 * (1 + best));
    assert_true(fabs(o->dist[r] - best) <= 1e-3 * (1 + best));
  }
  /* the 5 best candidates per row, best first, against a naive ranking */
  enum { NC = 5 };
  int32_t *cand = alloc_i(KR * NC), *idx2 = alloc_i(KR);
  float *score = alloc_f(KR * NC);
  a.ncand = NC;
  a.cand = cand;
  a.cand_score = score;
  a.idx = idx2;
  a.dist = NULL;
  assert_ok(be->ops->kmeans_assign(be, &a));
  assert_memory_equal(idx2, o->idx, KR * sizeof(int32_t));
  for (int r = 0; r < KR; r++) {
    assert_int_equal(cand[r * NC], o->idx[r]);
    double d[KK];
    for (int j = 0; j < KK; j++) d[j] = sqdist_d(x + r * KD, c + j * KD, KD);
    for (int i = 0; i < NC; i++) {
      int32_t j = cand[r * NC + i];
      assert_true(j >= 0 && j < KK);
      if (i > 0) assert_true(score[r * NC + i] >= score[r * NC + i - 1]);
      /* score = ||c||^2 - 2 x.c = distance - ||x||^2 */
      assert_true(fabs(score[r * NC + i] + o->norms[r] - d[j]) <= 1e-3 * (1 + d[j]));
      /* nothing outside the list is nearer than its last entry (up to rounding) */
      int closer = 0;
      for (int q = 0; q < KK; q++) closer += d[q] < d[j] - 1e-4 * (1 + d[j]);
      assert_true(closer <= i);
    }
  }
  a.ncand = KK + 1;
  assert_status(be->ops->kmeans_assign(be, &a), ONEREC_ERR_SHAPE);
  /* centroid update: clusters 40..49 get no rows and keep their sentinel rows */
  int32_t *as = alloc_i(KR);
  for (int r = 0; r < KR; r++) as[r] = (r * 7 + r / 13) % 40;
  for (int i = 0; i < UK * KD; i++) o->cent[i] = -7.0f;
  assert_ok(be->ops->kmeans_update(be, o->cent, o->counts, x, KD, as, KR, KD, UK));
  for (int k = 0; k < UK; k++) {
    int64_t cnt = 0;
    double sum[KD] = {0};
    for (int r = 0; r < KR; r++)
      if (as[r] == k) {
        cnt++;
        for (int j = 0; j < KD; j++) sum[j] += x[r * KD + j];
      }
    assert_int_equal(o->counts[k], cnt);
    for (int j = 0; j < KD; j++) {
      float want = cnt ? (float)(sum[j] / (double)cnt) : -7.0f;
      assert_true(fabsf(o->cent[k * KD + j] - want) <= 1e-6f * (1 + fabsf(want)));
    }
  }
  as[5] = UK; /* out of range: refused */
  assert_status(be->ops->kmeans_update(be, o->cent, o->counts, x, KD, as, KR, KD, UK),
                ONEREC_ERR_INVALID_ARGUMENT);
  /* gathered axpy */
  for (int i = 0; i < KR * KD; i++) o->y[i] = x[i];
  int32_t *ids = alloc_i(KR);
  for (int r = 0; r < KR; r++) ids[r] = (r * 31) % KK;
  assert_ok(be->ops->gather_axpy(be, o->y, KD, c, ids, KR, KD, KK, -0.5f));
  for (int r = 0; r < KR; r++)
    for (int j = 0; j < KD; j++)
      assert_float_equal(o->y[r * KD + j], x[r * KD + j] - 0.5f * c[ids[r] * KD + j], 1e-6);
  ids[KR - 1] = KK;
  float keep = o->y[0];
  assert_status(be->ops->gather_axpy(be, o->y, KD, c, ids, KR, KD, KK, 1.0f),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_true(o->y[0] == keep); /* nothing written */
  /* k-means++ steps: 1 centroid, then a batch of 7, then 32: mind as a naive scan gives it */
  for (int r = 0; r < KR; r++) o->mind[r] = INFINITY;
  const int steps[3][2] = {{0, 1}, {1, 7}, {8, 32}};
  for (int i = 0; i < 3; i++)
    assert_ok(be->ops->kmeanspp_step(be, o->mind, &o->mind_sum, x, KD, KR, KD, c + steps[i][0] * KD,
                                     steps[i][1]));
  double want_sum = 0;
  for (int r = 0; r < KR; r++) {
    double best = INFINITY;
    for (int j = 0; j < 40; j++) {
      double d = sqdist_d(x + r * KD, c + j * KD, KD);
      if (d < best) best = d;
    }
    assert_true(fabs(o->mind[r] - best) <= 1e-4 * (1 + best));
    want_sum += o->mind[r];
  }
  assert_true(fabs(o->mind_sum - want_sum) <= 1e-9 * want_sum);
  assert_status(be->ops->kmeanspp_step(be, o->mind, &o->mind_sum, x, KD, KR, KD, c, 0),
                ONEREC_ERR_SHAPE);
  free(cnorm);
  free(cand);
  free(idx2);
  free(score);
  free(as);
  free(ids);
}

static void test_kernels(void **state) {
  (void)state;
  float *x = alloc_f(KR * KD), *c = alloc_f(KK * KD);
  tu_fill(x, KR * KD, 11);
  tu_fill(c, KK * KD, 12);
  static kernel_out ref, got;
  const char *saved = getenv("ONEREC_CPU_ISA");
  char *keep = saved ? strdup(saved) : NULL;
  const char *isas[] = {"avx512", "avx2", "scalar"};
  int first = 1;
  for (int i = 0; i < 3; i++) {
    setenv("ONEREC_CPU_ISA", isas[i], 1);
    for (int threads = 1; threads <= 2; threads++) {
      onerec_context *ctx = tu_cpu_context(threads);
      memset(&got, 0, sizeof got);
      run_kernels(ctx, x, c, &got);
      if (first)
        memcpy(&ref, &got, sizeof got);
      else /* bit-identical whatever the ISA copy and the thread count */
        assert_memory_equal(&got, &ref, sizeof got);
      first = 0;
      onerec_context_free(ctx);
    }
  }
  if (keep) {
    setenv("ONEREC_CPU_ISA", keep, 1);
    free(keep);
  } else {
    unsetenv("ONEREC_CPU_ISA");
  }
  free(x);
  free(c);
}

/* ---- known clusters ---- */

/* x = A[i] + B[j] + noise: 4 far centres A, 4 offsets B (the same under every A). */
static float *hier_data(int per, int64_t d, int *truth_i, int *truth_j, uint64_t seed) {
  int n = 16 * per;
  float *A = alloc_f(4 * d), *B = alloc_f(4 * d), *x = alloc_f((size_t)n * d);
  uint64_t s = seed;
  for (int64_t e = 0; e < 4 * d; e++) {
    A[e] = 100.0f * gauss(&s);
    B[e] = 5.0f * gauss(&s);
  }
  for (int p = 0; p < n; p++) {
    int i = p % 4, j = (p / 4) % 4;
    truth_i[p] = i;
    truth_j[p] = j;
    for (int64_t e = 0; e < d; e++) x[p * d + e] = A[i * d + e] + B[j * d + e] + 0.05f * gauss(&s);
  }
  free(A);
  free(B);
  return x;
}

static void test_known_clusters(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  enum { PER = 30, N = 16 * PER, D = 12 };
  int ti[N], tj[N];
  float *x = hier_data(PER, D, ti, tj, 5);
  for (uint64_t seed = 3; seed < 5; seed++) {
    /* level 1 separates the A's, level 2 the B's: codes are a bijection with (i, j). k-means++
     * puts one centroid in each cluster; random init would often put two in one (a local
     * minimum Lloyd cannot leave), so it is not asked to recover them. */
    ONEREC_OPTS(onerec_tokenizer_opts, o, .levels = 2, .codes_per_level = 4, .iterations = 20,
                .seed = seed);
    onerec_tokenizer *t = fit(ctx, x, N, D, &o);
    int32_t codes[N * 2];
    assert_ok(onerec_tokenizer_encode(t, x, N, codes));
    int map_i[4], map_j[4];
    for (int a = 0; a < 4; a++) map_i[a] = map_j[a] = -1;
    for (int p = 0; p < N; p++) {
      if (map_i[ti[p]] < 0) map_i[ti[p]] = codes[2 * p];
      if (map_j[tj[p]] < 0) map_j[tj[p]] = codes[2 * p + 1];
      assert_int_equal(codes[2 * p], map_i[ti[p]]);
      assert_int_equal(codes[2 * p + 1], map_j[tj[p]]);
    }
    for (int a = 0; a < 4; a++)
      for (int b = a + 1; b < 4; b++) {
        assert_int_not_equal(map_i[a], map_i[b]);
        assert_int_not_equal(map_j[a], map_j[b]);
      }
    /* level-1 centroids are the cluster means */
    float *cb = codebook(t, 0, 4, D);
    for (int a = 0; a < 4; a++) {
      double mean[D] = {0};
      int cnt = 0;
      for (int p = 0; p < N; p++)
        if (ti[p] == a) {
          cnt++;
          for (int e = 0; e < D; e++) mean[e] += x[p * D + e];
        }
      for (int e = 0; e < D; e++)
        assert_float_equal(cb[map_i[a] * D + e], mean[e] / cnt, 1e-3);
    }
    ONEREC_OPTS(onerec_tokenizer_metrics, m);
    assert_ok(onerec_tokenizer_metrics_get(t, x, codes, N, &m));
    assert_true(m.reconstruction_loss < 1e-5);
    assert_true(m.utilization[0] == 1.0 && m.utilization[1] == 1.0);
    assert_float_equal(m.entropy_bits[0], 2.0, 1e-12);
    assert_float_equal(m.entropy_bits[1], 2.0, 1e-12);
    assert_int_equal(m.distinct_ids, 16);
    assert_int_equal(m.largest_collision_group, PER);
    free(cb);
    onerec_tokenizer_free(t);
  }
  free(x);
  onerec_context_free(ctx);
}

/* ---- encode / decode ---- */

static void test_encode_decode(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  enum { N = 3000, D = 20, K = 16, L = 3 };
  float *x = alloc_f(N * D);
  uint64_t s = 9;
  for (int i = 0; i < N * D; i++) x[i] = gauss(&s) * (1.0f + (float)(i % D) / 4);
  ONEREC_OPTS(onerec_tokenizer_opts, o, .levels = L, .codes_per_level = K, .iterations = 8,
              .seed = 1);
  onerec_tokenizer *t = fit(ctx, x, N, D, &o);
  float *cb[L];
  for (int l = 0; l < L; l++) cb[l] = codebook(t, l, K, D);
  int32_t *codes = alloc_i(N * L);
  float *xh = alloc_f(N * D);
  assert_ok(onerec_tokenizer_encode(t, x, N, codes));
  assert_ok(onerec_tokenizer_decode(t, codes, N, xh));
  double num = 0, den = 0;
  for (int p = 0; p < N; p++) {
    float r[D], rec[D] = {0};
    memcpy(r, x + p * D, sizeof r);
    for (int l = 0; l < L; l++) {
      /* each level's code is the nearest centroid to the residual (up to rounding) */
      double best = INFINITY;
      for (int k = 0; k < K; k++) {
        double dd = sqdist_d(r, cb[l] + k * D, D);
        if (dd < best) best = dd;
      }
      int c = codes[p * L + l];
      assert_true(c >= 0 && c < K);
      assert_true(sqdist_d(r, cb[l] + c * D, D) <= best + 1e-4 * (1 + best));
      for (int e = 0; e < D; e++) {
        r[e] -= cb[l][c * D + e];
        rec[e] += cb[l][c * D + e];
      }
    }
    tu_assert_close(xh + p * D, rec, D, 1e-5f, 1e-5f, "decode");
    num += sqdist_d(x + p * D, rec, D);
    den += sqdist_d(x + p * D, (float[D]){0}, D);
  }
  ONEREC_OPTS(onerec_tokenizer_metrics, m);
  assert_ok(onerec_tokenizer_metrics_get(t, x, codes, N, &m));
  assert_float_equal(m.reconstruction_loss, num / den, 1e-5 * num / den);
  /* training loss of the last level matches (all points were trained on) */
  ONEREC_OPTS(onerec_tokenizer_info, info);
  assert_ok(onerec_tokenizer_info_get(t, &info));
  assert_int_equal(info.train_points, N);
  assert_float_equal(info.train_loss[L - 1], num / den, 1e-4 * num / den);
  assert_true(info.train_loss[0] > info.train_loss[1] && info.train_loss[1] > info.train_loss[2]);
  /* re-encoding the decoded vectors gives the same codes back for most items (a decoded vector
   * is the sum of its centroids; boundaries can differ) and decode(encode(decode)) is stable */
  assert_ok(onerec_tokenizer_metrics_get(t, NULL, codes, N, &m));
  assert_true(isnan(m.reconstruction_loss));
  /* encode of 0 items is fine; block boundaries do not change codes */
  assert_ok(onerec_tokenizer_encode(t, x, 0, NULL));
  int32_t *part = alloc_i(N * L);
  assert_ok(onerec_tokenizer_encode(t, x, 1000, part));
  assert_ok(onerec_tokenizer_encode(t, x + 1000 * D, N - 1000, part + 1000 * L));
  assert_memory_equal(part, codes, (size_t)N * L * sizeof(int32_t));
  for (int l = 0; l < L; l++) free(cb[l]);
  free(part);
  free(codes);
  free(xh);
  free(x);
  onerec_tokenizer_free(t);
  onerec_context_free(ctx);
}

/* ---- determinism ---- */

static void test_determinism(void **state) {
  (void)state;
  enum { N = 4000, D = 24, K = 32, L = 2 };
  float *x = alloc_f(N * D);
  tu_fill(x, N * D, 21);
  for (int init = 0; init < 2; init++) {
    ONEREC_OPTS(onerec_tokenizer_opts, o, .levels = L, .codes_per_level = K, .iterations = 6,
                .seed = 77, .init = (onerec_kmeans_init)init, .max_train = 3000,
                .init_sample = 2000);
    float *ref[L] = {0};
    for (int run = 0; run < 3; run++) {
      onerec_context *ctx = tu_cpu_context(run == 2 ? 2 : 1); /* 1, 1 again, then 2 threads */
      onerec_tokenizer *t = fit(ctx, x, N, D, &o);
      for (int l = 0; l < L; l++) {
        float *cb = codebook(t, l, K, D);
        if (run == 0)
          ref[l] = cb;
        else {
          assert_memory_equal(cb, ref[l], sizeof(float) * K * D);
          free(cb);
        }
      }
      onerec_tokenizer_free(t);
      onerec_context_free(ctx);
    }
    /* another seed gives other codebooks */
    onerec_context *ctx = tu_cpu_context(2);
    o.seed = 78;
    onerec_tokenizer *t = fit(ctx, x, N, D, &o);
    float *cb = codebook(t, 0, K, D);
    assert_true(memcmp(cb, ref[0], sizeof(float) * K * D) != 0);
    free(cb);
    onerec_tokenizer_free(t);
    onerec_context_free(ctx);
    for (int l = 0; l < L; l++) free(ref[l]);
  }
  free(x);
}

/* ---- metrics on hand-built codes ---- */

static void test_metrics_known(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  float x[16 * 3];
  tu_fill(x, 16 * 3, 4);
  ONEREC_OPTS(onerec_tokenizer_opts, o, .levels = 2, .codes_per_level = 4, .iterations = 2);
  onerec_tokenizer *t = fit(ctx, x, 16, 3, &o);
  /* level 0: 0 0 1 1 2 2 3 3 -> utilisation 1, entropy 2 bits;
   * level 1: 0 0 0 0 0 1 1 2 -> utilisation 3/4, entropy H(5/8, 2/8, 1/8);
   * IDs: (0,0) x2, (1,0) x2, (2,0), (2,1), (3,1), (3,2): 4 colliding items, largest group 2 */
  const int32_t c8[16] = {0, 0, 0, 0, 1, 0, 1, 0, 2, 0, 2, 1, 3, 1, 3, 2};
  ONEREC_OPTS(onerec_tokenizer_metrics, m);
  assert_ok(onerec_tokenizer_metrics_get(t, NULL, c8, 8, &m));
  assert_int_equal(m.items, 8);
  assert_int_equal(m.levels, 2);
  assert_true(m.utilization[0] == 1.0);
  assert_true(m.utilization[1] == 0.75);
  assert_float_equal(m.entropy_bits[0], 2.0, 1e-12);
  double h1 = -(5.0 / 8 * log2(5.0 / 8) + 2.0 / 8 * log2(2.0 / 8) + 1.0 / 8 * log2(1.0 / 8));
  assert_float_equal(m.entropy_bits[1], h1, 1e-12);
  assert_float_equal(m.entropy_nats[1], h1 * log(2.0), 1e-12);
  assert_int_equal(m.distinct_ids, 6);
  assert_int_equal(m.colliding_items, 4);
  assert_float_equal(m.collision_rate, 0.5, 1e-12);
  assert_int_equal(m.largest_collision_group, 2);
  /* one group of three, no other collisions */
  const int32_t c4[8] = {1, 2, 1, 2, 3, 3, 1, 2};
  assert_ok(onerec_tokenizer_metrics_get(t, NULL, c4, 4, &m));
  assert_int_equal(m.colliding_items, 3);
  assert_int_equal(m.largest_collision_group, 3);
  assert_int_equal(m.distinct_ids, 2);
  /* a short struct (an older caller) gets only the fields its sz covers */
  struct {
    onerec_tokenizer_metrics m;
    char guard[8];
  } small;
  memset(&small, 0x5a, sizeof small);
  small.m.sz = offsetof(onerec_tokenizer_metrics, reconstruction_loss);
  assert_ok(onerec_tokenizer_metrics_get(t, NULL, c4, 4, &small.m));
  assert_int_equal(small.m.items, 4);
  unsigned char *tail = (unsigned char *)&small.m.reconstruction_loss;
  for (size_t i = 0; i < sizeof small - offsetof(onerec_tokenizer_metrics, reconstruction_loss);
       i++)
    assert_int_equal(tail[i], 0x5a);
  onerec_tokenizer_free(t);
  onerec_context_free(ctx);
}

/* ---- collision resolution ---- */

static void check_unique(onerec_tokenizer *t, const int32_t *codes, int64_t n, int L, int K) {
  ONEREC_OPTS(onerec_tokenizer_metrics, m);
  assert_ok(onerec_tokenizer_metrics_get(t, NULL, codes, n, &m));
  assert_int_equal(m.distinct_ids, n);
  assert_int_equal(m.colliding_items, 0);
  assert_true(m.collision_rate == 0.0);
  assert_int_equal(m.largest_collision_group, 1);
  for (int64_t i = 0; i < n * L; i++) assert_true(codes[i] >= 0 && codes[i] < K);
}

static void test_unique(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  /* 40 distinct vectors, each 6 times: collisions guaranteed */
  enum { U = 40, REP = 6, N = U * REP, D = 8, K = 16, L = 2 };
  float *base = alloc_f(U * D), *x = alloc_f(N * D);
  tu_fill(base, U * D, 31);
  for (int i = 0; i < N; i++) memcpy(x + i * D, base + (i % U) * D, D * sizeof(float));
  ONEREC_OPTS(onerec_tokenizer_opts, o, .levels = L, .codes_per_level = K, .iterations = 10,
              .seed = 2);
  onerec_tokenizer *t = fit(ctx, x, N, D, &o);
  int32_t *plain = alloc_i(N * L), *codes = alloc_i(N * L);
  assert_ok(onerec_tokenizer_encode(t, x, N, plain));
  ONEREC_OPTS(onerec_tokenizer_metrics, m);
  assert_ok(onerec_tokenizer_metrics_get(t, x, plain, N, &m));
  assert_true(m.colliding_items >= N - U);
  ONEREC_OPTS(onerec_tokenizer_unique_report, rep);
  assert_ok(onerec_tokenizer_encode_unique(t, x, N, codes, &rep));
  check_unique(t, codes, N, L, K);
  assert_int_equal(rep.reassigned, N - m.distinct_ids);
  assert_float_equal(rep.loss_before, m.reconstruction_loss, 1e-9);
  assert_true(rep.loss_after >= rep.loss_before);
  ONEREC_OPTS(onerec_tokenizer_metrics, m2);
  assert_ok(onerec_tokenizer_metrics_get(t, x, codes, N, &m2));
  assert_float_equal(rep.loss_after, m2.reconstruction_loss, 1e-9);
  /* keepers kept their ID: every plain ID still appears, held by one of its items */
  int kept = 0;
  for (int i = 0; i < N; i++) kept += !memcmp(plain + i * L, codes + i * L, L * sizeof(int32_t));
  assert_int_equal(kept, m.distinct_ids);
  /* a mover whose prefix has room changed only its last code */
  if (rep.reassigned_upper == 0)
    for (int i = 0; i < N; i++) assert_int_equal(codes[i * L], plain[i * L]);
  onerec_tokenizer_free(t);
  free(base);
  free(x);
  free(plain);
  free(codes);

  /* 16 identical items, 4 x 4 IDs: every prefix fills up, so most movers go a level up */
  float same[17 * 4];
  for (int i = 0; i < 17; i++)
    for (int e = 0; e < 4; e++) same[i * 4 + e] = (float)(e + 1);
  ONEREC_OPTS(onerec_tokenizer_opts, o2, .levels = 2, .codes_per_level = 4, .iterations = 3);
  t = fit(ctx, same, 16, 4, &o2);
  int32_t c16[16 * 2];
  assert_ok(onerec_tokenizer_encode_unique(t, same, 16, c16, &rep));
  check_unique(t, c16, 16, 2, 4);
  assert_int_equal(rep.reassigned, 15);
  assert_true(rep.reassigned_upper >= 12 - 3); /* at least 3 of 4 prefixes had to fill */
  /* 17 items cannot have 17 distinct IDs out of 16 */
  int32_t c17[17 * 2];
  assert_status(onerec_tokenizer_encode_unique(t, same, 17, c17, NULL),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(onerec_tokenizer_encode_unique(t, same, 0, NULL, NULL));
  onerec_tokenizer_free(t);
  onerec_context_free(ctx);
}

/* ---- balancing, re-seeding, sampling ---- */

static int64_t largest_cluster(const int32_t *codes, int64_t n, int L, int K) {
  int64_t cnt[64] = {0}, big = 0;
  for (int64_t i = 0; i < n; i++) cnt[codes[i * L]]++;
  for (int k = 0; k < K; k++) big = cnt[k] > big ? cnt[k] : big;
  return big;
}

static void test_balanced(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  /* a dense blob of 1600 points and 400 spread ones: plain k-means spends few centroids on the
   * blob, so one cluster holds most points */
  enum { N = 2000, D = 6, K = 8 };
  float *x = alloc_f(N * D);
  uint64_t s = 17;
  for (int i = 0; i < N; i++)
    for (int e = 0; e < D; e++) x[i * D + e] = i < 1600 ? 0.1f * gauss(&s) : 5.0f * tu_rand(&s);
  int32_t *codes = alloc_i(N);
  ONEREC_OPTS(onerec_tokenizer_opts, o, .levels = 1, .codes_per_level = K, .iterations = 40,
              .seed = 4);
  onerec_tokenizer *t = fit(ctx, x, N, D, &o);
  assert_ok(onerec_tokenizer_encode(t, x, N, codes));
  int64_t plain = largest_cluster(codes, N, 1, K);
  onerec_tokenizer_free(t);
  o.balanced = 1;
  t = fit(ctx, x, N, D, &o);
  assert_ok(onerec_tokenizer_encode(t, x, N, codes));
  int64_t bal = largest_cluster(codes, N, 1, K);
  ONEREC_OPTS(onerec_tokenizer_info, info);
  assert_ok(onerec_tokenizer_info_get(t, &info));
  assert_int_equal(info.balanced, 1);
  print_message("largest cluster: plain %lld, balanced %lld (of %d points, %d clusters)\n",
                (long long)plain, (long long)bal, N, K);
  /* balanced training spreads the centroids over the blob; encoding is nearest-centroid, so
   * sizes come out near (not at) the N / K share */
  assert_true(plain > N / 2);
  assert_true(bal < plain / 2);
  assert_true(bal <= 3 * N / K);
  onerec_tokenizer_free(t);
  free(codes);
  free(x);
  onerec_context_free(ctx);
}

static void test_reseed_and_sample(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  /* 60 copies of one point and 40 distinct ones: random init draws several copies, whose ties
   * all go to the lowest centroid, leaving the others empty until re-seeded */
  enum { N = 100, D = 5, K = 12 };
  float x[N * D];
  tu_fill(x, N * D, 8);
  for (int i = 0; i < 60; i++)
    for (int e = 0; e < D; e++) x[i * D + e] = 0.5f;
  ONEREC_OPTS(onerec_tokenizer_opts, o, .levels = 1, .codes_per_level = K, .iterations = 10,
              .seed = 6, .init = ONEREC_KMEANS_RANDOM);
  onerec_tokenizer *t = fit(ctx, x, N, D, &o);
  ONEREC_OPTS(onerec_tokenizer_info, info);
  assert_ok(onerec_tokenizer_info_get(t, &info));
  assert_true(info.reseeded[0] > 0);
  int32_t codes[N];
  assert_ok(onerec_tokenizer_encode(t, x, N, codes));
  ONEREC_OPTS(onerec_tokenizer_metrics, m);
  assert_ok(onerec_tokenizer_metrics_get(t, x, codes, N, &m));
  assert_true(m.utilization[0] == 1.0);
  onerec_tokenizer_free(t);

  /* fitting on a sample: train_points as asked, the rest encoded all the same */
  enum { NS = 3000, DS = 8 };
  float *xs = alloc_f(NS * DS);
  tu_fill(xs, NS * DS, 9);
  ONEREC_OPTS(onerec_tokenizer_opts, os, .levels = 2, .codes_per_level = 8, .iterations = 5,
              .max_train = 500, .init_sample = 100, .tolerance = 1e-3);
  t = fit(ctx, xs, NS, DS, &os);
  assert_ok(onerec_tokenizer_info_get(t, &info));
  assert_int_equal(info.train_points, 500);
  assert_int_equal(info.max_train, 500);
  assert_int_equal(info.init_sample, 100);
  assert_true(info.iterations_run[0] >= 1 && info.iterations_run[0] <= 5);
  int32_t *cs = alloc_i(NS * 2);
  assert_ok(onerec_tokenizer_encode(t, xs, NS, cs));
  onerec_tokenizer_free(t);
  /* default max_train (256 x codes) and all points (-1) */
  os.max_train = 0;
  os.codes_per_level = 4; /* 1024 points */
  t = fit(ctx, xs, NS, DS, &os);
  assert_ok(onerec_tokenizer_info_get(t, &info));
  assert_int_equal(info.train_points, 1024);
  onerec_tokenizer_free(t);
  os.max_train = -1;
  t = fit(ctx, xs, NS, DS, &os);
  assert_ok(onerec_tokenizer_info_get(t, &info));
  assert_int_equal(info.train_points, NS);
  onerec_tokenizer_free(t);
  /* a tolerance stops early on data that converges at once */
  ONEREC_OPTS(onerec_tokenizer_opts, ot, .levels = 1, .codes_per_level = 4, .iterations = 50,
              .tolerance = 1e-6);
  float four[40 * 2];
  for (int i = 0; i < 40; i++) {
    four[2 * i] = (float)(i % 4) * 10.0f;
    four[2 * i + 1] = (float)((i % 4) * 3 % 4) * 10.0f + 0.01f * (float)(i / 4);
  }
  t = fit(ctx, four, 40, 2, &ot);
  assert_ok(onerec_tokenizer_info_get(t, &info));
  assert_true(info.iterations_run[0] < 50);
  onerec_tokenizer_free(t);
  free(cs);
  free(xs);
  onerec_context_free(ctx);
}

/* ---- files ---- */

static void test_save_load(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  enum { N = 1500, D = 10, K = 8, L = 3 };
  float *x = alloc_f(N * D);
  tu_fill(x, N * D, 41);
  for (int bal = 0; bal < 2; bal++) {
    ONEREC_OPTS(onerec_tokenizer_opts, o, .levels = L, .codes_per_level = K, .iterations = 4,
                .seed = 0xFFFFFFFFFFFFFFF0ull, .balanced = bal, .init = ONEREC_KMEANS_RANDOM,
                .tolerance = 0.5);
    onerec_tokenizer *t = fit(ctx, x, N, D, &o);
    char path[128];
    path_in_dir(path, sizeof path, "tok.h5");
    assert_ok(onerec_tokenizer_save(t, path));
    onerec_tokenizer *u = NULL;
    assert_ok(onerec_tokenizer_load(ctx, path, &u));
    for (int l = 0; l < L; l++) {
      float *a = codebook(t, l, K, D), *b = codebook(u, l, K, D);
      assert_memory_equal(a, b, sizeof(float) * K * D);
      free(a);
      free(b);
    }
    ONEREC_OPTS(onerec_tokenizer_info, ia);
    ONEREC_OPTS(onerec_tokenizer_info, ib);
    assert_ok(onerec_tokenizer_info_get(t, &ia));
    assert_ok(onerec_tokenizer_info_get(u, &ib));
    assert_memory_equal(&ia, &ib, sizeof ia);
    assert_true(ib.seed == 0xFFFFFFFFFFFFFFF0ull);
    assert_int_equal(ib.balanced, bal);
    int32_t *ca = alloc_i(N * L), *cb = alloc_i(N * L);
    assert_ok(onerec_tokenizer_encode(t, x, N, ca));
    assert_ok(onerec_tokenizer_encode(u, x, N, cb));
    assert_memory_equal(ca, cb, sizeof(int32_t) * N * L);
    free(ca);
    free(cb);
    onerec_tokenizer_free(t);
    onerec_tokenizer_free(u);
  }
  free(x);
  onerec_context_free(ctx);
}

static void *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  void *b = malloc(*len);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, *len, f), *len);
  fclose(f);
  return b;
}

static void write_all(const char *path, const void *b, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, len, f), len);
  fclose(f);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

typedef struct craft {
  const char *kind;
  int64_t version;
  int64_t levels, k, dim;      /* config */
  int64_t cb_dims[3];          /* dataset shape; [0] = 0: no codebooks dataset */
  int nan_at;                  /* -1: none */
  int bad_checksum;
} craft;

/* Writes a tokenizer file by hand through the HDF5 helpers, as the format documents it. */
static void write_crafted(const char *path, const craft *c) {
  orx_h5 h;
  assert_ok(orx_h5_create(&h, path));
  assert_ok(orx_h5_stamp(&h, c->kind, c->version));
  size_t ncb = (size_t)(c->cb_dims[0] * c->cb_dims[1] * c->cb_dims[2]);
  float *cb = alloc_f(ncb);
  for (size_t i = 0; i < ncb; i++) cb[i] = (float)i * 0.25f;
  if (c->nan_at >= 0) cb[c->nan_at] = NAN;
  uint64_t sum = fnv(0xcbf29ce484222325ull, cb, ncb * 4);
  if (c->bad_checksum) sum ^= 1;
  hid_t g;
  assert_ok(orx_h5_group_create(&h, "config", &g));
  assert_ok(orx_h5_attr_write_str(&h, g, "algorithm", "rq-kmeans"));
  assert_ok(orx_h5_attr_write_i64(&h, g, "levels", c->levels));
  assert_ok(orx_h5_attr_write_i64(&h, g, "codes_per_level", c->k));
  assert_ok(orx_h5_attr_write_i64(&h, g, "dim", c->dim));
  assert_ok(orx_h5_attr_write_i64(&h, g, "iterations", 5));
  assert_ok(orx_h5_attr_write_i64(&h, g, "seed", 1));
  assert_ok(orx_h5_attr_write_str(&h, g, "init", "kmeans++"));
  assert_ok(orx_h5_attr_write_i64(&h, g, "balanced", 0));
  assert_ok(orx_h5_attr_write_f64(&h, g, "tolerance", 0));
  assert_ok(orx_h5_attr_write_i64(&h, g, "max_train", 0));
  assert_ok(orx_h5_attr_write_i64(&h, g, "init_sample", 0));
  assert_ok(orx_h5_attr_write_i64(&h, g, "train_points", 100));
  assert_ok(orx_h5_attr_write_f64(&h, g, "fit_seconds", 0.5));
  for (int l = 0; l < c->levels && l < 16; l++) {
    char name[48];
    snprintf(name, sizeof name, "iterations_run_%d", l);
    assert_ok(orx_h5_attr_write_i64(&h, g, name, 5));
    snprintf(name, sizeof name, "train_loss_%d", l);
    assert_ok(orx_h5_attr_write_f64(&h, g, name, 0.5));
    snprintf(name, sizeof name, "reseeded_%d", l);
    assert_ok(orx_h5_attr_write_i64(&h, g, name, 0));
  }
  int64_t s64;
  memcpy(&s64, &sum, sizeof s64);
  assert_ok(orx_h5_attr_write_i64(&h, g, "checksum", s64));
  orx_h5_group_close(g);
  if (c->cb_dims[0]) assert_ok(orx_h5_write(&h, h.file, "codebooks", ORX_H5_F32, 3, c->cb_dims, cb));
  assert_ok(orx_h5_commit(&h));
  free(cb);
}

static void expect_load(onerec_context *ctx, const char *path, onerec_status want,
                        const char *needle) {
  onerec_tokenizer *t = (onerec_tokenizer *)(uintptr_t)1;
  onerec_clear_error();
  onerec_status s = onerec_tokenizer_load(ctx, path, &t);
  if (want == ONEREC_OK) {
    if (s) fail_msg("%s: %s", path, onerec_last_error());
    onerec_tokenizer_free(t);
    return;
  }
  if (s == ONEREC_OK) fail_msg("%s loaded, expected %s", path, onerec_status_str(want));
  if (want != (onerec_status)-1 && s != want)
    fail_msg("%s: got %s (%s), expected %s", path, onerec_status_str(s), onerec_last_error(),
             onerec_status_str(want));
  assert_null(t);
  assert_true(onerec_last_error()[0] != '\0');
  if (needle && !strstr(onerec_last_error(), needle))
    fail_msg("%s: message '%s' lacks '%s'", path, onerec_last_error(), needle);
}

static void test_bad_files(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  char good[128], bad[128];
  path_in_dir(good, sizeof good, "good.h5");
  path_in_dir(bad, sizeof bad, "bad.h5");
  /* the crafted writer agrees with the loader */
  craft c = {"tokenizer", 1, 2, 4, 3, {2, 4, 3}, -1, 0};
  write_crafted(good, &c);
  expect_load(ctx, good, ONEREC_OK, NULL);

  /* a real file, then truncated and flipped copies of it */
  enum { N = 400, D = 16 };
  float *x = alloc_f(N * D);
  tu_fill(x, N * D, 5);
  ONEREC_OPTS(onerec_tokenizer_opts, o, .levels = 2, .codes_per_level = 32, .iterations = 2);
  onerec_tokenizer *t = fit(ctx, x, N, D, &o);
  assert_ok(onerec_tokenizer_save(t, good));
  float *cb0 = codebook(t, 0, 32, D);
  onerec_tokenizer_free(t);
  size_t len;
  unsigned char *file = read_all(good, &len);
  const size_t cuts[] = {0, 7, 512, 2048};
  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
    write_all(bad, file, cuts[i]);
    expect_load(ctx, bad, (onerec_status)-1, NULL);
  }
  write_all(bad, file, len / 2);
  expect_load(ctx, bad, (onerec_status)-1, NULL);
  write_all(bad, file, len - 100);
  expect_load(ctx, bad, (onerec_status)-1, NULL);
  /* flipped bytes in the codebook data: only the checksum can tell */
  unsigned char *at = memmem(file, len, cb0, 64);
  assert_non_null(at);
  for (int k = 0; k < 3; k++) {
    size_t off = (size_t)(at - file) + (size_t)k * 1000 + 3;
    file[off] ^= 0x10;
    write_all(bad, file, len);
    expect_load(ctx, bad, ONEREC_ERR_FORMAT, "checksum");
    file[off] ^= 0x10;
  }
  /* a flipped signature: not HDF5 at all */
  file[1] ^= 0xff;
  write_all(bad, file, len);
  expect_load(ctx, bad, ONEREC_ERR_FORMAT, NULL);
  free(file);
  free(cb0);
  free(x);

  /* missing file */
  path_in_dir(bad, sizeof bad, "missing.h5");
  expect_load(ctx, bad, ONEREC_ERR_IO, NULL);
  path_in_dir(bad, sizeof bad, "bad.h5");
  /* wrong kind, wrong version */
  c.kind = "catalog";
  write_crafted(bad, &c);
  expect_load(ctx, bad, ONEREC_ERR_FORMAT, "catalog");
  c.kind = "tokenizer";
  c.version = 2;
  write_crafted(bad, &c);
  expect_load(ctx, bad, ONEREC_ERR_VERSION, NULL);
  c.version = 1;
  /* dataset shape disagrees with the config */
  c.cb_dims[2] = 5;
  write_crafted(bad, &c);
  expect_load(ctx, bad, ONEREC_ERR_SHAPE, "codebooks");
  c.cb_dims[2] = 3;
  /* config out of range, before anything is allocated */
  c.levels = 17;
  write_crafted(bad, &c);
  expect_load(ctx, bad, ONEREC_ERR_FORMAT, "levels");
  c.levels = 2;
  c.k = 1 << 25;
  write_crafted(bad, &c);
  expect_load(ctx, bad, ONEREC_ERR_FORMAT, "codes_per_level");
  c.k = 4;
  /* absurd config matching nothing in the file: refused on shape, not by allocating */
  c.dim = 1 << 30;
  write_crafted(bad, &c);
  expect_load(ctx, bad, ONEREC_ERR_SHAPE, NULL);
  c.dim = 3;
  /* missing codebooks, bad checksum, NaN with a good checksum */
  c.cb_dims[0] = 0;
  write_crafted(bad, &c);
  expect_load(ctx, bad, ONEREC_ERR_FORMAT, "codebooks");
  c.cb_dims[0] = 2;
  c.bad_checksum = 1;
  write_crafted(bad, &c);
  expect_load(ctx, bad, ONEREC_ERR_FORMAT, "checksum");
  c.bad_checksum = 0;
  c.nan_at = 7;
  write_crafted(bad, &c);
  expect_load(ctx, bad, ONEREC_ERR_FORMAT, "finite");
  onerec_context_free(ctx);
}

/* ---- features files ---- */

static void write_features(const char *path, orx_h5_type type, int rank, const int64_t *dims,
                           const void *x, int64_t n_ids, const int64_t *ids) {
  orx_h5 h;
  assert_ok(orx_h5_create(&h, path));
  if (x) assert_ok(orx_h5_write(&h, h.file, "features", type, rank, dims, x));
  if (ids) assert_ok(orx_h5_write(&h, h.file, "item_ids", ORX_H5_I64, 1, &n_ids, ids));
  assert_ok(orx_h5_commit(&h));
}

static void test_features_file(void **state) {
  (void)state;
  char path[128];
  path_in_dir(path, sizeof path, "feat.h5");
  const float x[15] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const double xd[15] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  const int64_t ids[5] = {10, 999999999999ll, 3, 7, -2}, dims[2] = {5, 3};
  float got[15];
  int64_t gid[5], n = 0, dim = 0;
  int has = -1;
  write_features(path, ORX_H5_F32, 2, dims, x, 5, ids);
  assert_ok(onerec_features_file_info(path, &n, &dim, &has));
  assert_int_equal(n, 5);
  assert_int_equal(dim, 3);
  assert_int_equal(has, 1);
  assert_ok(onerec_features_file_read(path, got, 15, gid, 5));
  assert_memory_equal(got, x, sizeof x);
  assert_memory_equal(gid, ids, sizeof ids);
  assert_status(onerec_features_file_read(path, got, 14, NULL, 0), ONEREC_ERR_BUFFER_TOO_SMALL);
  assert_status(onerec_features_file_read(path, got, 15, gid, 4), ONEREC_ERR_BUFFER_TOO_SMALL);
  /* float64 features convert; no item_ids: row numbers */
  write_features(path, ORX_H5_F64, 2, dims, xd, 0, NULL);
  assert_ok(onerec_features_file_info(path, NULL, NULL, &has));
  assert_int_equal(has, 0);
  assert_ok(onerec_features_file_read(path, got, 15, gid, 5));
  assert_memory_equal(got, x, sizeof x);
  for (int i = 0; i < 5; i++) assert_int_equal(gid[i], i);
  /* item_ids of another length, 1-D features, no features, a missing file */
  write_features(path, ORX_H5_F32, 2, dims, x, 4, ids);
  assert_status(onerec_features_file_info(path, &n, &dim, &has), ONEREC_ERR_SHAPE);
  const int64_t flat = 15;
  write_features(path, ORX_H5_F32, 1, &flat, x, 0, NULL);
  assert_status(onerec_features_file_info(path, &n, &dim, &has), ONEREC_ERR_SHAPE);
  write_features(path, ORX_H5_F32, 2, dims, NULL, 5, ids);
  assert_status(onerec_features_file_read(path, got, 15, NULL, 0), ONEREC_ERR_FORMAT);
  path_in_dir(path, sizeof path, "nothing.h5");
  assert_status(onerec_features_file_info(path, &n, &dim, &has), ONEREC_ERR_IO);
  assert_status(onerec_features_file_info(NULL, &n, &dim, &has), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_features_file_read(path, NULL, 15, NULL, 0), ONEREC_ERR_INVALID_ARGUMENT);
}

/* ---- the CLI (ONEREC_CLI, set by make test) ---- */

static char *run_cli(const char *args) {
  const char *cli = getenv("ONEREC_CLI");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", cli, args);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  static char out[8192];
  size_t n = fread(out, 1, sizeof out - 1, p);
  out[n] = '\0';
  int rc = pclose(p);
  if (rc != 0) fail_msg("%s exited with %d: %s", cmd, rc, out);
  return out;
}

static void test_cli(void **state) {
  (void)state;
  if (!getenv("ONEREC_CLI")) {
    print_message("ONEREC_CLI not set: skipped\n");
    return;
  }
  enum { N = 600, D = 6 };
  float *x = alloc_f(N * D);
  tu_fill(x, N * D, 77);
  int64_t ids[N], dims[2] = {N, D};
  for (int i = 0; i < N; i++) ids[i] = 1000 + 3 * i;
  char feat[128], tok[128], cat[128], args[1024];
  path_in_dir(feat, sizeof feat, "cli_feat.h5");
  path_in_dir(tok, sizeof tok, "cli_tok.h5");
  path_in_dir(cat, sizeof cat, "cli_cat.h5");
  write_features(feat, ORX_H5_F32, 2, dims, x, N, ids);
  snprintf(args, sizeof args,
           "tokenizer fit --features %s --levels 2 --codes 32 --iterations 5 --seed 3 --out %s "
           "--catalog %s --threads 1 --json",
           feat, tok, cat);
  char *out = run_cli(args);
  const char *keys[] = {"\"reconstruction_loss\":", "\"utilization\":[",
                        "\"entropy\":[",           "\"entropy_unit\":\"bits\"",
                        "\"entropy_nats\":[",      "\"collision_rate\":",
                        "\"largest_collision_group\":", "\"unique\":{",
                        "\"seconds\":"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
    if (!strstr(out, keys[i])) fail_msg("fit output lacks %s: %s", keys[i], out);
  assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out)); /* one JSON line */
  /* the saved tokenizer gives the loss the CLI printed */
  onerec_context *ctx = tu_cpu_context(1);
  onerec_tokenizer *t = NULL;
  assert_ok(onerec_tokenizer_load(ctx, tok, &t));
  int32_t *codes = alloc_i(N * 2);
  assert_ok(onerec_tokenizer_encode(t, x, N, codes));
  ONEREC_OPTS(onerec_tokenizer_metrics, m);
  assert_ok(onerec_tokenizer_metrics_get(t, x, codes, N, &m));
  double printed = atof(strstr(out, "\"reconstruction_loss\":") + 22);
  assert_float_equal(printed, m.reconstruction_loss, 1e-6);
  /* the catalogue holds every item, one-to-one */
  onerec_catalog *c = NULL;
  assert_ok(onerec_catalog_load(ctx, cat, &c));
  int64_t items = 0;
  assert_ok(onerec_catalog_info(c, NULL, NULL, &items));
  assert_int_equal(items, N);
  int32_t code[2];
  assert_ok(onerec_catalog_codes_of(c, 1000 + 3 * 17, code));
  onerec_catalog_free(c);
  snprintf(args, sizeof args, "tokenizer stats %s --features %s --json", tok, feat);
  out = run_cli(args);
  if (!strstr(out, "\"codes_per_level\":32") || !strstr(out, "\"reconstruction_loss\":"))
    fail_msg("stats output: %s", out);
  free(codes);
  free(x);
  onerec_tokenizer_free(t);
  onerec_context_free(ctx);
}

/* ---- arguments ---- */

static void test_bad_args(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  enum { N = 64, D = 4 };
  float x[N * D];
  tu_fill(x, N * D, 2);
  onerec_tokenizer *t = NULL;
  ONEREC_OPTS(onerec_tokenizer_opts, o, .levels = 2, .codes_per_level = 4, .iterations = 2);
  assert_status(onerec_tokenizer_fit(NULL, x, N, D, &o, &t), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_fit(ctx, NULL, N, D, &o, &t), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_fit(ctx, x, N, D, &o, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_fit(ctx, x, 0, D, &o, &t), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_fit(ctx, x, N, 0, &o, &t), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_fit(ctx, x, 3, D, &o, &t), ONEREC_ERR_INVALID_ARGUMENT);
#define BAD_OPT(field, value)                                                               \
  do {                                                                                      \
    onerec_tokenizer_opts b_ = o;                                                           \
    b_.field = value;                                                                       \
    assert_status(onerec_tokenizer_fit(ctx, x, N, D, &b_, &t), ONEREC_ERR_INVALID_ARGUMENT); \
    assert_null(t);                                                                         \
  } while (0)
  BAD_OPT(levels, 17);
  BAD_OPT(levels, -1);
  BAD_OPT(codes_per_level, -4);
  BAD_OPT(codes_per_level, (1 << 24) + 1);
  BAD_OPT(iterations, -1);
  BAD_OPT(init, (onerec_kmeans_init)7);
  BAD_OPT(tolerance, -1.0);
  BAD_OPT(tolerance, NAN);
  BAD_OPT(max_train, 3);
  BAD_OPT(init_sample, 2);
  BAD_OPT(sz, 0);
#undef BAD_OPT
  /* a newer caller's unknown non-zero field is refused, zero ones accepted */
  struct {
    onerec_tokenizer_opts o;
    int64_t extra;
  } big = {o, 0};
  big.o.sz = sizeof big;
  assert_ok(onerec_tokenizer_fit(ctx, x, N, D, &big.o, &t));
  onerec_tokenizer_free(t);
  big.extra = 1;
  assert_status(onerec_tokenizer_fit(ctx, x, N, D, &big.o, &t), ONEREC_ERR_INVALID_ARGUMENT);
  float y[N * D];
  memcpy(y, x, sizeof y);
  y[77] = INFINITY;
  assert_status(onerec_tokenizer_fit(ctx, y, N, D, &o, &t), ONEREC_ERR_INVALID_ARGUMENT);
  float zero[N * D] = {0};
  assert_status(onerec_tokenizer_fit(ctx, zero, N, D, &o, &t), ONEREC_ERR_INVALID_ARGUMENT);
  /* defaults (NULL opts): 3 x 256 needs 256 points */
  assert_status(onerec_tokenizer_fit(ctx, x, N, D, NULL, &t), ONEREC_ERR_INVALID_ARGUMENT);

  t = fit(ctx, x, N, D, &o);
  int32_t codes[N * 2];
  float out[N * D];
  assert_status(onerec_tokenizer_encode(NULL, x, N, codes), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_encode(t, NULL, N, codes), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_encode(t, x, N, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_encode(t, x, -1, codes), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_encode(t, y, N, codes), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(onerec_tokenizer_encode(t, x, N, codes));
  assert_status(onerec_tokenizer_decode(NULL, codes, N, out), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_decode(t, NULL, N, out), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_decode(t, codes, N, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  codes[2 * 9 + 1] = 4;
  assert_status(onerec_tokenizer_decode(t, codes, N, out), ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "item 9 level 1"));
  ONEREC_OPTS(onerec_tokenizer_metrics, m);
  assert_status(onerec_tokenizer_metrics_get(t, x, codes, N, &m), ONEREC_ERR_INVALID_ARGUMENT);
  codes[2 * 9 + 1] = -1;
  assert_status(onerec_tokenizer_metrics_get(t, NULL, codes, N, &m), ONEREC_ERR_INVALID_ARGUMENT);
  codes[2 * 9 + 1] = 0;
  assert_status(onerec_tokenizer_metrics_get(t, x, codes, 0, &m), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_metrics_get(t, x, codes, N, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  m.sz = 0;
  assert_status(onerec_tokenizer_metrics_get(t, x, codes, N, &m), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_tokenizer_info, info);
  assert_status(onerec_tokenizer_info_get(NULL, &info), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_info_get(t, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  float cb[16];
  assert_status(onerec_tokenizer_codebook(t, 2, cb, 16), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_codebook(t, -1, cb, 16), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_codebook(t, 0, cb, 15), ONEREC_ERR_BUFFER_TOO_SMALL);
  assert_status(onerec_tokenizer_codebook(t, 0, NULL, 16), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_encode_unique(t, NULL, N, codes, NULL),
                ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_tokenizer_unique_report, rep);
  rep.sz = 1;
  assert_status(onerec_tokenizer_encode_unique(t, x, N, codes, &rep), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_save(NULL, "x.h5"), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_save(t, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_save(t, "/nonexistent-dir/x/tok.h5"), ONEREC_ERR_IO);
  onerec_tokenizer *u = NULL;
  assert_status(onerec_tokenizer_load(NULL, "x.h5", &u), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_load(ctx, NULL, &u), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tokenizer_load(ctx, "x.h5", NULL), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_tokenizer_free(NULL);
  /* a backend without the k-means ops (the CUDA plugin until it has them) is refused clearly */
  char path[128];
  path_in_dir(path, sizeof path, "args.h5");
  assert_ok(onerec_tokenizer_save(t, path));
  onerec_tokenizer_free(t);
  const orx_backend_ops *ops = ctx->be.ops;
  orx_backend_ops lacking = *ops;
  lacking.kmeans_assign = NULL;
  ctx->be.ops = &lacking;
  assert_status(onerec_tokenizer_fit(ctx, x, N, D, &o, &t), ONEREC_ERR_UNSUPPORTED);
  assert_non_null(strstr(onerec_last_error(), "kmeans_assign"));
  assert_status(onerec_tokenizer_load(ctx, path, &u), ONEREC_ERR_UNSUPPORTED);
  ctx->be.ops = ops;
  assert_ok(onerec_tokenizer_load(ctx, path, &u));
  onerec_tokenizer_free(u);
  onerec_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kernels),
      cmocka_unit_test(test_known_clusters),
      cmocka_unit_test(test_encode_decode),
      cmocka_unit_test(test_determinism),
      cmocka_unit_test(test_metrics_known),
      cmocka_unit_test(test_unique),
      cmocka_unit_test(test_balanced),
      cmocka_unit_test(test_reseed_and_sample),
      cmocka_unit_test(test_save_load),
      cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_features_file),
      cmocka_unit_test(test_cli),
      cmocka_unit_test(test_bad_args),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
