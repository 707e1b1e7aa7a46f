/* dtype conversion: f32 <-> bf16 with round-to-nearest-even done on the bits, so the result is
 * the same as the CPU backend's for every input (NaN stays NaN, made quiet; overflow rounds to
 * infinity), and same-type copies. */
#include <stdint.h>

#include "cuda_impl.h"

__device__ __forceinline__ uint16_t f32_to_bf16(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

__global__ void k_f32_to_bf16(uint16_t *dst, const float *src, int64_t n) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    dst[i] = f32_to_bf16(src[i]);
}

__global__ void k_bf16_to_f32(float *dst, const uint16_t *src, int64_t n) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    dst[i] = __uint_as_float((uint32_t)src[i] << 16);
}

onerec_status orx_cuda_convert(orx_backend *be, void *dst, onerec_dtype dst_dtype,
                               const void *src, onerec_dtype src_dtype, int64_t n) {
  size_t ds = orx_cuda_dtype_size(dst_dtype), ss = orx_cuda_dtype_size(src_dtype);
  if (!ds || !ss)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_DTYPE, "convert: unknown dtype %d -> %d", (int)src_dtype,
                         (int)dst_dtype);
  if (n < 0)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "convert: n=%lld", (long long)n);
  int same = dst_dtype == src_dtype;
  int f2b = src_dtype == ONEREC_F32 && dst_dtype == ONEREC_BF16;
  int b2f = src_dtype == ONEREC_BF16 && dst_dtype == ONEREC_F32;
  if (!same && !f2b && !b2f)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_DTYPE, "convert: %s -> %s not supported",
                         orx_cuda_dtype_name(src_dtype), orx_cuda_dtype_name(dst_dtype));
  if (n == 0) return ONEREC_OK;
  if (!dst || !src) return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "convert: NULL buffer");
  onerec_status s = orx_cuda_enter(be, "convert");
  if (s) return s;
  cudaStream_t st = orx_cuda_of(be)->stream;
  if (same)
    return orx_cuda_check(
        be, cudaMemcpyAsync(dst, src, (size_t)n * ss, cudaMemcpyDeviceToDevice, st), "convert",
        "cudaMemcpyAsync");
  if (f2b)
    k_f32_to_bf16<<<orx_cuda_blocks(n, 256), 256, 0, st>>>((uint16_t *)dst, (const float *)src, n);
  else
    k_bf16_to_f32<<<orx_cuda_blocks(n, 256), 256, 0, st>>>((float *)dst, (const uint16_t *)src, n);
  return orx_cuda_launched(be, "convert");
}
