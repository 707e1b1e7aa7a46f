/* The catalogue's internals: the immutable trie snapshot and the fast walk that generation
 * (beam search over semantic-ID prefixes) uses. Never installed.
 *
 * Node numbering: level by level (breadth first), and inside a level in semantic-ID order, so
 *   - the root is node 0; nodes of depth d are level_start[d] .. level_start[d+1]-1;
 *   - the children of an internal node u are the consecutive nodes
 *     first_child[u] .. first_child[u] + child_count[u] - 1, sorted by code;
 *   - code[v] is the code on the edge into v, so the legal next codes of u are the contiguous
 *     array code + first_child[u] (child_count[u] of them, ascending);
 *   - nodes of depth `levels` are the leaves, one per item: leaf_item[v - level_start[levels]].
 * Child by code in O(1): dense rows (K = codes_per_level entries, -1 = no child) for the root
 * and for nodes whose children fill at least a quarter of a row; a (node, code) -> child
 * open-addressing table (linear probing, load <= 1/2) for the others.
 *
 * Use: s = orx_catalog_acquire(cat); ... walk s ...; orx_catalog_release(s). A held snapshot
 * stays valid and unchanged across commits; the catalogue must outlive it. */
#ifndef ORX_CATALOG_IMPL_H
#define ORX_CATALOG_IMPL_H

#include <stdatomic.h>

#include "context_impl.h"
#include "onerec/catalog.h"

typedef struct orx_trie_edge {
  int32_t parent, code, child; /* parent -1 = empty slot */
} orx_trie_edge;

typedef struct orx_catalog_snap {
  atomic_int refs;
  const onerec_context *ctx;
  int32_t levels, K;
  int64_t n_items;
  int32_t n_nodes;
  int32_t level_start[ONEREC_CATALOG_MAX_LEVELS + 2];
  int32_t *code;        /* [n_nodes]; root: -1 */
  int32_t *parent;      /* [n_nodes]; root: -1 */
  int32_t *first_child; /* [n_internal = level_start[levels]] */
  int32_t *child_count; /* [n_internal] */
  int32_t *dense_row;   /* [n_internal]: row index into dense, or -1 (root: row 0) */
  int32_t *dense;       /* [n_dense * K] */
  int32_t n_dense;
  orx_trie_edge *edges; /* [edge_mask + 1] */
  uint64_t edge_mask;
  int64_t *leaf_item; /* [n_items] */
  /* item id -> leaf index (open addressing, linear probing; -1 = empty) */
  int32_t *item_slot; /* [item_mask + 1] */
  uint64_t item_mask;
} orx_catalog_snap;

static inline uint64_t orx_mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

static inline uint64_t orx_trie_edge_hash(int32_t node, int32_t code) {
  return orx_mix64(((uint64_t)(uint32_t)node << 32) | (uint32_t)code);
}

/* The child of internal node `node` along `code`, or -1 when no item continues that way
 * (including a code outside 0..K-1). O(1). */
static inline int32_t orx_trie_child(const orx_catalog_snap *s, int32_t node, int32_t code) {
  if ((uint32_t)code >= (uint32_t)s->K) return -1;
  int32_t row = s->dense_row[node];
  if (row >= 0) return s->dense[(size_t)row * (size_t)s->K + (size_t)code];
  uint64_t h = orx_trie_edge_hash(node, code) & s->edge_mask;
  for (;;) {
    const orx_trie_edge *e = &s->edges[h];
    if (e->parent < 0) return -1;
    if (e->parent == node && e->code == code) return e->child;
    h = (h + 1) & s->edge_mask;
  }
}

/* Legal next codes of internal node `node`: returns their count and points *codes at them
 * (ascending); the child for (*codes)[j] is *first + j. */
static inline int32_t orx_trie_children(const orx_catalog_snap *s, int32_t node,
                                        const int32_t **codes, int32_t *first) {
  int32_t f = s->first_child[node];
  if (first) *first = f;
  if (codes) *codes = s->code + f;
  return s->child_count[node];
}

static inline int orx_trie_is_leaf(const orx_catalog_snap *s, int32_t node) {
  return node >= s->level_start[s->levels];
}

/* Item id of a leaf node. */
static inline int64_t orx_trie_leaf_item(const orx_catalog_snap *s, int32_t leaf) {
  return s->leaf_item[leaf - s->level_start[s->levels]];
}

/* Leaf node of an item id, or -1. */
int32_t orx_trie_find_item(const orx_catalog_snap *s, int64_t item_id);

/* Walks `len` codes from the root; the node reached or -1. */
int32_t orx_trie_walk(const orx_catalog_snap *s, const int32_t *codes, int len);

/* Writes the `levels` codes of a leaf. */
void orx_trie_leaf_codes(const orx_catalog_snap *s, int32_t leaf, int32_t *codes);

/* Builds a snapshot from n items (ids, codes n x levels), which must be free of duplicates
 * (ids and semantic IDs), codes in range. refs starts at 1. */
onerec_status orx_trie_build(const onerec_context *ctx, int32_t levels, int32_t K, size_t n,
                             const int64_t *ids, const int32_t *codes, orx_catalog_snap **out);

/* Frees a snapshot regardless of its count (for the builder and the final release). */
void orx_trie_destroy(orx_catalog_snap *s);

/* The committed snapshot, with a reference the caller must give back. Never NULL. */
orx_catalog_snap *orx_catalog_acquire(const onerec_catalog *cat);
void orx_catalog_release(orx_catalog_snap *s);

#endif
