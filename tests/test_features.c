/* Item features for the Amazon Beauty data: the items TSV reader, the content pairs, the text
 * (TF-IDF) and collaborative (Swing) blocks, the whole build and its file, the CLI. Real-data
 * checks skip when ../shared/data (or $ONEREC_DATA_DIR) is absent. */
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "features_beauty.h"
#include "h5io.h"
#include "testutil.h"

static char g_dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/onerec-feat-XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  return system(cmd);
}

static const char *data_root(void) {
  const char *env = getenv("ONEREC_DATA_DIR");
  if (env && *env) return env;
  return "../shared/data";
}

/* The amazon folder, or NULL (after printing why) when absent. */
static const char *amazon_dir(void) {
  static char dir[4096];
  char probe[4200];
  snprintf(dir, sizeof dir, "%s/amazon", data_root());
  snprintf(probe, sizeof probe, "%s/Beauty_items.tsv", dir);
  if (access(probe, R_OK) != 0) {
    print_message("skipped: %s not found (set ONEREC_DATA_DIR to the data folder)\n", probe);
    return NULL;
  }
  return dir;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* Seven items; 1 and 2 share words (in different case) and an attribute; 3 and 4 share "oil".
 * Items 5 and 6 occur only as validation/test targets (the last two of each sequence). */
static const char k_tsv[] =
    "item_id\tasin\tattributes\ttitle\n"
    "1\tA1\t10,20\tred nail polish\n"
    "2\tA2\t10,21\tRed Nail Lacquer\r\n"
    "3\tA3\t30\tmen's beard oil\n"
    "4\tA4\t31, 32\tcoconut hair oil\n"
    "\n"
    "5\tA5\t\tshampoo for dry hair\n"
    "6\tA6\t40\tfoundation powder\n"
    "7\tA7\t50\tlip balm\n";
/* Item 7 has one training user (u5, with item 3): no Swing neighbour, co-occurrence only. */
static const char k_seq[] = "1 1 2 3 6 5\n2 1 2 4 5 6\n3 3 4 1 6 5\n4 2 1 3 5 6\n5 7 3 6 5\n";

static void make_dataset(char *dir, size_t len) {
  snprintf(dir, len, "%s/amazon-mini", g_dir);
  mkdir(dir, 0700);
  char p[256];
  snprintf(p, sizeof p, "%s/Beauty_items.tsv", dir);
  write_text(p, k_tsv);
  snprintf(p, sizeof p, "%s/Beauty.txt", dir);
  write_text(p, k_seq);
}

/* Content pairs: attribute 10 is carried by items 1, 2 (twice) and 3, attribute 20 by 1 and 4;
 * 21 and 30 by one item each (no pair); item 6 has none. */
static void test_attribute_pairs(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  char path[128];
  snprintf(path, sizeof path, "%s/attr.tsv", g_dir);
  write_text(path, "item_id\tattributes\ttitle\n1\t10,20\ta\n2\t10,21,10\tb\n3\t10\tc\n"
                   "4\t20\td\n5\t30\te\n6\t\tf\n");
  int64_t a[16], b[16], n = -1;
  /* every partner: attribute 10's items each get the other two, attribute 20's the other one */
  ONEREC_OPTS(onerec_attribute_pairs_opts, all, .per_item = 5, .seed = 3);
  assert_ok(onerec_attribute_pairs(ctx, path, &all, a, b, 16, &n));
  assert_int_equal(n, 8);
  const int64_t fa[8] = {1, 1, 2, 2, 3, 3, 1, 4};
  for (int k = 0; k < 8; k++) {
    assert_int_equal(a[k], fa[k]);
    assert_true(b[k] != a[k]);
    if (k < 6) assert_true(b[k] >= 1 && b[k] <= 3);
  }
  assert_true(b[0] != b[1] && b[2] != b[3] && b[4] != b[5]);
  assert_int_equal(b[6], 4);
  assert_int_equal(b[7], 1);
  /* one partner each: 3 + 2 pairs */
  ONEREC_OPTS(onerec_attribute_pairs_opts, one, .per_item = 1, .seed = 3);
  assert_ok(onerec_attribute_pairs(ctx, path, &one, a, b, 16, &n));
  assert_int_equal(n, 5);
  /* the bound: attribute 10 (3 items) is over max_items = 2 */
  ONEREC_OPTS(onerec_attribute_pairs_opts, rare, .per_item = 5, .max_items = 2);
  assert_ok(onerec_attribute_pairs(ctx, path, &rare, a, b, 16, &n));
  assert_int_equal(n, 2);
  assert_true(a[0] == 1 && b[0] == 4 && a[1] == 4 && b[1] == 1);
  /* sizing: count with no room, then nothing written when the room is short */
  assert_status(onerec_attribute_pairs(ctx, path, &all, NULL, NULL, 0, &n),
                ONEREC_ERR_BUFFER_TOO_SMALL);
  assert_int_equal(n, 8);
  for (int k = 0; k < 16; k++) a[k] = b[k] = -7;
  assert_status(onerec_attribute_pairs(ctx, path, &all, a, b, 7, &n), ONEREC_ERR_BUFFER_TOO_SMALL);
  assert_int_equal(n, 8);
  for (int k = 0; k < 16; k++) assert_true(a[k] == -7 && b[k] == -7);

  /* the draws themselves, pinned: the pairs `onerec align --attribute-pairs` drew before the
   * function moved into the library (examples/cli/attr_pairs.c at 6b9b67b), so recorded runs
   * keep their semantic IDs */
  write_text(path, "item_id\tasin\tattributes\ttitle\n1\tA\t7,9\ta\n2\tB\t7\tb\n3\tC\t7,9\tc\n"
                   "4\tD\t7\td\n5\tE\t7,9\te\n6\tF\t7\tf\n");
  static const struct {
    int per_item;
    uint64_t seed;
    int n;
    int64_t pairs[18][2];
  } pinned[] = {
      {2, 1, 18, {{1, 5}, {1, 2}, {2, 4}, {2, 6}, {3, 1}, {3, 4}, {4, 5}, {4, 6}, {5, 4},
                  {5, 6}, {6, 4}, {6, 5}, {1, 3}, {1, 5}, {3, 1}, {3, 5}, {5, 1}, {5, 3}}},
      {1, 42, 9, {{1, 4}, {2, 4}, {3, 5}, {4, 5}, {5, 3}, {6, 3}, {1, 5}, {3, 1}, {5, 1}}},
  };
  for (size_t c = 0; c < sizeof pinned / sizeof *pinned; c++) {
    ONEREC_OPTS(onerec_attribute_pairs_opts, o, .per_item = pinned[c].per_item,
                .seed = pinned[c].seed);
    int64_t pa[18], pb[18];
    assert_ok(onerec_attribute_pairs(ctx, path, &o, pa, pb, 18, &n));
    assert_int_equal(n, pinned[c].n);
    for (int k = 0; k < pinned[c].n; k++)
      if (pa[k] != pinned[c].pairs[k][0] || pb[k] != pinned[c].pairs[k][1])
        fail_msg("case %zu pair %d: %lld-%lld, expected %lld-%lld", c, k, (long long)pa[k],
                 (long long)pb[k], (long long)pinned[c].pairs[k][0],
                 (long long)pinned[c].pairs[k][1]);
  }

  /* the draw: one partner out of 5 for each item of a 6-item attribute; the same seed gives the
   * same pairs, and over 200 seeds item 1 meets every other item */
  write_text(path, "item_id\tattributes\ttitle\n1\t7\ta\n2\t7\tb\n3\t7\tc\n4\t7\td\n5\t7\te\n"
                   "6\t7\tf\n");
  int met[7] = {0};
  for (uint64_t seed = 0; seed < 200; seed++) {
    ONEREC_OPTS(onerec_attribute_pairs_opts, o, .per_item = 1, .seed = seed);
    int64_t a2[6], b2[6];
    assert_ok(onerec_attribute_pairs(ctx, path, &o, a, b, 16, &n));
    assert_int_equal(n, 6);
    assert_ok(onerec_attribute_pairs(ctx, path, &o, a2, b2, 6, &n));
    assert_memory_equal(a, a2, sizeof a2);
    assert_memory_equal(b, b2, sizeof b2);
    assert_int_equal(a[0], 1);
    assert_true(b[0] >= 2 && b[0] <= 6);
    met[b[0]]++;
  }
  for (int k = 2; k <= 6; k++) assert_true(met[k] > 10);

  /* bad input */
  ONEREC_OPTS(onerec_attribute_pairs_opts, neg, .per_item = -1);
  assert_status(onerec_attribute_pairs(ctx, path, &neg, a, b, 16, &n), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_attribute_pairs_opts, one_item, .max_items = 1);
  assert_status(onerec_attribute_pairs(ctx, path, &one_item, a, b, 16, &n),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_attribute_pairs(ctx, path, NULL, NULL, b, 16, &n),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_attribute_pairs(ctx, path, NULL, a, NULL, 16, &n),
                ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_attribute_pairs_opts, huge, .per_item = (1 << 20) + 1);
  assert_status(onerec_attribute_pairs(ctx, path, &huge, a, b, 16, &n), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_attribute_pairs_opts, wide, .max_items = (1 << 20) + 1);
  assert_status(onerec_attribute_pairs(ctx, path, &wide, a, b, 16, &n), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_attribute_pairs_opts bad_sz = {.sz = 3};
  assert_status(onerec_attribute_pairs(ctx, path, &bad_sz, a, b, 16, &n),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_attribute_pairs(ctx, path, NULL, a, b, 16, NULL),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_attribute_pairs(ctx, "/nonexistent/items.tsv", NULL, a, b, 16, &n),
                ONEREC_ERR_IO);
  write_text(path, "item_id\tattributes\ttitle\n1\t7\ta\n2\t7,x\tb\n");
  assert_status(onerec_attribute_pairs(ctx, path, NULL, a, b, 16, &n), ONEREC_ERR_FORMAT);
  assert_non_null(strstr(onerec_last_error(), "attr.tsv:3:"));
  assert_int_equal(n, 0);
  onerec_context_free(ctx);
}

static double dot(const float *a, const float *b, int n) {
  double s = 0;
  for (int k = 0; k < n; k++) s += (double)a[k] * b[k];
  return s;
}

static int shared_tokens(const orx_item_text *t, int64_t a, int64_t b) {
  int n = 0;
  for (int64_t i = t->tok_off[a]; i < t->tok_off[a + 1]; i++)
    for (int64_t j = t->tok_off[b]; j < t->tok_off[b + 1]; j++) n += t->tok[i] == t->tok[j];
  return n;
}

static void test_tsv_reader(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  orx_item_text t;
  assert_ok(orx_items_tsv_parse(ctx, "items.tsv", k_tsv, sizeof k_tsv - 1, &t));
  assert_int_equal(t.n, 7);
  assert_int_equal(t.ids[4], 5);
  assert_int_equal(t.tok_off[1] - t.tok_off[0], 2 + 3);
  assert_int_equal(t.tok_off[4] - t.tok_off[3], 2 + 3); /* "31, 32": spaces trimmed */
  assert_int_equal(t.attr_off[4] - t.attr_off[3], 2);    /* and kept as numbers */
  assert_true(t.attr[t.attr_off[3]] == 31 && t.attr[t.attr_off[3] + 1] == 32);
  assert_int_equal(t.attr_off[5] - t.attr_off[4], 0);
  assert_int_equal(t.tok_off[5] - t.tok_off[4], 0 + 4);
  assert_int_equal(shared_tokens(&t, 0, 1), 3); /* attr 10, red, nail (case folded) */
  assert_int_equal(shared_tokens(&t, 2, 3), 1); /* oil */
  assert_int_equal(shared_tokens(&t, 0, 2), 0);
  orx_item_text_free(&t);
  /* columns in another order, extra columns */
  const char other[] = "title\tx\tattributes\titem_id\nfoo bar\t?\t1\t9\n";
  assert_ok(orx_items_tsv_parse(ctx, "o.tsv", other, sizeof other - 1, &t));
  assert_int_equal(t.n, 1);
  assert_int_equal(t.ids[0], 9);
  assert_int_equal(t.tok_off[1], 3);
  orx_item_text_free(&t);
  /* the word "10" and the attribute 10 are different tokens */
  const char num[] = "item_id\tattributes\ttitle\n1\t10\tx\n2\t\t10\n";
  assert_ok(orx_items_tsv_parse(ctx, "n.tsv", num, sizeof num - 1, &t));
  assert_int_equal(shared_tokens(&t, 0, 1), 0);
  orx_item_text_free(&t);

  struct {
    const char *text, *m1, *m2;
  } bad[] = {
      {"item_id\tasin\ttitle\n1\tx\ty\n", "b.tsv:1:", "missing attributes"},
      {"item_id\tattributes\ttitle\n1\t2\tok\n2\t3\n", "b.tsv:3:", "2 tab-separated fields"},
      {"item_id\tattributes\ttitle\n1\t2\tok\n\nx7\t3\tno\n", "b.tsv:4:", "item_id 'x7'"},
      {"item_id\tattributes\ttitle\n1\t2,a\tok\n", "b.tsv:2:", "attribute 'a'"},
      {"item_id\tattributes\ttitle\n4\t2\tok\n5\t\t\n4\t1\tagain\n",
       "b.tsv:4:", "item 4 already defined on line 2"},
  };
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
    assert_status(orx_items_tsv_parse(ctx, "b.tsv", bad[k].text, strlen(bad[k].text), &t),
                  ONEREC_ERR_FORMAT);
    const char *e = onerec_last_error();
    if (!strstr(e, bad[k].m1) || !strstr(e, bad[k].m2))
      fail_msg("case %zu: message '%s' lacks '%s' / '%s'", k, e, bad[k].m1, bad[k].m2);
    assert_null(t.ids);
  }
  assert_status(orx_items_tsv_read(ctx, "/nonexistent/items.tsv", &t), ONEREC_ERR_IO);
  onerec_context_free(ctx);
}

static void test_text_features(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  orx_item_text t;
  assert_ok(orx_items_tsv_parse(ctx, "items.tsv", k_tsv, sizeof k_tsv - 1, &t));
  enum { D = 64 };
  float x[7 * D], y[7 * D];
  int64_t vocab = 0;
  assert_ok(orx_text_features(&t, D, x, &vocab));
  /* distinct tokens: attrs 10 20 21 30 31 32 40 (7); words red nail polish lacquer men s beard
   * oil coconut hair shampoo for dry foundation powder (15); item 7: 50, lip, balm (3) */
  assert_int_equal(vocab, 25);
  for (int i = 0; i < 7; i++)
    tu_assert_close((float[]){(float)dot(x + i * D, x + i * D, D)}, (float[]){1.0f}, 1, 1e-5f, 0,
                    "row norm");
  /* shared words make items closer than unrelated ones */
  assert_true(dot(x, x + D, D) > 0.3);
  assert_true(dot(x, x + D, D) > dot(x, x + 2 * D, D) + 0.2);
  assert_true(dot(x + 2 * D, x + 3 * D, D) > dot(x + 2 * D, x + 5 * D, D));
  /* deterministic */
  assert_ok(orx_text_features(&t, D, y, NULL));
  assert_memory_equal(x, y, sizeof x);
  orx_item_text_free(&t);
  onerec_context_free(ctx);
}

static void test_build(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  char dir[128];
  make_dataset(dir, sizeof dir);
  ONEREC_OPTS(onerec_beauty_features_opts, o, .text_dim = 32, .collab_dim = 16, .seed = 3);
  orx_features f, g;
  onerec_features_report rep;
  assert_ok(orx_features_beauty_build(ctx, dir, &o, &f, &rep));
  assert_int_equal(f.n, 7);
  assert_int_equal(f.dim, 48);
  assert_int_equal(rep.users, 5);
  assert_int_equal(rep.train_interactions, 14);
  assert_int_equal(rep.items_with_neighbors, 4);    /* 1..4 */
  assert_int_equal(rep.items_with_cooccurrence, 1); /* 7 */
  for (int i = 0; i < 7; i++) {
    assert_int_equal(f.ids[i], i + 1);
    float nrm = (float)dot(f.x + i * 48, f.x + i * 48, 48);
    tu_assert_close(&nrm, (float[]){1.0f}, 1, 1e-5f, 0, "row norm");
  }
  /* deterministic, also with another thread count */
  onerec_context *ctx1 = tu_cpu_context(1);
  assert_ok(orx_features_beauty_build(ctx1, dir, &o, &g, NULL));
  assert_memory_equal(f.x, g.x, 7 * 48 * sizeof(float));
  orx_features_free(&g);
  onerec_context_free(ctx1);
  /* collaborative blocks. 5 and 6 occur only as validation/test targets: nothing about them
   * may come from interactions, so their blocks are zero (and the rows are text only) */
  float cb[7][16];
  for (int i = 0; i < 7; i++) {
    memcpy(cb[i], f.x + i * 48 + 32, sizeof cb[i]);
    double nn = sqrt(dot(cb[i], cb[i], 16));
    if (i == 4 || i == 5) {
      assert_true(nn == 0.0);
      continue;
    }
    for (int k = 0; k < 16; k++) cb[i][k] = (float)(cb[i][k] / nn);
  }
  /* 1 and 2 are Swing neighbours (three users had both); 4 is less tied to 1 than 2 is */
  assert_true(dot(cb[0], cb[1], 16) > 0.5);
  /* 7 co-occurs with 3 only */
  assert_true(dot(cb[6], cb[2], 16) > dot(cb[6], cb[3], 16) + 0.3);
  /* another seed, another projection */
  o.seed = 4;
  assert_ok(orx_features_beauty_build(ctx, dir, &o, &g, NULL));
  assert_true(memcmp(f.x, g.x, 7 * 48 * sizeof(float)) != 0);
  tu_assert_close(g.x, f.x, 32, 1e-6f, 1e-7f, "text part of item 1 under another seed");
  orx_features_free(&g);
  /* text only */
  ONEREC_OPTS(onerec_beauty_features_opts, t, .text_dim = 20, .collab_dim = -1);
  assert_ok(orx_features_beauty_build(ctx, dir, &t, &g, &rep));
  assert_int_equal(g.dim, 20);
  assert_int_equal(rep.pairs, 0);
  orx_features_free(&g);
  orx_features_free(&f);
  /* errors */
  assert_status(orx_features_beauty_build(ctx, "/nonexistent", NULL, &f, NULL), ONEREC_ERR_IO);
  ONEREC_OPTS(onerec_beauty_features_opts, b, .text_dim = -3);
  assert_status(orx_features_beauty_build(ctx, dir, &b, &f, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  char p[256];
  snprintf(p, sizeof p, "%s/Beauty.txt", dir);
  write_text(p, "1 1 2 3\n2 1 oops\n");
  assert_status(orx_features_beauty_build(ctx, dir, NULL, &f, NULL), ONEREC_ERR_FORMAT);
  assert_non_null(strstr(onerec_last_error(), "Beauty.txt:2:"));
  onerec_context_free(ctx);
}

static void test_file(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  char dir[128], path[256];
  make_dataset(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/f.h5", g_dir);
  ONEREC_OPTS(onerec_beauty_features_opts, o, .text_dim = 24, .collab_dim = 8);
  /* a report from an older header: only the fields up to dim are written */
  onerec_features_report rep;
  memset(&rep, 0x5a, sizeof rep);
  rep.sz = offsetof(onerec_features_report, text_dim);
  assert_ok(onerec_features_beauty(ctx, dir, path, &o, &rep));
  assert_int_equal(rep.items, 7);
  assert_int_equal(rep.dim, 32);
  assert_int_equal(rep.text_dim, 0x5a5a5a5a);
  ONEREC_OPTS(onerec_features_report, full);
  assert_ok(onerec_features_beauty(ctx, dir, path, &o, &full));
  assert_true(full.seconds > 0);
  assert_int_equal(full.collab_dim, 8);
  orx_h5 h;
  assert_ok(orx_h5_open(&h, path));
  assert_ok(orx_h5_check_stamp(&h, "features", 1, NULL));
  float x[7 * 32];
  int64_t ids[7], d2[2] = {7, 32}, d1[1] = {7};
  assert_ok(orx_h5_read(&h, h.file, "features", ORX_H5_F32, 2, d2, x, sizeof x));
  assert_ok(orx_h5_read(&h, h.file, "item_ids", ORX_H5_I64, 1, d1, ids, sizeof ids));
  orx_h5_close(&h);
  assert_int_equal(ids[6], 7);
  orx_features f;
  assert_ok(orx_features_beauty_build(ctx, dir, &o, &f, NULL));
  assert_memory_equal(f.x, x, sizeof x);
  orx_features_free(&f);
  assert_status(onerec_features_beauty(ctx, dir, NULL, &o, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_features_beauty(NULL, dir, path, &o, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  rep.sz = 0;
  assert_status(onerec_features_beauty(ctx, dir, path, &o, &rep), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_context_free(ctx);
}

static void test_beauty_real(void **state) {
  (void)state;
  const char *dir = amazon_dir();
  if (!dir) skip();
  onerec_context *ctx = tu_cpu_context(0);
  orx_features f;
  onerec_features_report rep;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_ok(orx_features_beauty_build(ctx, dir, NULL, &f, &rep));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  print_message(
      "beauty features: %lld x %d in %.2f s (Swing %.2f s, %d threads), vocabulary %lld, "
      "%lld items with Swing neighbours, %lld co-occurrence only, %lld pairs\n",
      (long long)f.n, f.dim,
      (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), rep.swing_seconds,
      onerec_context_threads(ctx), (long long)rep.vocabulary, (long long)rep.items_with_neighbors,
      (long long)rep.items_with_cooccurrence, (long long)rep.pairs);
  assert_int_equal(f.n, 12101);
  assert_int_equal(f.dim, 384);
  assert_int_equal(rep.users, 22363);
  assert_int_equal(rep.train_interactions, 198502 - 2 * 22363);
  /* Swing neighbours or co-occurrence for every item with a training interaction */
  assert_true(rep.items_with_neighbors > 7000);
  assert_true(rep.items_with_neighbors + rep.items_with_cooccurrence > 12000);
  for (int64_t i = 0; i < f.n; i++) {
    assert_int_equal(f.ids[i], i + 1);
    double nn = dot(f.x + i * 384, f.x + i * 384, 384);
    if (fabs(nn - 1.0) > 1e-4) fail_msg("item %lld: squared norm %g", (long long)f.ids[i], nn);
  }
  /* consecutive pairs of one user's training items are more alike than random pairs */
  double near = 0, rnd = 0;
  uint64_t s = 1;
  int n = 0;
  const int64_t seq[][2] = {{1, 2}, {6, 7}, {7, 8}, {12, 13}, {13, 14}, {20, 21}, {25, 26}};
  for (size_t k = 0; k < sizeof seq / sizeof *seq; k++, n++) {
    near += dot(f.x + (seq[k][0] - 1) * 384, f.x + (seq[k][1] - 1) * 384, 384);
    int64_t a = (int64_t)((tu_rand(&s) + 1) * 6000), b = (int64_t)((tu_rand(&s) + 1) * 6000);
    rnd += dot(f.x + a * 384, f.x + b * 384, 384);
  }
  print_message("mean cosine: same-user neighbours %.3f, random pairs %.3f\n", near / n, rnd / n);
  assert_true(near > rnd);
  orx_features_free(&f);
  onerec_context_free(ctx);
}

/* Runs the CLI (path in $ONEREC_CLI) with args; stdout into out; returns the exit status. */
static int run_cli(const char *args, char *out, size_t len) {
  const char *cli = getenv("ONEREC_CLI");
  if (!cli) return -2;
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", cli, args);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, len - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void **state) {
  (void)state;
  char out[4096], args[4096], dir[128];
  if (!getenv("ONEREC_CLI")) {
    print_message("skipped: ONEREC_CLI not set (run through make test)\n");
    skip();
  }
  assert_int_equal(run_cli("features", out, sizeof out), 2);
  assert_int_equal(run_cli("features beauty", out, sizeof out), 2);
  assert_int_equal(run_cli("features beauty /x --out", out, sizeof out), 2);
  assert_int_equal(run_cli("features beauty /x --out y --dim zz", out, sizeof out), 2);
  assert_string_equal(out, "");
  snprintf(args, sizeof args, "features beauty /nonexistent --out %s/x.h5", g_dir);
  assert_int_equal(run_cli(args, out, sizeof out), 1);
  make_dataset(dir, sizeof dir);
  snprintf(args, sizeof args, "features beauty %s --out %s/mini.h5 --dim 30 --json", dir, g_dir);
  assert_int_equal(run_cli(args, out, sizeof out), 0);
  assert_non_null(strstr(out, "\"items\":7,\"dim\":30,\"text_dim\":20,\"collab_dim\":10"));
  assert_non_null(strstr(out, "\"seconds\":"));
  const char *real = amazon_dir();
  if (!real) return;
  snprintf(args, sizeof args, "features beauty %s --out %s/beauty.h5 --json", real, g_dir);
  assert_int_equal(run_cli(args, out, sizeof out), 0);
  print_message("cli: %s", out);
  assert_non_null(strstr(out, "\"items\":12101,\"dim\":384"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tsv_reader),  cmocka_unit_test(test_attribute_pairs),
      cmocka_unit_test(test_text_features),
      cmocka_unit_test(test_build),       cmocka_unit_test(test_file),
      cmocka_unit_test(test_beauty_real), cmocka_unit_test(test_cli),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
