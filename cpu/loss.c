/* Softmax cross-entropy of the CPU backend: loss per row and, when asked, dlogits in the same
 * pass over the row. Rows are independent, so any split over the pool gives the same bits. */
#include <string.h>

#include "cpu_impl.h"

typedef struct ce_job {
  const orx_simd *simd;
  float *loss, *dlogits;
  const float *logits;
  const int32_t *targets;
  int64_t vocab;
  int32_t ignore;
  float grad_scale;
} ce_job;

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
      float xt = x[t], m; /* read first: dlogits may overwrite the logits in place */
      float ls = d ? j->simd->softmax(d, x, v, j->grad_scale, &m) : j->simd->logsumexp(x, v, &m);
      if (d) d[t] -= j->grad_scale;
      l = (m - xt) + ls;
    }
    if (j->loss) j->loss[r] = l;
  }
}

onerec_status orx_cpu_cross_entropy(orx_backend *be, float *loss, float *dlogits,
                                    const float *logits, const int32_t *targets, int64_t rows,
                                    int64_t vocab, int32_t ignore_index, float grad_scale) {
  if (rows < 0 || vocab < 1 || vocab > INT32_MAX)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "cross_entropy: rows=%lld vocab=%lld",
                        (long long)rows, (long long)vocab);
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
  ce_job j = {cpu->simd, loss, dlogits, logits, targets, vocab, ignore_index, grad_scale};
  orx_cpu_parallel(cpu, rows, 8 * vocab, ce_range, &j);
  return ONEREC_OK;
}
