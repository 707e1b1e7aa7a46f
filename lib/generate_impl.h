/* Generation internals shared by lib/generate.c, lib/beam_search.c and lib/sampling.c. */
#ifndef ORX_GENERATE_IMPL_H
#define ORX_GENERATE_IMPL_H

#include "catalog_impl.h"
#include "model_impl.h"
#include "onerec/generate.h"

/* One call's state: the session (already encoded), the trie snapshot and host scratch sized for
 * max_targets rows. */
typedef struct orx_gen {
  onerec_session *s;
  const orx_catalog_snap *t;
  int64_t L, K, R; /* levels, codebook, most rows */
  void *block;     /* the host scratch below, one allocation */
  int32_t *codes[2]; /* [R, L] prefixes of the rows (current, next) */
  int32_t *node[2];  /* [R] trie node of each row */
  double *logp[2];   /* [R] */
  int64_t *off;      /* [batch + 1] rows of each encoded user */
  float *lse;        /* [R] log-sum-exp of each row's logits */
  float *h_logits;   /* [R, K] host copy of the logits (NULL when the device is the host) */
  int32_t *parent;   /* [R] beam search: the previous step's row each row extends */
  uint64_t *rng;     /* [R] sampling: each row's generator */
  /* device: self-attention keys and values of the decoded positions, [layers, R, L, 2d],
   * current and scratch (lib/decode_cached.c) */
  void *cache_block;
  float *cache[2];
  int64_t cache_row; /* L x 2d */
  void *pairs;       /* [K] sampling: (value, index) pairs of one row's legal codes */
} orx_gen;

/* One decoder step: position p of rows (codes[0] prefixes) grouped by off over the encoded
 * users; reorder: row r extends row parent[r] of the previous step's rows_before rows (else
 * row r extends row r). *logits points at [rows, K] host logits, g->lse receives their
 * log-sum-exp. */
onerec_status orx_gen_step(orx_gen *g, int64_t rows, int64_t p, int reorder, int64_t rows_before,
                           const float **logits);

/* The decoder cache (lib/decode_cached.c): allocation, and the decoder on position p only,
 * logits [rows, K] into the session's logits buffer. */
onerec_status orx_gen_cache_alloc(orx_gen *g);
void orx_gen_cache_free(orx_gen *g);
onerec_status orx_gen_forward_cached(orx_gen *g, int64_t rows, int64_t p, int reorder,
                                     int64_t rows_before);

/* Beam search for users [u0, u1) of the encoded batch; results rows b - u0 of items / logp.
 * gens[0..n) are the generation states of n models' sessions (1 <= n <= ONEREC_MAX_ENSEMBLE),
 * all encoded on the same users with the same catalogue snapshot: the score of an item is the
 * mean of the models' log-probabilities. */
onerec_status orx_beam_search(orx_gen *const *gens, int n, int64_t u0, int64_t u1, int beam,
                              int k, int64_t *items, double *logp);

/* Sampling for users [u0, u1), k draws each. */
onerec_status orx_sample(orx_gen *g, int64_t u0, int64_t u1, const onerec_recommend_opts *o,
                         int64_t *items, double *logp);

#endif
