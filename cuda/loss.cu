/* Softmax cross-entropy per row, one block per row, against the label-smoothed target
 * q = (1 - e) onehot + e / V: loss = logsumexp(logits) - (1 - e) logits[target] - e mean(logits);
 * dlogits (written, not accumulated) = (softmax - q) * grad_scale. Rows whose target is
 * ignore_index get loss 0 and a zero gradient row. A target outside [0, vocab) marks the row as
 * bad; the op then fails naming the first such row. */
#include "kernel_util.h"

__global__ void k_cross_entropy(float *loss, float *dlogits, const float *logits,
                                const int32_t *targets, int64_t vocab, int32_t ignore_index,
                                float grad_scale, float smoothing, unsigned long long *bad) {
  __shared__ float red[32];
  int64_t r = blockIdx.x;
  const float *x = logits + r * vocab;
  float *d = dlogits ? dlogits + r * vocab : NULL;
  int32_t t = targets[r];
  int skip = t == ignore_index;
  if (!skip && (t < 0 || t >= vocab)) {
    if (threadIdx.x == 0) orx_mark_bad(bad, r);
    skip = 1;
  }
  if (skip) { /* uniform across the block: no barrier is skipped by part of it */
    if (threadIdx.x == 0) loss[r] = 0.0f;
    if (d)
      for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) d[j] = 0.0f;
    return;
  }
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) m = orx_nanmax(m, x[j]);
  m = orx_block_max(m, red);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) sum += expf(x[j] - m);
  sum = orx_block_sum(sum, red);
  float xt = x[t], gap = 0.0f; /* gap = x_t - mean(x) */
  const float e = smoothing;
  if (e > 0.0f) { /* uniform across the block, so every thread meets the barriers */
    float part = 0.0f; /* sum of x - m: small terms, no cancellation at logits near 1e4 */
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) part += x[j] - m;
    gap = (xt - m) - orx_block_sum(part, red) / (float)vocab;
  }
  __syncthreads(); /* every thread has read x before d (which may be x) is written */
  if (threadIdx.x == 0) loss[r] = (m - xt) + logf(sum) + e * gap; /* lse - x_t + e gap */
  if (d) {
    float inv = 1.0f / sum, u = e / (float)vocab;
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
      d[j] = (expf(x[j] - m) * inv - u - (j == t ? 1.0f - e : 0.0f)) * grad_scale;
  }
}

onerec_status orx_cuda_cross_entropy(orx_backend *be, float *loss, float *dlogits,
                                     const float *logits, const int32_t *targets, int64_t rows,
                                     int64_t vocab, int32_t ignore_index, float grad_scale,
                                     float smoothing) {
  const char *op = "cross_entropy";
  if (rows < 0 || vocab < 1 || rows > INT32_MAX || vocab > INT32_MAX)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "%s: rows=%lld vocab=%lld", op, (long long)rows,
                         (long long)vocab);
  if (!(smoothing >= 0.0f && smoothing < 1.0f))
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: smoothing %g not in [0, 1)", op,
                         (double)smoothing);
  if (rows == 0) return ONEREC_OK;
  if (!loss || !logits || !targets)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: NULL buffer", op);
  onerec_status s;
  if ((s = orx_cuda_enter(be, op)) || (s = orx_cuda_bad_reset(be, op))) return s;
  orx_cuda *cu = orx_cuda_of(be);
  k_cross_entropy<<<(unsigned)rows, orx_cuda_row_threads(vocab), 0, cu->stream>>>(
      loss, dlogits, logits, targets, vocab, ignore_index, grad_scale, smoothing, cu->bad);
  if ((s = orx_cuda_launched(be, op))) return s;
  int64_t pos;
  if ((s = orx_cuda_bad_read(be, op, &pos)) || pos < 0) return s;
  int32_t t = 0;
  if ((s = orx_cuda_check(be, cudaMemcpy(&t, targets + pos, sizeof t, cudaMemcpyDeviceToHost), op,
                          "cudaMemcpy")))
    return s;
  return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT,
                       "%s: targets[%lld] = %d outside [0, %lld) and not ignore_index %d", op,
                       (long long)pos, (int)t, (long long)vocab, (int)ignore_index);
}
