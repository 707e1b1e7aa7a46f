/* dtype conversion of the CPU backend: f32 <-> bf16 (round to nearest even, NaN kept) and copies
 * between buffers of the same dtype. Elementwise, split over the pool in cache-line blocks. */
#include <string.h>

#include "cpu_impl.h"

#define SPAN 64

typedef struct conv_job {
  const orx_simd *simd;
  void *dst;
  const void *src;
  onerec_dtype to, from;
  int64_t n;
} conv_job;

static void conv_range(void *arg, int64_t b, int64_t e) {
  const conv_job *j = arg;
  int64_t i0 = b * SPAN, i1 = e * SPAN < j->n ? e * SPAN : j->n;
  if (j->to == ONEREC_BF16 && j->from == ONEREC_F32)
    j->simd->f32_to_bf16((uint16_t *)j->dst + i0, (const float *)j->src + i0, i1 - i0);
  else if (j->to == ONEREC_F32 && j->from == ONEREC_BF16)
    j->simd->bf16_to_f32((float *)j->dst + i0, (const uint16_t *)j->src + i0, i1 - i0);
  else {
    size_t es = onerec_dtype_size(j->to);
    memcpy((char *)j->dst + (size_t)i0 * es, (const char *)j->src + (size_t)i0 * es,
           (size_t)(i1 - i0) * es);
  }
}

onerec_status orx_cpu_convert(orx_backend *be, void *dst, onerec_dtype dst_dtype, const void *src,
                              onerec_dtype src_dtype, int64_t n) {
  size_t ds = onerec_dtype_size(dst_dtype), ss = onerec_dtype_size(src_dtype);
  int ok = ds && ss &&
           (dst_dtype == src_dtype || (dst_dtype == ONEREC_F32 && src_dtype == ONEREC_BF16) ||
            (dst_dtype == ONEREC_BF16 && src_dtype == ONEREC_F32));
  if (!ok)
    return ORX_CPU_FAIL(be, ONEREC_ERR_DTYPE, "convert: %s -> %s not supported",
                        onerec_dtype_name(src_dtype), onerec_dtype_name(dst_dtype));
  if (n < 0) return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "convert: n=%lld", (long long)n);
  if (n == 0) return ONEREC_OK;
  if (!dst || !src) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "convert: NULL buffer");
  const char *d = dst, *s = src;
  int overlap = d < s + (size_t)n * ss && s < d + (size_t)n * ds;
  if (dst_dtype == src_dtype) {
    if (overlap) { /* the split below would race; one memmove is exact */
      memmove(dst, src, (size_t)n * ds);
      return ONEREC_OK;
    }
  } else if (overlap) {
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT,
                        "convert: %s -> %s between overlapping buffers",
                        onerec_dtype_name(src_dtype), onerec_dtype_name(dst_dtype));
  }
  orx_cpu *cpu = orx_cpu_of(be);
  conv_job j = {cpu->simd, dst, src, dst_dtype, src_dtype, n};
  orx_cpu_parallel(cpu, (n + SPAN - 1) / SPAN, SPAN, conv_range, &j);
  return ONEREC_OK;
}
