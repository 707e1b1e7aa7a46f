/* RecBole atomic files (.inter/.user/.item): typed headers, time order stable on ties, ratings
 * as labels, user features, item tags; malformed files fail with file and line. The ml-100k
 * check compares with a naive re-reading of the real file and skips when it is absent. */
#include <unistd.h>

#include "testutil.h"

static const char *data_root(void) {
  const char *env = getenv("ONEREC_DATA_DIR");
  if (env && *env) return env;
  return "../shared/data";
}

static char g_dir[64];

static void put(const char *name, const char *text) {
  char p[160];
  snprintf(p, sizeof p, "%s/%s", g_dir, name);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  fclose(f);
}

static void drop(const char *name) {
  char p[160];
  snprintf(p, sizeof p, "%s/%s", g_dir, name);
  unlink(p);
}

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/onerec-rb-XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  drop("t.inter");
  drop("t.user");
  drop("t.item");
  return rmdir(g_dir);
}

static onerec_status load(onerec_context *ctx, onerec_dataset **ds) {
  ONEREC_OPTS(onerec_dataset_opts, o, .format = "recbole", .name = "t");
  return onerec_dataset_load(ctx, g_dir, &o, ds);
}

/* Sequence of user u as original item ids. */
static int seq_of(const onerec_dataset *ds, int64_t u, int64_t *out) {
  const int64_t *off, *ids;
  const int32_t *items;
  assert_ok(onerec_dataset_interactions(ds, NULL, &off, &items, NULL, NULL));
  assert_ok(onerec_dataset_item_ids(ds, &ids, NULL));
  for (int64_t r = off[u]; r < off[u + 1]; r++) out[r - off[u]] = ids[items[r]];
  return (int)(off[u + 1] - off[u]);
}

static void test_inter(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  /* columns in another order, CRLF, a blank line, ties on time (kept in file order), users
   * out of order */
  put("t.inter",
      "timestamp:float\titem_id:token\tuser_id:token\trating:float\r\n"
      "300\t7\t20\t4\r\n"
      "100\t5\t10\t3.5\r\n"
      "\r\n"
      "200\t9\t20\t1\r\n"
      "100\t8\t10\t2\r\n"
      "50\t7\t10\t5\r\n"
      "300\t6\t20\t2\n"
      "1e2\t9\t10\t4\n");
  onerec_dataset *ds = NULL;
  assert_ok(load(ctx, &ds));
  ONEREC_OPTS(onerec_dataset_info, in);
  assert_ok(onerec_dataset_get_info(ds, &in));
  assert_int_equal(in.users, 2);
  assert_int_equal(in.items, 5);
  assert_int_equal(in.interactions, 7);
  assert_int_equal(in.has_timestamps, 1);
  assert_int_equal(in.has_labels, 1);
  assert_string_equal(in.format, "recbole");
  assert_true(in.label_min == 1.0 && in.label_max == 5.0);
  const int64_t *uids;
  assert_ok(onerec_dataset_user_ids(ds, &uids, NULL));
  assert_int_equal(uids[0], 10);
  assert_int_equal(uids[1], 20);
  int64_t s[8];
  /* user 10: 7@50, then the three at 100 in file order: 5, 8, 9 */
  assert_int_equal(seq_of(ds, 0, s), 4);
  const int64_t w0[4] = {7, 5, 8, 9};
  assert_memory_equal(s, w0, sizeof w0);
  /* user 20: 9@200, then 7 and 6 at 300 in file order */
  assert_int_equal(seq_of(ds, 1, s), 3);
  const int64_t w1[3] = {9, 7, 6};
  assert_memory_equal(s, w1, sizeof w1);
  const float *labels;
  const double *ts;
  assert_ok(onerec_dataset_interactions(ds, NULL, NULL, NULL, &ts, &labels));
  const float wl[7] = {5, 3.5f, 2, 4, 1, 4, 2};
  const double wt[7] = {50, 100, 100, 100, 200, 300, 300};
  assert_memory_equal(labels, wl, sizeof wl);
  assert_memory_equal(ts, wt, sizeof wt);
  onerec_dataset_free(ds);
  /* without rating and timestamp: labels 1, file order */
  put("t.inter", "user_id:token\titem_id:token\n3\t30\n3\t10\n1\t20\n3\t20\n");
  assert_ok(load(ctx, &ds));
  assert_ok(onerec_dataset_get_info(ds, &in));
  assert_int_equal(in.has_timestamps, 0);
  assert_int_equal(in.has_labels, 0);
  assert_int_equal(seq_of(ds, 1, s), 3);
  const int64_t w2[3] = {30, 10, 20};
  assert_memory_equal(s, w2, sizeof w2);
  onerec_dataset_free(ds);
  /* auto format: the folder's single NAME.inter */
  assert_ok(onerec_dataset_load(ctx, g_dir, NULL, &ds));
  assert_ok(onerec_dataset_get_info(ds, &in));
  assert_int_equal(in.users, 2);
  onerec_dataset_free(ds);
  onerec_context_free(ctx);
}

static void expect_bad(onerec_context *ctx, const char *file, const char *text, const char *m1,
                       const char *m2) {
  put(file, text);
  onerec_dataset *ds = (onerec_dataset *)1;
  assert_status(load(ctx, &ds), ONEREC_ERR_FORMAT);
  assert_null(ds);
  const char *e = onerec_last_error();
  if (!strstr(e, m1) || (m2 && !strstr(e, m2)))
    fail_msg("message '%s' lacks '%s' / '%s'", e, m1, m2 ? m2 : "");
}

static void test_inter_errors(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  const char *H = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n";
  char buf[512];
#define BAD(body, m1, m2)                         \
  do {                                            \
    snprintf(buf, sizeof buf, "%s%s", H, body);   \
    expect_bad(ctx, "t.inter", buf, m1, m2);      \
  } while (0)
  BAD("1\t2\t3\t4\n1\t2\t3\n", "t.inter:3:", "3 fields, the header has 4");
  BAD("1\t2\t3\t4\t5\n", "t.inter:2:", "more than 4 fields");
  BAD("1\tx2\t3\t4\n", "t.inter:2:", "item_id 'x2'");
  BAD("-1\t2\t3\t4\n", "t.inter:2:", "user_id '-1'");
  BAD("1\t2\tabc\t4\n", "t.inter:2:", "rating 'abc' is not a finite number");
  BAD("1\t2\tnan\t4\n", "t.inter:2:", "rating 'nan'");
  BAD("1\t2\t3\tinf\n", "t.inter:2:", "timestamp 'inf'");
  BAD("1\t2\t\t4\n", "t.inter:2:", "rating ''");
  BAD("1\t2\t3\t4 \n", "t.inter:2:", "timestamp");
  BAD("\n\n1\t2\t3\t99999999999999999999x\n", "t.inter:4:", "timestamp");
#undef BAD
  expect_bad(ctx, "t.inter", "", "t.inter: empty file", NULL);
  expect_bad(ctx, "t.inter", "user_id:token\titem_id:token\tfoo:float\n", "t.inter:1:",
             "unknown column 'foo'");
  expect_bad(ctx, "t.inter", "user_id:token\titem_id:token\trating:token\n", "t.inter:1:",
             "rating has type token, expected float");
  expect_bad(ctx, "t.inter", "user_id\titem_id:token\n", "t.inter:1:", "not `name:type`");
  expect_bad(ctx, "t.inter", "user_id:int\titem_id:token\n", "t.inter:1:", "unknown type");
  expect_bad(ctx, "t.inter", "user_id:token\tuser_id:token\n", "t.inter:1:", "appears twice");
  expect_bad(ctx, "t.inter", "user_id:token\trating:float\n1\t2\n", "t.inter:1:",
             "lacks item_id:token");
  /* a missing file is an I/O error naming it */
  drop("t.inter");
  onerec_dataset *ds = NULL;
  assert_status(load(ctx, &ds), ONEREC_ERR_IO);
  assert_non_null(strstr(onerec_last_error(), "t.inter"));
  onerec_context_free(ctx);
}

static void test_user_item(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  put("t.inter",
      "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
      "1\t10\t4\t1\n2\t11\t3\t2\n3\t12\t5\t3\n4\t10\t1\t4\n");
  put("t.user",
      "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\tscore:float\n"
      "2\t56\tM\twriter\t94043\t0.5\n"
      "1\t17\tF\tartist\tT8H1N\t1.5\n"
      "9\t30\tM\tnobody\t00000\t9\n" /* no interactions: ignored */
      "4\t\tF\twriter\t90210\t2\n"); /* user 3 has no line */
  put("t.item",
      "item_id:token\tmovie_title:token_seq\tclass:token_seq\n"
      "12\tSome Title\tDrama Comedy\n"
      "10\tOther\tComedy\n"
      "99\tNot rated\tHorror\n"); /* item 11 has no line */
  onerec_dataset *ds = NULL;
  assert_ok(load(ctx, &ds));
  int32_t nc, nn;
  const int32_t *cat;
  const int64_t *vocab;
  const float *num;
  assert_ok(onerec_dataset_static(ds, &nc, &cat, &vocab, &nn, &num));
  assert_int_equal(nc, 4);
  assert_int_equal(nn, 2);
  assert_string_equal(onerec_dataset_feature_name(ds, 0, 0), "age_bucket");
  assert_string_equal(onerec_dataset_feature_name(ds, 0, 1), "gender");
  assert_string_equal(onerec_dataset_feature_name(ds, 0, 2), "occupation");
  assert_string_equal(onerec_dataset_feature_name(ds, 0, 3), "zip_region");
  assert_string_equal(onerec_dataset_feature_name(ds, 1, 0), "age");
  assert_string_equal(onerec_dataset_feature_name(ds, 1, 1), "score");
  assert_null(onerec_dataset_feature_name(ds, 1, 2));
  /* vocabularies in order of first appearance (file order) among the data set's users */
  const int64_t wv[4] = {7, 2, 2, 2};
  assert_memory_equal(vocab, wv, sizeof wv);
  /* users 1..4 in id order */
  const int32_t wc[16] = {
      0, 1, 1, 1,     /* 1: 17 -> <18, F, artist, T */
      6, 0, 0, 0,     /* 2: 56 -> 56+, M, writer, 9 */
      -1, -1, -1, -1, /* 3: no line */
      -1, 1, 0, 0,    /* 4: no age, F, writer, 9 */
  };
  assert_memory_equal(cat, wc, sizeof wc);
  const float wn[8] = {17, 1.5f, 56, 0.5f, 0, 0, 0, 2};
  assert_memory_equal(num, wn, sizeof wn);
  /* tags in order of first appearance: Drama 0, Comedy 1 (item 99 is not in the data: its
   * Horror is not a tag) */
  int32_t nt;
  const int64_t *to;
  const int32_t *tags;
  assert_ok(onerec_dataset_item_tags(ds, &nt, &to, &tags));
  assert_int_equal(nt, 2);
  assert_string_equal(onerec_dataset_tag_name(ds, 0), "Drama");
  assert_string_equal(onerec_dataset_tag_name(ds, 1), "Comedy");
  assert_null(onerec_dataset_tag_name(ds, 2));
  const int64_t wto[4] = {0, 1, 1, 3}; /* items 10, 11, 12 */
  assert_memory_equal(to, wto, sizeof wto);
  assert_int_equal(tags[0], 1);
  assert_int_equal(tags[1], 0);
  assert_int_equal(tags[2], 1);
  onerec_dataset_free(ds);
  /* errors in .user and .item */
  expect_bad(ctx, "t.user", "user_id:token\tage:token\n1\t20\n1\t30\n", "t.user:3:",
             "user 1 already has a line (line 2)");
  expect_bad(ctx, "t.user", "user_id:token\tage:token\n1\tabc\n", "t.user:2:", "age 'abc'");
  expect_bad(ctx, "t.user", "age:token\n20\n", "t.user:1:", "lacks user_id:token");
  expect_bad(ctx, "t.user", "user_id:token\thobbies:token_seq\n1\ta b\n", "t.user:1:",
             "'hobbies'");
  expect_bad(ctx, "t.user", "user_id:token\tgender:token\n1\n", "t.user:2:", "1 fields");
  put("t.user", "user_id:token\tgender:token\n1\tM\n");
  expect_bad(ctx, "t.item", "item_id:token\tclass:token_seq\n10\tA\n10\tB\n", "t.item:3:",
             "item 10 already has a line");
  expect_bad(ctx, "t.item", "item_id:token\tclass:token\n10\tA\n", "t.item:1:",
             "class has type token, expected token_seq");
  expect_bad(ctx, "t.item", "class:token_seq\nA\n", "t.item:1:", "lacks item_id:token");
  /* without a tag column: no tags, other columns ignored */
  put("t.item", "item_id:token\tyear:token\n10\t1999\n");
  assert_ok(load(ctx, &ds));
  assert_ok(onerec_dataset_item_tags(ds, &nt, &to, &tags));
  assert_int_equal(nt, 0);
  assert_null(to);
  onerec_dataset_free(ds);
  onerec_context_free(ctx);
}

typedef struct raw_row {
  long long user, item, ts, idx;
  double rating;
} raw_row;

static void test_ml100k_real(void **state) {
  (void)state;
  char dir[4096], path[4200];
  snprintf(dir, sizeof dir, "%s/ml-100k", data_root());
  snprintf(path, sizeof path, "%s/ml-100k.inter", dir);
  FILE *f = fopen(path, "r");
  if (!f) {
    print_message("skipped: %s not found (set ONEREC_DATA_DIR to the data folder)\n", path);
    skip();
  }
  /* the naive reference: every row of the file */
  raw_row *rows = malloc(100000 * sizeof *rows);
  char line[256];
  assert_non_null(fgets(line, sizeof line, f));
  int n = 0;
  double rsum = 0;
  while (n < 100000 && fscanf(f, "%lld\t%lld\t%lf\t%lld", &rows[n].user, &rows[n].item,
                              &rows[n].rating, &rows[n].ts) == 4) {
    rows[n].idx = n;
    rsum += rows[n].rating;
    n++;
  }
  fclose(f);
  assert_int_equal(n, 100000);
  onerec_context *ctx = tu_cpu_context(1);
  onerec_dataset *ds = NULL;
  ONEREC_OPTS(onerec_dataset_opts, o, .format = "ml-100k");
  assert_ok(onerec_dataset_load(ctx, dir, &o, &ds));
  ONEREC_OPTS(onerec_dataset_info, in);
  assert_ok(onerec_dataset_get_info(ds, &in));
  assert_int_equal(in.users, 943);
  assert_int_equal(in.items, 1682);
  assert_int_equal(in.interactions, 100000);
  assert_true(in.label_min == 1 && in.label_max == 5);
  const float *labels;
  const double *ts;
  const int64_t *off;
  assert_ok(onerec_dataset_interactions(ds, NULL, &off, NULL, &ts, &labels));
  double lsum = 0;
  for (int i = 0; i < n; i++) lsum += labels[i];
  assert_true(lsum == rsum);
  /* a few users' sequences: their rows, stably sorted by time (insertion sort) */
  const int64_t check[] = {1, 196, 405, 943};
  for (size_t c = 0; c < sizeof check / sizeof check[0]; c++) {
    raw_row mine[800];
    int m = 0;
    for (int i = 0; i < n; i++)
      if (rows[i].user == check[c]) mine[m++] = rows[i];
    for (int i = 1; i < m; i++)
      for (int j = i; j > 0 && mine[j].ts < mine[j - 1].ts; j--) {
        raw_row x = mine[j];
        mine[j] = mine[j - 1];
        mine[j - 1] = x;
      }
    int64_t u = -1;
    assert_ok(onerec_dataset_user_index(ds, check[c], &u));
    int64_t *seq = malloc(800 * sizeof *seq);
    assert_int_equal(seq_of(ds, u, seq), m);
    for (int i = 0; i < m; i++) {
      assert_int_equal(seq[i], mine[i].item);
      assert_true(ts[off[u] + i] == (double)mine[i].ts);
      assert_true(labels[off[u] + i] == (float)mine[i].rating);
    }
    free(seq);
  }
  free(rows);
  /* user features: ml-100k has 2 genders, 21 occupations; 19 genres */
  int32_t nc, nn, nt;
  const int64_t *vocab;
  const int32_t *cat;
  assert_ok(onerec_dataset_static(ds, &nc, &cat, &vocab, &nn, NULL));
  assert_int_equal(nc, 4);
  assert_int_equal(nn, 1);
  assert_int_equal(vocab[1], 2);
  assert_int_equal(vocab[2], 21);
  for (int64_t u = 0; u < 943; u++)
    for (int k = 0; k < 3; k++) assert_true(cat[u * 4 + k] >= 0); /* every user has a line */
  assert_ok(onerec_dataset_item_tags(ds, &nt, NULL, NULL));
  assert_int_equal(nt, 19);
  onerec_dataset_free(ds);
  onerec_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_inter),
      cmocka_unit_test(test_inter_errors),
      cmocka_unit_test(test_user_item),
      cmocka_unit_test(test_ml100k_real),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
