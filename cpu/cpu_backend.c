/* The built-in CPU backend: memory on the host, kernels in the other cpu/ files. */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "cpu_impl.h"

static void cpu_destroy(orx_backend *be) {
  orx_cpu *cpu = orx_cpu_of(be);
  if (!cpu) return;
  const onerec_allocator *al = cpu->allocator;
  orx_pool_destroy(cpu->pool);
  al->free(al->user, cpu);
  be->impl = NULL;
}

static void *cpu_alloc(orx_backend *be, size_t bytes) { return orx_cpu_alloc(be, bytes); }

static void cpu_free(orx_backend *be, void *p) { orx_cpu_free(be, p); }

static onerec_status cpu_copy(orx_backend *be, void *dst, const void *src, size_t bytes,
                              orx_copy_kind kind) {
  (void)be;
  (void)kind; /* host and device are the same memory */
  if (bytes) memmove(dst, src, bytes);
  return ONEREC_OK;
}

static onerec_status cpu_memset0(orx_backend *be, void *dst, size_t bytes) {
  (void)be;
  if (bytes) memset(dst, 0, bytes);
  return ONEREC_OK;
}

static onerec_status cpu_synchronize(orx_backend *be) {
  (void)be;
  return ONEREC_OK;
}

static const orx_backend_ops k_cpu_ops = {
    .api_version = ORX_BACKEND_API_VERSION,
    .name = "cpu",
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy = cpu_copy,
    .memset0 = cpu_memset0,
    .synchronize = cpu_synchronize,
    .convert = orx_cpu_convert,
    .matmul = orx_cpu_matmul,
    .attention_fwd = orx_cpu_attention_fwd,
    .attention_bwd = orx_cpu_attention_bwd,
    .rmsnorm_fwd = orx_cpu_rmsnorm_fwd,
    .rmsnorm_bwd = orx_cpu_rmsnorm_bwd,
    .softmax_fwd = orx_cpu_softmax_fwd,
    .softmax_bwd = orx_cpu_softmax_bwd,
    .swiglu_fwd = orx_cpu_swiglu_fwd,
    .swiglu_bwd = orx_cpu_swiglu_bwd,
    .leaky_relu_fwd = orx_cpu_leaky_relu_fwd,
    .leaky_relu_bwd = orx_cpu_leaky_relu_bwd,
    .embedding_fwd = orx_cpu_embedding_fwd,
    .embedding_bwd = orx_cpu_embedding_bwd,
    .cross_entropy = orx_cpu_cross_entropy,
    .adamw = orx_cpu_adamw,
    .axpy = orx_cpu_axpy,
    .scale = orx_cpu_scale,
    .add_bias = orx_cpu_add_bias,
    .bias_bwd = orx_cpu_bias_bwd,
    .sum_squares = orx_cpu_sum_squares,
    .dropout = orx_cpu_dropout,
    .moe_topk = orx_cpu_moe_topk,
    .scale_rows = orx_cpu_scale_rows,
    .scale_rows_bwd = orx_cpu_scale_rows_bwd,
    .row_sq_norms = orx_cpu_row_sq_norms,
    .kmeans_assign = orx_cpu_kmeans_assign,
    .kmeans_update = orx_cpu_kmeans_update,
    .gather_axpy = orx_cpu_gather_axpy,
    .kmeanspp_step = orx_cpu_kmeanspp_step,
};

onerec_status orx_cpu_backend_create(const orx_backend_params *params, orx_backend *out,
                                     char *why, size_t why_len) {
  const onerec_allocator *al = params->allocator;
  orx_cpu *cpu = al->alloc(al->user, sizeof *cpu, 64);
  if (!cpu) {
    snprintf(why, why_len, "out of memory");
    return ONEREC_ERR_OUT_OF_MEMORY;
  }
  memset(cpu, 0, sizeof *cpu);
  cpu->threads = params->threads < 1 ? 1 : params->threads;
  cpu->allocator = al;
  cpu->set_error = params->set_error;
  cpu->simd = orx_simd_best();
  cpu->pool = orx_pool_create(cpu->threads);
  if (!cpu->pool) {
    al->free(al->user, cpu);
    snprintf(why, why_len, "cannot start %d worker threads", params->threads);
    return ONEREC_ERR_OUT_OF_MEMORY;
  }
  /* Our pool splits the work; OpenBLAS threads inside it would oversubscribe the cores. */
  openblas_set_num_threads(1);
  out->ops = &k_cpu_ops;
  out->impl = cpu;
  return ONEREC_OK;
}
