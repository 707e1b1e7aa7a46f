/* Item representation alignment (SPEC.md §1): a QFormer compresses each item's set of token
 * vectors (from any feature extractor: text, image, collaborative blocks) into N_q vectors, and
 * is trained with an item-to-item InfoNCE loss over collaboratively similar pairs (the pairs
 * of onerec/collab.h), so that items users treat alike get nearby vectors. The aligned vectors
 * then feed RQ-Kmeans (onerec/tokenizer.h), so the semantic IDs share prefixes where behaviour
 * is shared, not only where descriptions are.
 *
 * Model: memory = tokens W_in + token-position embedding ([N_M, d_model]); N_q learned queries;
 * N_c pre-RMSNorm layers of cross-attention to the memory + SwiGLU FFN; the item's vector is the
 * L2-normalised concatenation of the N_q outputs (N_q d_model floats).
 * Loss: symmetric InfoNCE with in-batch negatives: for B pairs (a_k, b_k), logits = z_a z_b^T /
 * tau, loss = (CE(logits, k) + CE(logits^T, k)) / 2 averaged over k. AdamW (weight decay on
 * matrices only), global-norm clipping at 1, linear warm-up.
 *
 * An aligner is used by one thread at a time (it holds its scratch); the backend is the
 * context's. */
#ifndef ONEREC_ALIGN_H
#define ONEREC_ALIGN_H

#include <stdint.h>

#include "onerec/context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct onerec_aligner onerec_aligner;

/* Declare with ONEREC_OPTS(onerec_aligner_config, c, .in_dim = .., .tokens = ..); zero fields
 * take the defaults. */
typedef struct onerec_aligner_config {
  size_t sz;
  int32_t in_dim;      /* width of one item token (required) */
  int32_t tokens;      /* N_M tokens per item (required) */
  int32_t queries;     /* N_q (default 4) */
  int32_t layers;      /* N_c (default 4) */
  int32_t d_model;     /* default 64 */
  int32_t heads;       /* default 4 (d_model must be a multiple) */
  int32_t ffn_dim;     /* default 2 d_model */
  float temperature;   /* tau (default 0.07) */
  int64_t max_batch;   /* pairs per step, and items per embed chunk / 2 (default 256) */
  float lr;            /* peak AdamW learning rate (default 1e-3) */
  float weight_decay;  /* default 0.01 (matrices only); < 0: none */
  int64_t warmup_steps; /* default 100; < 0: none */
} onerec_aligner_config;

/* Creates an aligner with weights drawn from seed. Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL,
 * bad sizes; the message names the field), ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_aligner_create(onerec_context *ctx,
                                               const onerec_aligner_config *cfg, uint64_t seed,
                                               onerec_aligner **out);

/* Frees it. NULL is a no-op. */
ONEREC_API void onerec_aligner_free(onerec_aligner *a);

/* The configuration in force (defaults filled in). */
ONEREC_API onerec_status onerec_aligner_config_get(const onerec_aligner *a,
                                                   onerec_aligner_config *cfg);

/* Width of an aligned item vector: queries x d_model. -1 for NULL. */
ONEREC_API int64_t onerec_aligner_dim(const onerec_aligner *a);

/* One training step on n_pairs <= max_batch pairs: rows first[k] and second[k] (< n_items) of
 * items [n_items, tokens, in_dim]; token_mask [n_items, tokens] (1 = the token exists) may be
 * NULL (all exist). An item may appear in several pairs; its other pairs then count as
 * negatives too. *loss (may be NULL) gets the batch's InfoNCE loss before the update.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL, n_pairs outside 2..max_batch, an index out of
 * range), ONEREC_ERR_INTERNAL (the loss or the gradient became non-finite: the update is
 * skipped and the weights are left as they were). */
ONEREC_API onerec_status onerec_aligner_step(onerec_aligner *a, const float *items,
                                             const uint8_t *token_mask, int64_t n_items,
                                             const int64_t *first, const int64_t *second,
                                             int64_t n_pairs, float *loss);

/* Loss of a batch of pairs without updating anything (for validation pairs). */
ONEREC_API onerec_status onerec_aligner_loss(onerec_aligner *a, const float *items,
                                             const uint8_t *token_mask, int64_t n_items,
                                             const int64_t *first, const int64_t *second,
                                             int64_t n_pairs, float *loss);

/* Aligned vectors of all n_items items: out [n_items, onerec_aligner_dim], each row of unit
 * L2 norm (an item without any token gets the vector of the queries alone). out_count = floats
 * available. Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_BUFFER_TOO_SMALL. */
ONEREC_API onerec_status onerec_aligner_embed(onerec_aligner *a, const float *items,
                                              const uint8_t *token_mask, int64_t n_items,
                                              float *out, size_t out_count);

/* Updates done so far. -1 for NULL. */
ONEREC_API int64_t onerec_aligner_steps(const onerec_aligner *a);

/* HDF5 (atomic write): configuration, weights, AdamW state and step, so that a loaded aligner
 * continues training exactly. Load validates kind, version, shapes and values.
 * Errors: ONEREC_ERR_IO, ONEREC_ERR_FORMAT, ONEREC_ERR_VERSION, ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_aligner_save(const onerec_aligner *a, const char *path);
ONEREC_API onerec_status onerec_aligner_load(onerec_context *ctx, const char *path,
                                             onerec_aligner **out);

/* Writes a features file as onerec_features_file_read reads it (HDF5, atomic): features
 * [n, dim] and, when item_ids is not NULL, item_ids [n]; `source` (may be NULL) is recorded as
 * an attribute. Used for the aligned vectors, so `onerec tokenizer fit` reads them unchanged. */
ONEREC_API onerec_status onerec_features_file_write(const char *path, const float *x, int64_t n,
                                                   int64_t dim, const int64_t *item_ids,
                                                   const char *source);

#ifdef __cplusplus
}
#endif

#endif
