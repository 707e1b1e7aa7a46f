/* Single-level k-means (Lloyd) over device rows: k-means++ or random initialisation, then
 * rounds of assignment and centroid update, re-seeding empty clusters at the farthest points,
 * optionally with a balanced (capacity-constrained) assignment. All heavy math goes through
 * the backend's op table; the host keeps per-row distances and per-cluster counts (and, when
 * balancing, each row's candidate centroids). */
#include "kmeans.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void *orx_dev_alloc(onerec_context *ctx, size_t bytes) {
  return ctx->be.ops->alloc(&ctx->be, bytes ? bytes : 1);
}

void orx_dev_free(onerec_context *ctx, void *p) {
  if (p) ctx->be.ops->free(&ctx->be, p);
}

onerec_status orx_dev_copy(onerec_context *ctx, void *dst, const void *src, size_t bytes,
                           orx_copy_kind kind) {
  if (!bytes) return ONEREC_OK;
  return ctx->be.ops->copy(&ctx->be, dst, src, bytes, kind);
}

/* Host and device scratch of one fit. */
typedef struct km_work {
  float *h_dist;     /* rows */
  int64_t *h_counts; /* k */
  int64_t *d_counts; /* k */
  int64_t *h_pick;   /* scratch row indices (rows) */
  float *h_mind;     /* k-means++: init_sample */
  float *d_mind;
  float *d_sample;   /* k-means++ candidates when they are not all rows */
  /* balanced assignment */
  int64_t ncand;
  int32_t *d_cand, *h_cand; /* rows x ncand */
  float *d_cscore, *h_cscore;
  float *h_xnorm;    /* rows */
  int32_t *h_idx;    /* rows */
  int64_t *h_load;   /* k */
  void *h_order;     /* rows (regret, row) pairs */
} km_work;

static void work_free(onerec_context *ctx, km_work *w) {
  orx_host_free(ctx, w->h_dist);
  orx_host_free(ctx, w->h_counts);
  orx_host_free(ctx, w->h_pick);
  orx_host_free(ctx, w->h_mind);
  orx_dev_free(ctx, w->d_counts);
  orx_dev_free(ctx, w->d_mind);
  orx_dev_free(ctx, w->d_sample);
  orx_dev_free(ctx, w->d_cand);
  orx_dev_free(ctx, w->d_cscore);
  orx_host_free(ctx, w->h_cand);
  orx_host_free(ctx, w->h_cscore);
  orx_host_free(ctx, w->h_xnorm);
  orx_host_free(ctx, w->h_idx);
  orx_host_free(ctx, w->h_load);
  orx_host_free(ctx, w->h_order);
}

/* The first m entries of a seeded shuffle of 0..rows-1 (partial Fisher-Yates), into pick. */
static void draw_distinct(orx_rng *rng, int64_t *pick, int64_t rows, int64_t m) {
  for (int64_t i = 0; i < rows; i++) pick[i] = i;
  for (int64_t i = 0; i < m; i++) {
    int64_t j = i + orx_rng_below(rng, rows - i);
    int64_t t = pick[i];
    pick[i] = pick[j];
    pick[j] = t;
  }
}

static onerec_status copy_row(onerec_context *ctx, float *dst, const float *src, int64_t dim) {
  return orx_dev_copy(ctx, dst, src, (size_t)dim * sizeof(float), ORX_COPY_D2D);
}

static onerec_status init_random(onerec_context *ctx, const float *x, int64_t rows, int64_t dim,
                                 const orx_kmeans_cfg *cfg, orx_rng *rng, km_work *w, float *c) {
  draw_distinct(rng, w->h_pick, rows, cfg->k);
  onerec_status s = ONEREC_OK;
  for (int64_t j = 0; !s && j < cfg->k; j++)
    s = copy_row(ctx, c + j * dim, x + w->h_pick[j] * dim, dim);
  return s;
}

static int cmp_f64(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Draws nb distinct candidates with probability proportional to mind (total = its sum) into
 * pick: the thresholds are sorted so one walk over the cumulative sums serves all of them. A
 * threshold that lands on a candidate already drawn takes the next unpicked one with weight;
 * when no weight is left (every candidate sits on a centroid) the draws are uniform. */
static void draw_weighted(orx_rng *rng, const float *mind, int64_t m, double total, int64_t nb,
                          double *u, int64_t *pick, uint8_t *taken) {
  if (!(total > 0)) {
    for (int64_t i = 0; i < nb; i++) pick[i] = orx_rng_below(rng, m);
    return;
  }
  for (int64_t i = 0; i < nb; i++) u[i] = orx_rng_unit(rng) * total;
  qsort(u, (size_t)nb, sizeof *u, cmp_f64);
  double acc = 0;
  int64_t last = -1, i = 0;
  for (int64_t r = 0; r < m && i < nb; r++) {
    if (mind[r] <= 0) continue;
    last = r;
    acc += (double)mind[r];
    while (i < nb && acc > u[i]) pick[i++] = r;
  }
  for (; i < nb; i++) pick[i] = last; /* rounding left the last thresholds unreached */
  for (i = 0; i < nb; i++) {
    int64_t r = pick[i];
    if (taken[r]) { /* the next candidate not drawn yet, one with weight if there is one */
      int64_t q = r, any = -1;
      for (int64_t t = 0; t < m; t++) {
        q = q + 1 < m ? q + 1 : 0;
        if (taken[q]) continue;
        if (any < 0) any = q;
        if (mind[q] > 0) break;
      }
      r = !taken[q] && mind[q] > 0 ? q : any >= 0 ? any : r;
    }
    pick[i] = r;
    taken[r] = 1;
  }
  for (i = 0; i < nb; i++) taken[pick[i]] = 0;
}

/* k-means++ (Arthur & Vassilvitskii): each next centroid is a candidate drawn with probability
 * proportional to its squared distance to the nearest centroid so far. The candidates are a
 * seeded sample of init_sample rows. With many centroids the k sequential passes over the
 * candidates (each bound by memory bandwidth) would cost as much as several Lloyd iterations,
 * so centroids are drawn in batches of k / 64 (1..128) from the same distribution, and one
 * matrix multiply updates the distances for the whole batch: at most 64 passes over the
 * candidates (k / 128 beyond 8192 codes). Batches stay far smaller than k, so two draws rarely
 * land in one spot; below 128 codes it is exact k-means++. */
static onerec_status init_plusplus(onerec_context *ctx, const float *x, int64_t rows,
                                   int64_t dim, const orx_kmeans_cfg *cfg, orx_rng *rng,
                                   km_work *w, float *c) {
  orx_backend *be = &ctx->be;
  int64_t m = cfg->init_sample < rows ? cfg->init_sample : rows, k = cfg->k;
  if (m < k) m = k;
  int64_t batch = k / 64 < 1 ? 1 : k / 64 > 128 ? 128 : k / 64;
  const float *cand = x;
  onerec_status s = ONEREC_OK;
  if (m < rows) {
    draw_distinct(rng, w->h_pick, rows, m);
    qsort(w->h_pick, (size_t)m, sizeof *w->h_pick, orx_cmp_i64); /* memory order */
    w->d_sample = orx_dev_alloc(ctx, (size_t)(m * dim) * sizeof(float));
    if (!w->d_sample) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    for (int64_t i = 0; !s && i < m; i++)
      s = copy_row(ctx, w->d_sample + i * dim, x + w->h_pick[i] * dim, dim);
    if (s) return s;
    cand = w->d_sample;
  }
  w->h_mind = orx_host_alloc(ctx, (size_t)m * sizeof(float));
  w->d_mind = orx_dev_alloc(ctx, (size_t)m * sizeof(float));
  double *u = orx_host_alloc(ctx, (size_t)batch * sizeof(double));
  int64_t *pick = orx_host_alloc(ctx, (size_t)batch * sizeof(int64_t));
  uint8_t *taken = orx_host_alloc(ctx, (size_t)m);
  if (!w->h_mind || !w->d_mind || !u || !pick || !taken) {
    s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    goto done;
  }
  memset(taken, 0, (size_t)m);
  for (int64_t i = 0; i < m; i++) w->h_mind[i] = INFINITY;
  s = orx_dev_copy(ctx, w->d_mind, w->h_mind, (size_t)m * sizeof(float), ORX_COPY_H2D);
  pick[0] = orx_rng_below(rng, m);
  double total = 0;
  for (int64_t j = 0, nb = 1; !s;) {
    for (int64_t i = 0; !s && i < nb; i++) s = copy_row(ctx, c + (j + i) * dim, cand + pick[i] * dim, dim);
    if (!s) s = ORX_OP(be, kmeanspp_step, w->d_mind, &total, cand, dim, m, dim, c + j * dim, nb);
    j += nb;
    if (s || j == k) break;
    s = orx_dev_copy(ctx, w->h_mind, w->d_mind, (size_t)m * sizeof(float), ORX_COPY_D2H);
    nb = k - j < batch ? k - j : batch;
    if (!s) draw_weighted(rng, w->h_mind, m, total, nb, u, pick, taken);
  }
done:
  orx_host_free(ctx, u);
  orx_host_free(ctx, pick);
  orx_host_free(ctx, taken);
  return s;
}

typedef struct dist_index {
  float d;
  int64_t i;
} dist_index;

static int cmp_far(const void *a, const void *b) {
  const dist_index *x = a, *y = b;
  if (x->d != y->d) return x->d < y->d ? 1 : -1;
  return (x->i > y->i) - (x->i < y->i);
}

/* Empty clusters take the rows farthest from their centroids (the rows the current centroids
 * serve worst), one each, farthest first. dist holds the last assignment's distances. */
static onerec_status reseed(onerec_context *ctx, const float *x, int64_t rows, int64_t dim,
                            int64_t k, km_work *w, float *c, int *reseeded) {
  int64_t empty = 0;
  for (int64_t j = 0; j < k; j++) empty += w->h_counts[j] == 0;
  if (!empty) return ONEREC_OK;
  dist_index *far = orx_host_alloc(ctx, (size_t)rows * sizeof *far);
  if (!far) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
  for (int64_t i = 0; i < rows; i++) far[i] = (dist_index){w->h_dist[i], i};
  qsort(far, (size_t)rows, sizeof *far, cmp_far);
  onerec_status s = ONEREC_OK;
  int64_t next = 0;
  for (int64_t j = 0; !s && j < k && next < rows; j++) {
    if (w->h_counts[j] != 0) continue;
    s = copy_row(ctx, c + j * dim, x + far[next++].i * dim, dim);
    (*reseeded)++;
  }
  orx_host_free(ctx, far);
  return s;
}

typedef struct regret_row {
  float regret;
  int32_t row;
} regret_row;

static int cmp_regret(const void *a, const void *b) {
  const regret_row *x = a, *y = b;
  if (x->regret != y->regret) return x->regret < y->regret ? 1 : -1;
  return (x->row > y->row) - (x->row < y->row);
}

/* Balanced assignment (capacity ceil(rows / k) per cluster), greedily: rows that lose most by
 * not getting their best centroid (the largest gap to their second best) choose first, each
 * taking its best candidate with room left; a row whose ncand candidates are all full takes
 * its best one anyway, so the capacity is a target, met whenever the candidates allow. */
static void balanced_assign(km_work *w, int64_t rows, int64_t k) {
  int64_t nc = w->ncand, cap = (rows + k - 1) / k;
  regret_row *ord = w->h_order;
  for (int64_t r = 0; r < rows; r++) {
    const float *sc = w->h_cscore + r * nc;
    ord[r] = (regret_row){nc > 1 ? sc[1] - sc[0] : 0.0f, (int32_t)r};
  }
  qsort(ord, (size_t)rows, sizeof *ord, cmp_regret);
  memset(w->h_load, 0, (size_t)k * sizeof *w->h_load);
  for (int64_t o = 0; o < rows; o++) {
    int64_t r = ord[o].row, pick = 0;
    const int32_t *cd = w->h_cand + r * nc;
    while (pick < nc && w->h_load[cd[pick]] >= cap) pick++;
    if (pick == nc) pick = 0;
    w->h_load[cd[pick]]++;
    w->h_idx[r] = cd[pick];
    float d = w->h_xnorm[r] + w->h_cscore[r * nc + pick];
    w->h_dist[r] = d > 0.0f ? d : 0.0f;
  }
}

static double sum_dist(const float *d, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)d[i];
  return s;
}

/* One assignment pass with the current centroids (nearest, or balanced when `balanced`):
 * idx and dist on the device, dist also on the host, and their sum. */
static onerec_status assign(onerec_context *ctx, const float *x, const float *xnorm, int64_t rows,
                            int64_t dim, int64_t k, const float *c, float *cnorm, int balanced,
                            int32_t *idx, float *dist, km_work *w, double *objective) {
  orx_backend *be = &ctx->be;
  onerec_status s = ORX_OP(be, row_sq_norms, cnorm, c, dim, k, dim);
  if (s) return s;
  orx_kmeans_assign_args a = {.x = x, .ldx = dim, .rows = rows, .dim = dim, .xnorm = xnorm,
                              .c = c, .cnorm = cnorm, .k = k, .idx = idx, .dist = dist};
  if (balanced) {
    a.ncand = w->ncand;
    a.cand = w->d_cand;
    a.cand_score = w->d_cscore;
  }
  s = ORX_OP(be, kmeans_assign, &a);
  if (s) return s;
  if (balanced) {
    size_t nc = (size_t)(rows * w->ncand);
    s = orx_dev_copy(ctx, w->h_cand, w->d_cand, nc * sizeof(int32_t), ORX_COPY_D2H);
    if (!s) s = orx_dev_copy(ctx, w->h_cscore, w->d_cscore, nc * sizeof(float), ORX_COPY_D2H);
    if (s) return s;
    balanced_assign(w, rows, k);
    s = orx_dev_copy(ctx, idx, w->h_idx, (size_t)rows * sizeof(int32_t), ORX_COPY_H2D);
    if (!s) s = orx_dev_copy(ctx, dist, w->h_dist, (size_t)rows * sizeof(float), ORX_COPY_H2D);
  } else {
    s = orx_dev_copy(ctx, w->h_dist, dist, (size_t)rows * sizeof(float), ORX_COPY_D2H);
  }
  if (!s) *objective = sum_dist(w->h_dist, rows);
  return s;
}

onerec_status orx_kmeans_fit(onerec_context *ctx, const float *x, const float *xnorm, int64_t rows,
                             int64_t dim, const orx_kmeans_cfg *cfg, float *c, float *cnorm,
                             int32_t *idx, float *dist, orx_kmeans_result *res) {
  orx_backend *be = &ctx->be;
  int64_t k = cfg->k;
  memset(res, 0, sizeof *res);
  if (rows < k)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "tokenizer: %lld training points for %lld codes",
                    (long long)rows, (long long)k);
  if (rows > INT32_MAX)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "tokenizer: %lld training points (at most %d)",
                    (long long)rows, INT32_MAX);
  km_work w = {0};
  w.h_dist = orx_host_alloc(ctx, (size_t)rows * sizeof(float));
  w.h_counts = orx_host_alloc(ctx, (size_t)k * sizeof(int64_t));
  w.h_pick = orx_host_alloc(ctx, (size_t)rows * sizeof(int64_t));
  w.d_counts = orx_dev_alloc(ctx, (size_t)k * sizeof(int64_t));
  int ok = w.h_dist && w.h_counts && w.h_pick && w.d_counts;
  if (ok && cfg->balanced) {
    w.ncand = k < ORX_KMEANS_BALANCE_CANDIDATES ? k : ORX_KMEANS_BALANCE_CANDIDATES;
    size_t nc = (size_t)(rows * w.ncand);
    w.d_cand = orx_dev_alloc(ctx, nc * sizeof(int32_t));
    w.d_cscore = orx_dev_alloc(ctx, nc * sizeof(float));
    w.h_cand = orx_host_alloc(ctx, nc * sizeof(int32_t));
    w.h_cscore = orx_host_alloc(ctx, nc * sizeof(float));
    w.h_xnorm = orx_host_alloc(ctx, (size_t)rows * sizeof(float));
    w.h_idx = orx_host_alloc(ctx, (size_t)rows * sizeof(int32_t));
    w.h_load = orx_host_alloc(ctx, (size_t)k * sizeof(int64_t));
    w.h_order = orx_host_alloc(ctx, (size_t)rows * sizeof(regret_row));
    ok = w.d_cand && w.d_cscore && w.h_cand && w.h_cscore && w.h_xnorm && w.h_idx && w.h_load &&
         w.h_order;
  }
  if (!ok) {
    work_free(ctx, &w);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "tokenizer: out of memory for %lld points",
                    (long long)rows);
  }
  orx_rng rng = {cfg->seed};
  onerec_status s = ONEREC_OK;
  if (cfg->balanced)
    s = orx_dev_copy(ctx, w.h_xnorm, xnorm, (size_t)rows * sizeof(float), ORX_COPY_D2H);
  double t0 = now_s();
  if (!s)
    s = cfg->init == ONEREC_KMEANS_RANDOM ? init_random(ctx, x, rows, dim, cfg, &rng, &w, c)
                                          : init_plusplus(ctx, x, rows, dim, cfg, &rng, &w, c);
  if (!s)
    orx_log(ctx, ONEREC_LOG_DEBUG, "tokenizer: level %d: %s init of %lld centroids in %.2f s",
            cfg->level, cfg->init == ONEREC_KMEANS_RANDOM ? "random" : "k-means++",
            (long long)k, now_s() - t0);
  double obj = 0, prev = 0;
  int converged = 0;
  for (int t = 0; !s && t < cfg->iterations; t++) {
    s = assign(ctx, x, xnorm, rows, dim, k, c, cnorm, cfg->balanced, idx, dist, &w, &obj);
    if (s) break;
    orx_log(ctx, ONEREC_LOG_DEBUG, "tokenizer: level %d iteration %d: objective %.6g", cfg->level,
            t, obj);
    if (cfg->tolerance > 0 && t > 0 && fabs(prev - obj) <= cfg->tolerance * prev) {
      converged = 1;
      break;
    }
    prev = obj;
    s = ORX_OP(be, kmeans_update, c, w.d_counts, x, dim, idx, rows, dim, k);
    if (!s)
      s = orx_dev_copy(ctx, w.h_counts, w.d_counts, (size_t)k * sizeof(int64_t), ORX_COPY_D2H);
    if (!s) s = reseed(ctx, x, rows, dim, k, &w, c, &res->reseeded);
    res->iterations_run++;
  }
  /* The codes that feed the next level are the nearest centroids, as encoding will give them
   * (balancing shapes the centroids, encoding stays nearest-centroid). */
  if (!s && !(converged && !cfg->balanced))
    s = assign(ctx, x, xnorm, rows, dim, k, c, cnorm, 0, idx, dist, &w, &obj);
  res->objective = obj;
  work_free(ctx, &w);
  return s;
}
