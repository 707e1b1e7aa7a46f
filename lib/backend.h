/* The internal op table that every backend fills (DESIGN: model code in lib/ is written once
 * against it; a backend adds kernels, never model logic).
 *
 * Conventions, shared by all ops:
 *  - Pointers are device pointers of the backend (host pointers for cpu). Strides and sizes are
 *    counted in elements, matrices are row-major.
 *  - Every op returns an onerec_status; on failure it has set the thread's last error through
 *    orx_set_error (plugins through params->set_error).
 *  - Backward ops ACCUMULATE (+=) into every gradient they produce, input and parameter
 *    gradients alike (llm.c's convention): residual branches and gradient accumulation then need
 *    no extra adds. Callers zero gradient buffers when a step starts.
 *  - A slot may be NULL: the backend does not implement that op (yet); orx_* wrappers in
 *    lib/ops.c turn that into ONEREC_ERR_UNSUPPORTED with the op's name.
 *  - Plugins are versioned: the core passes ORX_BACKEND_API_VERSION to the plugin's entry point,
 *    which refuses a version it was not built for; the table it returns carries its own version.
 */
#ifndef ORX_BACKEND_H
#define ORX_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "onerec/common.h"
#include "onerec/context.h"
#include "onerec/tensor.h"

#define ORX_BACKEND_API_VERSION 3u /* 2: dropout; 3: label smoothing in cross_entropy */

typedef struct orx_backend orx_backend;

typedef enum orx_copy_kind {
  ORX_COPY_H2D = 0, /* host -> device */
  ORX_COPY_D2H = 1, /* device -> host */
  ORX_COPY_D2D = 2  /* device -> device */
} orx_copy_kind;

/* C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b] for b < batch; op(X) = X or X^T.
 * op(A) is m x k, op(B) is k x n, C is m x n (f32). A and B are `dtype` (f32; bf16 where the
 * backend supports it). lda/ldb/ldc are row pitches of the stored (untransposed) matrices;
 * stride_* are the distances between batch items (0 = broadcast the same matrix). */
typedef struct orx_matmul_args {
  int trans_a, trans_b;
  int64_t batch, m, n, k;
  const void *a;
  int64_t lda, stride_a;
  const void *b;
  int64_t ldb, stride_b;
  float *c;
  int64_t ldc, stride_c;
  float alpha, beta;
  onerec_dtype dtype;
} orx_matmul_args;

/* Scaled dot-product attention, fused: scores are computed a tile at a time with an online
 * softmax, so the tq x tk score matrix is never materialised.
 * Shapes: q [batch, heads, tq, head_dim], k and v [batch, heads, tk, head_dim], out like q; each
 * given by per-axis strides (sb, sh, st; the head_dim axis is contiguous), so q, k and v can sit
 * interleaved in one fused projection buffer [batch, t, 3, heads, head_dim].
 * key_mask [batch, tk] (1 = attend, 0 = padding) or NULL. causal: query i attends key j only if
 * j <= i + (tk - tq). A query row that can see no key gets out = 0 and lse = -inf.
 * lse [batch, heads, tq] (log-sum-exp of the scaled scores) is written when not NULL; the
 * backward pass needs it. */
typedef struct orx_attn_args {
  int64_t batch, heads, tq, tk, head_dim;
  const float *q;
  int64_t q_sb, q_sh, q_st;
  const float *k;
  int64_t k_sb, k_sh, k_st;
  const float *v;
  int64_t v_sb, v_sh, v_st;
  float *out;
  int64_t o_sb, o_sh, o_st;
  float *lse;
  const uint8_t *key_mask;
  int causal;
  float scale;
} orx_attn_args;

/* Backward of attention: the forward's arguments (with out and lse as the forward wrote them)
 * plus dout (strides like out) and dq, dk, dv (strides like q, k, v), accumulated into. */
typedef struct orx_attn_bwd_args {
  orx_attn_args fwd;
  const float *dout;
  int64_t do_sb, do_sh, do_st;
  float *dq, *dk, *dv;
} orx_attn_bwd_args;

/* AdamW step over n parameters (decoupled weight decay, bias-corrected):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * p )
 * grad_scale multiplies g first (gradient clipping / accumulation averaging). step t >= 1. */
typedef struct orx_adamw_args {
  float *param;
  const float *grad;
  float *m, *v;
  int64_t n;
  float lr, beta1, beta2, eps, weight_decay, grad_scale;
  int64_t step;
} orx_adamw_args;

/* Nearest centroid for each of `rows` rows x (row pitch ldx, `dim` columns) among the k
 * centroids c (k x dim, contiguous), by the score s(r, j) = cnorm[j] - 2 x_r . c_j:
 *   idx[r]  = argmin_j s(r, j), ties to the lower j,
 *   dist[r] = max(0, xnorm[r] + s(r, idx[r])), the squared distance (dist may be NULL; then
 *             xnorm may be NULL too),
 *   when ncand > 0 (1..min(k, 64)): cand[r * ncand + i] and cand_score[r * ncand + i], the
 *             ncand best centroids of the row and their scores, best first, ties to the lower
 *             j (balanced k-means assigns from these).
 * cnorm[j] = ||c_j||^2 and xnorm[r] = ||x_r||^2 as row_sq_norms gives them. Computed a block of
 * rows and centroids at a time: no rows x k matrix is ever held. */
typedef struct orx_kmeans_assign_args {
  const float *x;
  int64_t ldx, rows, dim;
  const float *xnorm;
  const float *c, *cnorm;
  int64_t k;
  int32_t *idx;
  float *dist;
  int64_t ncand;
  int32_t *cand;
  float *cand_score;
} orx_kmeans_assign_args;

typedef struct orx_backend_ops {
  uint32_t api_version; /* ORX_BACKEND_API_VERSION the table was built for */
  const char *name;     /* "cpu", "cuda" */

  /* ---- lifetime, memory ---- */
  void (*destroy)(orx_backend *be);
  void *(*alloc)(orx_backend *be, size_t bytes); /* NULL on failure; 64-byte aligned */
  void (*free)(orx_backend *be, void *ptr);
  onerec_status (*copy)(orx_backend *be, void *dst, const void *src, size_t bytes,
                        orx_copy_kind kind);
  onerec_status (*memset0)(orx_backend *be, void *dst, size_t bytes);
  onerec_status (*synchronize)(orx_backend *be);
  /* dst[i] = (dst_dtype) src[i] for f32 <-> bf16 (round to nearest even) and same-type copies. */
  onerec_status (*convert)(orx_backend *be, void *dst, onerec_dtype dst_dtype, const void *src,
                           onerec_dtype src_dtype, int64_t n);

  /* ---- dense algebra ---- */
  onerec_status (*matmul)(orx_backend *be, const orx_matmul_args *a);

  /* ---- normalisation, softmax ---- */
  /* out = x * rstd * w per row, rstd = 1/sqrt(mean(x^2) + eps); rstd [rows] saved if not NULL */
  onerec_status (*rmsnorm_fwd)(orx_backend *be, float *out, float *rstd, const float *x,
                               const float *w, int64_t rows, int64_t dim, float eps);
  onerec_status (*rmsnorm_bwd)(orx_backend *be, float *dx, float *dw, const float *dout,
                               const float *x, const float *w, const float *rstd, int64_t rows,
                               int64_t dim);
  /* row-wise softmax; out may equal x */
  onerec_status (*softmax_fwd)(orx_backend *be, float *out, const float *x, int64_t rows,
                               int64_t dim);
  onerec_status (*softmax_bwd)(orx_backend *be, float *dx, const float *dout, const float *y,
                               int64_t rows, int64_t dim);

  /* ---- attention ---- */
  onerec_status (*attention_fwd)(orx_backend *be, const orx_attn_args *a);
  onerec_status (*attention_bwd)(orx_backend *be, const orx_attn_bwd_args *a);

  /* ---- activations ---- */
  /* out[r, j] = silu(gate[r, j]) * up[r, j]; each operand has its own row pitch */
  onerec_status (*swiglu_fwd)(orx_backend *be, float *out, int64_t ldo, const float *gate,
                              int64_t ldg, const float *up, int64_t ldu, int64_t rows,
                              int64_t dim);
  onerec_status (*swiglu_bwd)(orx_backend *be, float *dgate, int64_t lddg, float *dup,
                              int64_t lddu, const float *dout, int64_t lddo, const float *gate,
                              int64_t ldg, const float *up, int64_t ldu, int64_t rows,
                              int64_t dim);
  /* out = x > 0 ? x : slope * x */
  onerec_status (*leaky_relu_fwd)(orx_backend *be, float *out, const float *x, int64_t n,
                                  float slope);
  onerec_status (*leaky_relu_bwd)(orx_backend *be, float *dx, const float *dout, const float *x,
                                  int64_t n, float slope);

  /* ---- embeddings ---- */
  /* out[i, :] = table[ids[i], :]; ids[i] < 0 means "absent" and gives a zero row. An id >= vocab
   * fails with ONEREC_ERR_INVALID_ARGUMENT (nothing written past the table). */
  onerec_status (*embedding_fwd)(orx_backend *be, float *out, const float *table,
                                 const int32_t *ids, int64_t n, int64_t dim, int64_t vocab);
  /* dtable[ids[i], :] += dout[i, :] (negative ids skipped); deterministic order */
  onerec_status (*embedding_bwd)(orx_backend *be, float *dtable, const float *dout,
                                 const int32_t *ids, int64_t n, int64_t dim, int64_t vocab);

  /* ---- loss ---- */
  /* Softmax cross-entropy per row against the label-smoothed target q = (1 - e) onehot + e / V
   * (e = smoothing in [0, 1); 0: the plain loss): loss[i] = logsumexp(logits[i])
   * - (1 - e) logits[i, target[i]] - e mean(logits[i]); rows whose target == ignore_index get
   * loss 0 and no gradient. When dlogits is not NULL it receives (softmax - q) * grad_scale
   * (written, not accumulated: the logits are a leaf of the loss). Targets outside [0, vocab)
   * other than ignore_index are an error. With e > 0 every logit enters the loss, so a -inf
   * logit makes it infinite. */
  onerec_status (*cross_entropy)(orx_backend *be, float *loss, float *dlogits,
                                 const float *logits, const int32_t *targets, int64_t rows,
                                 int64_t vocab, int32_t ignore_index, float grad_scale,
                                 float smoothing);

  /* ---- optimiser ---- */
  onerec_status (*adamw)(orx_backend *be, const orx_adamw_args *a);

  /* ---- elementwise, reductions ---- */
  /* y = alpha * x + y */
  onerec_status (*axpy)(orx_backend *be, float *y, const float *x, float alpha, int64_t n);
  /* x = alpha * x */
  onerec_status (*scale)(orx_backend *be, float *x, float alpha, int64_t n);
  /* x[r, :] += bias[:] */
  onerec_status (*add_bias)(orx_backend *be, float *x, const float *bias, int64_t rows,
                            int64_t dim);
  /* dbias[:] += sum_r dout[r, :] */
  onerec_status (*bias_bwd)(orx_backend *be, float *dbias, const float *dout, int64_t rows,
                            int64_t dim);
  /* *host_out = sum x[i]^2 in double precision, written to host memory */
  onerec_status (*sum_squares)(orx_backend *be, double *host_out, const float *x, int64_t n);
  /* Inverted dropout in place: x[i] = keep(seed, i) ? x[i] / (1 - p) : 0, with keep() of
   * lib/dropout_hash.h (a function of seed and i only), so the same call on the gradient is the
   * backward pass. 0 <= p < 1. */
  onerec_status (*dropout)(orx_backend *be, float *x, int64_t n, float p, uint64_t seed);

  /* ---- mixture of experts (routing; the permute / unpermute of tokens are embedding_fwd and
   * embedding_bwd with the slot -> token map as ids) ---- */
  /* Per row r: idx[r, 0..k) = the k experts with the largest probs[r, e] + bias[e] (bias NULL =
   * 0), best first, ties to the lower expert; gates[r, j] = probs[r, idx[r, j]] (the bias steers
   * selection only, DeepSeek's loss-free balancing). 1 <= k <= n_experts. */
  onerec_status (*moe_topk)(orx_backend *be, int32_t *idx, float *gates, const float *probs,
                            const float *bias, int64_t rows, int64_t n_experts, int64_t k);
  /* out[r, :] = x[r, :] * s[r] (out may equal x) */
  onerec_status (*scale_rows)(orx_backend *be, float *out, const float *x, const float *s,
                              int64_t rows, int64_t dim);
  /* Backward of scale_rows: dx[r, :] += dout[r, :] * s[r] (dx may be NULL);
   * ds[r] += sum_j dout[r, j] * x[r, j] (ds may be NULL). */
  onerec_status (*scale_rows_bwd)(orx_backend *be, float *dx, float *ds, const float *dout,
                                  const float *x, const float *s, int64_t rows, int64_t dim);

  /* ---- k-means (the RQ-Kmeans tokenizer) ---- */
  /* out[r] = sum_j x[r * ldx + j]^2 for r < rows, j < dim */
  onerec_status (*row_sq_norms)(orx_backend *be, float *out, const float *x, int64_t ldx,
                                int64_t rows, int64_t dim);
  /* see orx_kmeans_assign_args */
  onerec_status (*kmeans_assign)(orx_backend *be, const orx_kmeans_assign_args *a);
  /* Centroid update: counts[j] = number of rows with assign[r] == j (written, int64); for each
   * j with counts[j] > 0, c[j, :] = the mean of those rows of x (row pitch ldx), summed in double
   * in ascending row order; rows of c for empty clusters are left as they were. Every assign[r]
   * must be in [0, k) (else an error, nothing written). */
  onerec_status (*kmeans_update)(orx_backend *be, float *c, int64_t *counts, const float *x,
                                 int64_t ldx, const int32_t *assign, int64_t rows, int64_t dim,
                                 int64_t k);
  /* y[r * ldy + j] += alpha * table[ids[r] * dim + j] for r < rows, j < dim (residuals, decoding);
   * an id outside [0, vocab) is an error and nothing is written. */
  onerec_status (*gather_axpy)(orx_backend *be, float *y, int64_t ldy, const float *table,
                               const int32_t *ids, int64_t rows, int64_t dim, int64_t vocab,
                               float alpha);
  /* k-means++ step for `nc` new centroids c (nc x dim contiguous): for every row r of x (pitch
   * ldx), mind[r] = min(mind[r], min_j ||x_r - c_j||^2), the distances expanded as
   * ||x||^2 + ||c||^2 - 2 x.c (a matrix multiply) and clamped at 0. *host_sum = sum_r mind[r]
   * in double, in a fixed order, written to host memory. */
  onerec_status (*kmeanspp_step)(orx_backend *be, float *mind, double *host_sum, const float *x,
                                 int64_t ldx, int64_t rows, int64_t dim, const float *c,
                                 int64_t nc);
} orx_backend_ops;

/* A backend instance: its op table and private state. */
struct orx_backend {
  const orx_backend_ops *ops;
  void *impl;
};

/* What the core hands a backend (built-in or plugin) when creating it. */
typedef struct orx_backend_params {
  size_t sz;
  int threads;
  int device;
  const onerec_allocator *allocator; /* never NULL: the context's (maybe the default) */
  /* report a failure message to the calling thread's onerec_last_error() */
  void (*set_error)(const char *fmt, ...);
  void (*log)(void *log_ctx, onerec_log_level level, const char *fmt, ...);
  void *log_ctx;
} orx_backend_params;

/* Entry point a backend plugin exports (under the name ORX_PLUGIN_ENTRY). On failure it returns
 * ONEREC_ERR_BACKEND_UNAVAILABLE (or ONEREC_ERR_VERSION) with the reason in why. */
typedef onerec_status (*orx_backend_entry_fn)(uint32_t api_version,
                                              const orx_backend_params *params,
                                              orx_backend *out, char *why, size_t why_len);
#define ORX_PLUGIN_ENTRY "onerec_backend_plugin_entry"

/* Calls op `op` of backend `be`, or fails with ONEREC_ERR_UNSUPPORTED naming the op when the
 * backend leaves that slot empty:  s = ORX_OP(be, rmsnorm_fwd, out, rstd, x, w, rows, dim, eps); */
#define ORX_OP(be, op, ...)                                                              \
  ((be)->ops->op ? (be)->ops->op((be), __VA_ARGS__)                                      \
                 : orx_fail(ONEREC_ERR_UNSUPPORTED, "backend %s does not implement " #op, \
                            (be)->ops->name))

/* The built-in CPU backend (cpu/cpu_backend.c). */
onerec_status orx_cpu_backend_create(const orx_backend_params *params, orx_backend *out,
                                     char *why, size_t why_len);

#endif
