/* The tokenizer's internals, shared by lib/tokenizer_*.c (never installed). */
#ifndef ORX_TOKENIZER_IMPL_H
#define ORX_TOKENIZER_IMPL_H

#include "context_impl.h"
#include "kmeans.h"
#include "onerec/tokenizer.h"

#define ORX_TOK_MAX_CODES (1 << 24)

struct onerec_tokenizer {
  onerec_context *ctx;
  onerec_tokenizer_info info; /* options it was fitted with and fit statistics; sz = sizeof */
  int levels, k;
  int64_t dim;
  float *codebooks;       /* host: levels x k x dim */
  float *d_codebooks;     /* device copy, and ||c||^2 per centroid */
  float *d_cnorm;
};

/* ONEREC_ERR_UNSUPPORTED naming the first k-means op the context's backend lacks. */
onerec_status orx_tok_check_backend(const char *fn, const onerec_context *ctx);

/* A tokenizer with zeroed host codebooks and no device copies yet. */
onerec_status orx_tok_new(onerec_context *ctx, int levels, int k, int64_t dim,
                          onerec_tokenizer **out);

/* The device copy of the host codebooks, and the centroid norms. */
onerec_status orx_tok_upload(onerec_tokenizer *t);

/* Fails with ONEREC_ERR_INVALID_ARGUMENT naming the first non-finite value of x (n x dim). */
onerec_status orx_tok_check_finite(const char *fn, const float *x, int64_t n, int64_t dim);

/* Encodes n rows a block at a time. codes (n x levels, host) receives the codes; x_sq and
 * res_sq (may be NULL) the totals of ||x||^2 and of the squared final residuals; res_rows
 * (may be NULL) each row's squared final residual. */
onerec_status orx_tok_encode_rows(onerec_tokenizer *t, const float *x, int64_t n, int32_t *codes,
                                  double *x_sq, double *res_sq, float *res_rows);

/* Totals of ||x||^2 and of ||x - decode(codes)||^2 over n rows (codes already validated). */
onerec_status orx_tok_residual_sq(onerec_tokenizer *t, const float *x, const int32_t *codes,
                                  int64_t n, double *x_sq, double *res_sq);

/* Fails naming the first code outside 0..k-1 (item and level). */
onerec_status orx_tok_check_codes(const char *fn, const onerec_tokenizer *t, const int32_t *codes,
                                  int64_t n);

/* Copies a result struct to the caller's (which begins with size_t sz, set by the caller):
 * only the bytes its sz covers, keeping that sz. */
onerec_status orx_tok_out(void *dst, const void *src, size_t src_size, const char *what);

/* Sorts item indices 0..n-1 by their code tuples (n x levels; radix, stable): equal tuples
 * end up adjacent, in item order. order and tmp hold n entries each. */
void orx_tok_sort_codes(const int32_t *codes, int64_t n, int levels, int k, int32_t *order,
                        int32_t *tmp, int64_t *count);

#endif
