/* Swing similarity and alignment pairs: a hand-computed example, a brute-force reference on
 * random data, caps, thread-count independence, and no leakage of validation/test items. */
#include "data_seq.h"
#include "onerec/collab.h"
#include "swing.h"
#include "testutil.h"

/* Items A=1, B=2, C=3, D=4; sequences (holdout 0):
 *   u0: A B C   u1: A B   u2: A B D   u3: C D   u4: A C D
 * Sets and weights: |I0| = 3, |I1| = 2, |I2| = 3, |I3| = 2, |I4| = 3; w = 1/sqrt(|I|).
 * alpha = 1.
 *   swing(A,B): users with A and B: {0,1,2}; every pair shares exactly {A,B} (c = 2):
 *     (w0 w1 + w0 w2 + w1 w2) / 3 = (1/sqrt6 + 1/3 + 1/sqrt6) / 3 = 0.3832766
 *   swing(A,C): users {0,4}, I0 ∩ I4 = {A,C}: w0 w4 / 3 = (1/3) / 3 = 0.1111111
 *   swing(A,D): users {2,4}, I2 ∩ I4 = {A,D}: 1/9 = 0.1111111
 *   swing(C,D): users {3,4}, I3 ∩ I4 = {C,D}: w3 w4 / 3 = (1/sqrt6) / 3 = 0.1360828
 *   swing(B,C), swing(B,D): one user each, no pair: 0 (not neighbours).
 * Neighbours: A: B, C, D (C and D tie at 1/9: the smaller id first); B: A; C: D, A; D: C, A. */
static const int64_t k_off[6] = {0, 3, 5, 8, 10, 13};
static const int64_t k_items[13] = {1, 2, 3, 1, 2, 1, 2, 4, 3, 4, 1, 3, 4};
#define S_AB 0.38327664f
#define S_AC 0.11111111f
#define S_CD 0.13608276f

static void expect_row(onerec_collab *c, int64_t item, int n, const int64_t *ids,
                       const float *scores) {
  const int64_t *nb;
  const float *s;
  int32_t cnt;
  assert_ok(onerec_collab_neighbors(c, item, &nb, &s, &cnt));
  if (cnt != n) fail_msg("item %lld: %d neighbours, want %d", (long long)item, cnt, n);
  for (int k = 0; k < n; k++) {
    assert_int_equal(nb[k], ids[k]);
    tu_assert_close(&s[k], &scores[k], 1, 1e-6f, 0, "swing score");
  }
}

static void test_hand_example(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  onerec_collab *c = NULL;
  assert_ok(onerec_collab_mine(ctx, 5, k_off, k_items, NULL, &c));
  const int64_t *ids;
  int64_t n;
  assert_ok(onerec_collab_items(c, &ids, &n));
  assert_int_equal(n, 4);
  assert_int_equal(ids[0], 1);
  assert_int_equal(ids[3], 4);
  expect_row(c, 1, 3, (const int64_t[]){2, 3, 4}, (const float[]){S_AB, S_AC, S_AC});
  expect_row(c, 2, 1, (const int64_t[]){1}, (const float[]){S_AB});
  expect_row(c, 3, 2, (const int64_t[]){4, 1}, (const float[]){S_CD, S_AC});
  expect_row(c, 4, 2, (const int64_t[]){3, 1}, (const float[]){S_CD, S_AC});
  int32_t cnt;
  assert_status(onerec_collab_neighbors(c, 5, NULL, NULL, &cnt), ONEREC_ERR_NOT_FOUND);

  /* pairs: Swing pairs (default 10 per item: all 8 neighbours), then user pairs:
   *   u0: B after A: swing(B,A) > 0 -> (B,A); C after A,B: C's list has A, not B -> (C,A)
   *   u1: B -> (B,A)
   *   u2: B -> (B,A); D after A,B: D's list has A -> (D,A)
   *   u3: D after C -> (D,C)
   *   u4: C after A -> (C,A); D after A,C: swing(D,C) > swing(D,A) -> (D,C) */
  int64_t np;
  const int64_t *first, *second;
  const float *score;
  const int32_t *src;
  assert_ok(onerec_collab_pairs(c, &np, &first, &second, &score, &src));
  assert_int_equal(np, 8 + 8);
  for (int k = 0; k < 8; k++) assert_int_equal(src[k], ONEREC_PAIR_SWING);
  assert_int_equal(first[0], 1);
  assert_int_equal(second[0], 2);
  const int64_t want[8][2] = {{2, 1}, {3, 1}, {2, 1}, {2, 1}, {4, 1}, {4, 3}, {3, 1}, {4, 3}};
  for (int k = 0; k < 8; k++) {
    assert_int_equal(src[8 + k], ONEREC_PAIR_USER);
    assert_int_equal(first[8 + k], want[k][0]);
    assert_int_equal(second[8 + k], want[k][1]);
  }
  tu_assert_close(&score[8 + 5], (const float[]){S_CD}, 1, 1e-6f, 0, "user pair score");
  onerec_collab_free(c);

  /* options: one Swing pair per item, no user pairs */
  ONEREC_OPTS(onerec_collab_opts, o, .pairs_per_item = 1, .no_user_pairs = 1);
  assert_ok(onerec_collab_mine(ctx, 5, k_off, k_items, &o, &c));
  assert_ok(onerec_collab_pairs(c, &np, NULL, NULL, NULL, NULL));
  assert_int_equal(np, 4);
  onerec_collab_free(c);

  /* without user weights: swing(A,B) = 3 pairs x 1 / 3 = 1 */
  ONEREC_OPTS(onerec_collab_opts, o2, .no_user_weight = 1);
  assert_ok(onerec_collab_mine(ctx, 5, k_off, k_items, &o2, &c));
  expect_row(c, 2, 1, (const int64_t[]){1}, (const float[]){1.0f});
  onerec_collab_free(c);

  /* alpha = 0.5: swing(C,D) = w3 w4 / 2.5 */
  ONEREC_OPTS(onerec_collab_opts, o3, .alpha = 0.5);
  assert_ok(onerec_collab_mine(ctx, 5, k_off, k_items, &o3, &c));
  expect_row(c, 3, 2, (const int64_t[]){4, 1}, (const float[]){0.16329932f, 0.13333333f});
  onerec_collab_free(c);
  onerec_context_free(ctx);
}

static void test_caps(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_collab *c = NULL;
  /* A has users u0 (3 items), u1 (2), u2 (3), u4 (3): with 2 kept, the shortest histories
   * win, ties to the earlier user: u1 and u0. They share {A,B}:
   * swing(A,B) = w0 w1 / 3 = 1 / (3 sqrt6) = 0.1360828, and nothing else.
   * C's users u0 (3), u3 (2), u4 (3) -> u3 and u0, who share only {C}: no neighbour. */
  ONEREC_OPTS(onerec_collab_opts, o, .max_users_per_item = 2);
  assert_ok(onerec_collab_mine(ctx, 5, k_off, k_items, &o, &c));
  expect_row(c, 1, 1, (const int64_t[]){2}, (const float[]){0.13608276f});
  expect_row(c, 3, 0, NULL, NULL);
  onerec_collab_free(c);
  /* one item per user (the most recent): no user pair shares two items, so no neighbours */
  ONEREC_OPTS(onerec_collab_opts, o2, .max_items_per_user = 1);
  assert_ok(onerec_collab_mine(ctx, 5, k_off, k_items, &o2, &c));
  for (int64_t i = 1; i <= 4; i++) expect_row(c, i, 0, NULL, NULL);
  onerec_collab_free(c);
  /* top_n = 1 keeps the best only */
  ONEREC_OPTS(onerec_collab_opts, o3, .top_n = 1, .pairs_per_item = 1);
  assert_ok(onerec_collab_mine(ctx, 5, k_off, k_items, &o3, &c));
  expect_row(c, 1, 1, (const int64_t[]){2}, (const float[]){S_AB});
  onerec_collab_free(c);
  onerec_context_free(ctx);
}

/* Brute force: swing(i, j) straight from the definition, no caps. */
static double ref_swing(int nu, const int64_t *off, const int64_t *items, int64_t i, int64_t j,
                        double alpha) {
  if (i == j) return 0;
  double s = 0;
  for (int u = 0; u < nu; u++)
    for (int v = u + 1; v < nu; v++) {
      int has[2][2] = {{0, 0}, {0, 0}};
      for (int64_t k = off[u]; k < off[u + 1]; k++) {
        has[0][0] |= items[k] == i;
        has[0][1] |= items[k] == j;
      }
      for (int64_t k = off[v]; k < off[v + 1]; k++) {
        has[1][0] |= items[k] == i;
        has[1][1] |= items[k] == j;
      }
      if (!(has[0][0] && has[0][1] && has[1][0] && has[1][1])) continue;
      /* distinct items of each user, and of both */
      int nu_set = 0, nv_set = 0, common = 0;
      for (int64_t a = off[u]; a < off[u + 1]; a++) {
        int dup = 0;
        for (int64_t b = off[u]; b < a; b++) dup |= items[b] == items[a];
        if (dup) continue;
        nu_set++;
        int in_v = 0;
        for (int64_t b = off[v]; b < off[v + 1]; b++) in_v |= items[b] == items[a];
        common += in_v;
      }
      for (int64_t a = off[v]; a < off[v + 1]; a++) {
        int dup = 0;
        for (int64_t b = off[v]; b < a; b++) dup |= items[b] == items[a];
        nv_set += !dup;
      }
      s += 1.0 / sqrt((double)nu_set) / sqrt((double)nv_set) / (alpha + common);
    }
  return s;
}

static void random_sequences(int nu, int n_items, uint64_t seed, int64_t *off, int64_t *items) {
  uint64_t s = seed;
  off[0] = 0;
  for (int u = 0; u < nu; u++) {
    int len = 2 + (int)((tu_rand(&s) + 1.0f) * 3.5f);
    for (int k = 0; k < len; k++) {
      /* popular low ids, repeats allowed */
      float r = (tu_rand(&s) + 1.0f) / 2.0f;
      items[off[u] + k] = 10 + (int64_t)(r * r * (float)n_items);
    }
    off[u + 1] = off[u] + len;
  }
}

static void test_brute_force(void **state) {
  (void)state;
  enum { NU = 40, NI = 25, TOP = 5 };
  int64_t off[NU + 1], items[NU * 10];
  random_sequences(NU, NI, 5, off, items);
  onerec_context *ctx = tu_cpu_context(2);
  ONEREC_OPTS(onerec_collab_opts, o, .top_n = TOP, .pairs_per_item = TOP, .alpha = 0.7,
              .max_users_per_item = 1000, .max_items_per_user = 1000);
  onerec_collab *c = NULL;
  assert_ok(onerec_collab_mine(ctx, NU, off, items, &o, &c));
  const int64_t *ids;
  int64_t m;
  assert_ok(onerec_collab_items(c, &ids, &m));
  int checked_rows = 0;
  for (int64_t a = 0; a < m; a++) {
    const int64_t *nb;
    const float *sc;
    int32_t cnt;
    assert_ok(onerec_collab_neighbors(c, ids[a], &nb, &sc, &cnt));
    int nonzero = 0;
    for (int64_t b = 0; b < m; b++) nonzero += ref_swing(NU, off, items, ids[a], ids[b], 0.7) > 0;
    assert_int_equal(cnt, nonzero < TOP ? nonzero : TOP);
    for (int k = 0; k < cnt; k++) {
      float want = (float)ref_swing(NU, off, items, ids[a], nb[k], 0.7);
      tu_assert_close(&sc[k], &want, 1, 1e-5f, 0, "score vs brute force");
      if (k) assert_true(sc[k] <= sc[k - 1]);
    }
    /* the cut: nothing left out scores above the last one kept */
    for (int64_t b = 0; b < m && cnt > 0; b++) {
      int kept = 0;
      for (int k = 0; k < cnt; k++) kept |= nb[k] == ids[b];
      if (!kept)
        assert_true(ref_swing(NU, off, items, ids[a], ids[b], 0.7) <= sc[cnt - 1] * (1 + 1e-5));
    }
    checked_rows += cnt > 0;
  }
  assert_true(checked_rows > m / 2);

  /* the same with 1 and 3 threads, bit for bit */
  onerec_collab *c1 = NULL, *c3 = NULL;
  o.threads = 1;
  assert_ok(onerec_collab_mine(ctx, NU, off, items, &o, &c1));
  o.threads = 3;
  assert_ok(onerec_collab_mine(ctx, NU, off, items, &o, &c3));
  assert_int_equal(c1->nb_off[m], c3->nb_off[m]);
  assert_memory_equal(c1->nb_ids, c3->nb_ids, (size_t)c1->nb_off[m] * sizeof(int64_t));
  assert_memory_equal(c1->nb_score, c3->nb_score, (size_t)c1->nb_off[m] * sizeof(float));
  assert_int_equal(c1->n_pairs, c3->n_pairs);
  assert_memory_equal(c1->pair_second, c3->pair_second, (size_t)c1->n_pairs * sizeof(int64_t));
  onerec_collab_free(c1);
  onerec_collab_free(c3);
  onerec_collab_free(c);
  onerec_context_free(ctx);
}

/* Validation and test targets (the last two items of each sequence) are items of their own,
 * id >= 1000: with holdout_last = 2 none may appear anywhere; with 0 (the control) they do,
 * as items, as neighbours and in pairs. */
static void test_no_leakage(void **state) {
  (void)state;
  enum { NU = 30 };
  int64_t off[NU + 1], items[NU * 12];
  random_sequences(NU, 12, 9, off, items);
  int64_t off2[NU + 1], items2[NU * 12];
  off2[0] = 0;
  for (int u = 0; u < NU; u++) {
    int64_t len = off[u + 1] - off[u];
    memcpy(items2 + off2[u], items + off[u], (size_t)len * sizeof(int64_t));
    /* users 2k and 2k+1 share their held-out items, which would make them Swing neighbours */
    items2[off2[u] + len] = 1000 + u / 2;     /* validation target */
    items2[off2[u] + len + 1] = 1500 + u / 2; /* test target */
    off2[u + 1] = off2[u] + len + 2;
  }
  onerec_context *ctx = tu_cpu_context(2);
  for (int holdout = 2; holdout >= 0; holdout -= 2) {
    ONEREC_OPTS(onerec_collab_opts, o, .holdout_last = holdout);
    onerec_collab *c = NULL;
    assert_ok(onerec_collab_mine(ctx, NU, off2, items2, &o, &c));
    int leaked = 0;
    const int64_t *ids;
    int64_t m, np;
    assert_ok(onerec_collab_items(c, &ids, &m));
    for (int64_t k = 0; k < m; k++) leaked += ids[k] >= 1000;
    for (int64_t k = 0; k < c->nb_off[m]; k++) leaked += c->nb_ids[k] >= 1000;
    const int64_t *first, *second;
    assert_ok(onerec_collab_pairs(c, &np, &first, &second, NULL, NULL));
    for (int64_t k = 0; k < np; k++) leaked += first[k] >= 1000 || second[k] >= 1000;
    if (holdout == 2) {
      assert_int_equal(leaked, 0);
      int32_t cnt;
      assert_status(onerec_collab_neighbors(c, 1500, NULL, NULL, &cnt), ONEREC_ERR_NOT_FOUND);
      /* identical to mining the training parts directly */
      onerec_collab *direct = NULL;
      assert_ok(onerec_collab_mine(ctx, NU, off, items, NULL, &direct));
      assert_int_equal(direct->n_items, m);
      assert_memory_equal(direct->nb_score, c->nb_score, (size_t)c->nb_off[m] * sizeof(float));
      onerec_collab_free(direct);
    } else {
      int in_nb = 0;
      for (int64_t k = 0; k < c->nb_off[m]; k++) in_nb += c->nb_ids[k] >= 1000;
      assert_true(leaked > 0);
      assert_true(in_nb > 0);
    }
    onerec_collab_free(c);
  }
  /* the same through the sequence reader's leave-one-out split */
  const char text[] = "1 10 11 12 900 901\n2 10 11 902 903\n3 11 12 10 904 905\n";
  orx_seq_data d;
  assert_ok(orx_seq_parse(ctx, "mem", text, sizeof text - 1, &d));
  int64_t *toff, *titems;
  assert_ok(orx_seq_train_csr(&d, &toff, &titems));
  onerec_collab *c = NULL;
  assert_ok(onerec_collab_mine(ctx, (size_t)d.n_users, toff, titems, NULL, &c));
  assert_int_equal(c->n_items, 3);
  assert_int_equal(c->item_ids[2], 12);
  onerec_collab_free(c);
  orx_host_free(ctx, toff);
  orx_host_free(ctx, titems);
  orx_seq_free(&d);
  onerec_context_free(ctx);
}

static void test_bad_args(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_collab *c = NULL;
  assert_status(onerec_collab_mine(ctx, 1, (const int64_t[]){1, 2}, k_items, NULL, &c),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_collab_mine(ctx, 2, (const int64_t[]){0, 3, 2}, k_items, NULL, &c),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "user 1"));
  assert_status(
      onerec_collab_mine(ctx, 1, (const int64_t[]){0, 2}, (const int64_t[]){1, -4}, NULL, &c),
      ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_collab_mine(ctx, 5, k_off, NULL, NULL, &c), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_collab_mine(NULL, 5, k_off, k_items, NULL, &c), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_collab_mine(ctx, 5, k_off, k_items, NULL, NULL),
                ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_collab_opts, o, .alpha = -1);
  assert_status(onerec_collab_mine(ctx, 5, k_off, k_items, &o, &c), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_collab_opts, o2, .top_n = 3, .pairs_per_item = 4);
  assert_status(onerec_collab_mine(ctx, 5, k_off, k_items, &o2, &c), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_collab_opts, o3, .holdout_last = -1);
  assert_status(onerec_collab_mine(ctx, 5, k_off, k_items, &o3, &c), ONEREC_ERR_INVALID_ARGUMENT);
  assert_null(c);
  /* no users, and users without training items: an empty but valid result */
  assert_ok(onerec_collab_mine(ctx, 0, (const int64_t[]){0}, NULL, NULL, &c));
  int64_t n = -1;
  const int64_t *ids;
  assert_ok(onerec_collab_items(c, &ids, &n));
  assert_int_equal(n, 0);
  onerec_collab_free(c);
  ONEREC_OPTS(onerec_collab_opts, o4, .holdout_last = 5);
  assert_ok(onerec_collab_mine(ctx, 5, k_off, k_items, &o4, &c));
  assert_ok(onerec_collab_pairs(c, &n, NULL, NULL, NULL, NULL));
  assert_int_equal(n, 0);
  onerec_collab_free(c);
  onerec_collab_free(NULL);
  onerec_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hand_example), cmocka_unit_test(test_caps),
      cmocka_unit_test(test_brute_force),  cmocka_unit_test(test_no_leakage),
      cmocka_unit_test(test_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
