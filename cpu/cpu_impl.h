/* The CPU backend's private state and the kernels that fill its op table, one file each. */
#ifndef ORX_CPU_IMPL_H
#define ORX_CPU_IMPL_H

#include "../lib/backend.h"
#include "simd.h"
#include "threadpool.h"

typedef struct orx_cpu {
  orx_pool *pool;
  const orx_simd *simd;
  int threads;
  const onerec_allocator *allocator;
  void (*set_error)(const char *fmt, ...);
} orx_cpu;

static inline orx_cpu *orx_cpu_of(orx_backend *be) { return (orx_cpu *)be->impl; }

/* Fails with status and a message through the backend's error channel. */
#define ORX_CPU_FAIL(be, status, ...) (orx_cpu_of(be)->set_error(__VA_ARGS__), (status))

/* Host scratch through the context's allocator (64-byte aligned); NULL on failure. */
static inline void *orx_cpu_alloc(orx_backend *be, size_t bytes) {
  const onerec_allocator *al = orx_cpu_of(be)->allocator;
  return al->alloc(al->user, bytes ? bytes : 1, 64);
}
static inline void orx_cpu_free(orx_backend *be, void *p) {
  const onerec_allocator *al = orx_cpu_of(be)->allocator;
  if (p) al->free(al->user, p);
}

/* cpu/gemm.c */
onerec_status orx_cpu_matmul(orx_backend *be, const orx_matmul_args *a);

/* cpu/attention.c */
onerec_status orx_cpu_attention_fwd(orx_backend *be, const orx_attn_args *a);
onerec_status orx_cpu_attention_bwd(orx_backend *be, const orx_attn_bwd_args *a);

/* cpu/moe_route.c */
onerec_status orx_cpu_moe_topk(orx_backend *be, int32_t *idx, float *gates, const float *probs,
                               const float *bias, int64_t rows, int64_t n_experts, int64_t k);
onerec_status orx_cpu_scale_rows(orx_backend *be, float *out, const float *x, const float *s,
                                 int64_t rows, int64_t dim);
onerec_status orx_cpu_scale_rows_bwd(orx_backend *be, float *dx, float *ds, const float *dout,
                                     const float *x, const float *s, int64_t rows, int64_t dim);

/* cpu/kmeans.c */
onerec_status orx_cpu_row_sq_norms(orx_backend *be, float *out, const float *x, int64_t ldx,
                                   int64_t rows, int64_t dim);
onerec_status orx_cpu_kmeans_assign(orx_backend *be, const orx_kmeans_assign_args *a);
onerec_status orx_cpu_kmeans_update(orx_backend *be, float *c, int64_t *counts, const float *x,
                                    int64_t ldx, const int32_t *assign, int64_t rows,
                                    int64_t dim, int64_t k);
onerec_status orx_cpu_gather_axpy(orx_backend *be, float *y, int64_t ldy, const float *table,
                                  const int32_t *ids, int64_t rows, int64_t dim, int64_t vocab,
                                  float alpha);
onerec_status orx_cpu_kmeanspp_step(orx_backend *be, float *mind, double *host_sum,
                                    const float *x, int64_t ldx, int64_t rows, int64_t dim,
                                    const float *c, int64_t nc);

/* ---- row and elementwise ops: cpu/convert.c, norm.c, softmax.c, activations.c, embedding.c,
 * loss.c, adamw.c, elementwise.c (semantics in lib/backend.h) ---- */

/* Below this much work (in element-operations) an op stays on the calling thread: waking the
 * pool costs more than it saves. */
#define ORX_CPU_PARALLEL_MIN 32768

/* fn(arg, begin, end) over disjoint ranges covering [0, items). */
typedef void (*orx_cpu_range_fn)(void *arg, int64_t begin, int64_t end);

/* Splits [0, items) into ranges run on the pool (inline when items * cost, the work in
 * element-operations, is small). Callers make every range write only its own outputs, so the
 * split, which depends on the thread count, never changes a result. */
void orx_cpu_parallel(orx_cpu *cpu, int64_t items, int64_t cost, orx_cpu_range_fn fn, void *arg);

onerec_status orx_cpu_convert(orx_backend *be, void *dst, onerec_dtype dst_dtype, const void *src,
                              onerec_dtype src_dtype, int64_t n);
onerec_status orx_cpu_rmsnorm_fwd(orx_backend *be, float *out, float *rstd, const float *x,
                                  const float *w, int64_t rows, int64_t dim, float eps);
onerec_status orx_cpu_rmsnorm_bwd(orx_backend *be, float *dx, float *dw, const float *dout,
                                  const float *x, const float *w, const float *rstd, int64_t rows,
                                  int64_t dim);
onerec_status orx_cpu_softmax_fwd(orx_backend *be, float *out, const float *x, int64_t rows,
                                  int64_t dim);
onerec_status orx_cpu_softmax_bwd(orx_backend *be, float *dx, const float *dout, const float *y,
                                  int64_t rows, int64_t dim);
onerec_status orx_cpu_swiglu_fwd(orx_backend *be, float *out, int64_t ldo, const float *gate,
                                 int64_t ldg, const float *up, int64_t ldu, int64_t rows,
                                 int64_t dim);
onerec_status orx_cpu_swiglu_bwd(orx_backend *be, float *dgate, int64_t lddg, float *dup,
                                 int64_t lddu, const float *dout, int64_t lddo, const float *gate,
                                 int64_t ldg, const float *up, int64_t ldu, int64_t rows,
                                 int64_t dim);
onerec_status orx_cpu_leaky_relu_fwd(orx_backend *be, float *out, const float *x, int64_t n,
                                     float slope);
onerec_status orx_cpu_leaky_relu_bwd(orx_backend *be, float *dx, const float *dout,
                                     const float *x, int64_t n, float slope);
onerec_status orx_cpu_embedding_fwd(orx_backend *be, float *out, const float *table,
                                    const int32_t *ids, int64_t n, int64_t dim, int64_t vocab);
onerec_status orx_cpu_embedding_bwd(orx_backend *be, float *dtable, const float *dout,
                                    const int32_t *ids, int64_t n, int64_t dim, int64_t vocab);
onerec_status orx_cpu_cross_entropy(orx_backend *be, float *loss, float *dlogits,
                                    const float *logits, const int32_t *targets, int64_t rows,
                                    int64_t vocab, int32_t ignore_index, float grad_scale,
                                    float smoothing);
onerec_status orx_cpu_adamw(orx_backend *be, const orx_adamw_args *a);
onerec_status orx_cpu_axpy(orx_backend *be, float *y, const float *x, float alpha, int64_t n);
onerec_status orx_cpu_scale(orx_backend *be, float *x, float alpha, int64_t n);
onerec_status orx_cpu_add_bias(orx_backend *be, float *x, const float *bias, int64_t rows,
                               int64_t dim);
onerec_status orx_cpu_bias_bwd(orx_backend *be, float *dbias, const float *dout, int64_t rows,
                               int64_t dim);
onerec_status orx_cpu_sum_squares(orx_backend *be, double *host_out, const float *x, int64_t n);
onerec_status orx_cpu_dropout(orx_backend *be, float *x, int64_t n, float p, uint64_t seed);

#endif
