/* Elementwise ops and reductions: axpy, scale, bias add and its backward, and the sum of
 * squares (gradient-norm clipping) reduced in double precision in a fixed order. */
#include "dropout_hash.h"
#include "kernel_util.h"

__global__ void k_axpy(float *y, const float *x, float alpha, int64_t n) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] += alpha * x[i];
}

__global__ void k_scale(float *x, float alpha, int64_t n) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    x[i] *= alpha;
}

__global__ void k_dropout(float *x, int64_t n, uint32_t thr, float keep_scale, uint64_t seed) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    x[i] = orx_drop_bits(seed, (uint64_t)i) >= thr ? x[i] * keep_scale : 0.0f;
}

__global__ void k_add_bias(float *x, const float *bias, int64_t rows, int64_t dim) {
  int64_t n = rows * dim;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    x[i] += bias[i % dim];
}

struct bias_term {
  const float *dout;
  int64_t dim;
  __device__ float operator()(int64_t r, int64_t j) const { return dout[r * dim + j]; }
};

/* Pass 1: block b sums the grid-stride slice b of x (the slicing depends only on n). */
__global__ void k_sumsq_partial(double *partials, const float *x, int64_t n) {
  __shared__ double red[32];
  double acc = 0.0;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    acc += (double)x[i] * (double)x[i];
  acc = orx_block_sum(acc, red);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

/* Pass 2: one block adds the partials; the total goes to partials[ORX_CUDA_PARTIALS]. */
__global__ void k_sumsq_final(double *partials, int count) {
  __shared__ double red[32];
  double acc = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  acc = orx_block_sum(acc, red);
  if (threadIdx.x == 0) partials[ORX_CUDA_PARTIALS] = acc;
}

static onerec_status check_n(orx_backend *be, const char *op, int64_t n) {
  if (n < 0) return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "%s: n=%lld", op, (long long)n);
  return ONEREC_OK;
}

onerec_status orx_cuda_axpy(orx_backend *be, float *y, const float *x, float alpha, int64_t n) {
  onerec_status s = check_n(be, "axpy", n);
  if (s || n == 0) return s;
  if (!y || !x) return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "axpy: NULL buffer");
  if ((s = orx_cuda_enter(be, "axpy"))) return s;
  k_axpy<<<orx_cuda_blocks(n, 256), 256, 0, orx_cuda_of(be)->stream>>>(y, x, alpha, n);
  return orx_cuda_launched(be, "axpy");
}

onerec_status orx_cuda_scale(orx_backend *be, float *x, float alpha, int64_t n) {
  onerec_status s = check_n(be, "scale", n);
  if (s || n == 0) return s;
  if (!x) return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "scale: NULL buffer");
  if ((s = orx_cuda_enter(be, "scale"))) return s;
  k_scale<<<orx_cuda_blocks(n, 256), 256, 0, orx_cuda_of(be)->stream>>>(x, alpha, n);
  return orx_cuda_launched(be, "scale");
}

onerec_status orx_cuda_add_bias(orx_backend *be, float *x, const float *bias, int64_t rows,
                                int64_t dim) {
  if (rows < 0 || dim < 0)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "add_bias: rows=%lld dim=%lld", (long long)rows,
                         (long long)dim);
  if (rows == 0 || dim == 0) return ONEREC_OK;
  if (!x || !bias) return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "add_bias: NULL buffer");
  onerec_status s = orx_cuda_enter(be, "add_bias");
  if (s) return s;
  k_add_bias<<<orx_cuda_blocks(rows * dim, 256), 256, 0, orx_cuda_of(be)->stream>>>(x, bias,
                                                                                    rows, dim);
  return orx_cuda_launched(be, "add_bias");
}

onerec_status orx_cuda_bias_bwd(orx_backend *be, float *dbias, const float *dout, int64_t rows,
                                int64_t dim) {
  if (rows < 0 || dim < 0)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "bias_bwd: rows=%lld dim=%lld", (long long)rows,
                         (long long)dim);
  if (rows == 0 || dim == 0) return ONEREC_OK;
  if (!dbias || !dout)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "bias_bwd: NULL buffer");
  onerec_status s = orx_cuda_enter(be, "bias_bwd");
  if (s) return s;
  orx_colsum_launch(orx_cuda_of(be)->stream, dbias, rows, dim, bias_term{dout, dim});
  return orx_cuda_launched(be, "bias_bwd");
}

onerec_status orx_cuda_sum_squares(orx_backend *be, double *host_out, const float *x,
                                   int64_t n) {
  onerec_status s = check_n(be, "sum_squares", n);
  if (s) return s;
  if (!host_out)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "sum_squares: NULL result pointer");
  if (n == 0) {
    *host_out = 0.0;
    return ONEREC_OK;
  }
  if (!x) return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "sum_squares: NULL buffer");
  if ((s = orx_cuda_enter(be, "sum_squares"))) return s;
  orx_cuda *cu = orx_cuda_of(be);
  unsigned blocks = orx_cuda_blocks(n, 256 * 8);
  if (blocks > ORX_CUDA_PARTIALS) blocks = ORX_CUDA_PARTIALS;
  k_sumsq_partial<<<blocks, 256, 0, cu->stream>>>(cu->partials, x, n);
  k_sumsq_final<<<1, 256, 0, cu->stream>>>(cu->partials, (int)blocks);
  if ((s = orx_cuda_launched(be, "sum_squares"))) return s;
  double v = 0.0;
  s = orx_cuda_check(be,
                     cudaMemcpyAsync(&v, cu->partials + ORX_CUDA_PARTIALS, sizeof v,
                                     cudaMemcpyDeviceToHost, cu->stream),
                     "sum_squares", "cudaMemcpyAsync");
  if (s == ONEREC_OK)
    s = orx_cuda_check(be, cudaStreamSynchronize(cu->stream), "sum_squares", "kernel");
  if (s == ONEREC_OK) *host_out = v;
  return s;
}

onerec_status orx_cuda_dropout(orx_backend *be, float *x, int64_t n, float p, uint64_t seed) {
  onerec_status s = check_n(be, "dropout", n);
  if (s) return s;
  if (!(p >= 0.0f && p < 1.0f))
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "dropout: p=%g (expected [0, 1))",
                         (double)p);
  if (n == 0 || p == 0.0f) return ONEREC_OK;
  if (!x) return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "dropout: NULL buffer");
  if ((s = orx_cuda_enter(be, "dropout"))) return s;
  k_dropout<<<orx_cuda_blocks(n, 256), 256, 0, orx_cuda_of(be)->stream>>>(
      x, n, orx_drop_threshold(p), 1.0f / (1.0f - p), seed);
  return orx_cuda_launched(be, "dropout");
}
