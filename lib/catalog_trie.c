/* Building the catalogue's immutable prefix trie (layout described in catalog_impl.h). */
#include <stdlib.h>
#include <string.h>

#include "catalog_impl.h"

void orx_trie_destroy(orx_catalog_snap *s) {
  if (!s) return;
  const onerec_context *ctx = s->ctx;
  orx_host_free(ctx, s->code);
  orx_host_free(ctx, s->parent);
  orx_host_free(ctx, s->first_child);
  orx_host_free(ctx, s->child_count);
  orx_host_free(ctx, s->dense_row);
  orx_host_free(ctx, s->dense);
  orx_host_free(ctx, s->edges);
  orx_host_free(ctx, s->leaf_item);
  orx_host_free(ctx, s->item_slot);
  orx_host_free(ctx, s);
}

int32_t orx_trie_find_item(const orx_catalog_snap *s, int64_t item_id) {
  uint64_t h = orx_mix64((uint64_t)item_id) & s->item_mask;
  for (;;) {
    int32_t leaf = s->item_slot[h];
    if (leaf < 0) return -1;
    if (s->leaf_item[leaf] == item_id) return leaf + s->level_start[s->levels];
    h = (h + 1) & s->item_mask;
  }
}

int32_t orx_trie_walk(const orx_catalog_snap *s, const int32_t *codes, int len) {
  int32_t node = 0;
  for (int d = 0; d < len && node >= 0; d++) {
    node = orx_trie_child(s, node, codes[d]);
  }
  return node;
}

void orx_trie_leaf_codes(const orx_catalog_snap *s, int32_t leaf, int32_t *codes) {
  int32_t v = leaf;
  for (int d = s->levels - 1; d >= 0; d--) {
    codes[d] = s->code[v];
    v = s->parent[v];
  }
}

static int cmp_rows(const void *a, const void *b, void *levels) {
  const int32_t *x = *(const int32_t *const *)a, *y = *(const int32_t *const *)b;
  int L = *(const int *)levels;
  for (int d = 0; d < L; d++)
    if (x[d] != y[d]) return x[d] < y[d] ? -1 : 1;
  return 0;
}

static uint64_t pow2_at_least(uint64_t n) {
  uint64_t c = 1;
  while (c < n) c <<= 1;
  return c;
}

onerec_status orx_trie_build(const onerec_context *ctx, int32_t levels, int32_t K, size_t n,
                             const int64_t *ids, const int32_t *codes, orx_catalog_snap **out) {
  *out = NULL;
  if ((uint64_t)n * (uint64_t)levels + 1 >= (uint64_t)INT32_MAX)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "catalog: %zu items x %d levels exceed the trie's 2^31 nodes", n, levels);
  onerec_status st = ONEREC_OK;
  const int L = levels;
  const int32_t **rows = NULL;
  int32_t *lcp = NULL;
  orx_catalog_snap *s = orx_host_alloc(ctx, sizeof *s);
  if (!s) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "catalog: out of memory building the trie");
  memset(s, 0, sizeof *s);
  atomic_init(&s->refs, 1);
  s->ctx = ctx;
  s->levels = levels;
  s->K = K;
  s->n_items = (int64_t)n;

  /* Sort rows by semantic ID; lcp[k] = common prefix length with the previous row. */
  rows = orx_host_alloc(ctx, (n ? n : 1) * sizeof *rows);
  lcp = orx_host_alloc(ctx, (n ? n : 1) * sizeof *lcp);
  if (!rows || !lcp) goto oom;
  for (size_t k = 0; k < n; k++) rows[k] = codes + k * (size_t)L;
  int Lv = L;
  qsort_r(rows, n, sizeof *rows, cmp_rows, &Lv);
  int64_t per_depth[ONEREC_CATALOG_MAX_LEVELS + 1] = {0};
  for (size_t k = 0; k < n; k++) {
    int c = 0;
    if (k > 0)
      while (c < L && rows[k][c] == rows[k - 1][c]) c++;
    if (c == L) {
      st = orx_fail(ONEREC_ERR_INTERNAL, "catalog: duplicate semantic ID reached the trie builder");
      goto fail;
    }
    lcp[k] = c;
    for (int d = c + 1; d <= L; d++) per_depth[d]++;
  }
  s->level_start[0] = 0;
  s->level_start[1] = 1;
  for (int d = 1; d <= L; d++) s->level_start[d + 1] = s->level_start[d] + (int32_t)per_depth[d];
  s->n_nodes = s->level_start[L + 1];
  const int32_t n_internal = s->level_start[L];
  s->code = orx_host_alloc(ctx, (size_t)s->n_nodes * sizeof(int32_t));
  s->parent = orx_host_alloc(ctx, (size_t)s->n_nodes * sizeof(int32_t));
  s->first_child = orx_host_alloc(ctx, (size_t)n_internal * sizeof(int32_t));
  s->child_count = orx_host_alloc(ctx, (size_t)n_internal * sizeof(int32_t));
  s->dense_row = orx_host_alloc(ctx, (size_t)n_internal * sizeof(int32_t));
  s->leaf_item = orx_host_alloc(ctx, (n ? n : 1) * sizeof(int64_t));
  if (!s->code || !s->parent || !s->first_child || !s->child_count || !s->dense_row ||
      !s->leaf_item)
    goto oom;
  s->code[0] = -1;
  s->parent[0] = -1;
  memset(s->first_child, 0, (size_t)n_internal * sizeof(int32_t));
  memset(s->child_count, 0, (size_t)n_internal * sizeof(int32_t));

  /* Nodes are created in sorted order, so each level's nodes (and each node's children) come
   * out consecutive and ascending. */
  int32_t next[ONEREC_CATALOG_MAX_LEVELS + 1], cur[ONEREC_CATALOG_MAX_LEVELS + 1];
  for (int d = 0; d <= L; d++) next[d] = s->level_start[d];
  cur[0] = 0;
  const int32_t leaf0 = s->level_start[L];
  for (size_t k = 0; k < n; k++) {
    for (int d = lcp[k] + 1; d <= L; d++) {
      int32_t v = next[d]++, p = cur[d - 1];
      s->code[v] = rows[k][d - 1];
      s->parent[v] = p;
      if (s->child_count[p]++ == 0) s->first_child[p] = v;
      cur[d] = v;
    }
    s->leaf_item[cur[L] - leaf0] = ids[(size_t)(rows[k] - codes) / (size_t)L];
  }

  /* Dense rows where they cost no more than hashing (>= K/4 children), and always the root. */
  int64_t n_dense = 0, n_hashed = 0;
  for (int32_t u = 0; u < n_internal; u++) {
    if (u == 0 || (int64_t)s->child_count[u] * 4 >= K)
      s->dense_row[u] = (int32_t)n_dense++;
    else {
      s->dense_row[u] = -1;
      n_hashed += s->child_count[u];
    }
  }
  s->n_dense = (int32_t)n_dense;
  s->dense = orx_host_alloc(ctx, (size_t)n_dense * (size_t)K * sizeof(int32_t));
  s->edge_mask = pow2_at_least((uint64_t)n_hashed * 2 + 1) - 1;
  s->edges = orx_host_alloc(ctx, (size_t)(s->edge_mask + 1) * sizeof(orx_trie_edge));
  s->item_mask = pow2_at_least((uint64_t)n * 2 + 1) - 1;
  s->item_slot = orx_host_alloc(ctx, (size_t)(s->item_mask + 1) * sizeof(int32_t));
  if (!s->dense || !s->edges || !s->item_slot) goto oom;
  memset(s->dense, 0xff, (size_t)n_dense * (size_t)K * sizeof(int32_t));
  for (uint64_t h = 0; h <= s->edge_mask; h++) s->edges[h].parent = -1;
  memset(s->item_slot, 0xff, (size_t)(s->item_mask + 1) * sizeof(int32_t));
  for (int32_t u = 0; u < n_internal; u++) {
    int32_t f = s->first_child[u], c = s->child_count[u], row = s->dense_row[u];
    for (int32_t v = f; v < f + c; v++) {
      if (row >= 0) {
        s->dense[(size_t)row * (size_t)K + (size_t)s->code[v]] = v;
      } else {
        uint64_t h = orx_trie_edge_hash(u, s->code[v]) & s->edge_mask;
        while (s->edges[h].parent >= 0) h = (h + 1) & s->edge_mask;
        s->edges[h] = (orx_trie_edge){u, s->code[v], v};
      }
    }
  }
  for (size_t k = 0; k < n; k++) {
    uint64_t h = orx_mix64((uint64_t)s->leaf_item[k]) & s->item_mask;
    while (s->item_slot[h] >= 0) {
      if (s->leaf_item[s->item_slot[h]] == s->leaf_item[k]) {
        st = orx_fail(ONEREC_ERR_INTERNAL,
                      "catalog: duplicate item id %lld reached the trie builder",
                      (long long)s->leaf_item[k]);
        goto fail;
      }
      h = (h + 1) & s->item_mask;
    }
    s->item_slot[h] = (int32_t)k;
  }
  orx_host_free(ctx, rows);
  orx_host_free(ctx, lcp);
  *out = s;
  return ONEREC_OK;
oom:
  st = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "catalog: out of memory building the trie of %zu items",
                n);
fail:
  orx_host_free(ctx, rows);
  orx_host_free(ctx, lcp);
  orx_trie_destroy(s);
  return st;
}
