/* Sequence files (chunked HDF5 interactions): round trips of data sets with and without
 * timestamps, features and tags; windows across chunk boundaries; the streaming writer and its
 * refusals; atomic publication; validated loads of hand-made broken files (written here with
 * the h5io helpers, independently of the library's writer). The real-data round trip skips
 * when ../shared/data is absent. */
#include <sys/stat.h>
#include <unistd.h>

#include "h5io.h"
#include "testutil.h"

static const char *data_root(void) {
  const char *env = getenv("ONEREC_DATA_DIR");
  if (env && *env) return env;
  return "../shared/data";
}

static char g_dir[64];

static const char *path_of(const char *name) {
  static char p[4][160];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", g_dir, name);
  return p[k];
}

static void put(const char *name, const char *text) {
  FILE *f = fopen(path_of(name), "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  fclose(f);
}

static int exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/onerec-h5-XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  const char *names[] = {"t.inter", "t.user", "t.item", "Beauty.txt", "a.h5", "b.h5", "bad.h5"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(path_of(names[i]));
  return rmdir(g_dir);
}

/* A RecBole toy with every optional part: 7 users of 1..6 rows, features, tags. */
static onerec_dataset *toy(onerec_context *ctx) {
  put("t.inter",
      "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
      "1\t10\t4\t1\n1\t11\t3\t2\n1\t12\t5\t3\n2\t10\t1\t4\n3\t13\t2\t5\n3\t14\t2\t5\n"
      "4\t10\t4\t1\n4\t12\t3\t9\n4\t11\t3\t9\n4\t13\t1\t10\n4\t14\t5\t11\n4\t15\t5\t12\n"
      "5\t16\t1\t3\n6\t10\t2\t1.5\n6\t16\t4\t2.5\n7\t15\t3\t7\n7\t10\t4\t8\n");
  put("t.user", "user_id:token\tage:token\tgender:token\n1\t20\tM\n3\t40\tF\n7\t60\tM\n");
  put("t.item", "item_id:token\tclass:token_seq\n10\tA B\n12\tC\n16\tB\n");
  onerec_dataset *ds = NULL;
  ONEREC_OPTS(onerec_dataset_opts, o, .format = "recbole", .name = "t");
  assert_ok(onerec_dataset_load(ctx, g_dir, &o, &ds));
  return ds;
}

static void assert_same(const onerec_dataset *a, const onerec_dataset *b) {
  ONEREC_OPTS(onerec_dataset_info, ia);
  ONEREC_OPTS(onerec_dataset_info, ib);
  assert_ok(onerec_dataset_get_info(a, &ia));
  assert_ok(onerec_dataset_get_info(b, &ib));
  assert_int_equal(ia.users, ib.users);
  assert_int_equal(ia.items, ib.items);
  assert_int_equal(ia.interactions, ib.interactions);
  assert_int_equal(ia.train_samples, ib.train_samples);
  assert_int_equal(ia.has_timestamps, ib.has_timestamps);
  assert_int_equal(ia.has_labels, ib.has_labels);
  assert_int_equal(ia.static_cat_count, ib.static_cat_count);
  assert_int_equal(ia.static_num_count, ib.static_num_count);
  assert_int_equal(ia.tags, ib.tags);
  assert_string_equal(ib.format, "h5");
  const int64_t *ua, *ub, *oa, *ob, *ida, *idb;
  const int32_t *xa, *xb;
  const double *ta, *tb;
  const float *la, *lb;
  int64_t n;
  assert_ok(onerec_dataset_user_ids(a, &ua, &n));
  assert_ok(onerec_dataset_user_ids(b, &ub, NULL));
  assert_memory_equal(ua, ub, (size_t)n * 8);
  assert_ok(onerec_dataset_interactions(a, NULL, &oa, &xa, &ta, &la));
  assert_ok(onerec_dataset_interactions(b, NULL, &ob, &xb, &tb, &lb));
  assert_memory_equal(oa, ob, (size_t)(n + 1) * 8);
  const size_t r = (size_t)ia.interactions;
  if (r) {
    assert_memory_equal(xa, xb, r * 4);
    assert_memory_equal(ta, tb, r * 8);
    assert_memory_equal(la, lb, r * 4);
  }
  assert_ok(onerec_dataset_item_ids(a, &ida, &n));
  assert_ok(onerec_dataset_item_ids(b, &idb, NULL));
  if (n) assert_memory_equal(ida, idb, (size_t)n * 8);
  int32_t nca, nna, ncb, nnb;
  const int32_t *ca, *cb;
  const int64_t *va, *vb;
  const float *na, *nb;
  assert_ok(onerec_dataset_static(a, &nca, &ca, &va, &nna, &na));
  assert_ok(onerec_dataset_static(b, &ncb, &cb, &vb, &nnb, &nb));
  if (nca) {
    assert_memory_equal(ca, cb, (size_t)(ia.users * nca) * 4);
    assert_memory_equal(va, vb, (size_t)nca * 8);
  }
  if (nna) assert_memory_equal(na, nb, (size_t)(ia.users * nna) * 4);
  for (int32_t f = 0; f < nca; f++)
    assert_string_equal(onerec_dataset_feature_name(a, 0, f), onerec_dataset_feature_name(b, 0, f));
  for (int32_t f = 0; f < nna; f++)
    assert_string_equal(onerec_dataset_feature_name(a, 1, f), onerec_dataset_feature_name(b, 1, f));
  int32_t nta, ntb;
  const int64_t *toa, *tob;
  const int32_t *tga, *tgb;
  assert_ok(onerec_dataset_item_tags(a, &nta, &toa, &tga));
  assert_ok(onerec_dataset_item_tags(b, &ntb, &tob, &tgb));
  assert_int_equal(nta, ntb);
  if (nta) {
    assert_memory_equal(toa, tob, (size_t)(ia.items + 1) * 8);
    assert_memory_equal(tga, tgb, (size_t)toa[ia.items] * 4);
  }
  for (int32_t t = 0; t < nta; t++)
    assert_string_equal(onerec_dataset_tag_name(a, t), onerec_dataset_tag_name(b, t));
}

static void test_round_trip(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_dataset *a = toy(ctx);
  const int64_t chunks[] = {1, 2, 3, 7, 100};
  for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
    ONEREC_OPTS(onerec_seqfile_opts, so, .chunk_users = chunks[c]);
    assert_ok(onerec_dataset_save(a, path_of("a.h5"), &so));
    onerec_dataset *b = NULL;
    assert_ok(onerec_dataset_load(ctx, path_of("a.h5"), NULL, &b)); /* auto: .h5 */
    assert_same(a, b);
    onerec_dataset_free(b);
  }
  /* no temporary file is left beside it */
  char cmd[200];
  snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", g_dir);
  FILE *p = popen(cmd, "r");
  int left = -1;
  assert_int_equal(fscanf(p, "%d", &left), 1);
  pclose(p);
  assert_int_equal(left, 0);
  onerec_dataset_free(a);
  /* Beauty format: no timestamps, no labels, no features */
  put("Beauty.txt", "5 1 2 3\n3 2 4\n9 7\n");
  ONEREC_OPTS(onerec_dataset_opts, bo, .format = "beauty");
  assert_ok(onerec_dataset_load(ctx, g_dir, &bo, &a));
  assert_ok(onerec_dataset_save(a, path_of("b.h5"), NULL));
  onerec_dataset *b = NULL;
  ONEREC_OPTS(onerec_dataset_opts, ho, .format = "h5");
  assert_ok(onerec_dataset_load(ctx, path_of("b.h5"), &ho, &b));
  assert_same(a, b);
  onerec_dataset_free(b);
  onerec_dataset_free(a);
  /* an empty data set */
  put("Beauty.txt", "");
  assert_ok(onerec_dataset_load(ctx, g_dir, &bo, &a));
  assert_ok(onerec_dataset_save(a, path_of("b.h5"), NULL));
  assert_ok(onerec_dataset_load(ctx, path_of("b.h5"), &ho, &b));
  assert_same(a, b);
  onerec_dataset_free(b);
  onerec_dataset_free(a);
  onerec_context_free(ctx);
}

static void test_windows(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_dataset *a = toy(ctx);
  ONEREC_OPTS(onerec_seqfile_opts, so, .chunk_users = 3);
  assert_ok(onerec_dataset_save(a, path_of("a.h5"), &so));
  onerec_seqfile_reader *r = NULL;
  assert_ok(onerec_seqfile_open(ctx, path_of("a.h5"), &r));
  int64_t users, rows, items, cu;
  assert_ok(onerec_seqfile_info(r, &users, &rows, &items, &cu));
  assert_int_equal(users, 7);
  assert_int_equal(rows, 17);
  assert_int_equal(items, 7);
  assert_int_equal(cu, 3);
  const int64_t *uid, *off;
  const int32_t *it, *cat;
  const double *ts;
  const float *lb;
  assert_ok(onerec_dataset_user_ids(a, &uid, NULL));
  assert_ok(onerec_dataset_interactions(a, NULL, &off, &it, &ts, &lb));
  assert_ok(onerec_dataset_static(a, NULL, &cat, NULL, NULL, NULL));
  /* every window, in an order that jumps between chunks */
  for (int64_t first = 6; first >= 0; first--)
    for (int64_t count = 0; first + count <= 7; count++) {
      ONEREC_OPTS(onerec_seqfile_window, w);
      assert_ok(onerec_seqfile_read(r, first, count, &w));
      assert_int_equal(w.first_user, first);
      assert_int_equal(w.users, count);
      assert_int_equal(w.rows, off[first + count] - off[first]);
      assert_int_equal(w.static_cat_count, 2);
      assert_int_equal(w.static_num_count, 1);
      for (int64_t u = 0; u < count; u++) {
        assert_int_equal(w.user_ids[u], uid[first + u]);
        assert_int_equal(w.offsets[u + 1] - w.offsets[u], off[first + u + 1] - off[first + u]);
        assert_int_equal(w.static_cat[2 * u + 1], cat[2 * (first + u) + 1]);
      }
      assert_int_equal(w.offsets[0], 0);
      const int64_t b = off[first];
      for (int64_t k = 0; k < w.rows; k++) {
        assert_int_equal(w.items[k], it[b + k]);
        assert_true(w.timestamps[k] == ts[b + k]);
        assert_true(w.labels[k] == lb[b + k]);
      }
    }
  ONEREC_OPTS(onerec_seqfile_window, w);
  assert_status(onerec_seqfile_read(r, 5, 3, &w), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_seqfile_read(r, -1, 1, &w), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_seqfile_window w0;
  memset(&w0, 0, sizeof w0);
  assert_status(onerec_seqfile_read(r, 0, 1, &w0), ONEREC_ERR_INVALID_ARGUMENT); /* sz 0 */
  /* a short window struct gets only the fields it has */
  onerec_seqfile_window ws;
  memset(&ws, 0x5a, sizeof ws);
  ws.sz = offsetof(onerec_seqfile_window, users) + sizeof(int64_t);
  assert_ok(onerec_seqfile_read(r, 2, 2, &ws));
  assert_int_equal(ws.users, 2);
  assert_int_equal(ws.rows, 0x5a5a5a5a5a5a5a5aLL);
  onerec_seqfile_close(r);
  onerec_seqfile_close(NULL);
  onerec_dataset_free(a);
  onerec_context_free(ctx);
}

static void test_writer(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  const char *p = path_of("a.h5");
  unlink(p);
  const int64_t ids[4] = {3, 8, 20, 21};
  ONEREC_OPTS(onerec_seqfile_opts, so, .chunk_users = 2);
  onerec_seqfile_writer *w = NULL;
  assert_ok(onerec_seqfile_writer_create(ctx, p, 4, ids, &so, &w));
  const int32_t it[5] = {0, 3, 2, 1, 1};
  const double ts[5] = {1, 2, 2, 5, 5};
  const float lb[5] = {1, 2, 3, 4, 5};
  assert_ok(onerec_seqfile_writer_add(w, 100, 3, it, ts, lb));
  assert_ok(onerec_seqfile_writer_add(w, 50, 1, it + 3, ts + 3, NULL));
  assert_ok(onerec_seqfile_writer_add(w, 70, 2, it + 3, ts + 3, lb + 3));
  assert_false(exists(p)); /* nothing at the path before commit */
  assert_ok(onerec_seqfile_writer_commit(w));
  assert_true(exists(p));
  onerec_dataset *ds = NULL;
  assert_ok(onerec_dataset_load(ctx, p, NULL, &ds));
  ONEREC_OPTS(onerec_dataset_info, in);
  assert_ok(onerec_dataset_get_info(ds, &in));
  assert_int_equal(in.users, 3);
  assert_int_equal(in.interactions, 6);
  assert_int_equal(in.has_timestamps, 1);
  int64_t u;
  assert_ok(onerec_dataset_user_index(ds, 50, &u));
  assert_int_equal(u, 1);
  const float *labels;
  assert_ok(onerec_dataset_interactions(ds, NULL, NULL, NULL, NULL, &labels));
  assert_true(labels[3] == 1.0f); /* NULL labels are 1 */
  assert_true(labels[5] == 5.0f);
  int32_t idx;
  assert_ok(onerec_dataset_item_index(ds, 21, &idx));
  assert_int_equal(idx, 3);
  onerec_dataset_free(ds);
  /* refusals: each leaves the writer unusable, and the old file in place */
  const int32_t bad_item[2] = {0, 4};
  const double back[2] = {5, 4};
  const double inf[1] = {INFINITY};
  const float nan_l[1] = {NAN};
  for (int k = 0; k < 6; k++) {
    assert_ok(onerec_seqfile_writer_create(ctx, p, 4, ids, &so, &w));
    assert_ok(onerec_seqfile_writer_add(w, 1, 1, it, ts, NULL));
    switch (k) {
      case 0: assert_status(onerec_seqfile_writer_add(w, 2, 2, bad_item, ts, NULL), ONEREC_ERR_INVALID_ARGUMENT); break;
      case 1: assert_status(onerec_seqfile_writer_add(w, 2, 2, it, back, NULL), ONEREC_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(onerec_last_error(), "goes back in time"));
        break;
      case 2: assert_status(onerec_seqfile_writer_add(w, 2, 0, it, ts, NULL), ONEREC_ERR_INVALID_ARGUMENT); break;
      case 3: assert_status(onerec_seqfile_writer_add(w, 2, 1, it, NULL, NULL), ONEREC_ERR_INVALID_ARGUMENT); break;
      case 4: assert_status(onerec_seqfile_writer_add(w, 2, 1, it, inf, NULL), ONEREC_ERR_INVALID_ARGUMENT); break;
      case 5: assert_status(onerec_seqfile_writer_add(w, 2, 1, it, ts, nan_l), ONEREC_ERR_INVALID_ARGUMENT); break;
    }
    if (k % 2) {
      assert_status(onerec_seqfile_writer_add(w, 3, 1, it, ts, NULL), ONEREC_ERR_INVALID_ARGUMENT);
      assert_status(onerec_seqfile_writer_commit(w), ONEREC_ERR_INVALID_ARGUMENT);
    } else {
      onerec_seqfile_writer_abort(w);
    }
    assert_ok(onerec_dataset_load(ctx, p, NULL, &ds)); /* the old file is intact */
    assert_ok(onerec_dataset_get_info(ds, &in));
    assert_int_equal(in.users, 3);
    onerec_dataset_free(ds);
  }
  onerec_seqfile_writer_abort(NULL);
  /* bad item tables and options */
  const int64_t unsorted[3] = {3, 3, 4};
  assert_status(onerec_seqfile_writer_create(ctx, p, 3, unsorted, NULL, &w),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_null(w);
  ONEREC_OPTS(onerec_seqfile_opts, bad, .chunk_users = -1);
  assert_status(onerec_seqfile_writer_create(ctx, p, 4, ids, &bad, &w),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_seqfile_writer_create(ctx, "/nonexistent/dir/x.h5", 4, ids, NULL, &w),
                ONEREC_ERR_IO);
  /* duplicate user ids are caught at load */
  assert_ok(onerec_seqfile_writer_create(ctx, path_of("b.h5"), 4, ids, &so, &w));
  assert_ok(onerec_seqfile_writer_add(w, 7, 1, it, ts, NULL));
  assert_ok(onerec_seqfile_writer_add(w, 8, 1, it, ts, NULL));
  assert_ok(onerec_seqfile_writer_add(w, 7, 1, it, ts, NULL));
  assert_ok(onerec_seqfile_writer_commit(w));
  assert_status(onerec_dataset_load(ctx, path_of("b.h5"), NULL, &ds), ONEREC_ERR_FORMAT);
  assert_non_null(strstr(onerec_last_error(), "user id 7 appears twice"));
  onerec_context_free(ctx);
}

/* ---- hand-made files: one user per chunk, two users, broken in one place each ---- */

typedef struct spec {
  const char *kind;
  int64_t version, users, chunks, items;
  int64_t cus[3], crs[3];
  int64_t uid[2], offs[2][3];
  int32_t item[4];
  double ts[4];
  int no_label; /* leave dataset label out of chunk 1 */
} spec;

static spec good_spec(void) {
  spec s = {"interactions", 1, 2, 2, 3, {0, 1, 2}, {0, 2, 4}, {11, 12},
            {{0, 2, 0}, {0, 2, 0}}, {0, 1, 2, 1}, {1, 2, 3, 3}, 0};
  return s;
}

static void write_spec(const spec *s) {
  orx_h5 h;
  assert_ok(orx_h5_create(&h, path_of("bad.h5")));
  assert_ok(orx_h5_attr_write_str(&h, h.file, "onerec_kind", s->kind));
  assert_ok(orx_h5_attr_write_i64(&h, h.file, "format_version", s->version));
  const char *names[] = {"users", "rows", "items", "chunk_users", "chunks", "has_timestamps",
                         "has_labels", "static_cat_count", "static_num_count", "tags"};
  const int64_t vals[] = {s->users, 4, s->items, 1, s->chunks, 1, 1, 0, 0, 0};
  for (int i = 0; i < 10; i++) assert_ok(orx_h5_attr_write_i64(&h, h.file, names[i], vals[i]));
  const int64_t ids[3] = {5, 6, 7}, ni = 3, nc = s->chunks + 1;
  assert_ok(orx_h5_write(&h, h.file, "item_ids", ORX_H5_I64, 1, &ni, ids));
  assert_ok(orx_h5_write(&h, h.file, "chunk_user_start", ORX_H5_I64, 1, &nc, s->cus));
  assert_ok(orx_h5_write(&h, h.file, "chunk_row_start", ORX_H5_I64, 1, &nc, s->crs));
  for (int c = 0; c < 2; c++) {
    char name[32];
    snprintf(name, sizeof name, "/chunks/%08d", c);
    hid_t g;
    assert_ok(orx_h5_group_create(&h, name, &g));
    const int64_t one = 1, two = 2;
    const float lb[2] = {1, 1};
    assert_ok(orx_h5_write(&h, g, "user_ids", ORX_H5_I64, 1, &one, &s->uid[c]));
    assert_ok(orx_h5_write(&h, g, "offsets", ORX_H5_I64, 1, &two, s->offs[c]));
    assert_ok(orx_h5_write(&h, g, "item", ORX_H5_I32, 1, &two, s->item + 2 * c));
    assert_ok(orx_h5_write(&h, g, "timestamp", ORX_H5_F64, 1, &two, s->ts + 2 * c));
    if (!(s->no_label && c == 1)) assert_ok(orx_h5_write(&h, g, "label", ORX_H5_F32, 1, &two, lb));
    orx_h5_group_close(g);
  }
  assert_ok(orx_h5_commit(&h));
}

static void expect_load(onerec_context *ctx, const spec *s, onerec_status code, const char *m1,
                        const char *m2) {
  write_spec(s);
  onerec_dataset *ds = (onerec_dataset *)1;
  assert_status(onerec_dataset_load(ctx, path_of("bad.h5"), NULL, &ds), code);
  if (code == ONEREC_OK) {
    onerec_dataset_free(ds);
    return;
  }
  assert_null(ds);
  const char *e = onerec_last_error();
  if (!strstr(e, m1) || (m2 && !strstr(e, m2)))
    fail_msg("message '%s' lacks '%s' / '%s'", e, m1, m2 ? m2 : "");
}

static void test_validated_load(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  spec s = good_spec();
  expect_load(ctx, &s, ONEREC_OK, NULL, NULL); /* the hand-made file itself is valid */
  s = good_spec();
  s.kind = "features";
  expect_load(ctx, &s, ONEREC_ERR_FORMAT, "is a libonerec features file", NULL);
  s = good_spec();
  s.version = 2;
  expect_load(ctx, &s, ONEREC_ERR_VERSION, "version 2", NULL);
  s = good_spec();
  s.item[3] = 3;
  expect_load(ctx, &s, ONEREC_ERR_FORMAT, "chunk 1 user 1 (id 12) row 1: item 3 outside 0..2",
              NULL);
  s = good_spec();
  s.ts[1] = 0.5;
  expect_load(ctx, &s, ONEREC_ERR_FORMAT, "chunk 0 user 0 (id 11) row 1", "goes back in time");
  s = good_spec();
  s.offs[1][1] = 0;
  expect_load(ctx, &s, ONEREC_ERR_FORMAT, "chunk 1", "offsets run 0..0, expected 0..2");
  s = good_spec();
  s.uid[1] = -4;
  expect_load(ctx, &s, ONEREC_ERR_FORMAT, "chunk 1 user 1: negative id -4", NULL);
  s = good_spec();
  s.uid[1] = 11;
  expect_load(ctx, &s, ONEREC_ERR_FORMAT, "user id 11 appears twice", NULL);
  s = good_spec();
  s.crs[2] = 5;
  expect_load(ctx, &s, ONEREC_ERR_FORMAT, "chunk index does not span", NULL);
  s = good_spec();
  s.cus[1] = 0;
  expect_load(ctx, &s, ONEREC_ERR_FORMAT, "chunk 0: 0 users", NULL);
  s = good_spec();
  s.items = -1;
  expect_load(ctx, &s, ONEREC_ERR_FORMAT, "inconsistent counts", NULL);
  s = good_spec();
  s.no_label = 1;
  expect_load(ctx, &s, ONEREC_ERR_FORMAT, "dataset label missing", NULL);
  s = good_spec();
  s.ts[2] = NAN;
  expect_load(ctx, &s, ONEREC_ERR_FORMAT, "non-finite timestamp", NULL);
  /* not HDF5 at all, a missing file */
  put("bad.h5", "user_id item_id\n");
  onerec_dataset *ds = NULL;
  assert_status(onerec_dataset_load(ctx, path_of("bad.h5"), NULL, &ds), ONEREC_ERR_FORMAT);
  assert_status(onerec_dataset_load(ctx, path_of("none.h5"), NULL, &ds), ONEREC_ERR_IO);
  onerec_seqfile_reader *r = NULL;
  assert_status(onerec_seqfile_open(ctx, path_of("none.h5"), &r), ONEREC_ERR_IO);
  assert_null(r);
  onerec_context_free(ctx);
}

static void test_beauty_real(void **state) {
  (void)state;
  char dir[4096], path[4200];
  snprintf(dir, sizeof dir, "%s/amazon", data_root());
  snprintf(path, sizeof path, "%s/Beauty.txt", dir);
  if (access(path, R_OK) != 0) {
    print_message("skipped: %s not found (set ONEREC_DATA_DIR to the data folder)\n", path);
    skip();
  }
  onerec_context *ctx = tu_cpu_context(1);
  onerec_dataset *a = NULL, *b = NULL;
  assert_ok(onerec_dataset_load(ctx, dir, NULL, &a));
  assert_ok(onerec_dataset_save(a, path_of("a.h5"), NULL));
  assert_ok(onerec_dataset_load(ctx, path_of("a.h5"), NULL, &b));
  assert_same(a, b);
  ONEREC_OPTS(onerec_dataset_info, in);
  assert_ok(onerec_dataset_get_info(b, &in));
  assert_int_equal(in.users, 22363);
  assert_int_equal(in.items, 12101);
  assert_int_equal(in.interactions, 198502);
  onerec_dataset_free(a);
  onerec_dataset_free(b);
  onerec_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_windows),
      cmocka_unit_test(test_writer),         cmocka_unit_test(test_validated_load),
      cmocka_unit_test(test_beauty_real),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
