/* The data set handle: loading a Beauty.txt-format file, item id remapping both ways, the
 * leave-one-out split, samples from history prefixes (against a naive reference built straight
 * from the README's protocol), seeded shuffling, RSFT-style filtering, batches in the model's
 * input layout. The real-data check skips when ../shared/data is absent. */
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* The reference data root: $ONEREC_DATA_DIR, else ../shared/data beside the repository. */
static const char *data_root(void) {
  const char *env = getenv("ONEREC_DATA_DIR");
  if (env && *env) return env;
  return "../shared/data";
}

typedef struct tmpdir {
  char path[64];
  char files[8][128];
  int n;
} tmpdir;

static void td_make(tmpdir *t) {
  memset(t, 0, sizeof *t);
  snprintf(t->path, sizeof t->path, "/tmp/onerec-ds-XXXXXX");
  assert_non_null(mkdtemp(t->path));
}

static const char *td_write(tmpdir *t, const char *name, const char *text) {
  assert_true(t->n < 8);
  char *p = t->files[t->n++];
  char buf[128];
  snprintf(buf, sizeof buf, "%s/%s", t->path, name);
  memcpy(p, buf, sizeof buf);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  fclose(f);
  return p;
}

static void td_remove(tmpdir *t) {
  for (int i = 0; i < t->n; i++) unlink(t->files[i]);
  rmdir(t->path);
}

/* ---- a naive reference of the protocol, from raw sequences ---- */

#define MAXU 16
#define MAXL 16
typedef struct ref_seq {
  int n_users;
  int64_t uid[MAXU];
  int len[MAXU];
  int64_t item[MAXU][MAXL]; /* original ids */
} ref_seq;

typedef struct ref_sample {
  int user;
  int hist_len;
  int64_t hist[MAXL]; /* original ids, oldest first */
  int64_t target;
} ref_sample;

/* Samples of a split as README.md describes them, histories cut to the max_h most recent. */
static int ref_samples(const ref_seq *r, onerec_split split, int max_h, ref_sample *out) {
  int k = 0;
  for (int u = 0; u < r->n_users; u++) {
    const int n = r->len[u];
    const int train = n >= 2 ? n - 2 : 0;
    int lo, hi; /* target positions */
    if (split == ONEREC_SPLIT_TRAIN) {
      lo = 1;
      hi = train;
    } else if (split == ONEREC_SPLIT_VALID) {
      lo = n - 2;
      hi = n >= 2 ? n - 1 : n - 2;
    } else {
      lo = n - 1;
      hi = n;
    }
    for (int t = lo; t < hi; t++) {
      ref_sample *s = &out[k++];
      s->user = u;
      const int b = t > max_h ? t - max_h : 0;
      s->hist_len = t - b;
      for (int j = b; j < t; j++) s->hist[j - b] = r->item[u][j];
      s->target = r->item[u][t];
    }
  }
  return k;
}

static const char beauty_text[] =
    "1 10 11 12 13 14 15\n"
    "2 20 21\n"
    "7 30\n"
    "4 40 41 42\n"
    "5 14 10 12 99 10 20 11\n";

static ref_seq beauty_ref(void) {
  ref_seq r;
  memset(&r, 0, sizeof r);
  const char *p = beauty_text;
  while (*p) {
    char *end;
    r.uid[r.n_users] = strtoll(p, &end, 10);
    p = end;
    while (*p == ' ') {
      r.item[r.n_users][r.len[r.n_users]++] = strtoll(p, &end, 10);
      p = end;
    }
    assert_true(*p == '\n');
    p++;
    r.n_users++;
  }
  return r;
}

static onerec_dataset *load_text(onerec_context *ctx, tmpdir *t, const char *text) {
  td_write(t, "Beauty.txt", text);
  onerec_dataset *ds = NULL;
  ONEREC_OPTS(onerec_dataset_opts, o, .format = "beauty");
  assert_ok(onerec_dataset_load(ctx, t->path, &o, &ds));
  return ds;
}

static void test_load_and_ids(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  tmpdir t;
  td_make(&t);
  onerec_dataset *ds = load_text(ctx, &t, beauty_text);
  ONEREC_OPTS(onerec_dataset_info, in);
  assert_ok(onerec_dataset_get_info(ds, &in));
  assert_int_equal(in.users, 5);
  assert_int_equal(in.interactions, 6 + 2 + 1 + 3 + 7);
  /* distinct ids: 10 11 12 13 14 15 20 21 30 40 41 42 99 */
  assert_int_equal(in.items, 13);
  assert_string_equal(in.format, "beauty");
  assert_int_equal(in.has_timestamps, 0);
  /* train: user 1 has 4 training items -> 3 samples, user 4: 1 -> 0, user 5: 5 -> 4 */
  assert_int_equal(in.train_interactions, 4 + 0 + 0 + 1 + 5);
  assert_int_equal(in.train_samples, 3 + 4);
  assert_int_equal(in.valid_samples, 4);
  assert_int_equal(in.test_samples, 5);
  /* ids both ways, ascending */
  const int64_t *ids;
  int64_t n;
  assert_ok(onerec_dataset_item_ids(ds, &ids, &n));
  const int64_t want[13] = {10, 11, 12, 13, 14, 15, 20, 21, 30, 40, 41, 42, 99};
  assert_int_equal(n, 13);
  assert_memory_equal(ids, want, sizeof want);
  for (int i = 0; i < 13; i++) {
    int32_t idx = -5;
    assert_ok(onerec_dataset_item_index(ds, want[i], &idx));
    assert_int_equal(idx, i);
  }
  int32_t idx;
  assert_status(onerec_dataset_item_index(ds, 16, &idx), ONEREC_ERR_NOT_FOUND);
  assert_int_equal(idx, -1);
  assert_status(onerec_dataset_item_index(ds, -1, &idx), ONEREC_ERR_NOT_FOUND);
  /* users in file order, lookups by id */
  const int64_t *uids;
  assert_ok(onerec_dataset_user_ids(ds, &uids, &n));
  const int64_t wu[5] = {1, 2, 7, 4, 5};
  assert_memory_equal(uids, wu, sizeof wu);
  for (int u = 0; u < 5; u++) {
    int64_t ui = -1;
    assert_ok(onerec_dataset_user_index(ds, wu[u], &ui));
    assert_int_equal(ui, u);
  }
  int64_t ui;
  assert_status(onerec_dataset_user_index(ds, 3, &ui), ONEREC_ERR_NOT_FOUND);
  /* the interaction table maps back to the text */
  ref_seq r = beauty_ref();
  const int64_t *off;
  const int32_t *items;
  const float *labels;
  const double *ts;
  assert_ok(onerec_dataset_interactions(ds, &n, &off, &items, &ts, &labels));
  for (int u = 0; u < r.n_users; u++) {
    assert_int_equal(off[u + 1] - off[u], r.len[u]);
    for (int j = 0; j < r.len[u]; j++) {
      assert_int_equal(ids[items[off[u] + j]], r.item[u][j]);
      assert_true(labels[off[u] + j] == 1.0f);
      assert_true(ts[off[u] + j] == 0.0);
    }
  }
  /* split rows */
  int64_t tl, vr, tr;
  assert_ok(onerec_dataset_split(ds, 0, &tl, &vr, &tr));
  assert_int_equal(tl, 4);
  assert_int_equal(vr, 4);
  assert_int_equal(tr, 5);
  assert_ok(onerec_dataset_split(ds, 2, &tl, &vr, &tr)); /* one item: test only */
  assert_int_equal(tl, 0);
  assert_int_equal(vr, -1);
  assert_int_equal(tr, off[2]);
  assert_ok(onerec_dataset_split(ds, 1, &tl, &vr, &tr)); /* two: valid + test */
  assert_int_equal(tl, 0);
  assert_int_equal(vr, off[1]);
  assert_status(onerec_dataset_split(ds, 5, &tl, &vr, &tr), ONEREC_ERR_INVALID_ARGUMENT);
  /* training CSR with original ids, for onerec_collab_mine */
  int64_t co[6], ci[10];
  assert_status(onerec_dataset_train_csr(ds, co, 6, ci, 9), ONEREC_ERR_BUFFER_TOO_SMALL);
  assert_ok(onerec_dataset_train_csr(ds, co, 6, ci, 10));
  const int64_t wco[6] = {0, 4, 4, 4, 5, 10};
  const int64_t wci[10] = {10, 11, 12, 13, 40, 14, 10, 12, 99, 10};
  assert_memory_equal(co, wco, sizeof wco);
  assert_memory_equal(ci, wci, sizeof wci);
  /* no static features, no tags */
  int32_t nc = -1, nn = -1, nt = -1;
  assert_ok(onerec_dataset_static(ds, &nc, NULL, NULL, &nn, NULL));
  assert_int_equal(nc, 0);
  assert_int_equal(nn, 0);
  assert_ok(onerec_dataset_item_tags(ds, &nt, NULL, NULL));
  assert_int_equal(nt, 0);
  assert_null(onerec_dataset_tag_name(ds, 0));
  assert_null(onerec_dataset_feature_name(ds, 0, 0));
  onerec_dataset_free(ds);
  td_remove(&t);
  onerec_context_free(ctx);
}

static void check_samples(const onerec_dataset *ds, const ref_seq *r, onerec_split split,
                          int max_h) {
  ref_sample want[64];
  const int nw = ref_samples(r, split, max_h, want);
  ONEREC_OPTS(onerec_samples_opts, so, .max_history = max_h);
  onerec_samples *s = NULL;
  assert_ok(onerec_samples_create(ds, split, &so, &s));
  assert_int_equal(onerec_samples_count(s), nw);
  const int64_t *ids, *off;
  const int32_t *items;
  assert_ok(onerec_dataset_item_ids(ds, &ids, NULL));
  assert_ok(onerec_dataset_interactions(ds, NULL, &off, &items, NULL, NULL));
  for (int i = 0; i < nw; i++) {
    int64_t u, hb, he;
    int32_t t;
    assert_ok(onerec_samples_get(s, i, &u, &hb, &he, &t));
    assert_int_equal(u, want[i].user);
    assert_int_equal(ids[t], want[i].target);
    assert_int_equal(items[he], t);
    assert_int_equal(he - hb, want[i].hist_len);
    assert_true(hb >= off[u] && he < off[u + 1]);
    for (int j = 0; j < want[i].hist_len; j++) assert_int_equal(ids[items[hb + j]], want[i].hist[j]);
  }
  assert_status(onerec_samples_get(s, nw, NULL, NULL, NULL, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_samples_free(s);
}

static void test_samples_protocol(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  tmpdir t;
  td_make(&t);
  onerec_dataset *ds = load_text(ctx, &t, beauty_text);
  ref_seq r = beauty_ref();
  const int hs[] = {1, 2, 3, 50};
  for (int sp = 0; sp < 3; sp++)
    for (int h = 0; h < 4; h++) check_samples(ds, &r, (onerec_split)sp, hs[h]);
  /* the test history is training + validation; the target is the last item */
  onerec_samples *s = NULL;
  assert_ok(onerec_samples_create(ds, ONEREC_SPLIT_TEST, NULL, &s));
  int64_t u, hb, he;
  int32_t tg;
  assert_ok(onerec_samples_get(s, 0, &u, &hb, &he, &tg));
  assert_int_equal(he - hb, 5);
  onerec_samples_free(s);
  /* min_history drops short histories */
  ONEREC_OPTS(onerec_samples_opts, so, .min_history = 3);
  assert_ok(onerec_samples_create(ds, ONEREC_SPLIT_TRAIN, &so, &s));
  assert_int_equal(onerec_samples_count(s), 1 + 2); /* user 1: t = 3; user 5: t = 3, 4 */
  onerec_samples_free(s);
  ONEREC_OPTS(onerec_samples_opts, bad, .max_history = -2);
  assert_status(onerec_samples_create(ds, ONEREC_SPLIT_TRAIN, &bad, &s), ONEREC_ERR_INVALID_ARGUMENT);
  assert_null(s);
  assert_status(onerec_samples_create(ds, (onerec_split)3, NULL, &s), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_samples_create(NULL, ONEREC_SPLIT_TRAIN, NULL, &s),
                ONEREC_ERR_INVALID_ARGUMENT);
  onerec_dataset_free(ds);
  td_remove(&t);
  onerec_context_free(ctx);
}

/* Target rows in the current order (a sample is identified by its target row). */
static void rows_of(const onerec_samples *s, int64_t *rows) {
  for (int64_t i = 0; i < onerec_samples_count(s); i++)
    assert_ok(onerec_samples_get(s, i, NULL, NULL, &rows[i], NULL));
}

/* A data set of many users with varying lengths, for shuffles and filters. */
static char *long_text(int users) {
  char *buf = malloc((size_t)users * 200);
  size_t o = 0;
  uint64_t st = 7;
  for (int u = 0; u < users; u++) {
    int len = 1 + (int)((tu_rand(&st) + 1.0f) * 8);
    o += (size_t)sprintf(buf + o, "%d", 100 + u);
    for (int j = 0; j < len; j++) o += (size_t)sprintf(buf + o, " %d", (int)((tu_rand(&st) + 1) * 50));
    buf[o++] = '\n';
  }
  buf[o] = '\0';
  return buf;
}

static void test_shuffle(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  tmpdir t;
  td_make(&t);
  char *text = long_text(60);
  onerec_dataset *ds = load_text(ctx, &t, text);
  free(text);
  onerec_samples *s = NULL;
  assert_ok(onerec_samples_create(ds, ONEREC_SPLIT_TRAIN, NULL, &s));
  const int64_t n = onerec_samples_count(s);
  assert_true(n > 100);
  int64_t *canon = malloc((size_t)n * 8), *a = malloc((size_t)n * 8), *b = malloc((size_t)n * 8);
  rows_of(s, canon);
  for (int64_t i = 1; i < n; i++) assert_true(canon[i] > canon[i - 1]); /* canonical: ascending */
  assert_ok(onerec_samples_shuffle(s, 42));
  rows_of(s, a);
  /* a permutation of the canonical rows, not the identity */
  int64_t *sorted = malloc((size_t)n * 8);
  memcpy(sorted, a, (size_t)n * 8);
  int moved = 0;
  for (int64_t i = 0; i < n; i++) moved += a[i] != canon[i];
  assert_true(moved > n / 2);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = i + 1; j < n; j++)
      if (sorted[j] < sorted[i]) {
        int64_t x = sorted[i];
        sorted[i] = sorted[j];
        sorted[j] = x;
      }
  assert_memory_equal(sorted, canon, (size_t)n * 8);
  /* depends on the seed only, not on earlier shuffles */
  assert_ok(onerec_samples_shuffle(s, 43));
  rows_of(s, b);
  assert_true(memcmp(a, b, (size_t)n * 8) != 0);
  assert_ok(onerec_samples_shuffle(s, 42));
  rows_of(s, b);
  assert_memory_equal(a, b, (size_t)n * 8);
  /* and is the same for an independent sample list */
  onerec_samples *s2 = NULL;
  assert_ok(onerec_samples_create(ds, ONEREC_SPLIT_TRAIN, NULL, &s2));
  assert_ok(onerec_samples_shuffle(s2, 42));
  rows_of(s2, b);
  assert_memory_equal(a, b, (size_t)n * 8);
  assert_ok(onerec_samples_unshuffle(s2));
  rows_of(s2, b);
  assert_memory_equal(canon, b, (size_t)n * 8);
  /* every position is reachable: over many seeds each sample lands first at least once
   * for a small list */
  onerec_samples_free(s2);
  onerec_samples_free(s);
  free(canon);
  free(a);
  free(b);
  free(sorted);
  onerec_dataset_free(ds);
  td_remove(&t);
  onerec_context_free(ctx);
}

/* The reference filter: drop the floor(f n) smallest (value, target row), keep the order. */
static int64_t ref_filter(const int64_t *rows, const double *v, int64_t n, double f,
                          int64_t *out) {
  const int64_t drop = (int64_t)floor(f * (double)n);
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t below = 0; /* samples ordered before i */
    for (int64_t j = 0; j < n; j++) below += v[j] < v[i] || (v[j] == v[i] && rows[j] < rows[i]);
    if (below >= drop) out[k++] = rows[i];
  }
  return k;
}

static void test_filter(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  tmpdir t;
  td_make(&t);
  char *text = long_text(40);
  onerec_dataset *ds = load_text(ctx, &t, text);
  free(text);
  const int64_t *off;
  assert_ok(onerec_dataset_interactions(ds, NULL, &off, NULL, NULL, NULL));
  const double fr[] = {0.0, 0.25, 0.5, 0.999, 1.0};
  for (int sig = 0; sig < 4; sig++)
    for (int fi = 0; fi < 5; fi++) {
      onerec_samples *s = NULL;
      ONEREC_OPTS(onerec_samples_opts, so, .max_history = 3);
      assert_ok(onerec_samples_create(ds, ONEREC_SPLIT_TRAIN, &so, &s));
      assert_ok(onerec_samples_shuffle(s, 5 + (uint64_t)fi));
      const int64_t n = onerec_samples_count(s);
      int64_t *rows = malloc((size_t)n * 8), *want = malloc((size_t)n * 8),
              *got = malloc((size_t)n * 8);
      double *v = malloc((size_t)n * 8);
      rows_of(s, rows);
      uint64_t st = 99;
      for (int64_t i = 0; i < n; i++) {
        int64_t u;
        assert_ok(onerec_samples_get(s, i, &u, NULL, NULL, NULL));
        if (sig == ONEREC_SIGNAL_LABEL || sig == ONEREC_SIGNAL_HISTORY_LABEL)
          v[i] = 1.0; /* Beauty labels are all 1: every tie goes to canonical order */
        else if (sig == ONEREC_SIGNAL_HISTORY_LEN)
          v[i] = (double)(rows[i] - off[u]);
        else
          v[i] = floor((tu_rand(&st) + 1) * 3); /* few distinct values: many ties */
      }
      const int64_t nk = ref_filter(rows, v, n, fr[fi], want);
      assert_ok(onerec_samples_filter(s, (onerec_signal)sig, v, (size_t)n, fr[fi]));
      assert_int_equal(onerec_samples_count(s), nk);
      rows_of(s, got);
      assert_memory_equal(got, want, (size_t)nk * 8);
      /* the kept set survives a reshuffle: unshuffle gives it in canonical order */
      assert_ok(onerec_samples_unshuffle(s));
      rows_of(s, got);
      for (int64_t i = 1; i < nk; i++) assert_true(got[i] > got[i - 1]);
      onerec_samples_free(s);
      free(rows);
      free(want);
      free(got);
      free(v);
    }
  onerec_samples *s = NULL;
  assert_ok(onerec_samples_create(ds, ONEREC_SPLIT_TRAIN, NULL, &s));
  double vals[2] = {1, NAN};
  assert_status(onerec_samples_filter(s, ONEREC_SIGNAL_LABEL, NULL, 0, 1.5),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_samples_filter(s, ONEREC_SIGNAL_LABEL, NULL, 0, NAN),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_samples_filter(s, (onerec_signal)9, NULL, 0, 0.5),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_samples_filter(s, ONEREC_SIGNAL_CUSTOM, NULL, 0, 0.5),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_samples_filter(s, ONEREC_SIGNAL_CUSTOM, vals, 2, 0.5),
                ONEREC_ERR_INVALID_ARGUMENT);
  onerec_samples_free(s);
  onerec_dataset_free(ds);
  td_remove(&t);
  onerec_context_free(ctx);
}

/* RecBole data with ratings, timestamps, user features and tags, for the batch layout. */
static void test_batch(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  tmpdir t;
  td_make(&t);
  td_write(&t, "toy.inter",
           "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
           "1\t100\t5\t10\n1\t101\t2\t20\n1\t102\t4\t30\n1\t103\t1\t40\n1\t104\t3\t50\n"
           "1\t105\t5\t60\n2\t100\t4\t5\n2\t102\t3\t6\n2\t101\t2\t7\n");
  td_write(&t, "toy.user",
           "user_id:token\tage:token\tgender:token\n1\t30\tF\n2\t17\tM\n");
  td_write(&t, "toy.item", "item_id:token\tclass:token_seq\n100\tA B\n102\tB\n105\tC\n");
  onerec_dataset *ds = NULL;
  assert_ok(onerec_dataset_load(ctx, t.path, NULL, &ds));
  onerec_samples *s = NULL;
  ONEREC_OPTS(onerec_samples_opts, so, .max_history = 4);
  assert_ok(onerec_samples_create(ds, ONEREC_SPLIT_TEST, &so, &s));
  assert_int_equal(onerec_samples_count(s), 2);
  /* codes: item i -> (i, 10 + i) */
  int32_t codes[12];
  for (int i = 0; i < 6; i++) {
    codes[2 * i] = i;
    codes[2 * i + 1] = 10 + i;
  }
  ONEREC_OPTS(onerec_batch_opts, bo, .max_batch = 2, .short_len = 2, .positive_len = 2,
              .positive_label = 4.0f, .lifelong_len = 8, .uid_buckets = 1000);
  onerec_batch *b = NULL;
  assert_ok(onerec_batch_create(ds, &bo, &b));
  ONEREC_OPTS(onerec_user_batch, ub);
  int32_t targets[2];
  const int32_t *tc = (const int32_t *)1;
  assert_ok(onerec_batch_fill(b, s, 0, 2, &ub, targets, 2, &tc));
  assert_null(tc);
  assert_int_equal(ub.batch, 2);
  /* user 1: history rows 1..4 (items 101..104, max_history 4), target 105 */
  assert_int_equal(targets[0], 5);
  assert_int_equal(targets[1], 1); /* user 2 sorted by time: 100, 102, 101 */
  /* short: last two of the history */
  assert_int_equal(ub.short_term.offsets[1], 2);
  assert_int_equal(ub.short_term.items[0], 3);
  assert_int_equal(ub.short_term.items[1], 4);
  /* positive (label >= 4) within the history 101(2) 102(4) 103(1) 104(3): only 102 */
  assert_int_equal(ub.positive.offsets[1], 1);
  assert_int_equal(ub.positive.items[0], 2);
  /* user 2's positives: 100(4) only (102 has 3) */
  assert_int_equal(ub.positive.offsets[2] - ub.positive.offsets[1], 1);
  assert_int_equal(ub.positive.items[1], 0);
  /* lifelong: the whole kept history (4 rows), then user 2's two */
  assert_int_equal(ub.lifelong.offsets[1], 4);
  assert_int_equal(ub.lifelong.offsets[2], 6);
  /* per-row columns of the first lifelong row: item 101 (no tag), label 2, 30 s before 104 */
  const int32_t *c = ub.lifelong.cat;
  assert_int_equal(c[ONEREC_DATA_CAT_AUTHOR], -1);
  assert_int_equal(c[ONEREC_DATA_CAT_TAG], -1);
  assert_int_equal(c[ONEREC_DATA_CAT_LABEL], 2);
  /* second row: item 102, tag B (second tag seen: A = 0, B = 1), label 4 */
  assert_int_equal(c[3 + ONEREC_DATA_CAT_TAG], 1);
  assert_int_equal(c[3 + ONEREC_DATA_CAT_LABEL], 4);
  const float year = 365.25f * 86400.0f;
  assert_float_equal(ub.lifelong.num[ONEREC_DATA_NUM_AGE], 30.0f / year, 1e-12);
  assert_float_equal(ub.lifelong.num[3 * 3 + ONEREC_DATA_NUM_AGE], 0.0f, 0);
  /* user 2's first row: item 100, tag A */
  assert_int_equal(c[4 * 3 + ONEREC_DATA_CAT_TAG], 0);
  /* static: uid bucket (user index), age bucket (30 -> 25-34 = 2; 17 -> 0), gender */
  assert_non_null(ub.static_cat);
  const int32_t ws[6] = {0, 2, 0, 1, 0, 1};
  assert_memory_equal(ub.static_cat, ws, sizeof ws);
  assert_float_equal(ub.static_num[0], 30.0f, 0);
  assert_float_equal(ub.static_num[1], 17.0f, 0);
  onerec_batch_free(b);
  /* by semantic ID, without positive and lifelong data */
  ONEREC_OPTS(onerec_batch_opts, bo2, .max_batch = 2, .positive_len = -1, .levels = 2,
              .item_codes = codes);
  assert_ok(onerec_batch_create(ds, &bo2, &b));
  assert_status(onerec_batch_fill(b, s, 1, 2, &ub, NULL, 0, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_batch_fill(b, s, 0, 2, &ub, targets, 1, NULL),
                ONEREC_ERR_BUFFER_TOO_SMALL);
  assert_ok(onerec_batch_fill(b, s, 1, 1, &ub, NULL, 0, &tc));
  assert_int_equal(tc[0], 1);
  assert_int_equal(tc[1], 11);
  assert_null(ub.positive.offsets);
  assert_null(ub.lifelong.offsets);
  assert_int_equal(ub.short_term.offsets[1], 2); /* 100, 102 */
  const int32_t wi[4] = {0, 10, 2, 12};
  assert_memory_equal(ub.short_term.items, wi, sizeof wi);
  onerec_batch_free(b);
  ONEREC_OPTS(onerec_batch_opts, bo3, .item_codes = codes);
  assert_status(onerec_batch_create(ds, &bo3, &b), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_samples_free(s);
  onerec_dataset_free(ds);
  td_remove(&t);
  onerec_context_free(ctx);
}

static void test_bad_input(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  tmpdir t;
  td_make(&t);
  onerec_dataset *ds = (onerec_dataset *)1;
  ONEREC_OPTS(onerec_dataset_opts, o, .format = "beauty");
  td_write(&t, "Beauty.txt", "1 2 3\n2 x\n");
  assert_status(onerec_dataset_load(ctx, t.path, &o, &ds), ONEREC_ERR_FORMAT);
  assert_null(ds);
  assert_non_null(strstr(onerec_last_error(), "Beauty.txt:2:"));
  td_write(&t, "Beauty.txt", "1 2 3\n1 4\n");
  assert_status(onerec_dataset_load(ctx, t.path, &o, &ds), ONEREC_ERR_FORMAT);
  td_write(&t, "Beauty.txt", "1 2 3\n5\n");
  assert_status(onerec_dataset_load(ctx, t.path, &o, &ds), ONEREC_ERR_FORMAT);
  assert_non_null(strstr(onerec_last_error(), "no items"));
  ONEREC_OPTS(onerec_dataset_opts, bad, .format = "csv");
  assert_status(onerec_dataset_load(ctx, t.path, &bad, &ds), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_dataset_load(ctx, "/nonexistent/dir", NULL, &ds), ONEREC_ERR_IO);
  assert_status(onerec_dataset_load(ctx, "/nonexistent/dir", &o, &ds), ONEREC_ERR_IO);
  assert_status(onerec_dataset_load(NULL, t.path, &o, &ds), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_dataset_load(ctx, NULL, &o, &ds), ONEREC_ERR_INVALID_ARGUMENT);
  /* auto: a folder with Beauty.txt; an empty file is an empty data set */
  td_write(&t, "Beauty.txt", "");
  assert_ok(onerec_dataset_load(ctx, t.path, NULL, &ds));
  ONEREC_OPTS(onerec_dataset_info, in);
  assert_ok(onerec_dataset_get_info(ds, &in));
  assert_int_equal(in.users, 0);
  onerec_samples *s = NULL;
  assert_ok(onerec_samples_create(ds, ONEREC_SPLIT_TRAIN, NULL, &s));
  assert_int_equal(onerec_samples_count(s), 0);
  assert_ok(onerec_samples_shuffle(s, 1));
  assert_ok(onerec_samples_filter(s, ONEREC_SIGNAL_LABEL, NULL, 0, 0.5));
  onerec_samples_free(s);
  onerec_dataset_free(ds);
  /* NULL handles */
  onerec_dataset_free(NULL);
  onerec_samples_free(NULL);
  onerec_batch_free(NULL);
  assert_int_equal(onerec_samples_count(NULL), -1);
  assert_status(onerec_dataset_get_info(NULL, &in), ONEREC_ERR_INVALID_ARGUMENT);
  td_remove(&t);
  onerec_context_free(ctx);
}

static void test_beauty_real(void **state) {
  (void)state;
  char path[4096];
  snprintf(path, sizeof path, "%s/amazon/Beauty.txt", data_root());
  if (access(path, R_OK) != 0) {
    print_message("skipped: %s not found (set ONEREC_DATA_DIR to the data folder)\n", path);
    skip();
  }
  onerec_context *ctx = tu_cpu_context(1);
  onerec_dataset *ds = NULL;
  snprintf(path, sizeof path, "%s/amazon", data_root());
  assert_ok(onerec_dataset_load(ctx, path, NULL, &ds));
  ONEREC_OPTS(onerec_dataset_info, in);
  assert_ok(onerec_dataset_get_info(ds, &in));
  assert_int_equal(in.users, 22363);
  assert_int_equal(in.items, 12101);
  assert_int_equal(in.interactions, 198502);
  /* every user has >= 5 items: n - 3 training samples each */
  assert_int_equal(in.train_samples, 198502 - 3 * 22363);
  assert_int_equal(in.train_interactions, 198502 - 2 * 22363);
  assert_int_equal(in.valid_samples, 22363);
  assert_int_equal(in.test_samples, 22363);
  /* ids are 1..12101, so the dense index is id - 1 */
  const int64_t *ids;
  assert_ok(onerec_dataset_item_ids(ds, &ids, NULL));
  assert_int_equal(ids[0], 1);
  assert_int_equal(ids[12100], 12101);
  onerec_samples *s = NULL;
  assert_ok(onerec_samples_create(ds, ONEREC_SPLIT_TRAIN, NULL, &s));
  assert_int_equal(onerec_samples_count(s), in.train_samples);
  assert_ok(onerec_samples_filter(s, ONEREC_SIGNAL_HISTORY_LEN, NULL, 0, 0.5));
  assert_int_equal(onerec_samples_count(s), in.train_samples - in.train_samples / 2);
  onerec_samples_free(s);
  onerec_dataset_free(ds);
  onerec_context_free(ctx);
}

/* Runs the CLI ($ONEREC_CLI, set by make test) with args; stdout into out; the exit status. */
static int run_cli(const char *args, char *out, size_t len) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", getenv("ONEREC_CLI"), args);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, len - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `onerec data stats` and the popularity baseline on a toy whose numbers are worked by hand. */
static void test_cli_data(void **state) {
  (void)state;
  if (!getenv("ONEREC_CLI")) {
    print_message("skipped: ONEREC_CLI not set (run through make test)\n");
    skip();
  }
  tmpdir t;
  td_make(&t);
  td_write(&t, "Beauty.txt", "1 1 2 3 4\n2 1 2 5 6\n3 2 1 7 2\n");
  char args[256], out[4096];
  snprintf(args, sizeof args, "data stats --data %s --dataset beauty --json", t.path);
  assert_int_equal(run_cli(args, out, sizeof out), 0);
  assert_true(tu_json_num(out, "users") == 3);
  assert_true(tu_json_num(out, "items") == 7);
  assert_true(tu_json_num(out, "interactions") == 12);
  assert_true(tu_json_num(out, "train_samples") == 3);
  assert_true(tu_json_num(out, "valid_samples") == 3);
  assert_true(tu_json_num(out, "test_samples") == 3);
  /* training popularity: items 1 and 2 three times each, the rest never; ranking 1 2 3 4 5 6 7.
   * Test targets 4, 6, 2 sit at ranks 3, 5, 1. */
  snprintf(args, sizeof args, "data baseline --data %s --dataset beauty --json", t.path);
  assert_int_equal(run_cli(args, out, sizeof out), 0);
  const double l3 = 1 / log2(3.0), l5 = 1 / log2(5.0), l7 = 1 / log2(7.0);
  assert_true(fabs(tu_json_num(out, "recall@5") - 2.0 / 3) < 1e-6);
  assert_true(fabs(tu_json_num(out, "ndcg@5") - (l5 + l3) / 3) < 1e-6);
  assert_true(fabs(tu_json_num(out, "recall@10") - 1.0) < 1e-6);
  assert_true(fabs(tu_json_num(out, "ndcg@10") - (l5 + l7 + l3) / 3) < 1e-6);
  /* without the items a user has: 4 first for user 1; 3 4 6 for user 2; user 3's target 2 is
   * in its history but a target is never excluded: rank 0 */
  snprintf(args, sizeof args,
           "data baseline --data %s --dataset beauty --exclude-history --json", t.path);
  assert_int_equal(run_cli(args, out, sizeof out), 0);
  assert_true(fabs(tu_json_num(out, "recall@5") - 1.0) < 1e-6);
  assert_true(fabs(tu_json_num(out, "ndcg@5") - (1 + 0.5 + 1) / 3) < 1e-6);
  /* errors: exit status 1 for bad data, 2 for bad usage */
  snprintf(args, sizeof args, "data stats --data %s/none --dataset beauty", t.path);
  assert_int_equal(run_cli(args, out, sizeof out), 1);
  assert_int_equal(run_cli("data stats --dataset beauty", out, sizeof out), 2);
  assert_int_equal(run_cli("data stats --data x --dataset csv", out, sizeof out), 2);
  assert_int_equal(run_cli("data frobnicate", out, sizeof out), 2);
  td_remove(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_and_ids),  cmocka_unit_test(test_samples_protocol),
      cmocka_unit_test(test_shuffle),       cmocka_unit_test(test_filter),
      cmocka_unit_test(test_batch),         cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_beauty_real),   cmocka_unit_test(test_cli_data),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
