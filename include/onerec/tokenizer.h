/* The RQ-Kmeans tokenizer (SPEC.md §1): turns an item's feature vector into a semantic ID of
 * `levels` codes. Level l runs k-means with codes_per_level centroids on the residuals left by
 * the levels before it: s_l = argmin_k ||r_l - c_l,k||^2, r_{l+1} = r_l - c_l,s_l (r_0 = x).
 * Decoding sums the chosen centroids.
 *
 * Fitting streams the assignment in row blocks (||x||^2 - 2 x.c + ||c||^2 through the backend's
 * matrix multiply, never an n x codes distance matrix), so 8192 codes per level on a million
 * 512-d vectors fits in a few GiB: the training points (at most max_train of them, a seeded
 * uniform sample), their residuals and one block of distances per worker thread.
 *
 * Determinism: a given input, options (seed included), backend and thread count give
 * bit-identical codebooks; on the CPU backend the result also does not depend on the thread
 * count.
 *
 * Thread-safety: a tokenizer is immutable once fitted or loaded. Encoding, decoding and metrics
 * run on the context's backend, which serves one thread at a time: calls on tokenizers of the
 * same context must be serialised, like every call on that context. onerec_tokenizer_info,
 * onerec_tokenizer_codebook and onerec_tokenizer_save only read the tokenizer and may run from
 * any number of threads at once. */
#ifndef ONEREC_TOKENIZER_H
#define ONEREC_TOKENIZER_H

#include "onerec/context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct onerec_tokenizer onerec_tokenizer;

/* Most levels a tokenizer may have. */
#define ONEREC_TOKENIZER_MAX_LEVELS 16

/* How a level's centroids start. Values pinned. */
typedef enum onerec_kmeans_init {
  ONEREC_KMEANS_PLUSPLUS = 0, /* k-means++ (D^2 sampling) among init_sample training points;
                               * from 128 codes up, drawn in batches of codes / 64 (at most 128)
                               * between distance updates, to keep it as cheap as a few Lloyd
                               * iterations */
  ONEREC_KMEANS_RANDOM = 1    /* distinct training points drawn uniformly (faiss's way) */
} onerec_kmeans_init;

typedef struct onerec_tokenizer_opts {
  size_t sz;            /* sizeof(onerec_tokenizer_opts); set by ONEREC_OPTS */
  int levels;           /* codes per semantic ID, 1..ONEREC_TOKENIZER_MAX_LEVELS (default 3) */
  int codes_per_level;  /* centroids per level, 1..2^24 (default 256) */
  int iterations;       /* Lloyd iterations per level, each an assignment and an update
                         * (default 25) */
  uint64_t seed;        /* seed of the sample and of the initialisation (default 0, a fixed
                         * seed: the context's seed is not used) */
  onerec_kmeans_init init; /* default ONEREC_KMEANS_PLUSPLUS */
  int balanced;         /* non-zero: balanced k-means. In every iteration each cluster takes at
                         * most ceil(points / codes_per_level) points: points that lose most by
                         * not getting their nearest centroid choose first, among their 16
                         * nearest (a point whose 16 are all full takes its nearest). The
                         * centroids so spread over dense regions; encoding stays nearest-
                         * centroid, so code usage is more even but not exactly balanced. */
  double tolerance;     /* stop a level early when the objective's relative decrease over one
                         * iteration is below this (default 0: always run every iteration) */
  int64_t max_train;    /* fit on at most this many points, a seeded uniform sample, then encode
                         * all (default 0: 256 x codes_per_level, as faiss; < 0: all points) */
  int64_t init_sample;  /* k-means++ draws its centroids from this many of the training points
                         * (default 0: max(8 x codes_per_level, 65536), at most all of them) */
} onerec_tokenizer_opts;

/* What a tokenizer is and how it was fitted. */
typedef struct onerec_tokenizer_info {
  size_t sz;                /* sizeof(onerec_tokenizer_info); set by ONEREC_OPTS */
  int levels;
  int codes_per_level;
  int64_t dim;              /* feature dimensions */
  int iterations;           /* the options it was fitted with */
  uint64_t seed;
  onerec_kmeans_init init;
  int balanced;
  double tolerance;
  int64_t max_train;        /* as given (0 = default) */
  int64_t init_sample;      /* as given (0 = default) */
  int64_t train_points;     /* points the codebooks were fitted on */
  int iterations_run[ONEREC_TOKENIZER_MAX_LEVELS]; /* fewer than iterations if it converged */
  /* Relative training loss after each level: sum of squared residuals of the training points
   * over the sum of their squared norms (the last level's is the training reconstruction
   * loss). */
  double train_loss[ONEREC_TOKENIZER_MAX_LEVELS];
  int reseeded[ONEREC_TOKENIZER_MAX_LEVELS]; /* empty clusters re-seeded, over all iterations */
  double fit_seconds;
} onerec_tokenizer_info;

/* Quality of a set of semantic IDs (the OneRec report's Table 11). */
typedef struct onerec_tokenizer_metrics {
  size_t sz;                   /* sizeof(onerec_tokenizer_metrics); set by ONEREC_OPTS */
  int64_t items;
  int levels;
  /* sum_i ||x_i - decode(codes_i)||^2 / sum_i ||x_i||^2; NaN when no features were given */
  double reconstruction_loss;
  /* per level: distinct codes used / codes_per_level */
  double utilization[ONEREC_TOKENIZER_MAX_LEVELS];
  /* per level: entropy of the code distribution over the items, in bits (log2) and in nats
   * (ln); at most log2(codes_per_level) bits */
  double entropy_bits[ONEREC_TOKENIZER_MAX_LEVELS];
  double entropy_nats[ONEREC_TOKENIZER_MAX_LEVELS];
  int64_t distinct_ids;        /* distinct semantic IDs (full code tuples) */
  int64_t colliding_items;     /* items whose semantic ID another item also has */
  double collision_rate;       /* colliding_items / items */
  int64_t largest_collision_group; /* most items sharing one semantic ID (1 = no collision) */
} onerec_tokenizer_metrics;

/* What onerec_tokenizer_encode_unique changed. */
typedef struct onerec_tokenizer_unique_report {
  size_t sz;                    /* sizeof(onerec_tokenizer_unique_report); set by ONEREC_OPTS */
  int64_t reassigned;           /* items moved off a shared semantic ID */
  int64_t reassigned_upper;     /* of those, items whose prefix was full, so a code above the
                                 * last level changed too */
  double loss_before;           /* reconstruction loss of the plain encoding */
  double loss_after;            /* reconstruction loss of the one-to-one encoding */
} onerec_tokenizer_unique_report;

/* Fits a tokenizer on n feature vectors x (n x dim floats, row-major, host memory; all finite).
 * opts may be NULL for the defaults. Level by level: the training points (a seeded sample of at
 * most max_train of them) are clustered with k-means (init, then `iterations` rounds of
 * assignment and centroid update; a centroid left without points is re-seeded at the training
 * point farthest from its centroid), and the residuals go on to the next level. The tokenizer
 * keeps ctx, which must outlive it. Progress goes to ctx's log at INFO level.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL ctx, x or out, n or dim < 1, bad sz, options out of
 * range, fewer training points than codes_per_level, a non-finite value in x),
 * ONEREC_ERR_OUT_OF_MEMORY, ONEREC_ERR_UNSUPPORTED (the context's backend lacks a k-means op).
 * Uses the context (one thread at a time). */
ONEREC_API onerec_status onerec_tokenizer_fit(onerec_context *ctx, const float *x, int64_t n,
                                              int64_t dim, const onerec_tokenizer_opts *opts,
                                              onerec_tokenizer **out);

/* Frees a tokenizer. NULL is a no-op. */
ONEREC_API void onerec_tokenizer_free(onerec_tokenizer *tok);

/* Describes the tokenizer: the caller sets info->sz (ONEREC_OPTS); only the fields it covers
 * are written. Errors: ONEREC_ERR_INVALID_ARGUMENT. Thread-safe. */
ONEREC_API onerec_status onerec_tokenizer_info_get(const onerec_tokenizer *tok,
                                                   onerec_tokenizer_info *info);

/* Copies level `level`'s centroids (codes_per_level x dim floats, row-major) to out, which holds
 * out_len floats. Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL, level out of range),
 * ONEREC_ERR_BUFFER_TOO_SMALL. Thread-safe. */
ONEREC_API onerec_status onerec_tokenizer_codebook(const onerec_tokenizer *tok, int level,
                                                   float *out, size_t out_len);

/* Encodes n vectors x (n x dim, host) into codes (n x levels int32, row-major, host): the
 * nearest centroid level by level on the residuals. n may be 0.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL arrays with n > 0, n < 0, a non-finite value in x;
 * nothing useful is left in codes), ONEREC_ERR_OUT_OF_MEMORY. Uses the context. */
ONEREC_API onerec_status onerec_tokenizer_encode(onerec_tokenizer *tok, const float *x, int64_t n,
                                                 int32_t *codes);

/* Decodes n semantic IDs (n x levels int32) into x_hat (n x dim floats): the sum of the chosen
 * centroids. Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL arrays with n > 0, n < 0, a code outside
 * 0..codes_per_level-1: the message names the item and level), ONEREC_ERR_OUT_OF_MEMORY.
 * Uses the context. */
ONEREC_API onerec_status onerec_tokenizer_decode(onerec_tokenizer *tok, const int32_t *codes,
                                                 int64_t n, float *x_hat);

/* Metrics of n semantic IDs (n x levels): utilisation, entropy and collisions from the codes
 * alone; with x (n x dim, the items' features; may be NULL) also the reconstruction loss. The
 * caller sets m->sz; only the fields it covers are written. n >= 1.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL tok, codes or m, n < 1, a code out of range, a
 * non-finite value in x), ONEREC_ERR_OUT_OF_MEMORY. Uses the context when x is given. */
ONEREC_API onerec_status onerec_tokenizer_metrics_get(onerec_tokenizer *tok, const float *x,
                                                      const int32_t *codes, int64_t n,
                                                      onerec_tokenizer_metrics *m);

/* Encodes n vectors so that no two share a semantic ID (the item <-> code map becomes
 * one-to-one, as a catalogue needs). First the plain encoding; then, in each group of items
 * sharing an ID, the item nearest to the shared reconstruction keeps it and the others, in
 * item order, move to the nearest semantic ID no item holds yet: the nearest free last-level
 * code under the same prefix, or, where all codes_per_level of that prefix are taken, the
 * nearest code with a free slot one level up (and so on), then the nearest free codes below it.
 * "Nearest" is the Euclidean distance between the item's residual at that level and the
 * centroid. report (may be NULL; the caller sets sz) says how many moved and what it cost in
 * reconstruction loss.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (as encode; also more items than semantic IDs exist),
 * ONEREC_ERR_OUT_OF_MEMORY. Uses the context. */
ONEREC_API onerec_status onerec_tokenizer_encode_unique(onerec_tokenizer *tok, const float *x,
                                                        int64_t n, int32_t *codes,
                                                        onerec_tokenizer_unique_report *report);

/* Saves the tokenizer to an HDF5 file (root stamp onerec_kind = "tokenizer", format version 1;
 * /config: attributes of the options and fit, and a checksum of the codebooks;
 * /codebooks float32 [levels, codes, dim]).
 * Written atomically: a reader of `path` sees the old file or the new one.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_IO, ONEREC_ERR_OUT_OF_MEMORY. Thread-safe. */
ONEREC_API onerec_status onerec_tokenizer_save(const onerec_tokenizer *tok, const char *path);

/* Loads a tokenizer saved by onerec_tokenizer_save, for use on ctx (which must outlive it).
 * Validates everything: stamp (a file of another kind or a newer version is refused), config
 * ranges, dataset shapes and types, the checksum, finite values; a truncated or corrupt file
 * fails with a message naming the file and the problem, never a crash.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_IO (missing or unreadable), ONEREC_ERR_FORMAT,
 * ONEREC_ERR_SHAPE, ONEREC_ERR_DTYPE, ONEREC_ERR_VERSION, ONEREC_ERR_OUT_OF_MEMORY,
 * ONEREC_ERR_UNSUPPORTED (the context's backend lacks a k-means op). */
ONEREC_API onerec_status onerec_tokenizer_load(onerec_context *ctx, const char *path,
                                               onerec_tokenizer **out);

/* ---- Features files, the tokenizer's input ----
 * An HDF5 file with a float dataset `features` [n, dim] (float32, or float64 converted) and,
 * optionally, an integer dataset `item_ids` [n]: what `onerec features beauty` writes, or any
 * h5py script. */

/* Shape of a features file: *n rows of *dim floats; *has_item_ids = 1 if it holds item_ids.
 * Any out pointer may be NULL.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL path), ONEREC_ERR_IO (missing file),
 * ONEREC_ERR_FORMAT (not HDF5, no `features` dataset, wrong type), ONEREC_ERR_SHAPE (not 2-D,
 * empty, item_ids of another length). Thread-safe. */
ONEREC_API onerec_status onerec_features_file_info(const char *path, int64_t *n, int64_t *dim,
                                                   int *has_item_ids);

/* Reads a features file into the caller's buffers: x (x_len floats, at least n x dim) and, when
 * item_ids is not NULL, the ids (ids_len entries, at least n; 0..n-1 when the file has none).
 * Errors: as onerec_features_file_info, ONEREC_ERR_BUFFER_TOO_SMALL. Thread-safe. */
ONEREC_API onerec_status onerec_features_file_read(const char *path, float *x, size_t x_len,
                                                   int64_t *item_ids, size_t ids_len);

#ifdef __cplusplus
}
#endif

#endif
