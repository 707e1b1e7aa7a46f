/* Vector kernels of the CPU backend. cpu/simd_kernels.c is compiled three times (AVX-512, AVX2+FMA,
 * plain x86-64), each copy filling one orx_simd table; the backend picks the best table the CPU
 * supports once, at start-up (libsodium's way), and every variant is tested against the scalar
 * one. One source, so the logic exists once; the compiler vectorises each copy for its ISA. */
#ifndef ORX_SIMD_H
#define ORX_SIMD_H

#include <stdint.h>

typedef struct orx_simd {
  const char *isa; /* "avx512", "avx2", "scalar" */
  /* max_i x[i] (n >= 1) */
  float (*max)(const float *x, int64_t n);
  /* x[i] = exp(x[i] - m); returns sum_i x[i] (in float, pairwise-free simple sum) */
  float (*exp_sub_sum)(float *x, int64_t n, float m);
  /* x[i] *= a */
  void (*scale)(float *x, int64_t n, float a);
  /* y[i] += a * x[i] */
  void (*axpy)(float *y, const float *x, int64_t n, float a);
  /* sum_i x[i] * y[i] */
  float (*dot)(const float *x, const float *y, int64_t n);
} orx_simd;

extern const orx_simd orx_simd_avx512, orx_simd_avx2, orx_simd_scalar;

/* The table chosen for this CPU (ONEREC_CPU_ISA may lower it); never NULL. */
const orx_simd *orx_simd_best(void);
/* The table for a named ISA if this CPU can run it, else NULL (tests iterate over variants). */
const orx_simd *orx_simd_get(const char *isa);

#endif
