/* MoE routing: top-k expert selection with the loss-free balancing bias (one thread per row:
 * k and the expert count are small), and per-row scaling by the gates with its backward. The
 * selection repeats the CPU reference's comparisons exactly (strict >, so ties go to the lower
 * expert, and NaN scores never win), so indices and gates match it bit for bit. */
#include "kernel_util.h"

__global__ void k_moe_topk(int32_t *idx, float *gates, const float *probs, const float *bias,
                           int64_t rows, int64_t ne, int64_t k) {
  for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < rows;
       r += (int64_t)gridDim.x * blockDim.x) {
    const float *p = probs + r * ne;
    int32_t *ix = idx + r * k;
    float *g = gates + r * k;
    for (int64_t s = 0; s < k; s++) {
      int64_t best = -1;
      float bv = -INFINITY;
      for (int64_t e = 0; e < ne; e++) {
        bool used = false;
        for (int64_t t = 0; t < s; t++) used |= ix[t] == e;
        if (used) continue;
        float v = p[e] + (bias ? bias[e] : 0.0f);
        if (best < 0 || v > bv) {
          best = e;
          bv = v;
        }
      }
      ix[s] = (int32_t)best;
      g[s] = p[best];
    }
  }
}

__global__ void k_scale_rows(float *out, const float *x, const float *s, int64_t rows,
                             int64_t dim) {
  int64_t n = rows * dim;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    out[i] = x[i] * s[i / dim];
}

__global__ void k_scale_rows_bwd_dx(float *dx, const float *dout, const float *s, int64_t rows,
                                    int64_t dim) {
  int64_t n = rows * dim;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    dx[i] += dout[i] * s[i / dim];
}

/* ds[r] += sum_j dout[r, j] x[r, j], summed in double like the CPU reference */
__global__ void k_scale_rows_bwd_ds(float *ds, const float *dout, const float *x, int64_t dim) {
  __shared__ double red[32];
  int64_t off = (int64_t)blockIdx.x * dim;
  double acc = 0.0;
  for (int64_t j = threadIdx.x; j < dim; j += blockDim.x)
    acc += (double)dout[off + j] * (double)x[off + j];
  acc = orx_block_sum(acc, red);
  if (threadIdx.x == 0) ds[blockIdx.x] += (float)acc;
}

onerec_status orx_cuda_moe_topk(orx_backend *be, int32_t *idx, float *gates, const float *probs,
                                const float *bias, int64_t rows, int64_t n_experts, int64_t k) {
  if (rows < 0 || n_experts < 1 || k < 1 || k > n_experts || n_experts > INT32_MAX)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "moe_topk: rows=%lld experts=%lld k=%lld",
                         (long long)rows, (long long)n_experts, (long long)k);
  if (rows == 0) return ONEREC_OK;
  if (!idx || !gates || !probs)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "moe_topk: NULL buffer");
  onerec_status s = orx_cuda_enter(be, "moe_topk");
  if (s) return s;
  k_moe_topk<<<orx_cuda_blocks(rows, 128), 128, 0, orx_cuda_of(be)->stream>>>(
      idx, gates, probs, bias, rows, n_experts, k);
  return orx_cuda_launched(be, "moe_topk");
}

onerec_status orx_cuda_scale_rows(orx_backend *be, float *out, const float *x, const float *s,
                                  int64_t rows, int64_t dim) {
  if (rows < 0 || dim < 0)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "scale_rows: rows=%lld dim=%lld",
                         (long long)rows, (long long)dim);
  if (rows == 0 || dim == 0) return ONEREC_OK;
  if (!out || !x || !s)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "scale_rows: NULL buffer");
  onerec_status st = orx_cuda_enter(be, "scale_rows");
  if (st) return st;
  k_scale_rows<<<orx_cuda_blocks(rows * dim, 256), 256, 0, orx_cuda_of(be)->stream>>>(
      out, x, s, rows, dim);
  return orx_cuda_launched(be, "scale_rows");
}

onerec_status orx_cuda_scale_rows_bwd(orx_backend *be, float *dx, float *ds, const float *dout,
                                      const float *x, const float *s, int64_t rows,
                                      int64_t dim) {
  if (rows < 0 || dim < 0 || rows > INT32_MAX)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "scale_rows_bwd: rows=%lld dim=%lld",
                         (long long)rows, (long long)dim);
  if (rows == 0 || dim == 0 || (!dx && !ds)) return ONEREC_OK;
  if (!dout || (dx && !s) || (ds && !x))
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "scale_rows_bwd: NULL buffer");
  onerec_status st = orx_cuda_enter(be, "scale_rows_bwd");
  if (st) return st;
  cudaStream_t stream = orx_cuda_of(be)->stream;
  if (dx)
    k_scale_rows_bwd_dx<<<orx_cuda_blocks(rows * dim, 256), 256, 0, stream>>>(dx, dout, s, rows,
                                                                              dim);
  if (ds)
    k_scale_rows_bwd_ds<<<(unsigned)rows, orx_cuda_row_threads(dim), 0, stream>>>(ds, dout, x,
                                                                                  dim);
  return orx_cuda_launched(be, "scale_rows_bwd");
}
