/* The catalogue handle: the pending (staged) item set with duplicate detection, the published
 * trie snapshot with reference counting, lookups, and the HDF5 file. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "catalog_impl.h"
#include "h5io.h"

#define CATALOG_FORMAT_VERSION 1
#define SLOT_EMPTY (-1)
#define SLOT_TOMB (-2)

struct onerec_catalog {
  onerec_context *ctx;
  int32_t levels, K;
  /* Readers take snap_lock only to copy the pointer and bump its count, so a commit that
   * builds for seconds never blocks them; writers serialise on write_lock. */
  pthread_mutex_t snap_lock;
  orx_catalog_snap *snap;
  pthread_mutex_t write_lock;
  /* Pending set: slots 0..n-1, some retired (dead). Two hash tables map id and semantic ID
   * to live slots (linear probing with tombstones; one mask for both). */
  size_t n, cap, live;
  int64_t *ids;
  int32_t *codes;
  uint8_t *dead;
  int32_t *id_tab, *code_tab;
  uint64_t tab_mask;
  size_t id_used, code_used; /* live entries plus tombstones of each table */
};

static onerec_catalog *mut(const onerec_catalog *cat) { return (onerec_catalog *)cat; }

orx_catalog_snap *orx_catalog_acquire(const onerec_catalog *cat) {
  onerec_catalog *c = mut(cat);
  pthread_mutex_lock(&c->snap_lock);
  orx_catalog_snap *s = c->snap;
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&c->snap_lock);
  return s;
}

void orx_catalog_release(orx_catalog_snap *s) {
  if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) orx_trie_destroy(s);
}

/* ---- pending set ---- */

static uint64_t hash_codes(const int32_t *c, int L) {
  uint64_t h = 0x9E3779B97F4A7C15ull;
  for (int d = 0; d < L; d++) h = orx_mix64(h ^ (uint32_t)c[d]) + (uint64_t)d;
  return h;
}

static int codes_equal(const int32_t *a, const int32_t *b, int L) {
  return memcmp(a, b, (size_t)L * sizeof(int32_t)) == 0;
}

/* Probes for a key; returns the slot (>= 0) holding it or -1, and through *ins the table
 * position where it would be inserted (first tombstone on the way, else the empty cell). */
static int32_t find_id(const onerec_catalog *c, int64_t id, uint64_t *ins) {
  uint64_t h = orx_mix64((uint64_t)id) & c->tab_mask, first_free = UINT64_MAX;
  for (;;) {
    int32_t v = c->id_tab[h];
    if (v == SLOT_EMPTY) break;
    if (v == SLOT_TOMB) {
      if (first_free == UINT64_MAX) first_free = h;
    } else if (c->ids[v] == id) {
      if (ins) *ins = h;
      return v;
    }
    h = (h + 1) & c->tab_mask;
  }
  if (ins) *ins = first_free != UINT64_MAX ? first_free : h;
  return -1;
}

static int32_t find_codes(const onerec_catalog *c, const int32_t *codes, uint64_t *ins) {
  const int L = c->levels;
  uint64_t h = hash_codes(codes, L) & c->tab_mask, first_free = UINT64_MAX;
  for (;;) {
    int32_t v = c->code_tab[h];
    if (v == SLOT_EMPTY) break;
    if (v == SLOT_TOMB) {
      if (first_free == UINT64_MAX) first_free = h;
    } else if (codes_equal(c->codes + (size_t)v * (size_t)L, codes, L)) {
      if (ins) *ins = h;
      return v;
    }
    h = (h + 1) & c->tab_mask;
  }
  if (ins) *ins = first_free != UINT64_MAX ? first_free : h;
  return -1;
}

/* Refills both tables from the live slots (the tables must be large enough). */
static void rehash_into(onerec_catalog *c) {
  memset(c->id_tab, 0xff, (size_t)(c->tab_mask + 1) * sizeof(int32_t));
  memset(c->code_tab, 0xff, (size_t)(c->tab_mask + 1) * sizeof(int32_t));
  c->id_used = c->code_used = 0;
  for (size_t i = 0; i < c->n; i++) {
    if (c->dead[i]) continue;
    uint64_t a, b;
    find_id(c, c->ids[i], &a);
    find_codes(c, c->codes + i * (size_t)c->levels, &b);
    c->id_tab[a] = (int32_t)i;
    c->code_tab[b] = (int32_t)i;
  }
  c->id_used = c->code_used = c->live;
}

static uint64_t pow2_at_least(uint64_t n) {
  uint64_t p = 16;
  while (p < n) p <<= 1;
  return p;
}

/* Makes room for `extra` more slots and table entries, so that the insertions that follow
 * cannot fail. */
static onerec_status reserve(onerec_catalog *c, size_t extra) {
  const int L = c->levels;
  if (extra > (size_t)INT32_MAX / (size_t)L || c->n + extra > (size_t)INT32_MAX / (size_t)L)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "onerec_catalog_add: too many items (%zu + %zu)",
                    c->n, extra);
  if (c->n + extra > c->cap) {
    size_t cap = c->cap ? c->cap : 64;
    while (cap < c->n + extra) cap *= 2;
    int64_t *ids = orx_host_alloc(c->ctx, cap * sizeof *ids);
    int32_t *codes = orx_host_alloc(c->ctx, cap * (size_t)L * sizeof *codes);
    uint8_t *dead = orx_host_alloc(c->ctx, cap);
    if (!ids || !codes || !dead) {
      orx_host_free(c->ctx, ids);
      orx_host_free(c->ctx, codes);
      orx_host_free(c->ctx, dead);
      return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "onerec_catalog_add: out of memory (%zu items)",
                      cap);
    }
    if (c->n) {
      memcpy(ids, c->ids, c->n * sizeof *ids);
      memcpy(codes, c->codes, c->n * (size_t)L * sizeof *codes);
      memcpy(dead, c->dead, c->n);
    }
    orx_host_free(c->ctx, c->ids);
    orx_host_free(c->ctx, c->codes);
    orx_host_free(c->ctx, c->dead);
    c->ids = ids;
    c->codes = codes;
    c->dead = dead;
    c->cap = cap;
  }
  /* load (live + tombstones) stays at most 1/2 */
  size_t used = c->id_used > c->code_used ? c->id_used : c->code_used;
  if (!c->id_tab || (used + extra) * 2 > c->tab_mask + 1) {
    uint64_t size = pow2_at_least(((uint64_t)c->live + extra) * 4);
    int32_t *a = orx_host_alloc(c->ctx, size * sizeof(int32_t));
    int32_t *b = orx_host_alloc(c->ctx, size * sizeof(int32_t));
    if (!a || !b) {
      orx_host_free(c->ctx, a);
      orx_host_free(c->ctx, b);
      return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "onerec_catalog_add: out of memory (index)");
    }
    orx_host_free(c->ctx, c->id_tab);
    orx_host_free(c->ctx, c->code_tab);
    c->id_tab = a;
    c->code_tab = b;
    c->tab_mask = size - 1;
    rehash_into(c);
  }
  return ONEREC_OK;
}

/* Removes live slot i from both tables. */
static void unlink_slot(onerec_catalog *c, size_t i) {
  uint64_t a, b;
  if (find_id(c, c->ids[i], &a) == (int32_t)i) c->id_tab[a] = SLOT_TOMB;
  if (find_codes(c, c->codes + i * (size_t)c->levels, &b) == (int32_t)i) c->code_tab[b] = SLOT_TOMB;
  c->dead[i] = 1;
  c->live--;
}

static void fmt_codes(char *buf, size_t len, const int32_t *codes, int L) {
  size_t o = 0;
  buf[0] = '\0';
  for (int d = 0; d < L && o < len; d++)
    o += (size_t)snprintf(buf + o, len - o, "%s%d", d ? "," : "(", (int)codes[d]);
  if (o < len) snprintf(buf + o, len - o, ")");
}

ONEREC_API onerec_status onerec_catalog_create(onerec_context *ctx, const onerec_catalog_opts *opts,
                                               onerec_catalog **out) {
  ORX_CHECK_ARG(out, "onerec_catalog_create");
  *out = NULL;
  ORX_CHECK_ARG(ctx, "onerec_catalog_create");
  onerec_catalog_opts o;
  memset(&o, 0, sizeof o);
  o.sz = sizeof o;
  if (opts) {
    onerec_status s = orx_opts_read(&o, sizeof o, opts, "onerec_catalog_create");
    if (s) return s;
  }
  if (o.levels == 0) o.levels = 3;
  if (o.codes_per_level == 0) o.codes_per_level = 256;
  if (o.levels < 1 || o.levels > ONEREC_CATALOG_MAX_LEVELS)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_catalog_create: levels = %d (expected 1..%d)", o.levels,
                    ONEREC_CATALOG_MAX_LEVELS);
  if (o.codes_per_level < 1 || o.codes_per_level > (1 << 24))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_catalog_create: codes_per_level = %d (expected 1..2^24)",
                    o.codes_per_level);
  onerec_catalog *c = orx_host_alloc(ctx, sizeof *c);
  if (!c) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "onerec_catalog_create: out of memory");
  memset(c, 0, sizeof *c);
  c->ctx = ctx;
  c->levels = o.levels;
  c->K = o.codes_per_level;
  onerec_status s = orx_trie_build(ctx, c->levels, c->K, 0, NULL, NULL, &c->snap);
  if (s) {
    orx_host_free(ctx, c);
    return s;
  }
  pthread_mutex_init(&c->snap_lock, NULL);
  pthread_mutex_init(&c->write_lock, NULL);
  *out = c;
  return ONEREC_OK;
}

ONEREC_API void onerec_catalog_free(onerec_catalog *cat) {
  if (!cat) return;
  orx_catalog_release(cat->snap);
  orx_host_free(cat->ctx, cat->ids);
  orx_host_free(cat->ctx, cat->codes);
  orx_host_free(cat->ctx, cat->dead);
  orx_host_free(cat->ctx, cat->id_tab);
  orx_host_free(cat->ctx, cat->code_tab);
  pthread_mutex_destroy(&cat->snap_lock);
  pthread_mutex_destroy(&cat->write_lock);
  orx_host_free(cat->ctx, cat);
}

static onerec_status add_locked(onerec_catalog *c, size_t n, const int64_t *ids,
                                const int32_t *codes) {
  const int L = c->levels;
  for (size_t i = 0; i < n; i++)
    for (int d = 0; d < L; d++) {
      int32_t v = codes[i * (size_t)L + (size_t)d];
      if (v < 0 || v >= c->K)
        return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                        "onerec_catalog_add: item %lld: code %d at level %d is outside 0..%d",
                        (long long)ids[i], (int)v, d, c->K - 1);
    }
  onerec_status s = reserve(c, n);
  if (s) return s;
  const size_t start = c->n;
  for (size_t i = 0; i < n; i++) {
    const int32_t *ci = codes + i * (size_t)L;
    uint64_t a, b;
    int32_t had = find_id(c, ids[i], &a);
    if (had >= 0) {
      if ((size_t)had >= start)
        s = orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                     "onerec_catalog_add: item %lld given twice (positions %zu and %zu)",
                     (long long)ids[i], (size_t)had - start, i);
      else
        s = orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                     "onerec_catalog_add: item %lld is already in the catalogue",
                     (long long)ids[i]);
      break;
    }
    int32_t holder = find_codes(c, ci, &b);
    if (holder >= 0) {
      char buf[192];
      fmt_codes(buf, sizeof buf, ci, L);
      s = orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                   "onerec_catalog_add: semantic ID collision: item %lld and item %lld both have "
                   "%s (resolve collisions before adding)",
                   (long long)ids[i], (long long)c->ids[holder], buf);
      break;
    }
    size_t slot = c->n++;
    c->ids[slot] = ids[i];
    memcpy(c->codes + slot * (size_t)L, ci, (size_t)L * sizeof(int32_t));
    c->dead[slot] = 0;
    /* a reused tombstone does not add to the load */
    if (c->id_tab[a] == SLOT_EMPTY) c->id_used++;
    if (c->code_tab[b] == SLOT_EMPTY) c->code_used++;
    c->id_tab[a] = (int32_t)slot;
    c->code_tab[b] = (int32_t)slot;
    c->live++;
  }
  if (s) { /* all or nothing: take back this call's items */
    for (size_t i = start; i < c->n; i++) unlink_slot(c, i);
    c->n = start;
  }
  return s;
}

ONEREC_API onerec_status onerec_catalog_add(onerec_catalog *cat, size_t n, const int64_t *item_ids,
                                            const int32_t *codes) {
  ORX_CHECK_ARG(cat, "onerec_catalog_add");
  if (n == 0) return ONEREC_OK;
  ORX_CHECK_ARG(item_ids, "onerec_catalog_add");
  ORX_CHECK_ARG(codes, "onerec_catalog_add");
  pthread_mutex_lock(&cat->write_lock);
  onerec_status s = add_locked(cat, n, item_ids, codes);
  pthread_mutex_unlock(&cat->write_lock);
  return s;
}

ONEREC_API onerec_status onerec_catalog_retire(onerec_catalog *cat, size_t n,
                                               const int64_t *item_ids) {
  ORX_CHECK_ARG(cat, "onerec_catalog_retire");
  if (n == 0) return ONEREC_OK;
  ORX_CHECK_ARG(item_ids, "onerec_catalog_retire");
  onerec_status s = ONEREC_OK;
  pthread_mutex_lock(&cat->write_lock);
  size_t marked = 0;
  /* First mark (dead = 2) so that a missing or repeated id leaves everything untouched. */
  for (; marked < n; marked++) {
    int32_t slot = cat->id_tab ? find_id(cat, item_ids[marked], NULL) : -1;
    if (slot < 0) {
      s = orx_fail(ONEREC_ERR_NOT_FOUND, "onerec_catalog_retire: item %lld is not in the catalogue",
                   (long long)item_ids[marked]);
      break;
    }
    if (cat->dead[slot] == 2) {
      s = orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "onerec_catalog_retire: item %lld given twice",
                   (long long)item_ids[marked]);
      break;
    }
    cat->dead[slot] = 2;
  }
  for (size_t i = 0; i < marked; i++) {
    int32_t slot = find_id(cat, item_ids[i], NULL);
    if (slot < 0 || cat->dead[slot] != 2) continue; /* a repeat already handled */
    cat->dead[slot] = 0;
    if (!s) unlink_slot(cat, (size_t)slot);
  }
  pthread_mutex_unlock(&cat->write_lock);
  return s;
}

/* Drops retired slots (keeping order) and refills the tables in place. */
static void compact(onerec_catalog *c) {
  if (c->live == c->n) return;
  const int L = c->levels;
  size_t w = 0;
  for (size_t i = 0; i < c->n; i++) {
    if (c->dead[i]) continue;
    c->ids[w] = c->ids[i];
    memmove(c->codes + w * (size_t)L, c->codes + i * (size_t)L, (size_t)L * sizeof(int32_t));
    c->dead[w] = 0;
    w++;
  }
  c->n = w;
  rehash_into(c);
}

ONEREC_API onerec_status onerec_catalog_commit(onerec_catalog *cat) {
  ORX_CHECK_ARG(cat, "onerec_catalog_commit");
  pthread_mutex_lock(&cat->write_lock);
  if (cat->id_tab) compact(cat);
  orx_catalog_snap *s = NULL;
  onerec_status st =
      orx_trie_build(cat->ctx, cat->levels, cat->K, cat->n, cat->ids, cat->codes, &s);
  if (!st) {
    pthread_mutex_lock(&cat->snap_lock);
    orx_catalog_snap *old = cat->snap;
    cat->snap = s;
    pthread_mutex_unlock(&cat->snap_lock);
    orx_catalog_release(old);
  }
  pthread_mutex_unlock(&cat->write_lock);
  return st;
}

ONEREC_API onerec_status onerec_catalog_info(const onerec_catalog *cat, int *levels,
                                             int *codes_per_level, int64_t *items) {
  ORX_CHECK_ARG(cat, "onerec_catalog_info");
  if (levels) *levels = cat->levels;
  if (codes_per_level) *codes_per_level = cat->K;
  if (items) {
    orx_catalog_snap *s = orx_catalog_acquire(cat);
    *items = s->n_items;
    orx_catalog_release(s);
  }
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_catalog_codes_of(const onerec_catalog *cat, int64_t item_id,
                                                 int32_t *codes) {
  ORX_CHECK_ARG(cat, "onerec_catalog_codes_of");
  ORX_CHECK_ARG(codes, "onerec_catalog_codes_of");
  orx_catalog_snap *s = orx_catalog_acquire(cat);
  int32_t leaf = orx_trie_find_item(s, item_id);
  if (leaf >= 0) orx_trie_leaf_codes(s, leaf, codes);
  orx_catalog_release(s);
  if (leaf < 0)
    return orx_fail(ONEREC_ERR_NOT_FOUND, "onerec_catalog_codes_of: item %lld is not committed",
                    (long long)item_id);
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_catalog_item_of(const onerec_catalog *cat, const int32_t *codes,
                                                int64_t *item_id) {
  ORX_CHECK_ARG(cat, "onerec_catalog_item_of");
  ORX_CHECK_ARG(codes, "onerec_catalog_item_of");
  ORX_CHECK_ARG(item_id, "onerec_catalog_item_of");
  orx_catalog_snap *s = orx_catalog_acquire(cat);
  int32_t leaf = orx_trie_walk(s, codes, s->levels);
  if (leaf >= 0) *item_id = orx_trie_leaf_item(s, leaf);
  orx_catalog_release(s);
  if (leaf < 0) {
    char buf[192];
    fmt_codes(buf, sizeof buf, codes, cat->levels);
    return orx_fail(ONEREC_ERR_NOT_FOUND, "onerec_catalog_item_of: no committed item has %s", buf);
  }
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_catalog_next_codes(const onerec_catalog *cat, const int32_t *prefix,
                                                   int len, int32_t *codes, size_t cap,
                                                   size_t *count) {
  ORX_CHECK_ARG(cat, "onerec_catalog_next_codes");
  ORX_CHECK_ARG(count, "onerec_catalog_next_codes");
  *count = 0;
  if (len < 0 || len >= cat->levels)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_catalog_next_codes: prefix length %d (expected 0..%d)", len,
                    cat->levels - 1);
  if (len > 0) ORX_CHECK_ARG(prefix, "onerec_catalog_next_codes");
  orx_catalog_snap *s = orx_catalog_acquire(cat);
  int32_t node = orx_trie_walk(s, prefix, len);
  onerec_status st = ONEREC_OK;
  if (node >= 0) {
    const int32_t *next;
    int32_t n = orx_trie_children(s, node, &next, NULL);
    *count = (size_t)n;
    if ((size_t)n > cap)
      st = orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL,
                    "onerec_catalog_next_codes: %d codes follow, room for %zu", (int)n, cap);
    else if (n > 0 && !codes)
      st = orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_catalog_next_codes: argument 'codes' is NULL");
    else if (n > 0)
      memcpy(codes, next, (size_t)n * sizeof *codes);
  }
  orx_catalog_release(s);
  return st;
}

/* Fills ids / codes (either may be NULL) from a snapshot's leaves, in trie order. */
static void export_snap(const orx_catalog_snap *s, int64_t *ids, int32_t *codes) {
  const int32_t leaf0 = s->level_start[s->levels];
  for (int64_t k = 0; k < s->n_items; k++) {
    if (ids) ids[k] = s->leaf_item[k];
    if (codes) orx_trie_leaf_codes(s, leaf0 + (int32_t)k, codes + (size_t)k * (size_t)s->levels);
  }
}

ONEREC_API onerec_status onerec_catalog_export(const onerec_catalog *cat, int64_t *item_ids,
                                               int32_t *codes, size_t cap, size_t *n) {
  ORX_CHECK_ARG(cat, "onerec_catalog_export");
  ORX_CHECK_ARG(n, "onerec_catalog_export");
  orx_catalog_snap *s = orx_catalog_acquire(cat);
  *n = (size_t)s->n_items;
  onerec_status st = ONEREC_OK;
  if ((item_ids || codes) && (size_t)s->n_items > cap)
    st = orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "onerec_catalog_export: %lld items, room for %zu",
                  (long long)s->n_items, cap);
  else
    export_snap(s, item_ids, codes);
  orx_catalog_release(s);
  return st;
}

ONEREC_API onerec_status onerec_catalog_save(const onerec_catalog *cat, const char *path) {
  ORX_CHECK_ARG(cat, "onerec_catalog_save");
  ORX_CHECK_ARG(path, "onerec_catalog_save");
  orx_catalog_snap *s = orx_catalog_acquire(cat);
  const size_t n = (size_t)s->n_items, L = (size_t)s->levels;
  int64_t *ids = orx_host_alloc(cat->ctx, (n ? n : 1) * sizeof *ids);
  int32_t *codes = orx_host_alloc(cat->ctx, (n ? n : 1) * L * sizeof *codes);
  onerec_status st = ONEREC_OK;
  if (!ids || !codes) {
    st = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "onerec_catalog_save: out of memory");
    goto done;
  }
  export_snap(s, ids, codes);
  orx_h5 h;
  st = orx_h5_create(&h, path);
  if (st) goto done;
  hid_t g = H5I_INVALID_HID;
  st = orx_h5_stamp(&h, "catalog", CATALOG_FORMAT_VERSION);
  if (!st) st = orx_h5_group_create(&h, "/catalog", &g);
  if (!st) st = orx_h5_attr_write_i64(&h, g, "levels", (int64_t)L);
  if (!st) st = orx_h5_attr_write_i64(&h, g, "codes_per_level", s->K);
  if (!st) st = orx_h5_attr_write_i64(&h, g, "items", (int64_t)n);
  if (!st) st = orx_h5_write(&h, g, "item_ids", ORX_H5_I64, 1, (const int64_t[]){(int64_t)n}, ids);
  if (!st)
    st = orx_h5_write(&h, g, "codes", ORX_H5_I32, 2, (const int64_t[]){(int64_t)n, (int64_t)L},
                      codes);
  orx_h5_group_close(g);
  if (!st)
    st = orx_h5_commit(&h);
  else
    orx_h5_abort(&h);
done:
  orx_host_free(cat->ctx, ids);
  orx_host_free(cat->ctx, codes);
  orx_catalog_release(s);
  return st;
}

ONEREC_API onerec_status onerec_catalog_load(onerec_context *ctx, const char *path,
                                             onerec_catalog **out) {
  ORX_CHECK_ARG(out, "onerec_catalog_load");
  *out = NULL;
  ORX_CHECK_ARG(ctx, "onerec_catalog_load");
  ORX_CHECK_ARG(path, "onerec_catalog_load");
  orx_h5 h;
  onerec_status st = orx_h5_open(&h, path);
  if (st) return st;
  hid_t g = H5I_INVALID_HID;
  int64_t levels = 0, K = 0, items = 0;
  int64_t *ids = NULL;
  int32_t *codes = NULL;
  onerec_catalog *c = NULL;
  st = orx_h5_check_stamp(&h, "catalog", CATALOG_FORMAT_VERSION, NULL);
  if (!st) st = orx_h5_group_open(&h, "/catalog", &g);
  if (!st) st = orx_h5_attr_read_i64(&h, g, "levels", &levels);
  if (!st) st = orx_h5_attr_read_i64(&h, g, "codes_per_level", &K);
  if (!st) st = orx_h5_attr_read_i64(&h, g, "items", &items);
  if (st) goto done;
  if (levels < 1 || levels > ONEREC_CATALOG_MAX_LEVELS || K < 1 || K > (1 << 24) || items < 0 ||
      (uint64_t)items * (uint64_t)levels >= (uint64_t)INT32_MAX) {
    st = orx_fail(ONEREC_ERR_FORMAT,
                  "%s: catalog attributes out of range (levels %lld, codes_per_level %lld, items "
                  "%lld)",
                  path, (long long)levels, (long long)K, (long long)items);
    goto done;
  }
  int64_t d1[1] = {items}, d2[2] = {items, levels};
  ids = orx_host_alloc(ctx, (size_t)(items ? items : 1) * sizeof *ids);
  codes = orx_host_alloc(ctx, (size_t)(items ? items : 1) * (size_t)levels * sizeof *codes);
  if (!ids || !codes) {
    st = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld items", path,
                  (long long)items);
    goto done;
  }
  st = orx_h5_read(&h, g, "item_ids", ORX_H5_I64, 1, d1, ids, (size_t)items * sizeof *ids);
  if (!st)
    st = orx_h5_read(&h, g, "codes", ORX_H5_I32, 2, d2, codes,
                     (size_t)items * (size_t)levels * sizeof *codes);
  if (st) goto done;
  ONEREC_OPTS(onerec_catalog_opts, o, .levels = (int)levels, .codes_per_level = (int)K);
  st = onerec_catalog_create(ctx, &o, &c);
  if (!st) st = onerec_catalog_add(c, (size_t)items, ids, codes);
  if (st == ONEREC_ERR_INVALID_ARGUMENT) {
    char why[768];
    snprintf(why, sizeof why, "%s", onerec_last_error());
    st = orx_fail(ONEREC_ERR_FORMAT, "%s: invalid catalogue: %s", path, why);
  }
  if (!st) st = onerec_catalog_commit(c);
done:
  orx_h5_group_close(g);
  orx_h5_close(&h);
  orx_host_free(ctx, ids);
  orx_host_free(ctx, codes);
  if (st) {
    onerec_catalog_free(c);
    return st;
  }
  *out = c;
  return ONEREC_OK;
}
