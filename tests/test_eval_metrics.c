/* Full-ranking Recall@K / NDCG@K: hand-computed values for ranked lists and score rows (ties,
 * exclusions), the score path against a naive full sort, merging, and refusals. */
#include "testutil.h"

/* |a - b| <= tol, in double (cmocka 1.1.5 has no double assertion). */
#define assert_near(a, b, tol)                                                        \
  do {                                                                                \
    double a_ = (a), b_ = (b);                                                        \
    if (!(fabs(a_ - b_) <= (tol)))                                                    \
      fail_msg("%s = %.17g, expected %.17g (tolerance %g)", #a, a_, b_, (double)(tol)); \
  } while (0)

static void get(const onerec_metrics *m, int k, double *r, double *n) {
  assert_ok(onerec_metrics_get(m, k, r, n, NULL));
}

static void test_ranked_by_hand(void **state) {
  (void)state;
  const int32_t ks[3] = {1, 5, 10};
  onerec_metrics *m = NULL;
  assert_ok(onerec_metrics_create(ks, 3, &m));
  double r, n;
  int64_t users = -1;
  assert_ok(onerec_metrics_get(m, 5, &r, &n, &users));
  assert_int_equal(users, 0);
  assert_true(r == 0 && n == 0);
  const int64_t a[5] = {3, 7, 9, 1, 2};              /* target 9 at rank 2 */
  const int64_t b[3] = {4, 1, 2};                    /* target 4 at rank 0 */
  const int64_t c[4] = {1, 2, 3, 4};                 /* target 8 absent */
  const int64_t d[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; /* target 6 at rank 6 */
  const int64_t e[3] = {5, 8, 5};                    /* the first 5 counts: rank 0 */
  assert_ok(onerec_metrics_add_ranked(m, a, 5, 9));
  assert_ok(onerec_metrics_add_ranked(m, b, 3, 4));
  assert_ok(onerec_metrics_add_ranked(m, c, 4, 8));
  assert_ok(onerec_metrics_add_ranked(m, d, 10, 6));
  assert_ok(onerec_metrics_add_ranked(m, e, 3, 5));
  assert_ok(onerec_metrics_get(m, 10, &r, &n, &users));
  assert_int_equal(users, 5);
  /* recall@1 = 2/5; @5 = 3/5; @10 = 4/5. ndcg: rank 2 -> 1/log2(4) = 0.5, rank 0 -> 1,
   * rank 6 -> 1/log2(8) = 1/3 */
  assert_near(r, 0.8, 1e-15);
  assert_near(n, (0.5 + 1 + 1.0 / 3 + 1) / 5, 1e-15);
  get(m, 5, &r, &n);
  assert_near(r, 0.6, 1e-15);
  assert_near(n, (0.5 + 1 + 1) / 5, 1e-15);
  get(m, 1, &r, &n);
  assert_near(r, 0.4, 1e-15);
  assert_near(n, 0.4, 1e-15);
  /* an empty list is a miss */
  assert_ok(onerec_metrics_add_ranked(m, NULL, 0, 1));
  get(m, 1, &r, &n);
  assert_near(r, 2.0 / 6, 1e-15);
  assert_status(onerec_metrics_get(m, 3, &r, &n, NULL), ONEREC_ERR_NOT_FOUND);
  assert_ok(onerec_metrics_reset(m));
  assert_ok(onerec_metrics_get(m, 1, &r, &n, &users));
  assert_int_equal(users, 0);
  onerec_metrics_free(m);
  onerec_metrics_free(NULL);
}

static void test_scores_by_hand(void **state) {
  (void)state;
  const int32_t ks[3] = {1, 2, 3};
  onerec_metrics *m = NULL;
  assert_ok(onerec_metrics_create(ks, 3, &m));
  /* stable descending order: 1 (0.9), 3 (0.9), 2 (0.5), 5 (0.5), 4 (0.3), 0 (0.1) */
  const float s[6] = {0.1f, 0.9f, 0.5f, 0.9f, 0.3f, 0.5f};
  double r, n;
  const int64_t t5 = 5, t3 = 3, t1 = 1;
  assert_ok(onerec_metrics_add_scores(m, s, 1, 6, &t5, NULL, NULL)); /* rank 3: miss */
  get(m, 3, &r, &n);
  assert_true(r == 0 && n == 0);
  assert_ok(onerec_metrics_add_scores(m, s, 1, 6, &t3, NULL, NULL)); /* rank 1 */
  get(m, 2, &r, &n);
  assert_near(r, 0.5, 0);
  assert_near(n, 1 / log2(3.0) / 2, 1e-15);
  assert_ok(onerec_metrics_reset(m));
  /* excluding 1 and 2 (1 twice; the target 5 itself is never excluded) moves 5 to rank 1 */
  const int64_t eo[2] = {0, 4}, ei[4] = {1, 2, 5, 1};
  assert_ok(onerec_metrics_add_scores(m, s, 1, 6, &t5, eo, ei));
  get(m, 1, &r, &n);
  assert_near(r, 0, 0);
  get(m, 2, &r, &n);
  assert_near(r, 1, 0);
  assert_near(n, 1 / log2(3.0), 1e-15);
  /* two users at once, rows of the matrix */
  assert_ok(onerec_metrics_reset(m));
  float s2[12];
  memcpy(s2, s, sizeof s);
  memcpy(s2 + 6, s, sizeof s);
  s2[6 + 0] = 2.0f; /* user 1: item 0 first */
  const int64_t tt[2] = {1, 0};
  assert_ok(onerec_metrics_add_scores(m, s2, 2, 6, tt, NULL, NULL));
  get(m, 1, &r, &n);
  assert_near(r, 1.0, 0); /* both at rank 0 */
  (void)t1;
  /* refusals add nothing */
  float bad[6];
  memcpy(bad, s, sizeof s);
  bad[4] = NAN;
  int64_t users = 0;
  assert_status(onerec_metrics_add_scores(m, bad, 1, 6, &t5, NULL, NULL),
                ONEREC_ERR_INVALID_ARGUMENT);
  const int64_t t6 = 6, ebad[1] = {7}, eob[2] = {0, 1};
  assert_status(onerec_metrics_add_scores(m, s, 1, 6, &t6, NULL, NULL),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_metrics_add_scores(m, s, 1, 6, &t5, eob, ebad),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_metrics_add_scores(m, s, 1, 6, &t5, eob, NULL),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_metrics_add_scores(m, s, 1, 0, &t5, NULL, NULL),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(onerec_metrics_get(m, 1, NULL, NULL, &users));
  assert_int_equal(users, 2);
  onerec_metrics_free(m);
}

/* The score path equals ranking by a naive stable sort of all items. */
static void test_scores_vs_sort(void **state) {
  (void)state;
  const int32_t ks[4] = {1, 5, 10, 20};
  onerec_metrics *a = NULL, *b = NULL, *half1 = NULL, *half2 = NULL;
  assert_ok(onerec_metrics_create(ks, 4, &a));
  assert_ok(onerec_metrics_create(ks, 4, &b));
  assert_ok(onerec_metrics_create(ks, 4, &half1));
  assert_ok(onerec_metrics_create(ks, 4, &half2));
  enum { U = 300, I = 40 };
  float *s = malloc(U * I * sizeof *s);
  int64_t targets[U], eo[U + 1], ei[U * 5];
  uint64_t st = 3;
  eo[0] = 0;
  for (int u = 0; u < U; u++) {
    for (int j = 0; j < I; j++) s[u * I + j] = floorf((tu_rand(&st) + 1) * 8) / 8; /* ties */
    targets[u] = (int64_t)((tu_rand(&st) + 1) * 0.5f * I) % I;
    int ne = (int)((tu_rand(&st) + 1) * 2.5f);
    eo[u + 1] = eo[u] + ne;
    for (int k = 0; k < ne; k++) ei[eo[u] + k] = (int64_t)((tu_rand(&st) + 1) * 0.5f * I) % I;
  }
  assert_ok(onerec_metrics_add_scores(a, s, U, I, targets, eo, ei));
  assert_ok(onerec_metrics_add_scores(half1, s, U / 2, I, targets, eo, ei));
  /* the second half with its own CSR, rebased */
  int64_t eo2[U / 2 + 1];
  for (int u = 0; u <= U / 2; u++) eo2[u] = eo[U / 2 + u] - eo[U / 2];
  assert_ok(onerec_metrics_add_scores(half2, s + (U / 2) * I, U / 2, I, targets + U / 2, eo2,
                                      ei + eo[U / 2]));
  for (int u = 0; u < U; u++) {
    int64_t ranked[I];
    int n = 0;
    /* selection of the best remaining item each time, smaller index first on ties */
    int used[I] = {0};
    for (int k = eo[u]; k < eo[u + 1]; k++)
      if (ei[k] != targets[u]) used[ei[k]] = 1;
    for (;;) {
      int best = -1;
      for (int j = 0; j < I; j++)
        if (!used[j] && (best < 0 || s[u * I + j] > s[u * I + best])) best = j;
      if (best < 0) break;
      used[best] = 1;
      ranked[n++] = best;
    }
    assert_ok(onerec_metrics_add_ranked(b, ranked, n, targets[u]));
  }
  assert_ok(onerec_metrics_merge(half1, half2));
  for (int k = 0; k < 4; k++) {
    double ra, na, rb, nb, rh, nh;
    get(a, ks[k], &ra, &na);
    get(b, ks[k], &rb, &nb);
    get(half1, ks[k], &rh, &nh);
    assert_near(ra, rb, 0);
    assert_near(na, nb, 1e-12);
    assert_near(ra, rh, 0);
    assert_near(na, nh, 1e-12);
    if (ks[k] >= 5) assert_true(ra > 0 && ra < 1); /* the data exercise hits and misses */
  }
  onerec_metrics *other = NULL;
  const int32_t ko[1] = {5};
  assert_ok(onerec_metrics_create(ko, 1, &other));
  assert_status(onerec_metrics_merge(a, other), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_metrics_free(other);
  free(s);
  onerec_metrics_free(a);
  onerec_metrics_free(b);
  onerec_metrics_free(half1);
  onerec_metrics_free(half2);
}

static void test_create_errors(void **state) {
  (void)state;
  onerec_metrics *m = (onerec_metrics *)1;
  const int32_t zero[1] = {0}, dup[2] = {5, 5}, many[17] = {1, 2, 3, 4, 5, 6, 7, 8, 9,
                                                             10, 11, 12, 13, 14, 15, 16, 17};
  assert_status(onerec_metrics_create(zero, 1, &m), ONEREC_ERR_INVALID_ARGUMENT);
  assert_null(m);
  assert_status(onerec_metrics_create(dup, 2, &m), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_metrics_create(many, 17, &m), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_metrics_create(many, 0, &m), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_metrics_create(NULL, 1, &m), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(onerec_metrics_create(many, 16, &m));
  assert_status(onerec_metrics_add_ranked(m, NULL, 2, 1), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_metrics_add_ranked(m, NULL, -1, 1), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_metrics_add_ranked(NULL, NULL, 0, 1), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_metrics_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ranked_by_hand),
      cmocka_unit_test(test_scores_by_hand),
      cmocka_unit_test(test_scores_vs_sort),
      cmocka_unit_test(test_create_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
