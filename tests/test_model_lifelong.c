/* The lifelong pathway's behaviour compression (lib/encoder_lifelong.c): hierarchical k-means
 * into clusters of at most M items, each represented by the member nearest its mean, at most cap
 * clusters kept (the largest). Checked by properties against naive recomputation; the exact
 * clusters are also compared with the PyTorch reference through the golden fixtures. */
#include "testutil.h"

#include "model_impl.h"

/* Compression scratch for n items of width dim. The backend is the CPU's, whose device memory
 * is host memory, so plain allocations serve as the device buffers too. */
typedef struct scratch {
  orx_lifelong_scratch s;
  onerec_context *ctx;
  void *blocks[17];
} scratch;

static void scratch_init(scratch *k, int64_t n, int64_t dim) {
  int64_t kmax = orx_fifth_root(n > 32 ? n : 32);
  size_t sizes[17] = {(size_t)(n * dim) * 4, (size_t)n * 8, (size_t)n * 8, (size_t)(2 * n) * 8,
                      (size_t)n * 8,         (size_t)n * 8, (size_t)n * 8, (size_t)n * 8,
                      (size_t)kmax * 8,      (size_t)n * 4, (size_t)n * 4, (size_t)dim * 8,
                      (size_t)(n * dim) * 4, (size_t)(kmax * dim) * 4, (size_t)kmax * 4,
                      (size_t)n * 4,         (size_t)n * 4};
  for (int i = 0; i < 17; i++) {
    k->blocks[i] = calloc(sizes[i] ? sizes[i] : 1, 1);
    assert_non_null(k->blocks[i]);
  }
  orx_lifelong_scratch *s = &k->s;
  s->vec = k->blocks[0];
  s->order = k->blocks[1];
  s->tmp = k->blocks[2];
  s->stack = k->blocks[3];
  s->cl_start = k->blocks[4];
  s->cl_len = k->blocks[5];
  s->cl_rep = k->blocks[6];
  s->pick = k->blocks[7];
  s->count = k->blocks[8];
  s->assign = k->blocks[9];
  s->h_idx = k->blocks[10];
  s->sum = k->blocks[11];
  s->d_x = k->blocks[12];
  s->d_c = k->blocks[13];
  s->d_cnorm = k->blocks[14];
  s->d_ids = k->blocks[15];
  s->d_idx = k->blocks[16];
  s->d_counts = calloc((size_t)kmax, sizeof(int64_t));
  k->ctx = tu_cpu_context(2);
}

static void scratch_free(scratch *k) {
  for (int i = 0; i < 17; i++) free(k->blocks[i]);
  free(k->s.d_counts);
  onerec_context_free(k->ctx);
}

/* Compresses vec (n x dim) with the scratch's backend. */
static int64_t compress(scratch *k, const float *vec, int64_t n, int64_t dim, int64_t M,
                        int64_t cap) {
  k->s.d_vec = vec;
  int64_t kept = -1;
  assert_ok(orx_lifelong_compress(&k->ctx->be, vec, n, dim, M, cap, &k->s, &kept));
  return kept;
}

static void test_fifth_root(void **state) {
  (void)state;
  int64_t k = 0;
  for (int64_t n = 1; n <= 200000; n++) {
    while ((k + 1) * (k + 1) * (k + 1) * (k + 1) * (k + 1) <= n) k++;
    if (orx_fifth_root(n) != k) fail_msg("fifth root of %lld: %lld, want %lld", (long long)n,
                                         (long long)orx_fifth_root(n), (long long)k);
  }
  assert_int_equal(orx_fifth_root(100000), 10);
  assert_int_equal(orx_fifth_root(67108864), 36);
}

/* Checks the structural promises of a compression result; returns the number kept. */
static int64_t check_result(const scratch *k, const float *vec, int64_t n, int64_t dim,
                            int64_t M, int64_t cap, int64_t kept) {
  const orx_lifelong_scratch *s = &k->s;
  assert_true(kept >= 1 && kept <= cap);
  char *seen = calloc((size_t)n, 1);
  int64_t total = 0, prev_rep = -1;
  double *mean = calloc((size_t)dim, sizeof *mean);
  for (int64_t t = 0; t < kept; t++) {
    int64_t c = s->pick[t], len = s->cl_len[c], rep = s->cl_rep[c];
    assert_true(len >= 1 && len <= M);
    assert_true(rep > prev_rep); /* chronological */
    prev_rep = rep;
    int rep_member = 0;
    memset(mean, 0, (size_t)dim * sizeof *mean);
    for (int64_t i = 0; i < len; i++) {
      int64_t it = s->order[s->cl_start[c] + i];
      assert_true(it >= 0 && it < n);
      assert_false(seen[it]); /* disjoint */
      seen[it] = 1;
      rep_member |= it == rep;
      for (int64_t j = 0; j < dim; j++) mean[j] += vec[it * dim + j];
    }
    assert_true(rep_member);
    for (int64_t j = 0; j < dim; j++) mean[j] /= (double)len;
    /* the representative is (one of) the nearest to the mean */
    double best = INFINITY, dr = 0;
    for (int64_t i = 0; i < len; i++) {
      int64_t it = s->order[s->cl_start[c] + i];
      double dd = 0;
      for (int64_t j = 0; j < dim; j++) {
        double t2 = vec[it * dim + j] - mean[j];
        dd += t2 * t2;
      }
      if (dd < best) best = dd;
      if (it == rep) dr = dd;
    }
    assert_true(dr <= best * (1 + 1e-12));
    total += len;
  }
  free(seen);
  free(mean);
  return total;
}

static void test_partition(void **state) {
  (void)state;
  const int64_t dim = 6;
  const int64_t sizes[] = {7, 33, 500, 5000};
  for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
    const int64_t n = sizes[t], M = 4;
    scratch k;
    scratch_init(&k, n, dim);
    float *vec = malloc((size_t)(n * dim) * sizeof *vec);
    tu_fill(vec, (size_t)(n * dim), 10 + t);
    int64_t kept = compress(&k, vec, n, dim, M, n);
    /* no cap: every item lands in exactly one cluster */
    assert_int_equal(check_result(&k, vec, n, dim, M, n, kept), n);
    assert_true(kept >= (n + M - 1) / M);
    free(vec);
    scratch_free(&k);
  }
}

/* Well separated blobs of exactly M points: the clusters are the blobs. */
static void test_blobs(void **state) {
  (void)state;
  const int64_t blobs = 6, M = 10, n = blobs * M, dim = 3;
  float *vec = malloc((size_t)(n * dim) * sizeof *vec), noise[3];
  uint64_t st = 99;
  for (int64_t i = 0; i < n; i++) {
    int64_t b = (i * 7) % blobs; /* interleaved in time */
    for (int64_t j = 0; j < dim; j++) {
      noise[j] = tu_rand(&st) * 0.01f;
      vec[i * dim + j] = (float)(100 * b * (j + 1)) + noise[j];
    }
  }
  scratch k;
  scratch_init(&k, n, dim);
  int64_t kept = compress(&k, vec, n, dim, M, n);
  assert_int_equal(check_result(&k, vec, n, dim, M, n, kept), n);
  assert_int_equal(kept, blobs);
  for (int64_t t = 0; t < kept; t++) {
    int64_t c = k.s.pick[t];
    int64_t b0 = (k.s.order[k.s.cl_start[c]] * 7) % blobs;
    for (int64_t i = 0; i < k.s.cl_len[c]; i++)
      assert_int_equal((k.s.order[k.s.cl_start[c] + i] * 7) % blobs, b0);
  }
  free(vec);
  scratch_free(&k);
}

/* Identical vectors cannot be split by k-means; the fallback chunks them by time. */
static void test_identical(void **state) {
  (void)state;
  const int64_t n = 100, dim = 4, M = 7;
  float *vec = calloc((size_t)(n * dim), sizeof *vec);
  scratch k;
  scratch_init(&k, n, dim);
  int64_t kept = compress(&k, vec, n, dim, M, n);
  assert_int_equal(check_result(&k, vec, n, dim, M, n, kept), n);
  for (int64_t t = 0; t < kept; t++) {
    int64_t c = k.s.pick[t];
    assert_int_equal(k.s.cl_rep[c], k.s.order[k.s.cl_start[c]]); /* ties: the earliest */
  }
  free(vec);
  scratch_free(&k);
}

/* With a cap, the largest clusters are kept. */
static void test_cap(void **state) {
  (void)state;
  const int64_t n = 2000, dim = 5, M = 9, cap = 40;
  float *vec = malloc((size_t)(n * dim) * sizeof *vec);
  tu_fill(vec, (size_t)(n * dim), 77);
  scratch k;
  scratch_init(&k, n, dim);
  int64_t all = compress(&k, vec, n, dim, M, n);
  assert_true(all > cap);
  /* sizes of all clusters, sorted descending: the kept ones must be the top `cap` */
  int64_t *sizes = malloc((size_t)all * sizeof *sizes);
  for (int64_t t = 0; t < all; t++) sizes[t] = k.s.cl_len[k.s.pick[t]];
  for (int64_t i = 0; i < all; i++)
    for (int64_t j = i + 1; j < all; j++)
      if (sizes[j] > sizes[i]) {
        int64_t x = sizes[i];
        sizes[i] = sizes[j];
        sizes[j] = x;
      }
  int64_t kept = compress(&k, vec, n, dim, M, cap);
  assert_int_equal(kept, cap);
  int64_t want = 0;
  for (int64_t t = 0; t < cap; t++) want += sizes[t];
  assert_int_equal(check_result(&k, vec, n, dim, M, cap, kept), want);
  free(sizes);
  free(vec);
  scratch_free(&k);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fifth_root), cmocka_unit_test(test_partition),
      cmocka_unit_test(test_blobs),      cmocka_unit_test(test_identical),
      cmocka_unit_test(test_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
