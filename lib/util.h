/* Small helpers shared across lib/: qsort comparators, binary search, strict integer parsing,
 * the seeded generator and normal draws for weight initialisation. */
#ifndef ORX_UTIL_H
#define ORX_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* qsort comparators for ascending int64_t / int32_t arrays. */
int orx_cmp_i64(const void *a, const void *b);
int orx_cmp_i32(const void *a, const void *b);

/* Index of v in the ascending array a[0..n), or -1 if absent. */
int64_t orx_find_sorted_i64(const int64_t *a, int64_t n, int64_t v);

/* Parses the characters [p, e) as a non-negative decimal integer (digits only, no sign, no
 * spaces). Returns 0 on success, -1 if it is not such a number, -2 if it overflows int64_t. */
int orx_parse_u63(const char *p, const char *e, int64_t *v);

/* SplitMix64: lib/'s one seeded generator (weight init, shuffles, sampling, k-means, feature
 * projections). Small, seedable, and every output bit depends on every state bit; advances *s. */
static inline uint64_t orx_splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Fills x[0..n) with N(0, std^2) draws: Box-Muller, two normals per pair of splitmix64 uniforms
 * in (0, 1] taken from the stream *state. Calls with even n continue the stream seamlessly, so
 * initial weights do not depend on how a tensor is chunked. */
void orx_fill_normal(float *x, size_t n, double std, uint64_t *state);

#endif
