/* AdamW (decoupled weight decay, bias-corrected), one thread per parameter. The bias
 * corrections are computed once on the host in double precision. */
#include <math.h>

#include "kernel_util.h"

__global__ void k_adamw(float *param, const float *grad, float *m, float *v, int64_t n, float lr,
                        float b1, float b2, float eps, float wd, float grad_scale, float bc1,
                        float bc2) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    float g = grad[i] * grad_scale;
    float mi = b1 * m[i] + (1.0f - b1) * g;
    float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    float p = param[i];
    param[i] = p - lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * p);
  }
}

onerec_status orx_cuda_adamw(orx_backend *be, const orx_adamw_args *a) {
  const char *op = "adamw";
  if (!a) return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: args is NULL", op);
  if (a->n < 0) return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "%s: n=%lld", op, (long long)a->n);
  if (a->step < 1)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: step=%lld (must be >= 1)", op,
                         (long long)a->step);
  if (!(a->beta1 >= 0.0f && a->beta1 < 1.0f && a->beta2 >= 0.0f && a->beta2 < 1.0f))
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: beta1=%g beta2=%g not in [0, 1)",
                         op, (double)a->beta1, (double)a->beta2);
  if (a->n == 0) return ONEREC_OK;
  if (!a->param || !a->grad || !a->m || !a->v)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: NULL buffer", op);
  onerec_status s = orx_cuda_enter(be, op);
  if (s) return s;
  float bc1 = (float)(1.0 - pow((double)a->beta1, (double)a->step));
  float bc2 = (float)(1.0 - pow((double)a->beta2, (double)a->step));
  k_adamw<<<orx_cuda_blocks(a->n, 256), 256, 0, orx_cuda_of(be)->stream>>>(
      a->param, a->grad, a->m, a->v, a->n, a->lr, a->beta1, a->beta2, a->eps, a->weight_decay,
      a->grad_scale, bc1, bc2);
  return orx_cuda_launched(be, op);
}
