/* Full-ranking Recall@K and NDCG@K with one target per user (leave-one-out): a hit at 0-based
 * rank r < K counts 1 towards Recall@K and 1 / log2(r + 2) towards NDCG@K. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "onerec/data.h"

#define MAX_KS 16

struct onerec_metrics {
  int32_t n_ks;
  int32_t ks[MAX_KS];
  int64_t users;
  int64_t hits[MAX_KS];
  double ndcg[MAX_KS];
};

onerec_status onerec_metrics_create(const int32_t *ks, int32_t n_ks, onerec_metrics **out) {
  const char *fn = "onerec_metrics_create";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(ks, fn);
  if (n_ks < 1 || n_ks > MAX_KS)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: %d cut-offs (expected 1..%d)", fn,
                    (int)n_ks, MAX_KS);
  for (int32_t i = 0; i < n_ks; i++) {
    if (ks[i] < 1 || ks[i] > (1 << 30))
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: cut-off %d outside 1..2^30", fn,
                      (int)ks[i]);
    for (int32_t j = 0; j < i; j++)
      if (ks[j] == ks[i])
        return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: cut-off %d given twice", fn,
                        (int)ks[i]);
  }
  onerec_metrics *m = calloc(1, sizeof *m);
  if (!m) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  m->n_ks = n_ks;
  memcpy(m->ks, ks, (size_t)n_ks * sizeof *ks);
  *out = m;
  return ONEREC_OK;
}

void onerec_metrics_free(onerec_metrics *m) { free(m); }

onerec_status onerec_metrics_reset(onerec_metrics *m) {
  ORX_CHECK_ARG(m, "onerec_metrics_reset");
  m->users = 0;
  memset(m->hits, 0, sizeof m->hits);
  memset(m->ndcg, 0, sizeof m->ndcg);
  return ONEREC_OK;
}

/* Counts one user whose target sits at 0-based rank `rank` (-1: not ranked). */
static void add_rank(onerec_metrics *m, int64_t rank) {
  m->users++;
  if (rank < 0) return;
  const double gain = 1.0 / log2((double)rank + 2.0);
  for (int32_t i = 0; i < m->n_ks; i++)
    if (rank < m->ks[i]) {
      m->hits[i]++;
      m->ndcg[i] += gain;
    }
}

onerec_status onerec_metrics_add_ranked(onerec_metrics *m, const int64_t *ranked, int64_t n,
                                        int64_t target) {
  const char *fn = "onerec_metrics_add_ranked";
  ORX_CHECK_ARG(m, fn);
  if (n < 0) return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: n = %lld < 0", fn, (long long)n);
  if (n > 0) ORX_CHECK_ARG(ranked, fn);
  int64_t rank = -1;
  for (int64_t i = 0; i < n && rank < 0; i++)
    if (ranked[i] == target) rank = i;
  add_rank(m, rank);
  return ONEREC_OK;
}

onerec_status onerec_metrics_add_scores(onerec_metrics *m, const float *scores, int64_t n_users,
                                        int64_t n_items, const int64_t *targets,
                                        const int64_t *exclude_offsets,
                                        const int64_t *exclude_items) {
  const char *fn = "onerec_metrics_add_scores";
  ORX_CHECK_ARG(m, fn);
  if (n_users < 0 || n_items < 1)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: %lld users, %lld items", fn,
                    (long long)n_users, (long long)n_items);
  if (n_users == 0) return ONEREC_OK;
  ORX_CHECK_ARG(scores, fn);
  ORX_CHECK_ARG(targets, fn);
  if (!exclude_offsets != !exclude_items)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: give both exclude_offsets and exclude_items, or neither", fn);
  /* validate everything first, so a failure adds nothing */
  for (int64_t u = 0; u < n_users; u++) {
    if (targets[u] < 0 || targets[u] >= n_items)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: user %lld: target %lld outside 0..%lld",
                      fn, (long long)u, (long long)targets[u], (long long)n_items - 1);
    const float *s = scores + u * n_items;
    for (int64_t j = 0; j < n_items; j++)
      if (isnan(s[j]))
        return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: user %lld: score of item %lld is NaN",
                        fn, (long long)u, (long long)j);
    if (exclude_offsets) {
      if (exclude_offsets[u + 1] < exclude_offsets[u] || (u == 0 && exclude_offsets[0] < 0))
        return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: exclude_offsets go back at user %lld",
                        fn, (long long)u);
      for (int64_t k = exclude_offsets[u]; k < exclude_offsets[u + 1]; k++)
        if (exclude_items[k] < 0 || exclude_items[k] >= n_items)
          return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                          "%s: user %lld: excluded item %lld outside 0..%lld", fn, (long long)u,
                          (long long)exclude_items[k], (long long)n_items - 1);
    }
  }
  uint8_t *mark = NULL;
  if (exclude_offsets) {
    mark = calloc((size_t)n_items, 1);
    if (!mark) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  }
  for (int64_t u = 0; u < n_users; u++) {
    const float *s = scores + u * n_items;
    const int64_t t = targets[u];
    const float st = s[t];
    int64_t rank = 0;
    if (mark) {
      for (int64_t k = exclude_offsets[u]; k < exclude_offsets[u + 1]; k++)
        mark[exclude_items[k]] = 1;
      mark[t] = 0; /* the target is never excluded */
      for (int64_t j = 0; j < n_items; j++)
        rank += !mark[j] && (s[j] > st || (s[j] == st && j < t));
      for (int64_t k = exclude_offsets[u]; k < exclude_offsets[u + 1]; k++)
        mark[exclude_items[k]] = 0;
    } else {
      for (int64_t j = 0; j < n_items; j++) rank += s[j] > st || (s[j] == st && j < t);
    }
    add_rank(m, rank);
  }
  free(mark);
  return ONEREC_OK;
}

onerec_status onerec_metrics_merge(onerec_metrics *dst, const onerec_metrics *src) {
  const char *fn = "onerec_metrics_merge";
  ORX_CHECK_ARG(dst, fn);
  ORX_CHECK_ARG(src, fn);
  if (dst->n_ks != src->n_ks || memcmp(dst->ks, src->ks, (size_t)dst->n_ks * sizeof *dst->ks))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: the accumulators have different cut-offs",
                    fn);
  dst->users += src->users;
  for (int32_t i = 0; i < dst->n_ks; i++) {
    dst->hits[i] += src->hits[i];
    dst->ndcg[i] += src->ndcg[i];
  }
  return ONEREC_OK;
}

onerec_status onerec_metrics_get(const onerec_metrics *m, int32_t k, double *recall, double *ndcg,
                                 int64_t *users) {
  ORX_CHECK_ARG(m, "onerec_metrics_get");
  for (int32_t i = 0; i < m->n_ks; i++)
    if (m->ks[i] == k) {
      const double n = m->users ? (double)m->users : 1.0;
      if (recall) *recall = (double)m->hits[i] / n;
      if (ndcg) *ndcg = m->ndcg[i] / n;
      if (users) *users = m->users;
      return ONEREC_OK;
    }
  return orx_fail(ONEREC_ERR_NOT_FOUND, "onerec_metrics_get: %d is not a cut-off", (int)k);
}
