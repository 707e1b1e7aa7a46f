/* The item catalogue (SPEC.md §1, §4): a one-to-one map between item ids (64-bit, sparse) and
 * semantic IDs (`levels` codes, each in 0..codes_per_level-1), and the prefix trie over the
 * semantic IDs that constrained generation walks ("which codes may follow this prefix?").
 *
 * Changes are staged and published in batches: onerec_catalog_add / onerec_catalog_retire edit
 * a pending set; onerec_catalog_commit builds a new immutable trie from it and swaps it in
 * atomically. Every read (lookups both ways, legal next codes, export, save) sees the last
 * committed trie only, whole: a reader never observes half a commit, and a trie a reader is
 * using stays valid until it is done, even if a commit replaces it meanwhile.
 *
 * The trie is a flat CSR layout: nodes are numbered level by level, the children of a node are
 * consecutive node ids sorted by code, so the legal next codes of a prefix are one contiguous
 * array. Going to the child for a code is O(1): a dense row of codes_per_level entries for the
 * root and for every node whose children fill at least a quarter of such a row (there a dense
 * row costs no more memory than a hash entry per child), an open-addressing hash table keyed by
 * (node, code) for the other nodes (load factor at most 1/2).
 *
 * Limits: levels 1..16, codes_per_level 1..2^24, levels x items below 2^31.
 *
 * Thread-safety: every function may be called from any number of threads at once on the same
 * catalogue. Writers (add, retire, commit) are serialised by an internal lock; readers take no
 * lock that a commit holds while it builds, so reads stay fast during a rebuild. */
#ifndef ONEREC_CATALOG_H
#define ONEREC_CATALOG_H

#include "onerec/context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct onerec_catalog onerec_catalog;

/* Most levels a semantic ID may have. */
#define ONEREC_CATALOG_MAX_LEVELS 16

typedef struct onerec_catalog_opts {
  size_t sz;           /* sizeof(onerec_catalog_opts); set by ONEREC_OPTS */
  int levels;          /* codes per semantic ID (default 3) */
  int codes_per_level; /* codes of each level, K (default 256) */
} onerec_catalog_opts;

/* Creates an empty catalogue (nothing pending, an empty trie published). opts may be NULL for
 * the defaults. The catalogue allocates through ctx, which must outlive it.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL ctx or out, bad sz, levels or codes_per_level out
 * of range), ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_catalog_create(onerec_context *ctx, const onerec_catalog_opts *opts,
                                               onerec_catalog **out);

/* Frees a catalogue. NULL is a no-op. No other call on it may be running. */
ONEREC_API void onerec_catalog_free(onerec_catalog *cat);

/* Stages n items: item_ids[i] gets the semantic ID codes[i * levels .. i * levels + levels).
 * All or nothing: if any item fails, none is staged. Visible to readers after commit.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT for NULL arrays (with n > 0), a code outside
 * 0..codes_per_level-1, an item id already present (pending) or given twice, or a semantic ID
 * already held by another item (a collision: the message names both items; resolve collisions
 * before adding, e.g. with the tokenizer's resolution), ONEREC_ERR_OUT_OF_MEMORY.
 * Thread-safe (serialised with the other writers). */
ONEREC_API onerec_status onerec_catalog_add(onerec_catalog *cat, size_t n, const int64_t *item_ids,
                                            const int32_t *codes);

/* Unstages n items (retired items stop being generated after the next commit; their semantic
 * IDs may be reused). All or nothing.
 * Errors: ONEREC_ERR_NOT_FOUND for an id not in the pending set (the message names it),
 * ONEREC_ERR_INVALID_ARGUMENT for NULL item_ids (with n > 0) or an id given twice.
 * Thread-safe (serialised with the other writers). */
ONEREC_API onerec_status onerec_catalog_retire(onerec_catalog *cat, size_t n,
                                               const int64_t *item_ids);

/* Builds the trie of the pending set and publishes it atomically. Readers that started before
 * keep the trie they hold until their call returns. O(n log n) in the pending items.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_OUT_OF_MEMORY (the old trie stays published).
 * Thread-safe (serialised with the other writers). */
ONEREC_API onerec_status onerec_catalog_commit(onerec_catalog *cat);

/* The shape and the number of committed items. Any out pointer may be NULL.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL cat). Thread-safe. */
ONEREC_API onerec_status onerec_catalog_info(const onerec_catalog *cat, int *levels,
                                             int *codes_per_level, int64_t *items);

/* Item -> semantic ID in the committed trie: writes `levels` codes.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_NOT_FOUND. Thread-safe. */
ONEREC_API onerec_status onerec_catalog_codes_of(const onerec_catalog *cat, int64_t item_id,
                                                 int32_t *codes);

/* Semantic ID (`levels` codes) -> item in the committed trie.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_NOT_FOUND (no item has it; a code out of
 * range is simply not found). Thread-safe. */
ONEREC_API onerec_status onerec_catalog_item_of(const onerec_catalog *cat, const int32_t *codes,
                                                int64_t *item_id);

/* The legal next codes after a prefix of `len` codes (0 <= len < levels; prefix may be NULL
 * when len is 0), ascending, from the committed trie: codes[0 .. *count). A prefix that no item
 * has gives *count = 0 (success). If the codes do not fit in cap, returns
 * ONEREC_ERR_BUFFER_TOO_SMALL with *count set to the number needed (at most codes_per_level).
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL arguments, len out of range). Thread-safe. */
ONEREC_API onerec_status onerec_catalog_next_codes(const onerec_catalog *cat, const int32_t *prefix,
                                                   int len, int32_t *codes, size_t cap,
                                                   size_t *count);

/* Exports the committed items in semantic-ID order: item_ids[0 .. *n) and codes (n x levels,
 * row-major); either array may be NULL to get only the other (or just the count). If cap is
 * smaller than the item count, returns ONEREC_ERR_BUFFER_TOO_SMALL with *n set to the count.
 * Thread-safe. */
ONEREC_API onerec_status onerec_catalog_export(const onerec_catalog *cat, int64_t *item_ids,
                                               int32_t *codes, size_t cap, size_t *n);

/* Saves the committed items to an HDF5 file (root stamp onerec_kind = "catalog", format
 * version 1; group /catalog with attributes levels and codes_per_level and datasets item_ids
 * int64 [n] and codes int32 [n, levels], in semantic-ID order). Written atomically: a reader of
 * `path` sees the old file or the new one. Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_IO.
 * Thread-safe. */
ONEREC_API onerec_status onerec_catalog_save(const onerec_catalog *cat, const char *path);

/* Loads a catalogue saved by onerec_catalog_save: created, filled and committed. Everything is
 * validated (stamp, version, shapes, codes in range, no duplicate ids or semantic IDs); a
 * corrupt or truncated file fails with a message naming the file and the problem.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_IO (cannot read), ONEREC_ERR_FORMAT,
 * ONEREC_ERR_SHAPE, ONEREC_ERR_VERSION, ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_catalog_load(onerec_context *ctx, const char *path,
                                             onerec_catalog **out);

#ifdef __cplusplus
}
#endif

#endif
