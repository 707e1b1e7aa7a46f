/* Device-side helpers shared by the kernel files: warp and block reductions with a fixed
 * combination order (so every result is reproducible run to run), and a NaN-propagating max
 * (a bad input must show in the output, not vanish into fmaxf). Included by .cu files only. */
#ifndef ORX_CUDA_KERNEL_UTIL_H
#define ORX_CUDA_KERNEL_UTIL_H

#include <cuda_runtime.h>
#include <math.h>

#include "cuda_impl.h"

/* max that returns NaN if either side is NaN */
__device__ __forceinline__ float orx_nanmax(float a, float b) {
  return (a != a || a > b) ? a : b;
}

template <typename T>
__device__ __forceinline__ T orx_warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float orx_warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = orx_nanmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024), returned to every thread.
 * smem holds 32 values; consecutive calls may reuse it (the leading barrier protects it). */
template <typename T>
__device__ T orx_block_sum(T v, T *smem) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = orx_warp_sum(v);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = lane < warps ? smem[lane] : T(0);
    w = orx_warp_sum(w);
    if (lane == 0) smem[0] = w;
  }
  __syncthreads();
  return smem[0];
}

__device__ inline float orx_block_max(float v, float *smem) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = orx_warp_max(v);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float w = lane < warps ? smem[lane] : -INFINITY;
    w = orx_warp_max(w);
    if (lane == 0) smem[0] = w;
  }
  __syncthreads();
  return smem[0];
}

/* Records bad position pos in the backend's marker; the smallest one wins. */
__device__ __forceinline__ void orx_mark_bad(unsigned long long *bad, int64_t pos) {
  atomicMin(bad, (unsigned long long)pos);
}

/* Column sums: out[j] += sum_r f(r, j) for j < dim, r < rows, f a device functor.
 * Block (32, 16): each thread walks the rows ty, ty + 16, ... of one column, then the 16 partial
 * sums are combined in a fixed order; the partition depends only on the shape, so the result is
 * the same on every run. */
enum { ORX_COLSUM_X = 32, ORX_COLSUM_Y = 16 };

template <typename F>
__global__ void orx_colsum_kernel(float *out, int64_t rows, int64_t dim, F f) {
  __shared__ float part[ORX_COLSUM_Y][ORX_COLSUM_X + 1];
  int64_t j = (int64_t)blockIdx.x * ORX_COLSUM_X + threadIdx.x;
  float acc = 0.0f;
  if (j < dim)
    for (int64_t r = threadIdx.y; r < rows; r += ORX_COLSUM_Y) acc += f(r, j);
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < dim) {
    float s = 0.0f;
    for (int y = 0; y < ORX_COLSUM_Y; y++) s += part[y][threadIdx.x];
    out[j] += s;
  }
}

template <typename F>
static void orx_colsum_launch(cudaStream_t stream, float *out, int64_t rows, int64_t dim, F f) {
  dim3 block(ORX_COLSUM_X, ORX_COLSUM_Y);
  unsigned grid = (unsigned)((dim + ORX_COLSUM_X - 1) / ORX_COLSUM_X);
  orx_colsum_kernel<<<grid, block, 0, stream>>>(out, rows, dim, f);
}

#endif
