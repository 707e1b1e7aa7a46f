/* MoE routing kernels: top-k expert selection (with the loss-free balancing bias) and per-row
 * scaling of expert outputs by their gates, with its backward. Rows are independent, so tasks
 * are row chunks and results do not depend on the thread count. */
#include <math.h>

#include "cpu_impl.h"

enum { ROWS_PER_TASK = 256 };

typedef struct topk_job {
  int32_t *idx;
  float *gates;
  const float *probs, *bias;
  int64_t rows, e, k;
} topk_job;

static void topk_task(void *arg, int64_t task) {
  const topk_job *j = arg;
  int64_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < j->rows ? r0 + ROWS_PER_TASK
                                                                         : j->rows;
  for (int64_t r = r0; r < r1; r++) {
    const float *p = j->probs + r * j->e;
    int32_t *ix = j->idx + r * j->k;
    float *g = j->gates + r * j->k;
    /* k is small (<= experts, typically 1..8): repeated selection of the best unused expert. A
     * strict > keeps the lower expert on ties. NaN scores never win, so a NaN row still gets k
     * distinct experts (the lowest unused ones). */
    for (int64_t s = 0; s < j->k; s++) {
      int64_t best = -1;
      float bv = -INFINITY;
      for (int64_t e = 0; e < j->e; e++) {
        int used = 0;
        for (int64_t t = 0; t < s; t++) used |= ix[t] == e;
        if (used) continue;
        float v = p[e] + (j->bias ? j->bias[e] : 0.0f);
        if (best < 0 || v > bv) {
          best = e;
          bv = v;
        }
      }
      ix[s] = (int32_t)best;
      g[s] = p[best];
    }
  }
}

onerec_status orx_cpu_moe_topk(orx_backend *be, int32_t *idx, float *gates, const float *probs,
                               const float *bias, int64_t rows, int64_t n_experts, int64_t k) {
  if (rows < 0 || n_experts < 1 || k < 1 || k > n_experts || n_experts > INT32_MAX)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "moe_topk: rows=%lld experts=%lld k=%lld",
                        (long long)rows, (long long)n_experts, (long long)k);
  if (rows == 0) return ONEREC_OK;
  if (!idx || !gates || !probs)
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "moe_topk: NULL buffer");
  topk_job j = {idx, gates, probs, bias, rows, n_experts, k};
  orx_pool_run(orx_cpu_of(be)->pool, (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, topk_task, &j);
  return ONEREC_OK;
}

typedef struct scale_job {
  float *out, *dx, *ds;
  const float *x, *s, *dout;
  int64_t rows, dim;
} scale_job;

static void scale_task(void *arg, int64_t task) {
  const scale_job *j = arg;
  int64_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < j->rows ? r0 + ROWS_PER_TASK
                                                                         : j->rows;
  for (int64_t r = r0; r < r1; r++) {
    const float *x = j->x + r * j->dim;
    float *o = j->out + r * j->dim;
    float s = j->s[r];
    for (int64_t c = 0; c < j->dim; c++) o[c] = x[c] * s;
  }
}

static void scale_bwd_task(void *arg, int64_t task) {
  const scale_job *j = arg;
  int64_t r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK < j->rows ? r0 + ROWS_PER_TASK
                                                                         : j->rows;
  for (int64_t r = r0; r < r1; r++) {
    const float *dout = j->dout + r * j->dim;
    if (j->dx) {
      float *dx = j->dx + r * j->dim;
      float s = j->s[r];
      for (int64_t c = 0; c < j->dim; c++) dx[c] += dout[c] * s;
    }
    if (j->ds) {
      const float *x = j->x + r * j->dim;
      double acc = 0.0;
      for (int64_t c = 0; c < j->dim; c++) acc += (double)dout[c] * x[c];
      j->ds[r] += (float)acc;
    }
  }
}

onerec_status orx_cpu_scale_rows(orx_backend *be, float *out, const float *x, const float *s,
                                 int64_t rows, int64_t dim) {
  if (rows < 0 || dim < 0)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "scale_rows: rows=%lld dim=%lld", (long long)rows,
                        (long long)dim);
  if (rows == 0 || dim == 0) return ONEREC_OK;
  if (!out || !x || !s)
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "scale_rows: NULL buffer");
  scale_job j = {out, NULL, NULL, x, s, NULL, rows, dim};
  orx_pool_run(orx_cpu_of(be)->pool, (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, scale_task, &j);
  return ONEREC_OK;
}

onerec_status orx_cpu_scale_rows_bwd(orx_backend *be, float *dx, float *ds, const float *dout,
                                     const float *x, const float *s, int64_t rows, int64_t dim) {
  if (rows < 0 || dim < 0)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "scale_rows_bwd: rows=%lld dim=%lld",
                        (long long)rows, (long long)dim);
  if (rows == 0 || dim == 0 || (!dx && !ds)) return ONEREC_OK;
  if (!dout || (dx && !s) || (ds && !x))
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "scale_rows_bwd: NULL buffer");
  scale_job j = {NULL, dx, ds, x, s, dout, rows, dim};
  orx_pool_run(orx_cpu_of(be)->pool, (rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, scale_bwd_task,
               &j);
  return ONEREC_OK;
}
