/* Constrained sampling: every draw walks the trie from the root, picking each level's code from
 * the legal children of its prefix with probabilities softmax(logit / temperature) renormalised
 * over the legal codes, narrowed by top_k and top_p. Draws are independent rows of the decoder
 * batch, each with its own generator seeded from (seed, user, draw), so a user's draws do not
 * depend on the other users of the batch or on how users are chunked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "generate_impl.h"
#include "util.h"

typedef struct pair {
  float v;
  int32_t i; /* index among the node's children */
} pair;

static double uniform(uint64_t *x) { return (double)(orx_splitmix64(x) >> 11) * 0x1.0p-53; }

static inline int before(const pair *a, const pair *b) {
  return a->v > b->v || (a->v == b->v && a->i < b->i);
}

static int by_value(const void *pa, const void *pb) {
  const pair *a = pa, *b = pb;
  return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* Moves the n best of p[0..cnt) to the front (unordered): quickselect, O(cnt) on average. */
static void select_top(pair *p, int32_t cnt, int32_t n) {
  int32_t lo = 0, hi = cnt - 1;
  while (lo < hi) {
    pair piv = p[lo + (hi - lo) / 2];
    int32_t i = lo, j = hi;
    while (i <= j) {
      while (before(&p[i], &piv)) i++;
      while (before(&piv, &p[j])) j--;
      if (i <= j) {
        pair t = p[i];
        p[i] = p[j];
        p[j] = t;
        i++;
        j--;
      }
    }
    if (n - 1 <= j) hi = j;
    else if (n - 1 >= i) lo = i;
    else return;
  }
}

onerec_status orx_sample(orx_gen *g, int64_t u0, int64_t u1, const onerec_recommend_opts *o,
                         int64_t *items, double *logp) {
  const orx_catalog_snap *t = g->t;
  const int64_t B = g->s->batch, L = g->L, K = g->K;
  const int k = o->k;
  const float inv_t = 1.0f / o->temperature;
  pair *p = g->pairs;
  int64_t rows = 0;
  for (int64_t b = 0; b < B; b++) {
    g->off[b] = rows;
    if (b < u0 || b >= u1 || t->n_items == 0) continue;
    for (int i = 0; i < k; i++, rows++) {
      g->node[0][rows] = 0;
      g->logp[0][rows] = 0.0;
      g->rng[rows] = o->seed ^ ((uint64_t)b * 0xD1B54A32D192ED03ull) ^
                     ((uint64_t)i * 0x8CB92BA72F3D8DD7ull);
      orx_splitmix64(&g->rng[rows]);
    }
  }
  g->off[B] = rows;
  for (int64_t j = 0; j < L && rows > 0; j++) {
    const float *lg = NULL;
    onerec_status st = orx_gen_step(g, rows, j, 0, rows, &lg);
    if (st) return st;
    for (int64_t r = 0; r < rows; r++) {
      const float *row = lg + r * K;
      const int32_t *codes = NULL;
      int32_t first = 0;
      int32_t n = orx_trie_children(t, g->node[0][r], &codes, &first);
      for (int32_t c = 0; c < n; c++) p[c] = (pair){row[codes[c]] * inv_t, c};
      if (o->top_k > 0 && o->top_k < n) {
        select_top(p, n, o->top_k);
        n = o->top_k;
      }
      if (o->top_p < 1.0f) qsort(p, (size_t)n, sizeof *p, by_value);
      float mx = -INFINITY;
      for (int32_t c = 0; c < n; c++) mx = p[c].v > mx ? p[c].v : mx;
      double sum = 0.0;
      for (int32_t c = 0; c < n; c++) {
        p[c].v = expf(p[c].v - mx);
        sum += p[c].v;
      }
      if (o->top_p < 1.0f) { /* the smallest best-first prefix holding top_p of the mass */
        const double want = (double)o->top_p * sum;
        double acc = 0.0;
        int32_t c = 0;
        for (; c < n; c++)
          if ((acc += p[c].v) >= want) break;
        if (c < n) n = c + 1;
        sum = acc;
      }
      double u = uniform(&g->rng[r]) * sum, acc = 0.0;
      int32_t pick = n - 1;
      for (int32_t c = 0; c < n; c++) {
        acc += p[c].v;
        if (u < acc) {
          pick = c;
          break;
        }
      }
      const int32_t ci = p[pick].i, code = codes[ci];
      g->codes[0][r * L + j] = code;
      g->node[0][r] = first + ci;
      g->logp[0][r] += (double)row[code] - (double)g->lse[r];
    }
  }
  for (int64_t b = u0; b < u1; b++)
    for (int i = 0; i < k; i++) {
      const int64_t o_ = (b - u0) * k + i, r = g->off[b] + i;
      const int ok = g->off[b + 1] - g->off[b] > i;
      items[o_] = ok ? orx_trie_leaf_item(t, g->node[0][r]) : -1;
      if (logp) logp[o_] = ok ? g->logp[0][r] : -INFINITY;
    }
  return ONEREC_OK;
}
