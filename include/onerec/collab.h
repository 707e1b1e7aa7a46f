/* Collaborative signals mined from interaction sequences (SPEC.md §1), and item features for the
 * public Amazon Beauty data built from them and from item text.
 *
 * Swing item-to-item similarity (Yang et al., "Large Scale Product Graph Construction for
 * Recommendation in E-commerce", 2020). With U_i the users who interacted with item i, I_u the
 * item set of user u and w_u = 1 / sqrt(|I_u|):
 *
 *   swing(i, j) = sum over unordered user pairs {u, v}, u != v, both in U_i and U_j, of
 *                 w_u * w_v / (alpha + |I_u ∩ I_v|)
 *
 * Users who share many items say little about any one of them; the user weights damp heavy
 * users. Item pairs are kept only if some user pair supports them, so the result is sparse:
 * per item, its top_n neighbours by score (ties to the smaller item id).
 *
 * Caps (for cost, both deterministic): a user's history counts only its max_items_per_user most
 * recent distinct items; an item that more than max_users_per_item users saw counts only the
 * users with the shortest (capped) histories, ties to the earlier user in the input. Shortest
 * first, because a user's weight falls with the length of the history: they carry most of the
 * Swing mass, and the pair count (the cost) grows with the square of the users kept.
 *
 * Pairs for item-representation alignment (SPEC.md §1):
 *   - Swing pairs: (i, j) for the pairs_per_item best neighbours j of each item i;
 *   - user pairs: for each interaction of a user with an item t (the "clicked" item) at
 *     position p >= 1 of the training sequence, (t, h) where h is the item among the user's
 *     earlier items (at most max_items_per_user back) with the largest swing(t, h) among t's
 *     top_n neighbours, ties to the most recent; none when no earlier item is one of them.
 * Pairs are not deduplicated: a pair supported by many users appears that many times.
 *
 * Leakage: everything is mined from the training part of each sequence only. With
 * holdout_last = 2 (leave-one-out: the last item is the test target, the one before it the
 * validation target) the last two items of every sequence are ignored here, so no validation
 * or test interaction can reach a similarity, a pair or a feature.
 *
 * Determinism: results depend only on the input and options, not on the thread count. */
#ifndef ONEREC_COLLAB_H
#define ONEREC_COLLAB_H

#include "onerec/context.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Swing neighbours and pairs for alignment, mined once; immutable afterwards. */
typedef struct onerec_collab onerec_collab;

/* Where a pair came from. Values pinned. */
typedef enum onerec_pair_source {
  ONEREC_PAIR_SWING = 0, /* item-to-item Swing neighbours */
  ONEREC_PAIR_USER = 1   /* a clicked item and the most similar item of the same user's history */
} onerec_pair_source;

typedef struct onerec_collab_opts {
  size_t sz;              /* sizeof(onerec_collab_opts); set by ONEREC_OPTS */
  double alpha;           /* Swing smoothing, > 0 (default 1.0) */
  int top_n;              /* neighbours kept per item (default 50) */
  int max_items_per_user; /* most recent distinct items of a history that count (default 200) */
  int max_users_per_item; /* users kept per item (default 500) */
  int pairs_per_item;     /* Swing pairs per item, <= top_n (default 10; -1 = no Swing pairs) */
  int no_user_pairs;      /* non-zero: no user pairs */
  int holdout_last;       /* trailing items of each sequence to ignore (default 0; 2 for
                           * leave-one-out) */
  int threads;            /* worker threads (default: the context's) */
  int no_user_weight;     /* non-zero: w_u = 1 instead of 1 / sqrt(|I_u|) */
} onerec_collab_opts;

/* Mines Swing neighbours and alignment pairs from n_users interaction sequences given in CSR
 * form: user u's items, oldest first, are items[offsets[u] .. offsets[u + 1]) (offsets has
 * n_users + 1 non-decreasing entries, offsets[0] = 0). Item ids are any non-negative int64;
 * repeats inside a sequence count once for the similarity. opts may be NULL for defaults.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL arguments, bad offsets, negative ids, bad
 * options), ONEREC_ERR_OUT_OF_MEMORY. The context must outlive the result. */
ONEREC_API onerec_status onerec_collab_mine(onerec_context *ctx, size_t n_users,
                                            const int64_t *offsets, const int64_t *items,
                                            const onerec_collab_opts *opts, onerec_collab **out);

/* Frees the result. NULL is a no-op. */
ONEREC_API void onerec_collab_free(onerec_collab *c);

/* The distinct item ids of the training interactions, ascending: ids[0 .. *n). The array
 * belongs to c and lives as long as it. Thread-safe (c is immutable). */
ONEREC_API onerec_status onerec_collab_items(const onerec_collab *c, const int64_t **ids,
                                             int64_t *n);

/* Item item_id's Swing neighbours, best first: neighbours[0 .. *count) with scores (> 0).
 * An item without any is success with *count = 0; an id that never occurs in training is
 * ONEREC_ERR_NOT_FOUND. The arrays belong to c. Thread-safe. */
ONEREC_API onerec_status onerec_collab_neighbors(const onerec_collab *c, int64_t item_id,
                                                 const int64_t **neighbors, const float **scores,
                                                 int32_t *count);

/* The alignment pairs: (first[k], second[k]) with score[k] = their Swing score and source[k] a
 * onerec_pair_source, k < *n; Swing pairs first (by item, best first), then user pairs in
 * sequence order. Any out pointer but n may be NULL. The arrays belong to c. Thread-safe. */
ONEREC_API onerec_status onerec_collab_pairs(const onerec_collab *c, int64_t *n,
                                             const int64_t **first, const int64_t **second,
                                             const float **score, const int32_t **source);

/* ---- Item features for the Amazon Beauty data (../shared/data/amazon) ----
 * Reads `Beauty.txt` (one user per line: user id, then item ids, oldest first) and
 * `Beauty_items.tsv` (a header line, then item_id, asin, attributes (comma-separated ids),
 * title (words)) from data_dir and builds one feature vector per item of the TSV:
 *   text block:   TF-IDF of the title words and attribute ids (idf = ln((1+N)/(1+df)) + 1),
 *                 signed feature hashing into text_dim buckets, L2-normalised;
 *   collab block: the item's Swing row (self weight 1, neighbours scaled so the best is 1)
 *                 times a fixed random +-1 projection into collab_dim dims, L2-normalised.
 *                 Swing needs two users who share the item and another one, which many items
 *                 of sparse data lack (a third on Beauty): those fall back to co-occurrence
 *                 (the items of their training users, weighted 1/sqrt(history length)), and
 *                 an item without any training interaction gets a zero block;
 * concatenated with weights 1 and collab_weight, then L2-normalised again. Swing runs on the
 * leave-one-out training part only (holdout_last = 2): no validation/test item leaks in.
 * Progress goes to the context's log callback at ONEREC_LOG_INFO. */
typedef struct onerec_beauty_features_opts {
  size_t sz;                        /* sizeof(onerec_beauty_features_opts); set by ONEREC_OPTS */
  int text_dim;                     /* text hashing buckets (default 256) */
  int collab_dim;                   /* collaborative dims (default 128; -1 = text only) */
  float collab_weight;              /* weight of the collaborative block (default 1.0) */
  uint64_t seed;                    /* seed of the projection (default 0: a fixed seed) */
  const onerec_collab_opts *collab; /* Swing options (NULL = defaults; holdout_last forced 2) */
} onerec_beauty_features_opts;

/* What onerec_features_beauty did. The caller sets sz (ONEREC_OPTS); the library fills only the
 * fields that sz covers. */
typedef struct onerec_features_report {
  size_t sz;
  int64_t items; /* rows written (items of the TSV) */
  int32_t dim;   /* columns: text_dim + collab_dim */
  int32_t text_dim, collab_dim;
  int64_t users;                   /* sequences read */
  int64_t train_interactions;      /* interactions Swing saw */
  int64_t vocabulary;              /* distinct words and attribute ids */
  int64_t items_with_neighbors;    /* items with at least one Swing neighbour */
  int64_t items_with_cooccurrence; /* the others that fell back to co-occurrence */
  int64_t pairs;                   /* alignment pairs mined (Swing + user) */
  double swing_seconds;            /* wall time of the Swing mining */
  double seconds;                  /* wall time of the whole call */
} onerec_features_report;

/* Builds the features and writes them to out_path (HDF5, atomically): float32 dataset
 * `features` [items, dim] and int64 dataset `item_ids` [items] (the TSV's ids, in file order),
 * root stamp onerec_kind = "features" version 1, attributes text_dim, collab_dim, source.
 * opts and report may be NULL.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_IO (missing files), ONEREC_ERR_FORMAT
 * (malformed lines: the message names file and line), ONEREC_ERR_OUT_OF_MEMORY.
 * Thread-safety: uses the context, which one thread at a time may use. */
ONEREC_API onerec_status onerec_features_beauty(onerec_context *ctx, const char *data_dir,
                                                const char *out_path,
                                                const onerec_beauty_features_opts *opts,
                                                onerec_features_report *report);

/* ---- Content pairs for alignment ----
 * Items that share a rare attribute of an items TSV (the format onerec_features_beauty reads:
 * a header naming at least item_id, attributes (comma-separated non-negative ids) and title,
 * then one item per line) are paired: for every attribute carried by 2..max_items items, each
 * of its items is paired with per_item of the attribute's other items (all of them when
 * fewer), drawn by the seed. The bound keeps brand-like attributes and leaves broad categories
 * out. Why: an item seen a few times in training has almost no collaborative pairs, and on
 * Amazon Beauty a rare test target shares such an attribute with one of the user's last five
 * items a quarter of the time. The pairs feed onerec_aligner_step beside the collaborative
 * ones (`onerec align --attribute-pairs K`). */
typedef struct onerec_attribute_pairs_opts {
  size_t sz;     /* sizeof(onerec_attribute_pairs_opts); set by ONEREC_OPTS */
  int per_item;  /* partners per item and attribute, 1..2^20 (default 5) */
  int max_items; /* an attribute counts when 2..max_items items carry it; 2..2^20 (default 200) */
  uint64_t seed; /* the partners' draws */
} onerec_attribute_pairs_opts;

/* Writes the pairs as item ids of the TSV: (first[k], second[k]), k < *n, ordered by attribute
 * then by first item. Pairs are directed: (a, b) and (b, a) are drawn separately, and a pair
 * appears once per attribute its items share. When cap (the room in first and second) is
 * smaller than the count, nothing is written, *n is the count and the result is
 * ONEREC_ERR_BUFFER_TOO_SMALL: call with cap 0 and NULL arrays to learn the size (a file
 * without any pair gives ONEREC_OK and *n = 0). After any other error *n is 0. The result
 * depends only on the file, the options and the seed; the cost is the pairs', not the square
 * of an attribute's items. opts may be NULL. Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL
 * arguments, options out of range), ONEREC_ERR_IO, ONEREC_ERR_FORMAT (as
 * onerec_features_beauty: the message names file and line), ONEREC_ERR_OUT_OF_MEMORY,
 * ONEREC_ERR_BUFFER_TOO_SMALL. */
ONEREC_API onerec_status onerec_attribute_pairs(onerec_context *ctx, const char *items_tsv,
                                                const onerec_attribute_pairs_opts *opts,
                                                int64_t *first, int64_t *second, size_t cap,
                                                int64_t *n);

#ifdef __cplusplus
}
#endif

#endif
