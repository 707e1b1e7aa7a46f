/* Compiled once per ISA with -DORX_SIMD_NAME=<table> -DORX_SIMD_ISA="<isa>" and that ISA's -m flags
 * (see the Makefile). Loops are written so that gcc -O3 vectorises them: no branches in the body,
 * no calls to libm (sqrtf is an instruction under -fno-math-errno). Without -ffast-math gcc keeps
 * a float sum in source order and will not vectorise `s += x[i]`, so every reduction runs over NL
 * explicit lanes (a block of NL elements per step, which gcc turns into whole registers), folds
 * them in a fixed tree and adds the last n % NL elements, summed in order: the same order on every
 * ISA, the same bits on every call. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "simd.h"
#include "../lib/dropout_hash.h"

#ifndef ORX_SIMD_NAME
#error "compile with -DORX_SIMD_NAME=orx_simd_<isa> -DORX_SIMD_ISA=\"<isa>\""
#endif

#define NL 32 /* reduction lanes: two AVX-512 registers, four AVX2 ones, enough to hide latency */

/* c ? a : b through the bits: gcc will not if-convert a float select whose arm it could sink a
 * (possibly trapping) float operation into, and then leaves the whole loop scalar. */
static inline float sel(int c, float a, float b) {
  uint32_t ua, ub, m = 0u - (uint32_t)c;
  memcpy(&ua, &a, sizeof ua);
  memcpy(&ub, &b, sizeof ub);
  uint32_t r = (ua & m) | (ub & ~m);
  float f;
  memcpy(&f, &r, sizeof f);
  return f;
}

/* exp(x), relative error < 2e-7 for x in [-87.33, 88.7228] (where the result is a normal
 * float); 0 below (so exp(-inf) = 0 and masked softmax entries vanish), +inf above (88.72283f
 * rounds to just past ln(FLT_MAX)), NaN for NaN. exp(x) = 2^n p(r) with n = round(x / ln2),
 * r = x - n ln2 (Cody-Waite split), p the degree-7 Taylor polynomial. n is read from the bits of
 * the rounding sum instead of a float to int conversion, and 2^n is applied as two halves so
 * that n = 128 (x just under ln(FLT_MAX)) does not overflow. Outside the range the arithmetic
 * yields garbage (never undefined behaviour: the bit work is unsigned) that the two final
 * selects replace; NaN passes both selects. */
static inline float vexp(float x) {
  const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
  float t = x * 1.44269504088896341f + shifter;
  float n = t - shifter;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  uint32_t tb;
  memcpy(&tb, &t, sizeof tb);
  uint32_t ni = tb - 0x4B400000u; /* t's mantissa holds n + 2^22 */
  /* halves of n, floor and rest: arithmetic shift emulated on unsigned, so no sign questions */
  uint32_t h = (ni >> 1) | (ni & 0x80000000u);
  uint32_t b1 = (h + 127u) << 23, b2 = (ni - h + 127u) << 23;
  float s1, s2;
  memcpy(&s1, &b1, sizeof s1);
  memcpy(&s2, &b2, sizeof s2);
  float e = p * s1 * s2;
  e = sel(x < -87.33f, 0.0f, e);
  return sel(x >= 88.72283f, INFINITY, e);
}

/* Folds the lanes pairwise, always in the same order. */
static inline float fold(float *a) {
  for (int w = NL / 2; w > 0; w /= 2)
    for (int l = 0; l < w; l++) a[l] += a[l + w];
  return a[0];
}

static inline void max_block(float *a, const float *x) {
  for (int l = 0; l < NL; l++) a[l] = x[l] > a[l] ? x[l] : a[l];
}

static float k_max(const float *x, int64_t n) {
  float a[NL], m = x[0];
  if (n < NL) { /* short rows (a router's experts): no lanes to set up and fold */
    for (int64_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
  }
  for (int l = 0; l < NL; l++) a[l] = m;
  int64_t i = 0;
  for (; i + NL <= n; i += NL) max_block(a, x + i);
  for (; i < n; i++) m = x[i] > m ? x[i] : m;
  for (int w = NL / 2; w > 0; w /= 2)
    for (int l = 0; l < w; l++) a[l] = a[l + w] > a[l] ? a[l + w] : a[l];
  return a[0] > m ? a[0] : m;
}

/* o[l] = exp(x[l] - m), a[l] += o[l] for one block; o and x are the same block or disjoint. */
static inline void exp_block(float *a, float *restrict o, const float *restrict x, float m) {
  for (int l = 0; l < NL; l++) {
    float e = vexp(x[l] - m);
    o[l] = e;
    a[l] += e;
  }
}

static inline void exp_block_inplace(float *a, float *x, float m) {
  for (int l = 0; l < NL; l++) {
    float e = vexp(x[l] - m);
    x[l] = e;
    a[l] += e;
  }
}

/* out[i] = exp(x[i] - m), returning the sum; out may equal x (but not overlap it otherwise). The
 * last n % NL elements are summed on their own, in order, and added after the lanes. */
static inline float exp_store_sum(float *out, const float *x, int64_t n, float m) {
  float a[NL] = {0}, t = 0.0f;
  int64_t i = 0;
  if (out == x)
    for (; i + NL <= n; i += NL) exp_block_inplace(a, out + i, m);
  else
    for (; i + NL <= n; i += NL) exp_block(a, out + i, x + i, m);
  /* the tail: exps first (a loop gcc vectorises), then their sum in order */
  int64_t i0 = i;
  if (out == x)
    for (; i < n; i++) out[i] = vexp(out[i] - m);
  else
    for (; i < n; i++) out[i] = vexp(x[i] - m);
  for (i = i0; i < n; i++) t += out[i];
  return fold(a) + t;
}

static float k_exp_sub_sum(float *x, int64_t n, float m) { return exp_store_sum(x, x, n, m); }

static void k_scale(float *x, int64_t n, float a) {
  for (int64_t i = 0; i < n; i++) x[i] *= a;
}

static void k_axpy(float *y, const float *x, int64_t n, float a) {
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static float k_dot(const float *x, const float *y, int64_t n) {
  float a[NL] = {0}, t = 0.0f;
  int64_t i = 0;
  for (; i + NL <= n; i += NL)
    for (int l = 0; l < NL; l++) a[l] += x[i + l] * y[i + l];
  for (; i < n; i++) t += x[i] * y[i];
  return fold(a) + t;
}

static float k_softmax(float *out, const float *x, int64_t n, float scale, float *mp) {
  float m = k_max(x, n);
  if (mp) *mp = m;
  if (m == -INFINITY) {
    memset(out, 0, (size_t)n * sizeof *out);
    return -INFINITY;
  }
  float s = exp_store_sum(out, x, n, m);
  k_scale(out, n, scale / s);
  return mp ? logf(s) : 0.0f;
}

static float k_logsumexp(const float *x, int64_t n, float *mp) {
  float m = *mp = k_max(x, n);
  if (m == -INFINITY) return -INFINITY;
  float a[NL] = {0}, t = 0.0f;
  int64_t i = 0;
  for (; i + NL <= n; i += NL)
    for (int l = 0; l < NL; l++) a[l] += vexp(x[i + l] - m);
  float e[NL];
  int64_t rem = n - i;
  for (int64_t l = 0; l < rem; l++) e[l] = vexp(x[i + l] - m);
  for (int64_t l = 0; l < rem; l++) t += e[l];
  return logf(fold(a) + t);
}

static void k_softmax_bwd(float *dx, const float *dy, const float *y, int64_t n) {
  float d = k_dot(dy, y, n);
  for (int64_t i = 0; i < n; i++) dx[i] += y[i] * (dy[i] - d);
}

static float k_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
  float r = 1.0f / sqrtf(k_dot(x, x, n) / (float)n + eps);
  for (int64_t i = 0; i < n; i++) out[i] = x[i] * r * w[i];
  return r;
}

static void k_rmsnorm_bwd(float *dx, float *dw, const float *dy, const float *x, const float *w,
                          int64_t n, float r) {
  float a[NL] = {0}, t = 0.0f;
  int64_t i = 0;
  for (; i + NL <= n; i += NL)
    for (int l = 0; l < NL; l++) a[l] += dy[i + l] * w[i + l] * x[i + l];
  for (; i < n; i++) t += dy[i] * w[i] * x[i];
  float c = (fold(a) + t) * (r * r * r) / (float)n;
  for (i = 0; i < n; i++) {
    dx[i] += r * w[i] * dy[i] - c * x[i];
    dw[i] += dy[i] * x[i] * r;
  }
}

static void k_swiglu(float *out, const float *g, const float *u, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float sig = 1.0f / (1.0f + vexp(-g[i]));
    out[i] = g[i] * sig * u[i];
  }
}

static void k_swiglu_bwd(float *dg, float *du, const float *dy, const float *g, const float *u,
                         int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float sig = 1.0f / (1.0f + vexp(-g[i]));
    float silu = g[i] * sig;
    float dsilu = sig * (1.0f + g[i] * (1.0f - sig));
    float d = dy[i];
    dg[i] += d * u[i] * dsilu;
    du[i] += d * silu;
  }
}

static void k_leaky_relu(float *out, const float *x, int64_t n, float slope) {
  for (int64_t i = 0; i < n; i++) out[i] = sel(x[i] > 0.0f, x[i], slope * x[i]);
}

static void k_leaky_relu_bwd(float *dx, const float *dy, const float *x, int64_t n, float slope) {
  for (int64_t i = 0; i < n; i++) dx[i] += sel(x[i] > 0.0f, dy[i], slope * dy[i]);
}

static double k_sum_squares(const float *x, int64_t n) {
  enum { DL = 16 };
  double a[DL] = {0}, t = 0.0;
  int64_t i = 0;
  for (; i + DL <= n; i += DL)
    for (int l = 0; l < DL; l++) a[l] += (double)x[i + l] * (double)x[i + l];
  for (; i < n; i++) t += (double)x[i] * (double)x[i];
  for (int w = DL / 2; w > 0; w /= 2)
    for (int l = 0; l < w; l++) a[l] += a[l + w];
  return a[0] + t;
}

static void k_adamw(float *p, const float *g, float *m, float *v, int64_t n,
                    const orx_simd_adamw *h) {
  const float b1 = h->beta1, b2 = h->beta2, c1 = 1.0f - h->beta1, c2 = 1.0f - h->beta2;
  const float lr = h->lr, eps = h->eps, wd = h->weight_decay, gs = h->grad_scale;
  const float bc1 = h->bc1, bc2 = h->bc2;
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i] * gs;
    float mi = b1 * m[i] + c1 * gi;
    float vi = b2 * v[i] + c2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] -= lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * p[i]);
  }
}

static void k_f32_to_bf16(uint16_t *dst, const float *src, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, src + i, sizeof u);
    uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    uint32_t quiet = (u >> 16) | 0x40u;
    dst[i] = (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? quiet : rounded);
  }
}

/* the mask hash inlined into a branch-free loop: 64-bit lanes (vpmullq under AVX-512DQ), then
 * a select through the bits; about 8x the speed of the scalar loop on AVX-512 */
static void k_dropout(float *x, int64_t n, uint64_t first, uint64_t seed, uint32_t thr,
                      float keep_scale) {
  for (int64_t i = 0; i < n; i++)
    x[i] = sel(orx_drop_bits(seed, first + (uint64_t)i) >= thr, x[i] * keep_scale, 0.0f);
}

static void k_bf16_to_f32(float *dst, const uint16_t *src, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t u = (uint32_t)src[i] << 16;
    memcpy(dst + i, &u, sizeof u);
  }
}

const orx_simd ORX_SIMD_NAME = {
    .isa = ORX_SIMD_ISA,
    .max = k_max,
    .exp_sub_sum = k_exp_sub_sum,
    .scale = k_scale,
    .axpy = k_axpy,
    .dot = k_dot,
    .softmax = k_softmax,
    .logsumexp = k_logsumexp,
    .softmax_bwd = k_softmax_bwd,
    .rmsnorm = k_rmsnorm,
    .rmsnorm_bwd = k_rmsnorm_bwd,
    .swiglu = k_swiglu,
    .swiglu_bwd = k_swiglu_bwd,
    .leaky_relu = k_leaky_relu,
    .leaky_relu_bwd = k_leaky_relu_bwd,
    .sum_squares = k_sum_squares,
    .adamw = k_adamw,
    .dropout = k_dropout,
    .f32_to_bf16 = k_f32_to_bf16,
    .bf16_to_f32 = k_bf16_to_f32,
};
