/* Elementwise activations: SwiGLU (each operand with its own row pitch) and leaky ReLU, forward
 * and backward (the backward accumulates). */
#include "kernel_util.h"

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void k_swiglu_fwd(float *out, int64_t ldo, const float *gate, int64_t ldg,
                             const float *up, int64_t ldu, int64_t rows, int64_t dim) {
  int64_t n = rows * dim;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / dim, j = i - r * dim;
    float g = gate[r * ldg + j];
    out[r * ldo + j] = g * sigmoid(g) * up[r * ldu + j];
  }
}

/* d silu(g)/dg = s (1 + g (1 - s)), s = sigmoid(g) */
__global__ void k_swiglu_bwd(float *dgate, int64_t lddg, float *dup, int64_t lddu,
                             const float *dout, int64_t lddo, const float *gate, int64_t ldg,
                             const float *up, int64_t ldu, int64_t rows, int64_t dim) {
  int64_t n = rows * dim;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / dim, j = i - r * dim;
    float g = gate[r * ldg + j], d = dout[r * lddo + j], s = sigmoid(g);
    if (dgate) dgate[r * lddg + j] += d * up[r * ldu + j] * s * (1.0f + g * (1.0f - s));
    if (dup) dup[r * lddu + j] += d * g * s;
  }
}

static onerec_status check_pitch(orx_backend *be, const char *op, const char *name, int64_t ld,
                                 int64_t rows, int64_t dim) {
  if (ld < dim && rows > 1)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "%s: %s=%lld < dim=%lld", op, name, (long long)ld,
                         (long long)dim);
  return ONEREC_OK;
}

onerec_status orx_cuda_swiglu_fwd(orx_backend *be, float *out, int64_t ldo, const float *gate,
                                  int64_t ldg, const float *up, int64_t ldu, int64_t rows,
                                  int64_t dim) {
  const char *op = "swiglu_fwd";
  if (rows < 0 || dim < 0)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "%s: rows=%lld dim=%lld", op, (long long)rows,
                         (long long)dim);
  if (rows == 0 || dim == 0) return ONEREC_OK;
  onerec_status s;
  if ((s = check_pitch(be, op, "ldo", ldo, rows, dim)) ||
      (s = check_pitch(be, op, "ldg", ldg, rows, dim)) ||
      (s = check_pitch(be, op, "ldu", ldu, rows, dim)))
    return s;
  if (!out || !gate || !up)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: NULL buffer", op);
  if ((s = orx_cuda_enter(be, op))) return s;
  k_swiglu_fwd<<<orx_cuda_blocks(rows * dim, 256), 256, 0, orx_cuda_of(be)->stream>>>(
      out, ldo, gate, ldg, up, ldu, rows, dim);
  return orx_cuda_launched(be, op);
}

onerec_status orx_cuda_swiglu_bwd(orx_backend *be, float *dgate, int64_t lddg, float *dup,
                                  int64_t lddu, const float *dout, int64_t lddo,
                                  const float *gate, int64_t ldg, const float *up, int64_t ldu,
                                  int64_t rows, int64_t dim) {
  const char *op = "swiglu_bwd";
  if (rows < 0 || dim < 0)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "%s: rows=%lld dim=%lld", op, (long long)rows,
                         (long long)dim);
  if (rows == 0 || dim == 0 || (!dgate && !dup)) return ONEREC_OK;
  onerec_status s;
  if ((dgate && (s = check_pitch(be, op, "lddg", lddg, rows, dim))) ||
      (dup && (s = check_pitch(be, op, "lddu", lddu, rows, dim))) ||
      (s = check_pitch(be, op, "lddo", lddo, rows, dim)) ||
      (s = check_pitch(be, op, "ldg", ldg, rows, dim)) ||
      (dgate && (s = check_pitch(be, op, "ldu", ldu, rows, dim))))
    return s;
  if (!dout || !gate || (dgate && !up))
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: NULL buffer", op);
  if ((s = orx_cuda_enter(be, op))) return s;
  k_swiglu_bwd<<<orx_cuda_blocks(rows * dim, 256), 256, 0, orx_cuda_of(be)->stream>>>(
      dgate, lddg, dup, lddu, dout, lddo, gate, ldg, up, ldu, rows, dim);
  return orx_cuda_launched(be, op);
}

__global__ void k_leaky_fwd(float *out, const float *x, int64_t n, float slope) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    float v = x[i];
    out[i] = v > 0.0f ? v : slope * v;
  }
}

__global__ void k_leaky_bwd(float *dx, const float *dout, const float *x, int64_t n,
                            float slope) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    dx[i] += x[i] > 0.0f ? dout[i] : slope * dout[i];
}

onerec_status orx_cuda_leaky_relu_fwd(orx_backend *be, float *out, const float *x, int64_t n,
                                      float slope) {
  if (n < 0) return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "leaky_relu_fwd: n=%lld", (long long)n);
  if (n == 0) return ONEREC_OK;
  if (!out || !x)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "leaky_relu_fwd: NULL buffer");
  onerec_status s = orx_cuda_enter(be, "leaky_relu_fwd");
  if (s) return s;
  k_leaky_fwd<<<orx_cuda_blocks(n, 256), 256, 0, orx_cuda_of(be)->stream>>>(out, x, n, slope);
  return orx_cuda_launched(be, "leaky_relu_fwd");
}

onerec_status orx_cuda_leaky_relu_bwd(orx_backend *be, float *dx, const float *dout,
                                      const float *x, int64_t n, float slope) {
  if (n < 0) return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "leaky_relu_bwd: n=%lld", (long long)n);
  if (n == 0) return ONEREC_OK;
  if (!dx || !dout || !x)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "leaky_relu_bwd: NULL buffer");
  onerec_status s = orx_cuda_enter(be, "leaky_relu_bwd");
  if (s) return s;
  k_leaky_bwd<<<orx_cuda_blocks(n, 256), 256, 0, orx_cuda_of(be)->stream>>>(dx, dout, x, n,
                                                                            slope);
  return orx_cuda_launched(be, "leaky_relu_bwd");
}
