/* SwiGLU and leaky ReLU, forward and backward, of the CPU backend. Elementwise, so any split over
 * the pool gives the same bits; operands stored without row padding run as one flat span. */
#include "cpu_impl.h"

#define SPAN 64 /* floats per flat block: whole cache lines per task */

typedef struct act_job {
  const orx_simd *simd;
  float *out, *dg, *du;
  const float *g, *u, *dout, *x;
  int64_t ldo, ldg, ldu, lddg, lddu, lddo;
  int64_t dim, n; /* n: the flat length when every pitch equals dim */
  float slope;
} act_job;

/* items are rows, or SPAN-blocks of the flat span when j->n > 0 */
static void swiglu_range(void *arg, int64_t b, int64_t e) {
  const act_job *j = arg;
  if (j->n) {
    int64_t i0 = b * SPAN, i1 = e * SPAN < j->n ? e * SPAN : j->n;
    j->simd->swiglu(j->out + i0, j->g + i0, j->u + i0, i1 - i0);
    return;
  }
  for (int64_t r = b; r < e; r++)
    j->simd->swiglu(j->out + r * j->ldo, j->g + r * j->ldg, j->u + r * j->ldu, j->dim);
}

static void swiglu_bwd_range(void *arg, int64_t b, int64_t e) {
  const act_job *j = arg;
  if (j->n) {
    int64_t i0 = b * SPAN, i1 = e * SPAN < j->n ? e * SPAN : j->n;
    j->simd->swiglu_bwd(j->dg + i0, j->du + i0, j->dout + i0, j->g + i0, j->u + i0, i1 - i0);
    return;
  }
  for (int64_t r = b; r < e; r++)
    j->simd->swiglu_bwd(j->dg + r * j->lddg, j->du + r * j->lddu, j->dout + r * j->lddo,
                        j->g + r * j->ldg, j->u + r * j->ldu, j->dim);
}

static onerec_status check_pitch(orx_backend *be, const char *op, const char *name, const void *p,
                                 int64_t ld, int64_t dim) {
  if (!p) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, name);
  if (ld < dim)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "%s: pitch of %s %lld < dim %lld", op, name,
                        (long long)ld, (long long)dim);
  return ONEREC_OK;
}

onerec_status orx_cpu_swiglu_fwd(orx_backend *be, float *out, int64_t ldo, const float *gate,
                                 int64_t ldg, const float *up, int64_t ldu, int64_t rows,
                                 int64_t dim) {
  const char *op = "swiglu_fwd";
  if (rows < 0 || dim < 0)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "%s: rows=%lld dim=%lld", op, (long long)rows,
                        (long long)dim);
  if (rows == 0 || dim == 0) return ONEREC_OK;
  onerec_status s;
  if ((s = check_pitch(be, op, "out", out, ldo, dim)) ||
      (s = check_pitch(be, op, "gate", gate, ldg, dim)) ||
      (s = check_pitch(be, op, "up", up, ldu, dim)))
    return s;
  orx_cpu *cpu = orx_cpu_of(be);
  act_job j = {.simd = cpu->simd,
               .out = out,
               .g = gate,
               .u = up,
               .ldo = ldo,
               .ldg = ldg,
               .ldu = ldu,
               .dim = dim};
  if (ldo == dim && ldg == dim && ldu == dim) {
    j.n = rows * dim;
    orx_cpu_parallel(cpu, (j.n + SPAN - 1) / SPAN, 8 * SPAN, swiglu_range, &j);
  } else {
    orx_cpu_parallel(cpu, rows, 8 * dim, swiglu_range, &j);
  }
  return ONEREC_OK;
}

onerec_status orx_cpu_swiglu_bwd(orx_backend *be, float *dgate, int64_t lddg, float *dup,
                                 int64_t lddu, const float *dout, int64_t lddo, const float *gate,
                                 int64_t ldg, const float *up, int64_t ldu, int64_t rows,
                                 int64_t dim) {
  const char *op = "swiglu_bwd";
  if (rows < 0 || dim < 0)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "%s: rows=%lld dim=%lld", op, (long long)rows,
                        (long long)dim);
  if (rows == 0 || dim == 0) return ONEREC_OK;
  onerec_status s;
  if ((s = check_pitch(be, op, "dgate", dgate, lddg, dim)) ||
      (s = check_pitch(be, op, "dup", dup, lddu, dim)) ||
      (s = check_pitch(be, op, "dout", dout, lddo, dim)) ||
      (s = check_pitch(be, op, "gate", gate, ldg, dim)) ||
      (s = check_pitch(be, op, "up", up, ldu, dim)))
    return s;
  orx_cpu *cpu = orx_cpu_of(be);
  act_job j = {.simd = cpu->simd,
               .dg = dgate,
               .du = dup,
               .dout = dout,
               .g = gate,
               .u = up,
               .lddg = lddg,
               .lddu = lddu,
               .lddo = lddo,
               .ldg = ldg,
               .ldu = ldu,
               .dim = dim};
  if (lddg == dim && lddu == dim && lddo == dim && ldg == dim && ldu == dim) {
    j.n = rows * dim;
    orx_cpu_parallel(cpu, (j.n + SPAN - 1) / SPAN, 10 * SPAN, swiglu_bwd_range, &j);
  } else {
    orx_cpu_parallel(cpu, rows, 10 * dim, swiglu_bwd_range, &j);
  }
  return ONEREC_OK;
}

static void leaky_range(void *arg, int64_t b, int64_t e) {
  const act_job *j = arg;
  int64_t i0 = b * SPAN, i1 = e * SPAN < j->n ? e * SPAN : j->n;
  j->simd->leaky_relu(j->out + i0, j->x + i0, i1 - i0, j->slope);
}

static void leaky_bwd_range(void *arg, int64_t b, int64_t e) {
  const act_job *j = arg;
  int64_t i0 = b * SPAN, i1 = e * SPAN < j->n ? e * SPAN : j->n;
  j->simd->leaky_relu_bwd(j->out + i0, j->dout + i0, j->x + i0, i1 - i0, j->slope);
}

onerec_status orx_cpu_leaky_relu_fwd(orx_backend *be, float *out, const float *x, int64_t n,
                                     float slope) {
  if (n < 0) return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "leaky_relu_fwd: n=%lld", (long long)n);
  if (n == 0) return ONEREC_OK;
  if (!out || !x)
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "leaky_relu_fwd: NULL buffer");
  orx_cpu *cpu = orx_cpu_of(be);
  act_job j = {.simd = cpu->simd, .out = out, .x = x, .n = n, .slope = slope};
  orx_cpu_parallel(cpu, (n + SPAN - 1) / SPAN, SPAN, leaky_range, &j);
  return ONEREC_OK;
}

onerec_status orx_cpu_leaky_relu_bwd(orx_backend *be, float *dx, const float *dout, const float *x,
                                     int64_t n, float slope) {
  if (n < 0) return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "leaky_relu_bwd: n=%lld", (long long)n);
  if (n == 0) return ONEREC_OK;
  if (!dx || !dout || !x)
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "leaky_relu_bwd: NULL buffer");
  orx_cpu *cpu = orx_cpu_of(be);
  act_job j = {.simd = cpu->simd, .out = dx, .dout = dout, .x = x, .n = n, .slope = slope};
  orx_cpu_parallel(cpu, (n + SPAN - 1) / SPAN, SPAN, leaky_bwd_range, &j);
  return ONEREC_OK;
}
