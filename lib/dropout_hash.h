/* The dropout mask as a pure function of (seed, element index), shared by every backend (C and
 * CUDA), so the backward pass regenerates the forward's mask instead of storing it and CPU and
 * GPU drop the same elements. Element i is kept when 24 bits of splitmix64(seed, i) are at
 * least round(p 2^24). */
#ifndef ORX_DROPOUT_HASH_H
#define ORX_DROPOUT_HASH_H

#include <stdint.h>

#ifdef __CUDACC__
#define ORX_HD __host__ __device__
#else
#define ORX_HD
#endif

static inline ORX_HD uint32_t orx_drop_bits(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return (uint32_t)((z ^ (z >> 31)) >> 40);
}

/* the drop threshold for probability p in [0, 1) */
static inline ORX_HD uint32_t orx_drop_threshold(float p) {
  return (uint32_t)((double)p * 16777216.0 + 0.5);
}

#endif
