/* The item catalogue: lookups both ways, trie legality against brute force (dense and hashed
 * child lookups), add / retire / commit with duplicates and collisions rejected, readers running
 * during commits, save / load and rejected files. */
#include <pthread.h>
#include <unistd.h>

#include "catalog_impl.h"
#include "h5io.h"
#include "onerec/catalog.h"
#include "testutil.h"

static char g_dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/onerec-cat-XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  return system(cmd);
}

static onerec_catalog *make_catalog(onerec_context *ctx, int levels, int K) {
  ONEREC_OPTS(onerec_catalog_opts, o, .levels = levels, .codes_per_level = K);
  onerec_catalog *cat = NULL;
  assert_ok(onerec_catalog_create(ctx, &o, &cat));
  return cat;
}

static void test_basic(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_catalog *cat = make_catalog(ctx, 3, 8);
  const int64_t ids[4] = {100, 7, 123456789012345ll, 42};
  const int32_t codes[12] = {1, 2, 3, 1, 2, 5, 1, 4, 0, 6, 0, 0};
  assert_ok(onerec_catalog_add(cat, 4, ids, codes));
  int levels = 0, K = 0;
  int64_t items = -1;
  assert_ok(onerec_catalog_info(cat, &levels, &K, &items));
  assert_int_equal(levels, 3);
  assert_int_equal(K, 8);
  assert_int_equal(items, 0); /* staged, not committed */
  int32_t next[8];
  size_t count = 99;
  assert_ok(onerec_catalog_next_codes(cat, NULL, 0, next, 8, &count));
  assert_int_equal(count, 0);
  assert_ok(onerec_catalog_commit(cat));
  assert_ok(onerec_catalog_info(cat, NULL, NULL, &items));
  assert_int_equal(items, 4);

  for (int i = 0; i < 4; i++) {
    int32_t c[3];
    int64_t id = -1;
    assert_ok(onerec_catalog_codes_of(cat, ids[i], c));
    assert_memory_equal(c, codes + 3 * i, sizeof c);
    assert_ok(onerec_catalog_item_of(cat, codes + 3 * i, &id));
    assert_int_equal(id, ids[i]);
  }
  assert_ok(onerec_catalog_next_codes(cat, NULL, 0, next, 8, &count));
  assert_int_equal(count, 2);
  assert_int_equal(next[0], 1);
  assert_int_equal(next[1], 6);
  assert_ok(onerec_catalog_next_codes(cat, (const int32_t[]){1}, 1, next, 8, &count));
  assert_int_equal(count, 2);
  assert_int_equal(next[0], 2);
  assert_int_equal(next[1], 4);
  assert_ok(onerec_catalog_next_codes(cat, (const int32_t[]){1, 2}, 2, next, 8, &count));
  assert_int_equal(count, 2);
  assert_int_equal(next[0], 3);
  assert_int_equal(next[1], 5);
  /* illegal prefixes have no continuation; out-of-range codes are simply illegal */
  assert_ok(onerec_catalog_next_codes(cat, (const int32_t[]){2}, 1, next, 8, &count));
  assert_int_equal(count, 0);
  assert_ok(onerec_catalog_next_codes(cat, (const int32_t[]){1, 3}, 2, next, 8, &count));
  assert_int_equal(count, 0);
  assert_ok(onerec_catalog_next_codes(cat, (const int32_t[]){-1}, 1, next, 8, &count));
  assert_int_equal(count, 0);
  assert_ok(onerec_catalog_next_codes(cat, (const int32_t[]){8}, 1, next, 8, &count));
  assert_int_equal(count, 0);
  assert_status(onerec_catalog_next_codes(cat, NULL, 0, next, 1, &count),
                ONEREC_ERR_BUFFER_TOO_SMALL);
  assert_int_equal(count, 2);
  assert_status(onerec_catalog_next_codes(cat, (const int32_t[]){1, 2, 3}, 3, next, 8, &count),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_catalog_next_codes(cat, NULL, 1, next, 8, &count),
                ONEREC_ERR_INVALID_ARGUMENT);
  int64_t id;
  int32_t c3[3];
  assert_status(onerec_catalog_item_of(cat, (const int32_t[]){1, 2, 4}, &id), ONEREC_ERR_NOT_FOUND);
  assert_non_null(strstr(onerec_last_error(), "(1,2,4)"));
  assert_status(onerec_catalog_item_of(cat, (const int32_t[]){1, 2, 9}, &id), ONEREC_ERR_NOT_FOUND);
  assert_status(onerec_catalog_codes_of(cat, 8, c3), ONEREC_ERR_NOT_FOUND);
  assert_non_null(strstr(onerec_last_error(), "8"));

  /* export, in semantic-ID order */
  int64_t eid[4];
  int32_t ec[12];
  size_t n = 0;
  assert_status(onerec_catalog_export(cat, eid, ec, 3, &n), ONEREC_ERR_BUFFER_TOO_SMALL);
  assert_int_equal(n, 4);
  assert_ok(onerec_catalog_export(cat, eid, ec, 4, &n));
  const int64_t want_ids[4] = {100, 7, 123456789012345ll, 42};
  assert_memory_equal(eid, want_ids, sizeof eid);
  assert_memory_equal(ec, codes, sizeof ec);
  assert_ok(onerec_catalog_export(cat, NULL, NULL, 0, &n));
  assert_int_equal(n, 4);

  /* argument checks */
  assert_status(onerec_catalog_add(cat, 1, (const int64_t[]){5}, (const int32_t[]){0, 8, 0}),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "outside 0..7"));
  assert_status(onerec_catalog_add(cat, 1, (const int64_t[]){5}, (const int32_t[]){0, -1, 0}),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_catalog_add(cat, 1, NULL, codes), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_catalog_add(NULL, 1, ids, codes), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(onerec_catalog_add(cat, 0, NULL, NULL));
  assert_status(onerec_catalog_codes_of(cat, 1, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_catalog_item_of(NULL, codes, &id), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_catalog_info(NULL, NULL, NULL, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_catalog_commit(NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_catalog_save(cat, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_catalog_free(cat);
  onerec_catalog_free(NULL);

  /* options */
  onerec_catalog *c2 = NULL;
  assert_status(onerec_catalog_create(ctx, NULL, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_catalog_create(NULL, NULL, &c2), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_catalog_opts, bad, .levels = 17);
  assert_status(onerec_catalog_create(ctx, &bad, &c2), ONEREC_ERR_INVALID_ARGUMENT);
  bad.levels = 2;
  bad.codes_per_level = (1 << 24) + 1;
  assert_status(onerec_catalog_create(ctx, &bad, &c2), ONEREC_ERR_INVALID_ARGUMENT);
  bad.sz = 3;
  assert_status(onerec_catalog_create(ctx, &bad, &c2), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(onerec_catalog_create(ctx, NULL, &c2));
  assert_ok(onerec_catalog_info(c2, &levels, &K, NULL));
  assert_int_equal(levels, 3);
  assert_int_equal(K, 256);
  onerec_catalog_free(c2);
  onerec_context_free(ctx);
}

static void test_duplicates(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_catalog *cat = make_catalog(ctx, 2, 16);
  assert_ok(onerec_catalog_add(cat, 2, (const int64_t[]){10, 11}, (const int32_t[]){1, 1, 1, 2}));
  /* an id already present */
  assert_status(onerec_catalog_add(cat, 1, (const int64_t[]){10}, (const int32_t[]){3, 3}),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "item 10 is already"));
  /* a collision names both items */
  assert_status(onerec_catalog_add(cat, 1, (const int64_t[]){12}, (const int32_t[]){1, 2}),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "item 12 and item 11"));
  assert_non_null(strstr(onerec_last_error(), "(1,2)"));
  /* inside one batch, and all or nothing: 20 and 21 must not stay */
  assert_status(onerec_catalog_add(cat, 3, (const int64_t[]){20, 21, 20},
                                   (const int32_t[]){5, 5, 5, 6, 5, 7}),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "given twice"));
  assert_status(onerec_catalog_add(cat, 3, (const int64_t[]){20, 21, 22},
                                   (const int32_t[]){5, 5, 5, 6, 5, 5}),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "item 22 and item 20"));
  assert_ok(onerec_catalog_commit(cat));
  int64_t items = 0;
  assert_ok(onerec_catalog_info(cat, NULL, NULL, &items));
  assert_int_equal(items, 2);
  int32_t c[2];
  assert_status(onerec_catalog_codes_of(cat, 20, c), ONEREC_ERR_NOT_FOUND);
  assert_status(onerec_catalog_codes_of(cat, 21, c), ONEREC_ERR_NOT_FOUND);
  /* the rolled-back codes and ids are free again */
  assert_ok(onerec_catalog_add(cat, 3, (const int64_t[]){20, 21, 22},
                               (const int32_t[]){5, 5, 5, 6, 5, 7}));
  assert_ok(onerec_catalog_commit(cat));
  assert_ok(onerec_catalog_info(cat, NULL, NULL, &items));
  assert_int_equal(items, 5);
  onerec_catalog_free(cat);
  onerec_context_free(ctx);
}

static void test_retire(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_catalog *cat = make_catalog(ctx, 2, 4);
  assert_ok(
      onerec_catalog_add(cat, 3, (const int64_t[]){1, 2, 3}, (const int32_t[]){0, 0, 0, 1, 2, 3}));
  assert_ok(onerec_catalog_commit(cat));
  assert_status(onerec_catalog_retire(cat, 1, (const int64_t[]){9}), ONEREC_ERR_NOT_FOUND);
  assert_non_null(strstr(onerec_last_error(), "item 9"));
  /* a repeat or a missing id leaves everything in place */
  assert_status(onerec_catalog_retire(cat, 2, (const int64_t[]){2, 2}),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_catalog_retire(cat, 2, (const int64_t[]){2, 9}), ONEREC_ERR_NOT_FOUND);
  assert_ok(onerec_catalog_retire(cat, 1, (const int64_t[]){2}));
  /* not yet committed: readers still see item 2 */
  int32_t c[2];
  int64_t id;
  assert_ok(onerec_catalog_codes_of(cat, 2, c));
  assert_ok(onerec_catalog_commit(cat));
  assert_status(onerec_catalog_codes_of(cat, 2, c), ONEREC_ERR_NOT_FOUND);
  assert_status(onerec_catalog_item_of(cat, (const int32_t[]){0, 1}, &id), ONEREC_ERR_NOT_FOUND);
  int32_t next[4];
  size_t count;
  assert_ok(onerec_catalog_next_codes(cat, (const int32_t[]){0}, 1, next, 4, &count));
  assert_int_equal(count, 1);
  assert_int_equal(next[0], 0);
  assert_status(onerec_catalog_retire(cat, 1, (const int64_t[]){2}), ONEREC_ERR_NOT_FOUND);
  /* its semantic ID can go to a new item, its id can come back with another */
  assert_ok(onerec_catalog_add(cat, 2, (const int64_t[]){4, 2}, (const int32_t[]){0, 1, 3, 3}));
  assert_ok(onerec_catalog_commit(cat));
  assert_ok(onerec_catalog_item_of(cat, (const int32_t[]){0, 1}, &id));
  assert_int_equal(id, 4);
  assert_ok(onerec_catalog_codes_of(cat, 2, c));
  assert_int_equal(c[0], 3);
  assert_int_equal(c[1], 3);
  /* retire everything: an empty trie */
  assert_ok(onerec_catalog_retire(cat, 4, (const int64_t[]){1, 2, 3, 4}));
  assert_ok(onerec_catalog_commit(cat));
  assert_ok(onerec_catalog_next_codes(cat, NULL, 0, next, 4, &count));
  assert_int_equal(count, 0);
  /* many add/retire rounds keep the index healthy (tombstones, rehashing, compaction) */
  for (int r = 0; r < 50; r++) {
    int64_t ids[16];
    int32_t codes[32];
    for (int k = 0; k < 16; k++) {
      ids[k] = r * 100 + k;
      codes[2 * k] = k / 4;
      codes[2 * k + 1] = k % 4;
    }
    assert_ok(onerec_catalog_add(cat, 16, ids, codes));
    assert_ok(onerec_catalog_retire(cat, 16, ids));
    if (r % 7 == 0) assert_ok(onerec_catalog_commit(cat));
  }
  assert_ok(onerec_catalog_commit(cat));
  int64_t items = -1;
  assert_ok(onerec_catalog_info(cat, NULL, NULL, &items));
  assert_int_equal(items, 0);
  onerec_catalog_free(cat);
  onerec_context_free(ctx);
}

/* ---- random catalogues against brute force ---- */

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

typedef struct ref_item {
  int64_t id;
  int32_t c[4];
} ref_item;

static int g_L;
static int cmp_ref(const void *a, const void *b) {
  const ref_item *x = a, *y = b;
  for (int d = 0; d < g_L; d++)
    if (x->c[d] != y->c[d]) return x->c[d] < y->c[d] ? -1 : 1;
  return 0;
}

/* n random distinct semantic IDs; ids shuffled and sparse. */
static ref_item *random_items(int n, int L, int K, uint64_t seed) {
  ref_item *it = calloc((size_t)n, sizeof *it);
  uint64_t s = seed * 2654435761u + 1;
  g_L = L;
  for (int k = 0; k < n; k++) {
  again:
    /* skewed codes, so some prefixes are crowded (dense rows) and some sparse (hashed) */
    for (int d = 0; d < L; d++) {
      uint64_t r = rng_next(&s);
      it[k].c[d] = (int32_t)((r % 3 == 0) ? (r >> 8) % (uint64_t)K : (r >> 8) % 3);
    }
    for (int j = 0; j < k; j++)
      if (!cmp_ref(&it[j], &it[k])) goto again;
    it[k].id = (int64_t)(rng_next(&s) >> 24) * 4096 + k; /* sparse, unique through k */
  }
  return it;
}

static void check_against_brute_force(onerec_catalog *cat, ref_item *it, int n, int L, int K,
                                      int *saw_dense, int *saw_hashed) {
  orx_catalog_snap *s = orx_catalog_acquire(cat);
  assert_int_equal(s->n_items, n);
  g_L = L;
  qsort(it, (size_t)n, sizeof *it, cmp_ref);
  /* every node: child lookup for every code agrees with a scan of the child list */
  for (int32_t u = 0; u < s->level_start[L]; u++) {
    const int32_t *codes;
    int32_t first;
    int32_t cnt = orx_trie_children(s, u, &codes, &first);
    assert_true(cnt >= 1 || (u == 0 && n == 0));
    if (u > 0) *(s->dense_row[u] >= 0 ? saw_dense : saw_hashed) = 1;
    for (int32_t j = 1; j < cnt; j++) assert_true(codes[j - 1] < codes[j]);
    for (int32_t c = -2; c <= K + 1; c++) {
      int32_t want = -1;
      for (int32_t j = 0; j < cnt; j++)
        if (codes[j] == c) want = first + j;
      assert_int_equal(orx_trie_child(s, u, c), want);
    }
  }
  /* legal next codes of every prefix = brute-force set over the items with that prefix */
  for (int k = 0; k < n; k++)
    for (int len = 0; len < L; len++) {
      int32_t *want = malloc(((size_t)K + 1) * sizeof *want);
      int32_t *got = malloc(((size_t)K + 1) * sizeof *got);
      int nw = 0;
      for (int j = 0; j < n; j++) {
        if (memcmp(it[j].c, it[k].c, (size_t)len * sizeof(int32_t))) continue;
        int32_t c = it[j].c[len];
        if (nw == 0 || want[nw - 1] != c) want[nw++] = c; /* items sorted: ascending */
      }
      size_t cnt = 0;
      assert_ok(onerec_catalog_next_codes(cat, it[k].c, len, got, (size_t)K, &cnt));
      assert_int_equal(cnt, nw);
      assert_memory_equal(got, want, (size_t)nw * sizeof(int32_t));
      free(want);
      free(got);
    }
  /* every leaf (every legal full path) is a real item, with its own codes; and all items are
   * leaves, in sorted order */
  int32_t leaf0 = s->level_start[L];
  assert_int_equal(s->n_nodes - leaf0, n);
  for (int k = 0; k < n; k++) {
    int32_t leaf = orx_trie_walk(s, it[k].c, L);
    assert_int_equal(leaf, leaf0 + k);
    assert_true(orx_trie_is_leaf(s, leaf));
    assert_int_equal(orx_trie_leaf_item(s, leaf), it[k].id);
    assert_int_equal(orx_trie_find_item(s, it[k].id), leaf);
    int32_t c[4];
    orx_trie_leaf_codes(s, leaf, c);
    assert_memory_equal(c, it[k].c, (size_t)L * sizeof(int32_t));
  }
  /* random semantic IDs that are no item's are rejected at some level */
  uint64_t rs = 99;
  for (int t = 0; t < 200; t++) {
    ref_item q;
    for (int d = 0; d < L; d++) q.c[d] = (int32_t)(rng_next(&rs) % (uint64_t)K);
    int present = bsearch(&q, it, (size_t)n, sizeof *it, cmp_ref) != NULL;
    int64_t id;
    onerec_status st = onerec_catalog_item_of(cat, q.c, &id);
    assert_int_equal(st, present ? ONEREC_OK : ONEREC_ERR_NOT_FOUND);
    assert_int_equal(orx_trie_walk(s, q.c, L) >= 0, present);
  }
  orx_catalog_release(s);
}

static void test_random_tries(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  const int cases[][3] = {{3, 4, 40},  {3, 8, 300}, {2, 300, 400},
                          {4, 6, 500}, {1, 50, 30}, {3, 8192, 300}};
  int saw_dense = 0, saw_hashed = 0;
  for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
    int L = cases[t][0], K = cases[t][1], n = cases[t][2];
    int max = 1;
    for (int d = 0; d < L && max < 100000; d++) max *= K;
    if (n > max / 2) n = max / 2;
    ref_item *it = random_items(n, L, K, t + 1);
    onerec_catalog *cat = make_catalog(ctx, L, K);
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    int32_t *codes = malloc((size_t)n * (size_t)L * sizeof *codes);
    for (int k = 0; k < n; k++) {
      ids[k] = it[k].id;
      memcpy(codes + (size_t)k * (size_t)L, it[k].c, (size_t)L * sizeof(int32_t));
    }
    assert_ok(onerec_catalog_add(cat, (size_t)n, ids, codes));
    assert_ok(onerec_catalog_commit(cat));
    check_against_brute_force(cat, it, n, L, K, &saw_dense, &saw_hashed);
    free(ids);
    free(codes);
    free(it);
    onerec_catalog_free(cat);
  }
  /* both child-lookup paths were exercised below the root */
  assert_true(saw_dense);
  assert_true(saw_hashed);
  onerec_context_free(ctx);
}

/* ---- readers during commits ---- */

#define ROUND_ITEMS 40
typedef struct reader_arg {
  onerec_catalog *cat;
  atomic_int *stop;
  atomic_long checks;
  int bad;
} reader_arg;

static void round_codes(int64_t id, int32_t *c) {
  int64_t r = id / 1000, k = id % 1000;
  c[0] = (int32_t)(k % 8);
  c[1] = (int32_t)(k / 8);
  c[2] = (int32_t)(r % 8);
}

/* Each committed version holds exactly the ROUND_ITEMS items of one round: a reader must never
 * see two rounds mixed, a count other than that, or a lookup that disagrees with the trie. */
static void *reader(void *p) {
  reader_arg *a = p;
  while (!atomic_load(a->stop)) {
    orx_catalog_snap *s = orx_catalog_acquire(a->cat);
    int32_t leaf0 = s->level_start[3];
    if (s->n_items != 0 && s->n_items != ROUND_ITEMS) a->bad = 1;
    int64_t round = s->n_items ? s->leaf_item[0] / 1000 : -1;
    for (int64_t k = 0; k < s->n_items; k++) {
      int64_t id = s->leaf_item[k];
      int32_t c[3], w[3];
      if (id / 1000 != round) a->bad = 2;
      orx_trie_leaf_codes(s, leaf0 + (int32_t)k, c);
      round_codes(id, w);
      if (memcmp(c, w, sizeof c)) a->bad = 3;
      if (orx_trie_find_item(s, id) != leaf0 + k) a->bad = 4;
      if (orx_trie_walk(s, c, 3) != leaf0 + k) a->bad = 5;
    }
    orx_catalog_release(s);
    /* the public calls, racing commits: each answer must be self-consistent */
    int32_t next[8];
    size_t cnt = 0;
    if (onerec_catalog_next_codes(a->cat, NULL, 0, next, 8, &cnt) != ONEREC_OK) a->bad = 6;
    int64_t id = -1;
    int32_t c[3] = {0, 0, 0};
    onerec_status st = onerec_catalog_item_of(a->cat, c, &id);
    if (st == ONEREC_OK && id % 1000 != 0) a->bad = 7;
    atomic_fetch_add(&a->checks, 1);
  }
  return NULL;
}

static void test_concurrent_commit(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_catalog *cat = make_catalog(ctx, 3, 8);
  atomic_int stop;
  atomic_init(&stop, 0);
  reader_arg args[2];
  for (int t = 0; t < 2; t++) {
    args[t].cat = cat;
    args[t].stop = &stop;
    atomic_init(&args[t].checks, 0);
    args[t].bad = 0;
  }
  pthread_t th[2];
  for (int t = 0; t < 2; t++) assert_int_equal(pthread_create(&th[t], NULL, reader, &args[t]), 0);
  /* at least 150 commits, and on until both readers have checked many snapshots */
  for (int r = 1;
       r <= 150 ||
       ((atomic_load(&args[0].checks) < 200 || atomic_load(&args[1].checks) < 200) && r < 1000000);
       r++) {
    int64_t ids[ROUND_ITEMS], old[ROUND_ITEMS];
    int32_t codes[ROUND_ITEMS * 3];
    for (int k = 0; k < ROUND_ITEMS; k++) {
      ids[k] = r * 1000 + k;
      old[k] = (r - 1) * 1000 + k;
      round_codes(ids[k], codes + 3 * k);
    }
    if (r > 1) assert_ok(onerec_catalog_retire(cat, ROUND_ITEMS, old));
    assert_ok(onerec_catalog_add(cat, ROUND_ITEMS, ids, codes));
    assert_ok(onerec_catalog_commit(cat));
  }
  atomic_store(&stop, 1);
  for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
  assert_int_equal(args[0].bad, 0);
  assert_int_equal(args[1].bad, 0);
  assert_true(atomic_load(&args[0].checks) >= 200 && atomic_load(&args[1].checks) >= 200);
  onerec_catalog_free(cat);
  onerec_context_free(ctx);
}

/* ---- files ---- */

static void path_of(char *buf, size_t len, const char *name) {
  snprintf(buf, len, "%s/%s", g_dir, name);
}

static void test_save_load(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  const int L = 3, K = 16, n = 200;
  ref_item *it = random_items(n, L, K, 7);
  onerec_catalog *cat = make_catalog(ctx, L, K);
  for (int k = 0; k < n; k++) assert_ok(onerec_catalog_add(cat, 1, &it[k].id, it[k].c));
  assert_ok(onerec_catalog_commit(cat));
  /* staged changes are not saved: only committed items */
  assert_ok(onerec_catalog_retire(cat, 1, &it[0].id));
  char path[128];
  path_of(path, sizeof path, "cat.h5");
  assert_ok(onerec_catalog_save(cat, path));
  onerec_catalog *back = NULL;
  assert_ok(onerec_catalog_load(ctx, path, &back));
  int levels, k2;
  int64_t items;
  assert_ok(onerec_catalog_info(back, &levels, &k2, &items));
  assert_int_equal(levels, L);
  assert_int_equal(k2, K);
  assert_int_equal(items, n);
  int64_t *ia = malloc(n * sizeof *ia), *ib = malloc(n * sizeof *ib);
  int32_t *ca = malloc(n * L * sizeof *ca), *cb = malloc(n * L * sizeof *cb);
  size_t na, nb;
  assert_ok(onerec_catalog_export(cat, ia, ca, n, &na));
  assert_ok(onerec_catalog_export(back, ib, cb, n, &nb));
  assert_int_equal(na, nb);
  assert_memory_equal(ia, ib, n * sizeof *ia);
  assert_memory_equal(ca, cb, n * L * sizeof *ca);
  onerec_catalog_free(back);
  /* empty catalogue */
  onerec_catalog *empty = make_catalog(ctx, 2, 5);
  path_of(path, sizeof path, "empty.h5");
  assert_ok(onerec_catalog_save(empty, path));
  assert_ok(onerec_catalog_load(ctx, path, &back));
  assert_ok(onerec_catalog_info(back, &levels, &k2, &items));
  assert_int_equal(levels, 2);
  assert_int_equal(k2, 5);
  assert_int_equal(items, 0);
  onerec_catalog_free(back);
  onerec_catalog_free(empty);
  free(ia);
  free(ib);
  free(ca);
  free(cb);
  free(it);
  onerec_catalog_free(cat);
  onerec_context_free(ctx);
}

/* Writes a catalogue file by hand, with the given contents. */
static void write_cat(const char *path, const char *kind, int64_t version, int64_t levels,
                      int64_t K, int64_t items, int64_t n_ids, const int64_t *ids, int64_t rows,
                      int64_t cols, const int32_t *codes) {
  orx_h5 h;
  assert_ok(orx_h5_create(&h, path));
  assert_ok(orx_h5_stamp(&h, kind, version));
  hid_t g;
  assert_ok(orx_h5_group_create(&h, "/catalog", &g));
  assert_ok(orx_h5_attr_write_i64(&h, g, "levels", levels));
  assert_ok(orx_h5_attr_write_i64(&h, g, "codes_per_level", K));
  assert_ok(orx_h5_attr_write_i64(&h, g, "items", items));
  assert_ok(orx_h5_write(&h, g, "item_ids", ORX_H5_I64, 1, &n_ids, ids));
  assert_ok(orx_h5_write(&h, g, "codes", ORX_H5_I32, 2, (const int64_t[]){rows, cols}, codes));
  orx_h5_group_close(g);
  assert_ok(orx_h5_commit(&h));
}

static void expect_load_error(onerec_context *ctx, const char *path, onerec_status want,
                              const char *text) {
  onerec_catalog *c = (onerec_catalog *)0x1;
  assert_status(onerec_catalog_load(ctx, path, &c), want);
  assert_null(c);
  assert_non_null(strstr(onerec_last_error(), path));
  if (text && !strstr(onerec_last_error(), text))
    fail_msg("message '%s' lacks '%s'", onerec_last_error(), text);
}

static void test_bad_files(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  char path[128];
  const int64_t ids[3] = {1, 2, 3};
  const int32_t good[6] = {0, 1, 1, 0, 1, 1};
  path_of(path, sizeof path, "ok.h5");
  write_cat(path, "catalog", 1, 2, 4, 3, 3, ids, 3, 2, good);
  onerec_catalog *c = NULL;
  assert_ok(onerec_catalog_load(ctx, path, &c));
  onerec_catalog_free(c);

  path_of(path, sizeof path, "missing.h5");
  expect_load_error(ctx, path, ONEREC_ERR_IO, NULL);
  path_of(path, sizeof path, "kind.h5");
  write_cat(path, "tokenizer", 1, 2, 4, 3, 3, ids, 3, 2, good);
  expect_load_error(ctx, path, ONEREC_ERR_FORMAT, "expected a catalog file");
  path_of(path, sizeof path, "version.h5");
  write_cat(path, "catalog", 99, 2, 4, 3, 3, ids, 3, 2, good);
  expect_load_error(ctx, path, ONEREC_ERR_VERSION, "99");
  path_of(path, sizeof path, "range.h5");
  write_cat(path, "catalog", 1, 2, 4, 3, 3, ids, 3, 2, (const int32_t[]){0, 1, 1, 4, 1, 1});
  expect_load_error(ctx, path, ONEREC_ERR_FORMAT, "outside 0..3");
  path_of(path, sizeof path, "dupid.h5");
  write_cat(path, "catalog", 1, 2, 4, 3, 3, (const int64_t[]){1, 2, 1}, 3, 2, good);
  expect_load_error(ctx, path, ONEREC_ERR_FORMAT, "given twice");
  path_of(path, sizeof path, "collide.h5");
  write_cat(path, "catalog", 1, 2, 4, 3, 3, ids, 3, 2, (const int32_t[]){0, 1, 1, 0, 0, 1});
  expect_load_error(ctx, path, ONEREC_ERR_FORMAT, "item 3 and item 1");
  path_of(path, sizeof path, "shape.h5");
  write_cat(path, "catalog", 1, 2, 4, 3, 3, ids, 2, 3, good);
  expect_load_error(ctx, path, ONEREC_ERR_SHAPE, "expected [3,2], file has [2,3]");
  path_of(path, sizeof path, "count.h5");
  write_cat(path, "catalog", 1, 2, 4, 2, 3, ids, 3, 2, good);
  expect_load_error(ctx, path, ONEREC_ERR_SHAPE, "item_ids");
  path_of(path, sizeof path, "attrs.h5");
  write_cat(path, "catalog", 1, 0, 4, 3, 3, ids, 3, 2, good);
  expect_load_error(ctx, path, ONEREC_ERR_FORMAT, "out of range");

  /* not HDF5, and truncated at several points */
  path_of(path, sizeof path, "garbage.h5");
  FILE *f = fopen(path, "wb");
  fputs("this is not an HDF5 file\n", f);
  fclose(f);
  expect_load_error(ctx, path, ONEREC_ERR_FORMAT, NULL);

  onerec_catalog *big = make_catalog(ctx, 3, 64);
  ref_item *it = random_items(500, 3, 64, 3);
  for (int k = 0; k < 500; k++) assert_ok(onerec_catalog_add(big, 1, &it[k].id, it[k].c));
  assert_ok(onerec_catalog_commit(big));
  char full[128];
  path_of(full, sizeof full, "big.h5");
  assert_ok(onerec_catalog_save(big, full));
  f = fopen(full, "rb");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  rewind(f);
  char *bytes = malloc((size_t)size);
  assert_int_equal(fread(bytes, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  const long cuts[] = {0, 8, 100, 800, size / 2, size - 16};
  for (size_t k = 0; k < sizeof cuts / sizeof *cuts; k++) {
    path_of(path, sizeof path, "trunc.h5");
    f = fopen(path, "wb");
    fwrite(bytes, 1, (size_t)cuts[k], f);
    fclose(f);
    onerec_catalog *x = NULL;
    onerec_status st = onerec_catalog_load(ctx, path, &x);
    if (st == ONEREC_OK) fail_msg("a file truncated to %ld of %ld bytes loaded", cuts[k], size);
    assert_null(x);
    assert_true(onerec_last_error()[0] != '\0');
  }
  free(bytes);
  free(it);
  onerec_catalog_free(big);
  onerec_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_basic),
      cmocka_unit_test(test_duplicates),
      cmocka_unit_test(test_retire),
      cmocka_unit_test(test_random_tries),
      cmocka_unit_test(test_concurrent_commit),
      cmocka_unit_test(test_save_load),
      cmocka_unit_test(test_bad_files),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
