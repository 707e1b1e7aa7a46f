/* Tokenizer metrics (the OneRec report's Table 11): reconstruction loss, codebook utilisation
 * and code entropy per level, collisions of full semantic IDs. */
#include <math.h>
#include <string.h>

#include "tokenizer_impl.h"

void orx_tok_sort_codes(const int32_t *codes, int64_t n, int levels, int k, int32_t *order,
                        int32_t *tmp, int64_t *count) {
  for (int64_t i = 0; i < n; i++) order[i] = (int32_t)i;
  /* least significant level first; each pass is a stable counting sort */
  for (int l = levels - 1; l >= 0; l--) {
    memset(count, 0, (size_t)(k + 1) * sizeof *count);
    for (int64_t i = 0; i < n; i++) count[codes[i * levels + l] + 1]++;
    for (int j = 0; j < k; j++) count[j + 1] += count[j];
    for (int64_t i = 0; i < n; i++) {
      int32_t it = order[i];
      tmp[count[codes[(int64_t)it * levels + l]]++] = it;
    }
    memcpy(order, tmp, (size_t)n * sizeof *order);
  }
}

ONEREC_API onerec_status onerec_tokenizer_metrics_get(onerec_tokenizer *t, const float *x,
                                                      const int32_t *codes, int64_t n,
                                                      onerec_tokenizer_metrics *m) {
  static const char fn[] = "onerec_tokenizer_metrics_get";
  ORX_CHECK_ARG(t, fn);
  ORX_CHECK_ARG(codes, fn);
  ORX_CHECK_ARG(m, fn);
  if (n < 1 || n > INT32_MAX)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: n = %lld outside 1..%d", fn, (long long)n,
                    INT32_MAX);
  size_t msz;
  memcpy(&msz, m, sizeof msz);
  if (msz < sizeof(size_t))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: m->sz is %zu; declare it with ONEREC_OPTS", fn, msz);
  onerec_status s = orx_tok_check_codes(fn, t, codes, n);
  if (!s && x) s = orx_tok_check_finite(fn, x, n, t->dim);
  if (s) return s;
  onerec_context *ctx = t->ctx;
  onerec_tokenizer_metrics r;
  memset(&r, 0, sizeof r);
  r.sz = sizeof r;
  r.items = n;
  r.levels = t->levels;
  r.reconstruction_loss = NAN;
  if (x) {
    double xs = 0, rs = 0;
    s = orx_tok_residual_sq(t, x, codes, n, &xs, &rs);
    if (s) return s;
    r.reconstruction_loss = xs > 0 ? rs / xs : NAN;
  }
  int64_t *count = orx_host_alloc(ctx, (size_t)(t->k + 1) * sizeof *count);
  int32_t *order = orx_host_alloc(ctx, (size_t)n * sizeof *order);
  int32_t *tmp = orx_host_alloc(ctx, (size_t)n * sizeof *tmp);
  if (!count || !order || !tmp) {
    orx_host_free(ctx, count);
    orx_host_free(ctx, order);
    orx_host_free(ctx, tmp);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld items", fn,
                    (long long)n);
  }
  for (int l = 0; l < t->levels; l++) {
    memset(count, 0, (size_t)t->k * sizeof *count);
    for (int64_t i = 0; i < n; i++) count[codes[i * t->levels + l]]++;
    int64_t used = 0;
    double h = 0;
    for (int j = 0; j < t->k; j++) {
      if (!count[j]) continue;
      used++;
      double p = (double)count[j] / (double)n;
      h -= p * log2(p);
    }
    r.utilization[l] = (double)used / (double)t->k;
    r.entropy_bits[l] = h;
    r.entropy_nats[l] = h * M_LN2;
  }
  orx_tok_sort_codes(codes, n, t->levels, t->k, order, tmp, count);
  r.largest_collision_group = 1;
  size_t row = (size_t)t->levels * sizeof(int32_t);
  for (int64_t a = 0; a < n;) {
    int64_t b = a + 1;
    while (b < n && !memcmp(codes + (int64_t)order[a] * t->levels,
                            codes + (int64_t)order[b] * t->levels, row))
      b++;
    r.distinct_ids++;
    if (b - a > 1) r.colliding_items += b - a;
    if (b - a > r.largest_collision_group) r.largest_collision_group = b - a;
    a = b;
  }
  r.collision_rate = (double)r.colliding_items / (double)n;
  orx_host_free(ctx, count);
  orx_host_free(ctx, order);
  orx_host_free(ctx, tmp);
  return orx_tok_out(m, &r, sizeof r, "onerec_tokenizer_metrics");
}
