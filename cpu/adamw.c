/* AdamW step of the CPU backend (lib/backend.h's formula): elementwise, split over the pool in
 * cache-line blocks, so any thread count gives the same bits. */
#include <math.h>

#include "cpu_impl.h"

#define SPAN 64

typedef struct adamw_job {
  const orx_simd *simd;
  const orx_adamw_args *a;
  orx_simd_adamw h;
} adamw_job;

static void adamw_range(void *arg, int64_t b, int64_t e) {
  const adamw_job *j = arg;
  const orx_adamw_args *a = j->a;
  int64_t i0 = b * SPAN, i1 = e * SPAN < a->n ? e * SPAN : a->n;
  j->simd->adamw(a->param + i0, a->grad + i0, a->m + i0, a->v + i0, i1 - i0, &j->h);
}

onerec_status orx_cpu_adamw(orx_backend *be, const orx_adamw_args *a) {
  if (!a) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "adamw: NULL arguments");
  if (a->n < 0) return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "adamw: n=%lld", (long long)a->n);
  if (a->step < 1)
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "adamw: step=%lld (counts from 1)",
                        (long long)a->step);
  if (!(a->beta1 >= 0.0f && a->beta1 < 1.0f && a->beta2 >= 0.0f && a->beta2 < 1.0f))
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "adamw: beta1=%g beta2=%g outside [0, 1)",
                        (double)a->beta1, (double)a->beta2);
  if (a->n == 0) return ONEREC_OK;
  if (!a->param || !a->grad || !a->m || !a->v)
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "adamw: NULL buffer");
  orx_cpu *cpu = orx_cpu_of(be);
  /* bias corrections in double: beta2^t for t in the tens of thousands loses digits in float */
  adamw_job j = {cpu->simd,
                 a,
                 {.lr = a->lr,
                  .beta1 = a->beta1,
                  .beta2 = a->beta2,
                  .eps = a->eps,
                  .weight_decay = a->weight_decay,
                  .grad_scale = a->grad_scale,
                  .bc1 = (float)(1.0 - pow((double)a->beta1, (double)a->step)),
                  .bc2 = (float)(1.0 - pow((double)a->beta2, (double)a->step))}};
  orx_cpu_parallel(cpu, (a->n + SPAN - 1) / SPAN, 4 * SPAN, adamw_range, &j);
  return ONEREC_OK;
}
