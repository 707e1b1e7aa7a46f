/* Constrained beam search over the catalogue trie. Each step runs the decoder once on every
 * live beam of every user (the rows of a user share its cross-attention keys and values), then
 * keeps each user's best `beam` extensions among the legal ones: a bounded min-heap over the
 * candidates, so a candidate that cannot enter costs one comparison and nothing is sorted but
 * the survivors. Only legal codes are ever looked at: the trie gives each beam's children as a
 * contiguous array of codes. With several models (an ensemble) every model decodes the same
 * rows and a candidate's score is the mean of their log-probabilities; the first model's
 * generation state holds the beams, and the others read its prefixes, parents and user
 * offsets, so the search itself exists once. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "generate_impl.h"

typedef struct cand {
  double score;
  int64_t key; /* parent row x K + code: the tie-break, lower first */
  int32_t child;
} cand;

/* a ranks below b */
static inline int worse(const cand *a, const cand *b) {
  return a->score < b->score || (a->score == b->score && a->key > b->key);
}

static void sift_down(cand *h, int n, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, w = i;
    if (l < n && worse(&h[l], &h[w])) w = l;
    if (r < n && worse(&h[r], &h[w])) w = r;
    if (w == i) return;
    cand t = h[i];
    h[i] = h[w];
    h[w] = t;
    i = w;
  }
}

static void sift_up(cand *h, int i) {
  while (i > 0) {
    int p = (i - 1) / 2;
    if (!worse(&h[i], &h[p])) return;
    cand t = h[i];
    h[i] = h[p];
    h[p] = t;
    i = p;
  }
}

static int best_first(const void *pa, const void *pb) {
  const cand *a = pa, *b = pb;
  if (worse(a, b)) return 1;
  if (worse(b, a)) return -1;
  return 0;
}

static void swap_bufs(orx_gen *g) {
  int32_t *c = g->codes[0], *n = g->node[0];
  double *l = g->logp[0];
  g->codes[0] = g->codes[1];
  g->node[0] = g->node[1];
  g->logp[0] = g->logp[1];
  g->codes[1] = c;
  g->node[1] = n;
  g->logp[1] = l;
}

/* The other models decode the rows the first one's beams hold. */
static void share_beams(orx_gen *const *gens, int n) {
  for (int i = 1; i < n; i++) {
    gens[i]->codes[0] = gens[0]->codes[0];
    gens[i]->parent = gens[0]->parent;
    gens[i]->off = gens[0]->off;
  }
}

onerec_status orx_beam_search(orx_gen *const *gens, int n, int64_t u0, int64_t u1, int beam,
                              int k, int64_t *items, double *logp) {
  orx_gen *g = gens[0];
  const orx_catalog_snap *t = g->t;
  const int64_t B = g->s->batch, L = g->L, K = g->K;
  const double inv_n = 1.0 / n;
  cand heap[ONEREC_MAX_BEAM];
  const float *lg[ONEREC_MAX_ENSEMBLE];
  int64_t rows = 0, rows_before = 0;
  for (int64_t b = 0; b < B; b++) {
    g->off[b] = rows;
    if (b >= u0 && b < u1 && t->n_items > 0) {
      g->node[0][rows] = 0;
      g->logp[0][rows] = 0.0;
      rows++;
    }
  }
  g->off[B] = rows;
  for (int64_t j = 0; j < L && rows > 0; j++) {
    share_beams(gens, n);
    for (int i = 0; i < n; i++) {
      onerec_status st = orx_gen_step(gens[i], rows, j, 1, rows_before, &lg[i]);
      if (st) return st;
    }
    const int cap = j == L - 1 ? k : beam; /* the last level keeps only what is returned */
    int64_t nrows = 0;
    for (int64_t b = 0; b < B; b++) {
      const int64_t r0 = g->off[b], r1 = g->off[b + 1];
      g->off[b] = nrows;
      int cnt_heap = 0;
      for (int64_t r = r0; r < r1; r++) {
        const int32_t *codes = NULL;
        int32_t first = 0;
        const int32_t cnt = orx_trie_children(t, g->node[0][r], &codes, &first);
        /* log p(code | prefix), averaged over the models, is mean(logit) - mean(lse): the
         * normalisers once per row, the logits per code (one model: inv_n = 1 is exact) */
        double lse = 0.0;
        for (int i = 0; i < n; i++) lse += (double)gens[i]->lse[r];
        const double base = g->logp[0][r] - lse * inv_n;
        for (int32_t c = 0; c < cnt; c++) {
          const int64_t at = r * K + codes[c];
          double logit = 0.0;
          for (int i = 0; i < n; i++) logit += (double)lg[i][at];
          cand x = {base + logit * inv_n, at, first + c};
          if (cnt_heap < cap) {
            heap[cnt_heap] = x;
            sift_up(heap, cnt_heap++);
          } else if (worse(&heap[0], &x)) {
            heap[0] = x;
            sift_down(heap, cnt_heap, 0);
          }
        }
      }
      qsort(heap, (size_t)cnt_heap, sizeof *heap, best_first);
      for (int i = 0; i < cnt_heap; i++, nrows++) {
        const int64_t parent = heap[i].key / K;
        int32_t *dst = g->codes[1] + nrows * L;
        memcpy(dst, g->codes[0] + parent * L, (size_t)j * sizeof(int32_t));
        dst[j] = (int32_t)(heap[i].key % K);
        g->node[1][nrows] = heap[i].child;
        g->parent[nrows] = (int32_t)parent;
        g->logp[1][nrows] = heap[i].score;
      }
    }
    g->off[B] = nrows;
    rows_before = rows;
    rows = nrows;
    swap_bufs(g);
  }
  for (int64_t b = u0; b < u1; b++) {
    const int64_t r0 = g->off[b], cnt = g->off[b + 1] - r0;
    for (int i = 0; i < k; i++) {
      const int64_t o = (b - u0) * k + i;
      items[o] = i < cnt ? orx_trie_leaf_item(t, g->node[0][r0 + i]) : -1;
      if (logp) logp[o] = i < cnt ? g->logp[0][r0 + i] : -INFINITY;
    }
  }
  return ONEREC_OK;
}
