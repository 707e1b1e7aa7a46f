/* Row-wise softmax forward and backward of the CPU backend; rows are independent, so any split
 * over the pool gives the same bits. */
#include "cpu_impl.h"

typedef struct sm_job {
  const orx_simd *simd;
  float *out;
  const float *x, *dout;
  int64_t dim;
} sm_job;

static void fwd_range(void *arg, int64_t b, int64_t e) {
  const sm_job *j = arg;
  for (int64_t r = b; r < e; r++)
    j->simd->softmax(j->out + r * j->dim, j->x + r * j->dim, j->dim, 1.0f, NULL);
}

static void bwd_range(void *arg, int64_t b, int64_t e) {
  const sm_job *j = arg;
  const int64_t d = j->dim;
  for (int64_t r = b; r < e; r++)
    j->simd->softmax_bwd(j->out + r * d, j->dout + r * d, j->x + r * d, d);
}

static onerec_status check(orx_backend *be, const char *op, const void *a, const void *b,
                           const void *c, int64_t rows, int64_t dim) {
  if (rows < 0 || dim < 1)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "%s: rows=%lld dim=%lld", op, (long long)rows,
                        (long long)dim);
  if (rows > 0 && (!a || !b || !c))
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: NULL buffer", op);
  return ONEREC_OK;
}

onerec_status orx_cpu_softmax_fwd(orx_backend *be, float *out, const float *x, int64_t rows,
                                  int64_t dim) {
  onerec_status s = check(be, "softmax_fwd", out, x, x, rows, dim);
  if (s) return s;
  orx_cpu *cpu = orx_cpu_of(be);
  sm_job j = {cpu->simd, out, x, NULL, dim};
  orx_cpu_parallel(cpu, rows, 8 * dim, fwd_range, &j);
  return ONEREC_OK;
}

onerec_status orx_cpu_softmax_bwd(orx_backend *be, float *dx, const float *dout, const float *y,
                                  int64_t rows, int64_t dim) {
  onerec_status s = check(be, "softmax_bwd", dx, dout, y, rows, dim);
  if (s) return s;
  orx_cpu *cpu = orx_cpu_of(be);
  sm_job j = {cpu->simd, dx, y, dout, dim};
  orx_cpu_parallel(cpu, rows, 2 * dim, bwd_range, &j);
  return ONEREC_OK;
}
