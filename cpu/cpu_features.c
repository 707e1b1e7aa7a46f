#include <stdlib.h>
#include <string.h>

#include "onerec/context.h"
#include "simd.h"

static int cpu_has(const char *isa) {
  if (strcmp(isa, "scalar") == 0) return 1;
  __builtin_cpu_init();
  if (strcmp(isa, "avx2") == 0)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (strcmp(isa, "avx512") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma");
  return 0;
}

const orx_simd *orx_simd_get(const char *isa) {
  if (!isa || !cpu_has(isa)) return NULL;
  if (strcmp(isa, "avx512") == 0) return &orx_simd_avx512;
  if (strcmp(isa, "avx2") == 0) return &orx_simd_avx2;
  return &orx_simd_scalar;
}

/* Best table the CPU runs, lowered (never raised) by ONEREC_CPU_ISA=avx2|scalar. */
const orx_simd *orx_simd_best(void) {
  static const char *const order[] = {"avx512", "avx2", "scalar"};
  const char *cap = getenv("ONEREC_CPU_ISA");
  int start = 0;
  for (int i = 0; cap && i < 3; i++)
    if (strcmp(cap, order[i]) == 0) start = i;
  for (int i = start; i < 3; i++) {
    const orx_simd *s = orx_simd_get(order[i]);
    if (s) return s;
  }
  return &orx_simd_scalar;
}

ONEREC_API const char *onerec_cpu_isa(void) { return orx_simd_best()->isa; }
