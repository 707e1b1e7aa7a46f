/* Vector kernels of the CPU backend. cpu/simd_kernels.c is compiled three times (AVX-512, AVX2+FMA,
 * plain x86-64), each copy filling one orx_simd table; the backend picks the best table the CPU
 * supports once, at start-up (libsodium's way), and every variant is tested against the scalar
 * one. One source, so the logic exists once; the compiler vectorises each copy for its ISA.
 *
 * The kernels work on one row (or one contiguous span); the op files in cpu/ split the rows over
 * the thread pool. Sums run in 32 fixed lanes that are folded in a fixed order, so a kernel gives
 * the same bits for the same input whichever thread calls it (variants differ only where one
 * fuses a multiply-add that another rounds twice). */
#ifndef ORX_SIMD_H
#define ORX_SIMD_H

#include <stdint.h>

/* AdamW's per-step constants; bc1 = 1 - beta1^t, bc2 = 1 - beta2^t (see lib/backend.h). */
typedef struct orx_simd_adamw {
  float lr, beta1, beta2, eps, weight_decay, grad_scale, bc1, bc2;
} orx_simd_adamw;

typedef struct orx_simd {
  const char *isa; /* "avx512", "avx2", "scalar" */
  /* max_i x[i] (n >= 1) */
  float (*max)(const float *x, int64_t n);
  /* x[i] = exp(x[i] - m); returns sum_i x[i] (in float, lane-wise) */
  float (*exp_sub_sum)(float *x, int64_t n, float m);
  /* x[i] *= a */
  void (*scale)(float *x, int64_t n, float a);
  /* y[i] += a * x[i] */
  void (*axpy)(float *y, const float *x, int64_t n, float a);
  /* sum_i x[i] * y[i] */
  float (*dot)(const float *x, const float *y, int64_t n);

  /* out = a * softmax(x) (out may equal x, but not overlap it otherwise); n >= 1. Returns log(sum_i
   * exp(x[i] - m)) and stores m = max_i x[i] in *m: logsumexp(x) is their sum, kept apart so that a
   * cross-entropy (m - x[t]) + log-sum stays exact for logits far from 0; m NULL: neither is wanted
   * (returns 0). -inf entries get 0; a row that is all -inf gets out = 0, m = -inf and log-sum
   * -inf. */
  float (*softmax)(float *out, const float *x, int64_t n, float a, float *m);
  /* the same log-sum and max as softmax, writing no row */
  float (*logsumexp)(const float *x, int64_t n, float *m);
  /* dx[i] += y[i] * (dy[i] - sum_j dy[j] y[j]) (backward of y = softmax(x)) */
  void (*softmax_bwd)(float *dx, const float *dy, const float *y, int64_t n);
  /* out = x * r * w with r = 1 / sqrt(mean(x^2) + eps); returns r. n >= 1. */
  float (*rmsnorm)(float *out, const float *x, const float *w, int64_t n, float eps);
  /* Backward of rmsnorm for one row with its saved r:
   * dx[i] += r w[i] dy[i] - x[i] r^3 / n * sum_j dy[j] w[j] x[j];  dw[i] += dy[i] x[i] r. */
  void (*rmsnorm_bwd)(float *dx, float *dw, const float *dy, const float *x, const float *w,
                      int64_t n, float r);
  /* out[i] = silu(g[i]) * u[i], silu(z) = z / (1 + exp(-z)) */
  void (*swiglu)(float *out, const float *g, const float *u, int64_t n);
  /* dg[i] += dy[i] u[i] silu'(g[i]);  du[i] += dy[i] silu(g[i]) */
  void (*swiglu_bwd)(float *dg, float *du, const float *dy, const float *g, const float *u,
                     int64_t n);
  /* out[i] = x[i] > 0 ? x[i] : slope x[i] */
  void (*leaky_relu)(float *out, const float *x, int64_t n, float slope);
  /* dx[i] += x[i] > 0 ? dy[i] : slope dy[i] */
  void (*leaky_relu_bwd)(float *dx, const float *dy, const float *x, int64_t n, float slope);
  /* sum_i x[i]^2 in double (every product is exact in double, so all variants agree bit for bit) */
  double (*sum_squares)(const float *x, int64_t n);
  /* One AdamW step over n parameters (lib/backend.h's formula). */
  void (*adamw)(float *p, const float *g, float *m, float *v, int64_t n, const orx_simd_adamw *h);
  /* Dropout of x[0..n) as elements first.. of one mask: x[i] is kept (times keep_scale) when
   * orx_drop_bits(seed, first + i) >= thr, else zeroed (lib/dropout_hash.h; the same bits on every
   * ISA and on the GPU). */
  void (*dropout)(float *x, int64_t n, uint64_t first, uint64_t seed, uint32_t thr,
                  float keep_scale);
  /* bf16 <-> f32: round to nearest even, NaN stays NaN (quiet) */
  void (*f32_to_bf16)(uint16_t *dst, const float *src, int64_t n);
  void (*bf16_to_f32)(float *dst, const uint16_t *src, int64_t n);
} orx_simd;

extern const orx_simd orx_simd_avx512, orx_simd_avx2, orx_simd_scalar;

/* The table chosen for this CPU (ONEREC_CPU_ISA may lower it); never NULL. */
const orx_simd *orx_simd_best(void);
/* The table for a named ISA if this CPU can run it, else NULL (tests iterate over variants). */
const orx_simd *orx_simd_get(const char *isa);

#endif
