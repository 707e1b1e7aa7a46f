/* Compiled once per ISA with -DORX_SIMD_NAME=<table> -DORX_SIMD_ISA="<isa>" and that ISA's -m flags
 * (see the Makefile). Loops are written so that gcc -O3 vectorises them: no branches in the body,
 * no calls to libm. */
#include <stdint.h>
#include <string.h>

#include "simd.h"

#ifndef ORX_SIMD_NAME
#error "compile with -DORX_SIMD_NAME=orx_simd_<isa> -DORX_SIMD_ISA=\"<isa>\""
#endif

/* exp(x) for x in [-87.3, 88.7] (clamped), relative error < 2e-7: 2^n * p(r) with
 * n = round(x / ln2), r = x - n ln2 (Cody-Waite split), p a degree-6 Taylor/minimax polynomial. */
static inline float vexp(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.7f ? 88.7f : x;
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
  int32_t ni = (int32_t)n;
  int32_t bits = (ni + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

static float k_max(const float *x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
  return m;
}

static float k_exp_sub_sum(float *x, int64_t n, float m) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; i++) {
    float e = vexp(x[i] - m);
    x[i] = e;
    s += e;
  }
  return s;
}

static void k_scale(float *x, int64_t n, float a) {
  for (int64_t i = 0; i < n; i++) x[i] *= a;
}

static void k_axpy(float *restrict y, const float *restrict x, int64_t n, float a) {
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static float k_dot(const float *restrict x, const float *restrict y, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; i++) s += x[i] * y[i];
  return s;
}

const orx_simd ORX_SIMD_NAME = {
    .isa = ORX_SIMD_ISA,
    .max = k_max,
    .exp_sub_sum = k_exp_sub_sum,
    .scale = k_scale,
    .axpy = k_axpy,
    .dot = k_dot,
};
