/* The CUDA backend's private state and the host-side helpers its op files share. C++ (nvcc);
 * lib/backend.h is C, so it is included with C linkage: only C types cross the plugin boundary. */
#ifndef ORX_CUDA_IMPL_H
#define ORX_CUDA_IMPL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "backend.h"
}

/* Scratch every backend instance keeps on the device: a bad-input marker that kernels lower with
 * atomicMin (the first offending position wins, so the message is deterministic) and a small
 * area for reduction partials. Ops run one at a time on one stream, so sharing them is safe. */
enum { ORX_CUDA_PARTIALS = 1024 };

typedef struct orx_cuda {
  int device;
  int sm_count;
  cudaStream_t stream;
  cublasHandle_t blas;
  unsigned long long *bad;   /* device: first bad position, ~0 when none */
  double *partials;          /* device: ORX_CUDA_PARTIALS + 1 doubles */
  const onerec_allocator *allocator;
  void (*set_error)(const char *fmt, ...);
  void (*log)(void *log_ctx, onerec_log_level level, const char *fmt, ...);
  void *log_ctx;
} orx_cuda;

static inline orx_cuda *orx_cuda_of(orx_backend *be) { return (orx_cuda *)be->impl; }

/* Fails with status and a message through the core's error channel (params->set_error). */
#define ORX_CUDA_FAIL(be, status, ...) (orx_cuda_of(be)->set_error(__VA_ARGS__), (status))

/* Makes the backend's device current on the calling thread (a context may move between
 * threads, and the current device is per thread). */
onerec_status orx_cuda_enter(orx_backend *be, const char *op);

/* ONEREC_OK for cudaSuccess; otherwise clears the runtime's last error (so a later launch check
 * does not report it again) and fails: ONEREC_ERR_OUT_OF_MEMORY for allocation failures,
 * ONEREC_ERR_DEVICE for everything else, "op: what: <cudaGetErrorString>". */
onerec_status orx_cuda_check(orx_backend *be, cudaError_t err, const char *op, const char *what);

/* Checks the kernel launch(es) just made (bad configuration, missing kernel image, ...). */
onerec_status orx_cuda_launched(orx_backend *be, const char *op);

/* The bad-input marker: reset before the kernels that may set it, read (with a stream
 * synchronisation) after them. *pos receives the first bad position or -1. */
onerec_status orx_cuda_bad_reset(orx_backend *be, const char *op);
onerec_status orx_cuda_bad_read(orx_backend *be, const char *op, int64_t *pos);

/* The plugin links no libonerec symbol (the core may be a static library inside an executable
 * that exports nothing), so it keeps its own copies of these two small tables. */
static inline size_t orx_cuda_dtype_size(onerec_dtype t) {
  return t == ONEREC_F32 || t == ONEREC_I32 ? 4 : t == ONEREC_BF16 ? 2 : 0;
}
static inline const char *orx_cuda_dtype_name(onerec_dtype t) {
  return t == ONEREC_F32 ? "f32" : t == ONEREC_BF16 ? "bf16" : t == ONEREC_I32 ? "i32" : "unknown";
}

/* Blocks for a flat loop over n elements with `threads` per block: enough to fill the GPU,
 * capped so that kernels use grid-stride loops for the rest. */
static inline unsigned orx_cuda_blocks(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  const int64_t cap = 1 << 20;
  return (unsigned)(b < 1 ? 1 : b > cap ? cap : b);
}

/* Threads per block for a kernel that gives one block to each row of `dim` elements: a power
 * of two from 32 to 512, so short rows (8 experts) do not idle 256 threads. */
static inline int orx_cuda_row_threads(int64_t dim) {
  int t = 32;
  while (t < 512 && t < dim) t <<= 1;
  return t;
}

/* ---- op entry points, one file each (cuda/<file>.cu) ---- */

/* memory.cu */
void orx_cuda_destroy(orx_backend *be);
void *orx_cuda_alloc(orx_backend *be, size_t bytes);
void orx_cuda_free(orx_backend *be, void *ptr);
onerec_status orx_cuda_copy(orx_backend *be, void *dst, const void *src, size_t bytes,
                            orx_copy_kind kind);
onerec_status orx_cuda_memset0(orx_backend *be, void *dst, size_t bytes);
onerec_status orx_cuda_synchronize(orx_backend *be);

/* convert.cu */
onerec_status orx_cuda_convert(orx_backend *be, void *dst, onerec_dtype dst_dtype,
                               const void *src, onerec_dtype src_dtype, int64_t n);

/* gemm.cu */
onerec_status orx_cuda_matmul(orx_backend *be, const orx_matmul_args *a);

/* norm.cu */
onerec_status orx_cuda_rmsnorm_fwd(orx_backend *be, float *out, float *rstd, const float *x,
                                   const float *w, int64_t rows, int64_t dim, float eps);
onerec_status orx_cuda_rmsnorm_bwd(orx_backend *be, float *dx, float *dw, const float *dout,
                                   const float *x, const float *w, const float *rstd,
                                   int64_t rows, int64_t dim);
onerec_status orx_cuda_softmax_fwd(orx_backend *be, float *out, const float *x, int64_t rows,
                                   int64_t dim);
onerec_status orx_cuda_softmax_bwd(orx_backend *be, float *dx, const float *dout,
                                   const float *y, int64_t rows, int64_t dim);

/* attention.cu */
onerec_status orx_cuda_attention_fwd(orx_backend *be, const orx_attn_args *a);
onerec_status orx_cuda_attention_bwd(orx_backend *be, const orx_attn_bwd_args *a);

/* activation.cu */
onerec_status orx_cuda_swiglu_fwd(orx_backend *be, float *out, int64_t ldo, const float *gate,
                                  int64_t ldg, const float *up, int64_t ldu, int64_t rows,
                                  int64_t dim);
onerec_status orx_cuda_swiglu_bwd(orx_backend *be, float *dgate, int64_t lddg, float *dup,
                                  int64_t lddu, const float *dout, int64_t lddo,
                                  const float *gate, int64_t ldg, const float *up, int64_t ldu,
                                  int64_t rows, int64_t dim);
onerec_status orx_cuda_leaky_relu_fwd(orx_backend *be, float *out, const float *x, int64_t n,
                                      float slope);
onerec_status orx_cuda_leaky_relu_bwd(orx_backend *be, float *dx, const float *dout,
                                      const float *x, int64_t n, float slope);

/* embedding.cu */
onerec_status orx_cuda_embedding_fwd(orx_backend *be, float *out, const float *table,
                                     const int32_t *ids, int64_t n, int64_t dim, int64_t vocab);
onerec_status orx_cuda_embedding_bwd(orx_backend *be, float *dtable, const float *dout,
                                     const int32_t *ids, int64_t n, int64_t dim, int64_t vocab);

/* loss.cu */
onerec_status orx_cuda_cross_entropy(orx_backend *be, float *loss, float *dlogits,
                                     const float *logits, const int32_t *targets, int64_t rows,
                                     int64_t vocab, int32_t ignore_index, float grad_scale,
                                     float smoothing);

/* optim.cu */
onerec_status orx_cuda_adamw(orx_backend *be, const orx_adamw_args *a);

/* elementwise.cu */
onerec_status orx_cuda_axpy(orx_backend *be, float *y, const float *x, float alpha, int64_t n);
onerec_status orx_cuda_scale(orx_backend *be, float *x, float alpha, int64_t n);
onerec_status orx_cuda_add_bias(orx_backend *be, float *x, const float *bias, int64_t rows,
                                int64_t dim);
onerec_status orx_cuda_bias_bwd(orx_backend *be, float *dbias, const float *dout, int64_t rows,
                                int64_t dim);
onerec_status orx_cuda_dropout(orx_backend *be, float *x, int64_t n, float p, uint64_t seed);
onerec_status orx_cuda_sum_squares(orx_backend *be, double *host_out, const float *x,
                                   int64_t n);

/* moe_route.cu */
onerec_status orx_cuda_moe_topk(orx_backend *be, int32_t *idx, float *gates, const float *probs,
                                const float *bias, int64_t rows, int64_t n_experts, int64_t k);
onerec_status orx_cuda_scale_rows(orx_backend *be, float *out, const float *x, const float *s,
                                  int64_t rows, int64_t dim);
onerec_status orx_cuda_scale_rows_bwd(orx_backend *be, float *dx, float *ds, const float *dout,
                                      const float *x, const float *s, int64_t rows,
                                      int64_t dim);

#endif
