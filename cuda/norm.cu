/* RMSNorm and row softmax, forward and backward: one block per row, block reductions in a fixed
 * order. The backward passes accumulate into their gradients (lib/backend.h). */
#include "kernel_util.h"

static onerec_status check_rows(orx_backend *be, const char *op, int64_t rows, int64_t dim) {
  if (rows < 0 || dim < 0 || rows > INT32_MAX)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "%s: rows=%lld dim=%lld", op, (long long)rows,
                         (long long)dim);
  return ONEREC_OK;
}

/* ---- RMSNorm ---- */

__global__ void k_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w,
                              int64_t dim, float eps) {
  __shared__ float red[32];
  const float *xr = x + (int64_t)blockIdx.x * dim;
  float *orow = out + (int64_t)blockIdx.x * dim;
  float ss = 0.0f;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) ss += xr[j] * xr[j];
  ss = orx_block_sum(ss, red);
  float rs = 1.0f / sqrtf(ss / (float)dim + eps);
  /* out may alias x: each element is read and written by the same thread */
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) orow[j] = xr[j] * rs * w[j];
  if (rstd && threadIdx.x == 0) rstd[blockIdx.x] = rs;
}

/* y = x r w with r = (mean x^2 + eps)^-1/2:
 * dx_j += r w_j g_j - x_j r^3 / dim * sum_k g_k w_k x_k */
__global__ void k_rmsnorm_bwd_dx(float *dx, const float *dout, const float *x, const float *w,
                                 const float *rstd, int64_t dim) {
  __shared__ float red[32];
  int64_t off = (int64_t)blockIdx.x * dim;
  const float *g = dout + off, *xr = x + off;
  float *d = dx + off;
  float rs = rstd[blockIdx.x];
  float dot = 0.0f;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) dot += g[j] * w[j] * xr[j];
  dot = orx_block_sum(dot, red);
  float c = dot * rs * rs * rs / (float)dim;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) d[j] += rs * w[j] * g[j] - xr[j] * c;
}

struct rmsnorm_dw_term {
  const float *dout, *x, *rstd;
  int64_t dim;
  __device__ float operator()(int64_t r, int64_t j) const {
    return dout[r * dim + j] * x[r * dim + j] * rstd[r];
  }
};

onerec_status orx_cuda_rmsnorm_fwd(orx_backend *be, float *out, float *rstd, const float *x,
                                   const float *w, int64_t rows, int64_t dim, float eps) {
  onerec_status s = check_rows(be, "rmsnorm_fwd", rows, dim);
  if (s) return s;
  if (rows == 0) return ONEREC_OK;
  if (dim == 0)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "rmsnorm_fwd: dim=0 with %lld rows",
                         (long long)rows);
  if (!out || !x || !w)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "rmsnorm_fwd: NULL buffer");
  if (!(eps >= 0.0f))
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "rmsnorm_fwd: eps=%g", (double)eps);
  if ((s = orx_cuda_enter(be, "rmsnorm_fwd"))) return s;
  k_rmsnorm_fwd<<<(unsigned)rows, orx_cuda_row_threads(dim), 0, orx_cuda_of(be)->stream>>>(
      out, rstd, x, w, dim, eps);
  return orx_cuda_launched(be, "rmsnorm_fwd");
}

onerec_status orx_cuda_rmsnorm_bwd(orx_backend *be, float *dx, float *dw, const float *dout,
                                   const float *x, const float *w, const float *rstd,
                                   int64_t rows, int64_t dim) {
  onerec_status s = check_rows(be, "rmsnorm_bwd", rows, dim);
  if (s) return s;
  if (rows == 0 || dim == 0 || (!dx && !dw)) return ONEREC_OK;
  if (!dout || !x || !rstd || (dx && !w))
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "rmsnorm_bwd: NULL buffer");
  if ((s = orx_cuda_enter(be, "rmsnorm_bwd"))) return s;
  cudaStream_t st = orx_cuda_of(be)->stream;
  if (dx)
    k_rmsnorm_bwd_dx<<<(unsigned)rows, orx_cuda_row_threads(dim), 0, st>>>(dx, dout, x, w, rstd,
                                                                            dim);
  if (dw) orx_colsum_launch(st, dw, rows, dim, rmsnorm_dw_term{dout, x, rstd, dim});
  return orx_cuda_launched(be, "rmsnorm_bwd");
}

/* ---- softmax ---- */

__global__ void k_softmax_fwd(float *out, const float *x, int64_t dim) {
  __shared__ float red[32];
  int64_t off = (int64_t)blockIdx.x * dim;
  const float *xr = x + off;
  float *o = out + off;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) m = orx_nanmax(m, xr[j]);
  m = orx_block_max(m, red);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) sum += expf(xr[j] - m);
  sum = orx_block_sum(sum, red);
  float inv = 1.0f / sum;
  /* out may equal x: each element is read and written by the same thread */
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) o[j] = expf(xr[j] - m) * inv;
}

/* dx_j += y_j (g_j - sum_k g_k y_k) */
__global__ void k_softmax_bwd(float *dx, const float *dout, const float *y, int64_t dim) {
  __shared__ float red[32];
  int64_t off = (int64_t)blockIdx.x * dim;
  const float *g = dout + off, *yr = y + off;
  float *d = dx + off;
  float dot = 0.0f;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) dot += g[j] * yr[j];
  dot = orx_block_sum(dot, red);
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) d[j] += yr[j] * (g[j] - dot);
}

onerec_status orx_cuda_softmax_fwd(orx_backend *be, float *out, const float *x, int64_t rows,
                                   int64_t dim) {
  onerec_status s = check_rows(be, "softmax_fwd", rows, dim);
  if (s) return s;
  if (rows == 0 || dim == 0) return ONEREC_OK;
  if (!out || !x) return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "softmax_fwd: NULL buffer");
  if ((s = orx_cuda_enter(be, "softmax_fwd"))) return s;
  k_softmax_fwd<<<(unsigned)rows, orx_cuda_row_threads(dim), 0, orx_cuda_of(be)->stream>>>(
      out, x, dim);
  return orx_cuda_launched(be, "softmax_fwd");
}

onerec_status orx_cuda_softmax_bwd(orx_backend *be, float *dx, const float *dout,
                                   const float *y, int64_t rows, int64_t dim) {
  onerec_status s = check_rows(be, "softmax_bwd", rows, dim);
  if (s) return s;
  if (rows == 0 || dim == 0) return ONEREC_OK;
  if (!dx || !dout || !y)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "softmax_bwd: NULL buffer");
  if ((s = orx_cuda_enter(be, "softmax_bwd"))) return s;
  k_softmax_bwd<<<(unsigned)rows, orx_cuda_row_threads(dim), 0, orx_cuda_of(be)->stream>>>(
      dx, dout, y, dim);
  return orx_cuda_launched(be, "softmax_bwd");
}
