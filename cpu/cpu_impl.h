/* The CPU backend's private state and the kernels that fill its op table, one file each. */
#ifndef ORX_CPU_IMPL_H
#define ORX_CPU_IMPL_H

#include "../lib/backend.h"
#include "simd.h"
#include "threadpool.h"

typedef struct orx_cpu {
  orx_pool *pool;
  const orx_simd *simd;
  int threads;
  const onerec_allocator *allocator;
  void (*set_error)(const char *fmt, ...);
} orx_cpu;

static inline orx_cpu *orx_cpu_of(orx_backend *be) { return (orx_cpu *)be->impl; }

/* Fails with status and a message through the backend's error channel. */
#define ORX_CPU_FAIL(be, status, ...) (orx_cpu_of(be)->set_error(__VA_ARGS__), (status))

/* Host scratch through the context's allocator (64-byte aligned); NULL on failure. */
static inline void *orx_cpu_alloc(orx_backend *be, size_t bytes) {
  const onerec_allocator *al = orx_cpu_of(be)->allocator;
  return al->alloc(al->user, bytes ? bytes : 1, 64);
}
static inline void orx_cpu_free(orx_backend *be, void *p) {
  const onerec_allocator *al = orx_cpu_of(be)->allocator;
  if (p) al->free(al->user, p);
}

/* cpu/gemm.c */
onerec_status orx_cpu_matmul(orx_backend *be, const orx_matmul_args *a);

/* cpu/attention.c */
onerec_status orx_cpu_attention_fwd(orx_backend *be, const orx_attn_args *a);
onerec_status orx_cpu_attention_bwd(orx_backend *be, const orx_attn_bwd_args *a);

#endif
