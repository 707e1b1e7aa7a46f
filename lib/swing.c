/* Swing item-to-item similarity and the alignment pairs built on it (formulas, caps and the
 * leakage rule in onerec/collab.h).
 *
 * Item-centric: each item's row swing(i, .) is computed whole by one thread, from the user
 * pairs of U_i, into a dense accumulator. Rows are independent and summed in a fixed order, so
 * the result does not depend on the thread count or on which thread took which row; threads
 * take rows from a shared counter (rows differ a lot in cost: popular items have many pairs). */
#include "swing.h"
#include "util.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef struct swing_cfg {
  double alpha;
  int top_n, max_items, max_users, pairs_per_item, user_pairs, holdout, threads, user_weight;
} swing_cfg;

/* Everything the row workers read, plus their output. */
typedef struct swing_job {
  int64_t m;             /* items */
  const int64_t *us_off; /* user u's capped item set: us[us_off[u] .. us_off[u+1]), ascending */
  const int32_t *us;
  const double *w;       /* user weights */
  const int64_t *iu_off; /* item i's kept users: iu[iu_off[i] .. iu_off[i+1]), ascending */
  const int32_t *iu;
  double alpha;
  int top_n;
  int32_t *row_idx; /* [m * top_n] */
  float *row_score; /* [m * top_n] */
  int32_t *row_n;   /* [m] */
  atomic_llong next;
} swing_job;

typedef struct scored {
  double s;
  int32_t j;
} scored;

typedef struct swing_worker {
  swing_job *job;
  double *acc;      /* [m], zero between rows */
  uint8_t *seen;    /* [m] */
  int32_t *touched; /* [m] */
  int32_t *isect;   /* [max set size] */
  scored *sorted;   /* [m] */
} swing_worker;

static int cmp_scored(const void *a, const void *b) {
  const scored *x = a, *y = b;
  if (x->s != y->s) return x->s > y->s ? -1 : 1;
  return (x->j > y->j) - (x->j < y->j);
}

static void swing_row(swing_worker *wk, int32_t i) {
  const swing_job *jb = wk->job;
  const int32_t *U = jb->iu + jb->iu_off[i];
  const int64_t nu = jb->iu_off[i + 1] - jb->iu_off[i];
  int64_t nt = 0;
  for (int64_t a = 0; a < nu; a++) {
    const int32_t u = U[a];
    const int32_t *Iu = jb->us + jb->us_off[u];
    const int64_t nIu = jb->us_off[u + 1] - jb->us_off[u];
    for (int64_t b = a + 1; b < nu; b++) {
      const int32_t v = U[b];
      const int32_t *Iv = jb->us + jb->us_off[v];
      const int64_t nIv = jb->us_off[v + 1] - jb->us_off[v];
      int64_t p = 0, q = 0, c = 0;
      while (p < nIu && q < nIv) {
        if (Iu[p] < Iv[q])
          p++;
        else if (Iu[p] > Iv[q])
          q++;
        else {
          wk->isect[c++] = Iu[p];
          p++;
          q++;
        }
      }
      /* c >= 1: both sets hold i */
      const double wgt = jb->w[u] * jb->w[v] / (jb->alpha + (double)c);
      for (int64_t k = 0; k < c; k++) {
        const int32_t j = wk->isect[k];
        if (j == i) continue;
        if (!wk->seen[j]) {
          wk->seen[j] = 1;
          wk->touched[nt++] = j;
        }
        wk->acc[j] += wgt;
      }
    }
  }
  for (int64_t k = 0; k < nt; k++) {
    const int32_t j = wk->touched[k];
    wk->sorted[k].s = wk->acc[j];
    wk->sorted[k].j = j;
    wk->acc[j] = 0.0;
    wk->seen[j] = 0;
  }
  qsort(wk->sorted, (size_t)nt, sizeof *wk->sorted, cmp_scored);
  const int64_t keep = nt < jb->top_n ? nt : jb->top_n;
  for (int64_t k = 0; k < keep; k++) {
    jb->row_idx[(size_t)i * (size_t)jb->top_n + (size_t)k] = wk->sorted[k].j;
    jb->row_score[(size_t)i * (size_t)jb->top_n + (size_t)k] = (float)wk->sorted[k].s;
  }
  jb->row_n[i] = (int32_t)keep;
}

static void *swing_thread(void *arg) {
  swing_worker *wk = arg;
  swing_job *jb = wk->job;
  const long long chunk = 8;
  for (;;) {
    long long start = atomic_fetch_add_explicit(&jb->next, chunk, memory_order_relaxed);
    if (start >= jb->m) break;
    long long end = start + chunk < jb->m ? start + chunk : jb->m;
    for (long long i = start; i < end; i++) swing_row(wk, (int32_t)i);
  }
  return NULL;
}


static int64_t lower_bound(const int64_t *a, int64_t n, int64_t key) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (a[mid] < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int64_t orx_collab_index(const onerec_collab *c, int64_t item_id) {
  int64_t k = lower_bound(c->item_ids, c->n_items, item_id);
  return k < c->n_items && c->item_ids[k] == item_id ? k : -1;
}

typedef struct user_rank {
  int64_t len;
  int32_t u;
} user_rank;

static int cmp_user_rank(const void *a, const void *b) {
  const user_rank *x = a, *y = b;
  if (x->len != y->len) return x->len < y->len ? -1 : 1;
  return (x->u > y->u) - (x->u < y->u);
}


ONEREC_API void onerec_collab_free(onerec_collab *c) {
  if (!c) return;
  onerec_context *ctx = c->ctx;
  orx_host_free(ctx, c->item_ids);
  orx_host_free(ctx, c->nb_off);
  orx_host_free(ctx, c->nb_idx);
  orx_host_free(ctx, c->nb_ids);
  orx_host_free(ctx, c->nb_score);
  orx_host_free(ctx, c->pair_first);
  orx_host_free(ctx, c->pair_second);
  orx_host_free(ctx, c->pair_score);
  orx_host_free(ctx, c->pair_source);
  orx_host_free(ctx, c);
}

static onerec_status read_cfg(onerec_context *ctx, const onerec_collab_opts *opts, swing_cfg *cfg) {
  onerec_collab_opts o;
  memset(&o, 0, sizeof o);
  o.sz = sizeof o;
  if (opts) {
    onerec_status s = orx_opts_read(&o, sizeof o, opts, "onerec_collab_mine");
    if (s) return s;
  }
  cfg->alpha = o.alpha == 0 ? 1.0 : o.alpha;
  cfg->top_n = o.top_n ? o.top_n : 50;
  cfg->max_items = o.max_items_per_user ? o.max_items_per_user : 200;
  cfg->max_users = o.max_users_per_item ? o.max_users_per_item : 500;
  cfg->pairs_per_item = o.pairs_per_item == 0 ? 10 : (o.pairs_per_item < 0 ? 0 : o.pairs_per_item);
  cfg->user_pairs = !o.no_user_pairs;
  cfg->holdout = o.holdout_last;
  cfg->threads = o.threads ? o.threads : onerec_context_threads(ctx);
  cfg->user_weight = !o.no_user_weight;
  if (!(cfg->alpha > 0) || !isfinite(cfg->alpha))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "onerec_collab_mine: alpha = %g (expected > 0)",
                    cfg->alpha);
  if (cfg->top_n < 1 || cfg->top_n > 100000)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_collab_mine: top_n = %d (expected 1..100000)", cfg->top_n);
  if (cfg->max_items < 1 || cfg->max_users < 2)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_collab_mine: max_items_per_user = %d, max_users_per_item = %d "
                    "(expected >= 1 and >= 2)",
                    cfg->max_items, cfg->max_users);
  if (cfg->pairs_per_item > cfg->top_n)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_collab_mine: pairs_per_item = %d exceeds top_n = %d",
                    cfg->pairs_per_item, cfg->top_n);
  if (cfg->holdout < 0)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "onerec_collab_mine: holdout_last = %d < 0",
                    cfg->holdout);
  if (cfg->threads < 1 || cfg->threads > 1024)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "onerec_collab_mine: threads = %d", cfg->threads);
  return ONEREC_OK;
}

/* Allocation helper: every buffer of a mining run goes through one list so that any failure
 * frees them all. */
#define MAX_TMP 32
typedef struct tmp_list {
  onerec_context *ctx;
  void *p[MAX_TMP];
  int n;
  int oom;
} tmp_list;

static void *tmp_alloc(tmp_list *t, size_t bytes) {
  void *p = orx_host_alloc(t->ctx, bytes ? bytes : 1);
  if (!p || t->n == MAX_TMP) {
    orx_host_free(t->ctx, p);
    t->oom = 1;
    return NULL;
  }
  t->p[t->n++] = p;
  return p;
}

static void tmp_free_all(tmp_list *t) {
  for (int k = 0; k < t->n; k++) orx_host_free(t->ctx, t->p[k]);
  t->n = 0;
}

ONEREC_API onerec_status onerec_collab_mine(onerec_context *ctx, size_t n_users,
                                            const int64_t *offsets, const int64_t *items,
                                            const onerec_collab_opts *opts, onerec_collab **out) {
  ORX_CHECK_ARG(out, "onerec_collab_mine");
  *out = NULL;
  ORX_CHECK_ARG(ctx, "onerec_collab_mine");
  ORX_CHECK_ARG(offsets, "onerec_collab_mine");
  swing_cfg cfg;
  onerec_status st = read_cfg(ctx, opts, &cfg);
  if (st) return st;
  if (n_users >= (size_t)INT32_MAX)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "onerec_collab_mine: %zu users (at most 2^31-1)",
                    n_users);
  if (offsets[0] != 0)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_collab_mine: offsets[0] = %lld (expected 0)", (long long)offsets[0]);
  for (size_t u = 0; u < n_users; u++)
    if (offsets[u + 1] < offsets[u])
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "onerec_collab_mine: offsets decrease at user %zu (%lld -> %lld)", u,
                      (long long)offsets[u], (long long)offsets[u + 1]);
  const int64_t total = offsets[n_users];
  if (total > 0) ORX_CHECK_ARG(items, "onerec_collab_mine");
  for (int64_t k = 0; k < total; k++)
    if (items[k] < 0)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "onerec_collab_mine: items[%lld] = %lld < 0",
                      (long long)k, (long long)items[k]);

  tmp_list T = {.ctx = ctx};
  onerec_collab *c = orx_host_alloc(ctx, sizeof *c);
  if (!c) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "onerec_collab_mine: out of memory");
  memset(c, 0, sizeof *c);
  c->ctx = ctx;
  const int64_t nu = (int64_t)n_users;
#define TRAIN_BEGIN(u) (offsets[u])
#define TRAIN_END(u) \
  (offsets[(u) + 1] - offsets[u] > cfg.holdout ? offsets[(u) + 1] - cfg.holdout : offsets[u])

  /* 1. distinct training items -> dense indices */
  int64_t ntrain = 0;
  for (int64_t u = 0; u < nu; u++) ntrain += TRAIN_END(u) - TRAIN_BEGIN(u);
  c->train_interactions = ntrain;
  int64_t *sorted = tmp_alloc(&T, (size_t)ntrain * sizeof(int64_t));
  int32_t *seq = tmp_alloc(&T, (size_t)ntrain * sizeof(int32_t)); /* dense, in order */
  int64_t *seq_off = tmp_alloc(&T, (size_t)(nu + 1) * sizeof(int64_t));
  if (T.oom) goto oom;
  {
    int64_t k = 0;
    for (int64_t u = 0; u < nu; u++)
      for (int64_t p = TRAIN_BEGIN(u); p < TRAIN_END(u); p++) sorted[k++] = items[p];
  }
  qsort(sorted, (size_t)ntrain, sizeof *sorted, orx_cmp_i64);
  int64_t m = 0;
  for (int64_t k = 0; k < ntrain; k++)
    if (k == 0 || sorted[k] != sorted[k - 1]) sorted[m++] = sorted[k];
  if (m >= INT32_MAX) {
    st = orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "onerec_collab_mine: %lld items (at most 2^31-1)",
                  (long long)m);
    goto fail;
  }
  c->n_items = m;
  c->item_ids = orx_host_alloc(ctx, (size_t)(m ? m : 1) * sizeof(int64_t));
  if (!c->item_ids) goto oom;
  memcpy(c->item_ids, sorted, (size_t)m * sizeof(int64_t));
  seq_off[0] = 0;
  for (int64_t u = 0; u < nu; u++) {
    int64_t k = seq_off[u];
    for (int64_t p = TRAIN_BEGIN(u); p < TRAIN_END(u); p++)
      seq[k++] = (int32_t)lower_bound(c->item_ids, m, items[p]);
    seq_off[u + 1] = k;
    if (k > seq_off[u]) c->users++;
  }

  /* 2. user item sets: the most recent max_items distinct items, ascending */
  int64_t *us_off = tmp_alloc(&T, (size_t)(nu + 1) * sizeof(int64_t));
  int32_t *us = tmp_alloc(&T, (size_t)ntrain * sizeof(int32_t));
  double *w = tmp_alloc(&T, (size_t)(nu ? nu : 1) * sizeof(double));
  int32_t *stamp = tmp_alloc(&T, (size_t)m * sizeof(int32_t));
  if (T.oom) goto oom;
  for (int64_t j = 0; j < m; j++) stamp[j] = -1;
  us_off[0] = 0;
  for (int64_t u = 0; u < nu; u++) {
    int64_t k = us_off[u];
    for (int64_t p = seq_off[u + 1] - 1; p >= seq_off[u] && k - us_off[u] < cfg.max_items; p--) {
      int32_t j = seq[p];
      if (stamp[j] == (int32_t)u) continue;
      stamp[j] = (int32_t)u;
      us[k++] = j;
    }
    qsort(us + us_off[u], (size_t)(k - us_off[u]), sizeof(int32_t), orx_cmp_i32);
    us_off[u + 1] = k;
    int64_t len = k - us_off[u];
    w[u] = cfg.user_weight && len > 0 ? 1.0 / sqrt((double)len) : 1.0;
  }

  /* 3. item -> users, capped to the users with the shortest sets */
  int64_t *iu_off = tmp_alloc(&T, (size_t)(m + 1) * sizeof(int64_t));
  int64_t *fill = tmp_alloc(&T, (size_t)(m + 1) * sizeof(int64_t));
  int32_t *iu = tmp_alloc(&T, (size_t)us_off[nu] * sizeof(int32_t));
  if (T.oom) goto oom;
  memset(fill, 0, (size_t)(m + 1) * sizeof(int64_t));
  for (int64_t k = 0; k < us_off[nu]; k++) fill[us[k]]++;
  iu_off[0] = 0;
  int64_t max_deg = 0;
  for (int64_t j = 0; j < m; j++) {
    iu_off[j + 1] = iu_off[j] + fill[j];
    if (fill[j] > max_deg) max_deg = fill[j];
    fill[j] = iu_off[j];
  }
  for (int64_t u = 0; u < nu; u++) /* ascending u within each item */
    for (int64_t k = us_off[u]; k < us_off[u + 1]; k++) iu[fill[us[k]]++] = (int32_t)u;
  user_rank *rank = tmp_alloc(&T, (size_t)max_deg * sizeof(user_rank));
  if (T.oom) goto oom;
  {
    int64_t wpos = 0; /* compact in place: kept users only */
    for (int64_t j = 0; j < m; j++) {
      int64_t b = iu_off[j], e = iu_off[j + 1], deg = e - b;
      iu_off[j] = wpos;
      if (deg > cfg.max_users) {
        for (int64_t k = 0; k < deg; k++) {
          int32_t u = iu[b + k];
          rank[k] = (user_rank){us_off[u + 1] - us_off[u], u};
        }
        qsort(rank, (size_t)deg, sizeof *rank, cmp_user_rank);
        for (int64_t k = 0; k < cfg.max_users; k++) iu[b + k] = rank[k].u;
        qsort(iu + b, (size_t)cfg.max_users, sizeof(int32_t), orx_cmp_i32);
        deg = cfg.max_users;
      }
      memmove(iu + wpos, iu + b, (size_t)deg * sizeof(int32_t));
      wpos += deg;
    }
    iu_off[m] = wpos;
  }

  /* 4. rows, in parallel */
  const int top_n = cfg.top_n;
  int64_t max_set = 0;
  for (int64_t u = 0; u < nu; u++)
    if (us_off[u + 1] - us_off[u] > max_set) max_set = us_off[u + 1] - us_off[u];
  swing_job job = {.m = m,
                   .us_off = us_off,
                   .us = us,
                   .w = w,
                   .iu_off = iu_off,
                   .iu = iu,
                   .alpha = cfg.alpha,
                   .top_n = top_n};
  atomic_init(&job.next, 0);
  job.row_idx = tmp_alloc(&T, (size_t)m * (size_t)top_n * sizeof(int32_t));
  job.row_score = tmp_alloc(&T, (size_t)m * (size_t)top_n * sizeof(float));
  job.row_n = tmp_alloc(&T, (size_t)m * sizeof(int32_t));
  int nthreads = cfg.threads;
  if (m < (int64_t)nthreads * 8) nthreads = (int)(m / 8) + 1;
  if (T.oom) goto oom;
  /* Per-worker scratch in one block per kind; if that does not fit, one worker does it all. */
  swing_worker *wk = NULL;
  for (;;) {
    const size_t nt = (size_t)nthreads, mm = (size_t)m;
    int mark = T.n;
    wk = tmp_alloc(&T, nt * sizeof *wk);
    double *acc = tmp_alloc(&T, nt * mm * sizeof(double));
    uint8_t *seen = tmp_alloc(&T, nt * mm);
    int32_t *touched = tmp_alloc(&T, nt * mm * sizeof(int32_t));
    int32_t *isect = tmp_alloc(&T, nt * (size_t)max_set * sizeof(int32_t));
    scored *srt = tmp_alloc(&T, nt * mm * sizeof(scored));
    if (!T.oom) {
      memset(acc, 0, nt * mm * sizeof(double));
      memset(seen, 0, nt * mm);
      for (size_t t = 0; t < nt; t++)
        wk[t] = (swing_worker){
            &job,        acc + t * mm, seen + t * mm, touched + t * mm, isect + t * (size_t)max_set,
            srt + t * mm};
      break;
    }
    while (T.n > mark) orx_host_free(ctx, T.p[--T.n]);
    if (nthreads == 1) goto oom;
    nthreads = 1;
    T.oom = 0;
  }
  pthread_t tid[1024];
  int started = 0;
  for (int t = 1; t < nthreads; t++) {
    if (pthread_create(&tid[started], NULL, swing_thread, &wk[t]) != 0) break;
    started++;
  }
  swing_thread(&wk[0]);
  for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);

  /* 5. neighbour CSR */
  c->nb_off = orx_host_alloc(ctx, (size_t)(m + 1) * sizeof(int64_t));
  if (!c->nb_off) goto oom;
  c->nb_off[0] = 0;
  for (int64_t i = 0; i < m; i++) c->nb_off[i + 1] = c->nb_off[i] + job.row_n[i];
  const int64_t nnb = c->nb_off[m];
  c->nb_idx = orx_host_alloc(ctx, (size_t)(nnb ? nnb : 1) * sizeof(int32_t));
  c->nb_ids = orx_host_alloc(ctx, (size_t)(nnb ? nnb : 1) * sizeof(int64_t));
  c->nb_score = orx_host_alloc(ctx, (size_t)(nnb ? nnb : 1) * sizeof(float));
  if (!c->nb_idx || !c->nb_ids || !c->nb_score) goto oom;
  for (int64_t i = 0; i < m; i++)
    for (int64_t k = 0; k < job.row_n[i]; k++) {
      int64_t o = c->nb_off[i] + k;
      c->nb_idx[o] = job.row_idx[(size_t)i * (size_t)top_n + (size_t)k];
      c->nb_ids[o] = c->item_ids[c->nb_idx[o]];
      c->nb_score[o] = job.row_score[(size_t)i * (size_t)top_n + (size_t)k];
    }

  /* 6. pairs: Swing pairs, then user pairs (count first, then fill) */
  int64_t n_swing = 0, n_user = 0;
  for (int64_t i = 0; i < m; i++) {
    int64_t k = c->nb_off[i + 1] - c->nb_off[i];
    n_swing += k < cfg.pairs_per_item ? k : cfg.pairs_per_item;
  }
  float *score_of = tmp_alloc(&T, (size_t)m * sizeof(float));
  int32_t *user_best = tmp_alloc(&T, (size_t)ntrain * sizeof(int32_t));
  float *user_best_s = tmp_alloc(&T, (size_t)ntrain * sizeof(float));
  if (T.oom) goto oom;
  memset(score_of, 0, (size_t)m * sizeof(float));
  for (int64_t k = 0; k < ntrain; k++) user_best[k] = -1;
  if (cfg.user_pairs) {
    for (int64_t u = 0; u < nu; u++)
      for (int64_t p = seq_off[u] + 1; p < seq_off[u + 1]; p++) {
        const int32_t t = seq[p];
        const int64_t b = c->nb_off[t], e = c->nb_off[t + 1];
        if (b == e) continue;
        for (int64_t k = b; k < e; k++) score_of[c->nb_idx[k]] = c->nb_score[k];
        int64_t lo = p - cfg.max_items > seq_off[u] ? p - cfg.max_items : seq_off[u];
        int32_t best = -1;
        float best_s = 0.0f;
        for (int64_t q = p - 1; q >= lo; q--) { /* most recent first: ties go to it */
          float s = score_of[seq[q]];
          if (s > best_s) {
            best_s = s;
            best = seq[q];
          }
        }
        for (int64_t k = b; k < e; k++) score_of[c->nb_idx[k]] = 0.0f;
        if (best >= 0) {
          user_best[p] = best;
          user_best_s[p] = best_s;
          n_user++;
        }
      }
  }
  const int64_t np = n_swing + n_user;
  c->pair_first = orx_host_alloc(ctx, (size_t)(np ? np : 1) * sizeof(int64_t));
  c->pair_second = orx_host_alloc(ctx, (size_t)(np ? np : 1) * sizeof(int64_t));
  c->pair_score = orx_host_alloc(ctx, (size_t)(np ? np : 1) * sizeof(float));
  c->pair_source = orx_host_alloc(ctx, (size_t)(np ? np : 1) * sizeof(int32_t));
  if (!c->pair_first || !c->pair_second || !c->pair_score || !c->pair_source) goto oom;
  int64_t o = 0;
  for (int64_t i = 0; i < m; i++) {
    int64_t k = c->nb_off[i + 1] - c->nb_off[i];
    if (k > cfg.pairs_per_item) k = cfg.pairs_per_item;
    for (int64_t r = 0; r < k; r++, o++) {
      c->pair_first[o] = c->item_ids[i];
      c->pair_second[o] = c->nb_ids[c->nb_off[i] + r];
      c->pair_score[o] = c->nb_score[c->nb_off[i] + r];
      c->pair_source[o] = ONEREC_PAIR_SWING;
    }
  }
  for (int64_t p = 0; p < ntrain; p++)
    if (user_best[p] >= 0) {
      c->pair_first[o] = c->item_ids[seq[p]];
      c->pair_second[o] = c->item_ids[user_best[p]];
      c->pair_score[o] = user_best_s[p];
      c->pair_source[o] = ONEREC_PAIR_USER;
      o++;
    }
  c->n_pairs = np;
  tmp_free_all(&T);
  *out = c;
  return ONEREC_OK;
#undef TRAIN_BEGIN
#undef TRAIN_END
oom:
  st = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "onerec_collab_mine: out of memory");
fail:
  tmp_free_all(&T);
  onerec_collab_free(c);
  return st;
}

ONEREC_API onerec_status onerec_collab_items(const onerec_collab *c, const int64_t **ids,
                                             int64_t *n) {
  ORX_CHECK_ARG(c, "onerec_collab_items");
  ORX_CHECK_ARG(ids, "onerec_collab_items");
  ORX_CHECK_ARG(n, "onerec_collab_items");
  *ids = c->item_ids;
  *n = c->n_items;
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_collab_neighbors(const onerec_collab *c, int64_t item_id,
                                                 const int64_t **neighbors, const float **scores,
                                                 int32_t *count) {
  ORX_CHECK_ARG(c, "onerec_collab_neighbors");
  ORX_CHECK_ARG(count, "onerec_collab_neighbors");
  *count = 0;
  int64_t i = orx_collab_index(c, item_id);
  if (i < 0)
    return orx_fail(ONEREC_ERR_NOT_FOUND,
                    "onerec_collab_neighbors: item %lld has no training interaction",
                    (long long)item_id);
  if (neighbors) *neighbors = c->nb_ids + c->nb_off[i];
  if (scores) *scores = c->nb_score + c->nb_off[i];
  *count = (int32_t)(c->nb_off[i + 1] - c->nb_off[i]);
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_collab_pairs(const onerec_collab *c, int64_t *n,
                                             const int64_t **first, const int64_t **second,
                                             const float **score, const int32_t **source) {
  ORX_CHECK_ARG(c, "onerec_collab_pairs");
  ORX_CHECK_ARG(n, "onerec_collab_pairs");
  *n = c->n_pairs;
  if (first) *first = c->pair_first;
  if (second) *second = c->pair_second;
  if (score) *score = c->pair_score;
  if (source) *source = c->pair_source;
  return ONEREC_OK;
}
