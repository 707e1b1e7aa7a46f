/* Item features for the Amazon Beauty data (see onerec/collab.h for the recipe): the reader of
 * Beauty_items.tsv, the text and collaborative feature blocks, and the whole build. */
#ifndef ORX_FEATURES_BEAUTY_H
#define ORX_FEATURES_BEAUTY_H

#include "context_impl.h"
#include "onerec/collab.h"

/* Items of a TSV with a header naming at least the columns item_id, attributes and title (any
 * order; other columns such as asin are ignored). Each item's tokens are 64-bit hashes of its
 * title words (lower-cased runs of letters, digits and non-ASCII bytes) and of its attribute
 * ids, kept apart by a kind prefix so the word "173" and attribute 173 differ; its attribute
 * ids are also kept as numbers (for the content pairs of attr_pairs.c). */
typedef struct orx_item_text {
  const onerec_context *ctx;
  int64_t n;
  int64_t *ids;     /* [n], file order */
  int64_t *tok_off; /* [n + 1] */
  uint64_t *tok;    /* token hashes */
  int64_t *attr_off; /* [n + 1] */
  int64_t *attr;     /* attribute ids, in file order */
} orx_item_text;

/* Errors: ONEREC_ERR_IO, ONEREC_ERR_FORMAT ("path:line: ..." for a missing header column, a
 * wrong field count, a bad item id or attribute id, a repeated item id). */
onerec_status orx_items_tsv_read(const onerec_context *ctx, const char *path, orx_item_text *out);
onerec_status orx_items_tsv_parse(const onerec_context *ctx, const char *name, const char *text,
                                  size_t len, orx_item_text *out);
void orx_item_text_free(orx_item_text *t);

/* TF-IDF with signed hashing into dim buckets, rows L2-normalised (an item without tokens
 * stays zero); out is n x dim. *vocab (may be NULL) = distinct tokens. */
onerec_status orx_text_features(const orx_item_text *t, int dim, float *out, int64_t *vocab);

/* Collaborative block for n items (rows of out, n x dim). An item with Swing neighbours gets
 * its own +-1 projection vector plus its neighbours' scaled by score / best score. Swing needs
 * two users who share the item and another one; on sparse data many items have no such pair
 * (on Beauty about a third), so an item without Swing neighbours but with training
 * interactions falls back to co-occurrence: its own vector plus those of the items of its
 * training users (at most 50 users, 50 most recent items each), weighted
 * w_u = 1/sqrt(|I_u|) and scaled so the largest weight is 1. An item with no training
 * interaction gets a zero block: a random vector would be noise. Rows are L2-normalised.
 * train_off / train_items (CSR of the training parts, as given to onerec_collab_mine with
 * holdout 0) may be NULL: then no fallback. Counts through *with_swing and *with_cooc (may be
 * NULL). Errors: ONEREC_ERR_OUT_OF_MEMORY. */
onerec_status orx_collab_features(const onerec_collab *c, int64_t n_users, const int64_t *train_off,
                                  const int64_t *train_items, int64_t n, const int64_t *ids,
                                  int dim, uint64_t seed, float *out, int64_t *with_swing,
                                  int64_t *with_cooc);

typedef struct orx_features {
  const onerec_context *ctx;
  int64_t n;
  int32_t dim, text_dim, collab_dim;
  int64_t *ids; /* [n] */
  float *x;     /* [n * dim] */
} orx_features;

/* The whole build in memory; report (full struct, may be NULL) is filled. */
onerec_status orx_features_beauty_build(onerec_context *ctx, const char *data_dir,
                                        const onerec_beauty_features_opts *opts, orx_features *out,
                                        onerec_features_report *report);
void orx_features_free(orx_features *f);

#endif
