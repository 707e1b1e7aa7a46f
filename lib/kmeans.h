/* Single-level k-means on rows that live on the context's device, written against the backend's
 * op table (row_sq_norms, kmeans_assign, kmeans_update, gather_axpy, kmeanspp_step), so it
 * runs on any backend that fills those slots. The RQ-Kmeans tokenizer runs it once per level. */
#ifndef ORX_KMEANS_H
#define ORX_KMEANS_H

#include <stdint.h>

#include "context_impl.h"
#include "onerec/tokenizer.h"
#include "util.h"

/* k-means' draws: a splitmix64 stream (util.h). */
typedef struct orx_rng {
  uint64_t s;
} orx_rng;

static inline uint64_t orx_rng_next(orx_rng *r) { return orx_splitmix64(&r->s); }
/* uniform in [0, n), n >= 1 (multiply-shift; the bias is below 2^-32 for n < 2^32) */
static inline int64_t orx_rng_below(orx_rng *r, int64_t n) {
  return (int64_t)(((unsigned __int128)orx_rng_next(r) * (uint64_t)n) >> 64);
}
/* uniform in [0, 1) with 53 bits */
static inline double orx_rng_unit(orx_rng *r) {
  return (double)(orx_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct orx_kmeans_cfg {
  int64_t k;
  int iterations;
  int init;            /* onerec_kmeans_init */
  int balanced;
  double tolerance;    /* <= 0: run every iteration */
  int64_t init_sample; /* k-means++ candidates, >= k (clipped to rows) */
  uint64_t seed;
  int level;           /* for log messages */
} orx_kmeans_cfg;

typedef struct orx_kmeans_result {
  int iterations_run; /* centroid updates done */
  int reseeded;       /* empty clusters re-seeded */
  double objective;   /* sum of dist after the final assignment */
} orx_kmeans_result;

/* Candidates per row that balanced assignment chooses from. */
#define ORX_KMEANS_BALANCE_CANDIDATES 16

/* Clusters rows x (device, rows x dim contiguous; xnorm = their squared norms) into cfg->k
 * centroids, k <= rows <= INT32_MAX. Writes (all device memory): c (k x dim), cnorm (k), and
 * the final assignment idx (rows; nearest centroid) with squared distances dist (rows) that
 * belong to the returned centroids. */
onerec_status orx_kmeans_fit(onerec_context *ctx, const float *x, const float *xnorm, int64_t rows,
                             int64_t dim, const orx_kmeans_cfg *cfg, float *c, float *cnorm,
                             int32_t *idx, float *dist, orx_kmeans_result *res);

/* Device memory through the context's backend (NULL on failure; n = 0 allocates 1 byte). */
void *orx_dev_alloc(onerec_context *ctx, size_t bytes);
void orx_dev_free(onerec_context *ctx, void *p);
onerec_status orx_dev_copy(onerec_context *ctx, void *dst, const void *src, size_t bytes,
                           orx_copy_kind kind);

#endif
