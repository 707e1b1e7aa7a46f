/* Softmax cross-entropy of the CPU backend: loss per row and, when asked, dlogits in the same
 * pass over the row (plus one pass for the uniform part of label smoothing). Rows are
 * independent, so any split over the pool gives the same bits. */
#include <string.h>

#include "cpu_impl.h"

typedef struct ce_job {
  const orx_simd *simd;
  float *loss, *dlogits;
  const float *logits;
  const int32_t *targets;
  int64_t vocab;
  int32_t ignore;
  float grad_scale, smoothing;
} ce_job;

/* mean of a row in double: the smoothed loss subtracts it from the target's logit, and with
 * logits near 1e4 a float sum would lose the few units the loss is made of */
static double row_mean(const float *x, int64_t v) {
  double s = 0.0;
  for (int64_t i = 0; i < v; i++) s += x[i];
  return s / (double)v;
}

static void ce_range(void *arg, int64_t b, int64_t e) {
  const ce_job *j = arg;
  const int64_t v = j->vocab;
  for (int64_t r = b; r < e; r++) {
    const float *x = j->logits + r * v;
    float *d = j->dlogits ? j->dlogits + r * v : NULL;
    int32_t t = j->targets[r];
    float l = 0.0f;
    if (t == j->ignore) {
      if (d) memset(d, 0, (size_t)v * sizeof *d);
    } else {
      const float sm = j->smoothing, gs = j->grad_scale;
      /* read first: dlogits may overwrite the logits in place */
      const float xt = x[t];
      const double gap = sm > 0.0f ? (double)xt - row_mean(x, v) : 0.0; /* x_t - mean(x) */
      float m, ls = d ? j->simd->softmax(d, x, v, gs, &m) : j->simd->logsumexp(x, v, &m);
      if (d) {
        if (sm > 0.0f) {
          const float u = gs * sm / (float)v;
          for (int64_t i = 0; i < v; i++) d[i] -= u;
        }
        d[t] -= gs * (1.0f - sm);
      }
      /* lse - (1 - sm) x_t - sm mean = (m - x_t) + ls + sm (x_t - mean) */
      l = (m - xt) + ls;
      if (sm > 0.0f) l += (float)(sm * gap);
    }
    if (j->loss) j->loss[r] = l;
  }
}

onerec_status orx_cpu_cross_entropy(orx_backend *be, float *loss, float *dlogits,
                                    const float *logits, const int32_t *targets, int64_t rows,
                                    int64_t vocab, int32_t ignore_index, float grad_scale,
                                    float smoothing) {
  if (rows < 0 || vocab < 1 || vocab > INT32_MAX)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "cross_entropy: rows=%lld vocab=%lld",
                        (long long)rows, (long long)vocab);
  if (!(smoothing >= 0.0f && smoothing < 1.0f))
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "cross_entropy: smoothing %g not in [0, 1)",
                        (double)smoothing);
  if (rows == 0) return ONEREC_OK;
  if (!logits || !targets || (!loss && !dlogits))
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "cross_entropy: NULL buffer");
  for (int64_t r = 0; r < rows; r++) {
    int32_t t = targets[r];
    if (t != ignore_index && (t < 0 || t >= vocab))
      return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT,
                          "cross_entropy: targets[%lld] = %d outside [0, %lld) and not the "
                          "ignore index %d",
                          (long long)r, (int)t, (long long)vocab, (int)ignore_index);
  }
  orx_cpu *cpu = orx_cpu_of(be);
  ce_job j = {cpu->simd, loss,         dlogits,    logits,   targets,
              vocab,     ignore_index, grad_scale, smoothing};
  orx_cpu_parallel(cpu, rows, 8 * vocab, ce_range, &j);
  return ONEREC_OK;
}
