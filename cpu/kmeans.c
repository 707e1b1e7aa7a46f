/* K-means kernels of the CPU backend, the heavy math of the RQ-Kmeans tokenizer: row norms, the
 * fused nearest-centroid search, the centroid update, a gathered axpy (residuals, decoding)
 * and the k-means++ distance update.
 *
 * Every op splits its work into tasks of a fixed size (row or cluster ranges that do not depend
 * on the thread count) and each task writes only its own outputs, so results are bit-identical
 * for any number of threads. The vector kernels come in AVX-512 / AVX2 / plain copies with the
 * same lane arithmetic (cpu/kmeans_simd.h), so the instruction set does not change results
 * either. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cpu_impl.h"

typedef float km_v16f __attribute__((vector_size(64)));
typedef int32_t km_v16i __attribute__((vector_size(64)));
typedef float km_v8f __attribute__((vector_size(32)));
typedef double km_v8d __attribute__((vector_size(64)));

/* The helpers below pass 64-byte vectors by value; they are always inlined, so the warning that
 * such a call's ABI differs without AVX-512 does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"
#define KM_INLINE static inline __attribute__((always_inline))

KM_INLINE km_v16f km_load(const float *p) {
  km_v16f v;
  memcpy(&v, p, sizeof v);
  return v;
}
KM_INLINE km_v16f km_splat(float x) {
  return (km_v16f){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
}
KM_INLINE km_v16i km_spliti(int32_t x) {
  return (km_v16i){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
}
KM_INLINE km_v16i km_iota16(int32_t base) {
  km_v16i v = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  return v + base;
}
/* Lane sum in a fixed order (the same in every ISA copy). */
KM_INLINE float km_hsum(const km_v16f *v) {
  float s = 0.0f;
  for (int l = 0; l < 16; l++) s += (*v)[l];
  return s;
}

typedef struct km_kernels {
  int64_t (*argmin)(const float *v, int64_t n, float *out);
  float (*sqdist)(const float *a, const float *b, int64_t n);
  void (*acc)(double *acc, const float *x, int64_t n);
  void (*axpy)(float *y, const float *x, int64_t n, float alpha);
} km_kernels;

#define KM_SUFFIX scalar
#include "kmeans_simd.h"
#undef KM_SUFFIX

#pragma GCC push_options
#pragma GCC target("avx2")
#define KM_SUFFIX avx2
#include "kmeans_simd.h"
#undef KM_SUFFIX
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,avx2")
#define KM_SUFFIX avx512
#include "kmeans_simd.h"
#undef KM_SUFFIX
#pragma GCC pop_options

/* The copy for the ISA the backend's vector table uses (ONEREC_CPU_ISA may lower it). */
static const km_kernels *km_pick(orx_backend *be) {
  const char *isa = orx_cpu_of(be)->simd->isa;
  if (!strcmp(isa, "avx512")) return &km_kernels_avx512;
  if (!strcmp(isa, "avx2")) return &km_kernels_avx2;
  return &km_kernels_scalar;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ---- row norms ---- */

enum { NORM_ROWS = 512 };

typedef struct norms_job {
  const km_kernels *k;
  float *out;
  const float *x;
  int64_t ldx, rows, dim;
} norms_job;

static void norms_task(void *arg, int64_t task) {
  const norms_job *j = arg;
  int64_t r1 = (task + 1) * NORM_ROWS < j->rows ? (task + 1) * NORM_ROWS : j->rows;
  for (int64_t r = task * NORM_ROWS; r < r1; r++)
    j->out[r] = j->k->sqdist(j->x + r * j->ldx, NULL, j->dim);
}

onerec_status orx_cpu_row_sq_norms(orx_backend *be, float *out, const float *x, int64_t ldx,
                                   int64_t rows, int64_t dim) {
  if (rows < 0 || dim < 1 || ldx < dim)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "row_sq_norms: rows=%lld dim=%lld ldx=%lld",
                        (long long)rows, (long long)dim, (long long)ldx);
  if (rows == 0) return ONEREC_OK;
  if (!out || !x) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "row_sq_norms: NULL buffer");
  norms_job j = {km_pick(be), out, x, ldx, rows, dim};
  orx_pool_run(orx_cpu_of(be)->pool, ceil_div(rows, NORM_ROWS), norms_task, &j);
  return ONEREC_OK;
}

/* ---- nearest centroid ---- */

/* A task is ASSIGN_ROWS rows against all centroids, ASSIGN_COLS at a time: one sgemm fills a
 * tile with cnorm - 2 x.c (the tile starts as cnorm, sgemm adds -2 x.c with beta = 1), then a
 * vector argmin per row. The tile (1 MiB) stays in cache between the sgemm that writes it and
 * the scan that reads it; the rows x k matrix never exists. Fixed tile sizes keep every row's
 * arithmetic the same whatever the thread count. */
enum { ASSIGN_ROWS = 256, ASSIGN_COLS = 1024, MAX_CAND = 64 };

typedef struct assign_job {
  const orx_kmeans_assign_args *a;
  const km_kernels *k;
  orx_backend *be;
  int failed;
} assign_job;

/* Keeps the row's best `nc` (score, centroid) pairs sorted, best first: a new pair enters only
 * if strictly better than the worst kept, and centroids arrive in increasing order, so ties
 * keep the lower centroid. */
static void cand_scan(const float *v, int64_t n, int64_t base, float *score, int32_t *id,
                      int64_t nc) {
  for (int64_t j = 0; j < n; j++) {
    float x = v[j];
    if (!(x < score[nc - 1])) continue;
    int64_t p = nc - 1;
    while (p > 0 && x < score[p - 1]) {
      score[p] = score[p - 1];
      id[p] = id[p - 1];
      p--;
    }
    score[p] = x;
    id[p] = (int32_t)(base + j);
  }
}

static void assign_task(void *arg, int64_t task) {
  assign_job *j = arg;
  const orx_kmeans_assign_args *a = j->a;
  int64_t r0 = task * ASSIGN_ROWS;
  int64_t nr = a->rows - r0 < ASSIGN_ROWS ? a->rows - r0 : ASSIGN_ROWS;
  int64_t tc = a->k < ASSIGN_COLS ? a->k : ASSIGN_COLS, nc = a->ncand;
  float *tile = orx_cpu_alloc(j->be, (size_t)(nr * tc) * sizeof(float));
  if (!tile) {
    __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
    return;
  }
  float best[ASSIGN_ROWS];
  int64_t bidx[ASSIGN_ROWS];
  if (nc > 0)
    for (int64_t i = 0; i < nr * nc; i++) {
      a->cand_score[r0 * nc + i] = INFINITY;
      a->cand[r0 * nc + i] = -1;
    }
  const float *x = a->x + r0 * a->ldx;
  for (int64_t c0 = 0; c0 < a->k; c0 += tc) {
    int64_t w = a->k - c0 < tc ? a->k - c0 : tc;
    for (int64_t r = 0; r < nr; r++) memcpy(tile + r * w, a->cnorm + c0, (size_t)w * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)nr, (blasint)w,
                (blasint)a->dim, -2.0f, x, (blasint)a->ldx, a->c + c0 * a->dim, (blasint)a->dim,
                1.0f, tile, (blasint)w);
    for (int64_t r = 0; r < nr; r++) {
      float m;
      int64_t i = j->k->argmin(tile + r * w, w, &m);
      if (c0 == 0 || m < best[r]) { /* strict: ties stay with the earlier (lower) centroid */
        best[r] = m;
        bidx[r] = c0 + i;
      }
      if (nc > 0)
        cand_scan(tile + r * w, w, c0, a->cand_score + (r0 + r) * nc, a->cand + (r0 + r) * nc, nc);
    }
  }
  orx_cpu_free(j->be, tile);
  for (int64_t r = 0; r < nr; r++) {
    a->idx[r0 + r] = (int32_t)bidx[r];
    if (a->dist) {
      float d = a->xnorm[r0 + r] + best[r];
      a->dist[r0 + r] = d > 0.0f ? d : 0.0f;
    }
  }
}

onerec_status orx_cpu_kmeans_assign(orx_backend *be, const orx_kmeans_assign_args *a) {
  if (a->rows < 0 || a->dim < 1 || a->k < 1 || a->ldx < a->dim || a->k > INT32_MAX ||
      a->dim > INT32_MAX || a->ldx > INT32_MAX || a->ncand < 0 || a->ncand > a->k ||
      a->ncand > MAX_CAND)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE,
                        "kmeans_assign: rows=%lld dim=%lld k=%lld ldx=%lld ncand=%lld",
                        (long long)a->rows, (long long)a->dim, (long long)a->k,
                        (long long)a->ldx, (long long)a->ncand);
  if (a->rows == 0) return ONEREC_OK;
  if (!a->x || !a->c || !a->cnorm || !a->idx || (a->dist && !a->xnorm) ||
      (a->ncand > 0 && (!a->cand || !a->cand_score)))
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "kmeans_assign: NULL buffer");
  assign_job j = {a, km_pick(be), be, 0};
  orx_pool_run(orx_cpu_of(be)->pool, ceil_div(a->rows, ASSIGN_ROWS), assign_task, &j);
  if (j.failed)
    return ORX_CPU_FAIL(be, ONEREC_ERR_OUT_OF_MEMORY, "kmeans_assign: out of memory for a tile");
  return ONEREC_OK;
}

/* ---- centroid update ---- */

/* Rows are bucketed by cluster (a counting sort that keeps row order), then a task averages a
 * fixed range of clusters, each summed in double in ascending row order. */
enum { UPDATE_CLUSTERS = 16 };

typedef struct update_job {
  const km_kernels *k;
  float *c;
  const int64_t *counts, *start, *order;
  const float *x;
  int64_t ldx, dim, nk;
  orx_backend *be;
  int failed;
} update_job;

static void update_task(void *arg, int64_t task) {
  update_job *j = arg;
  double *acc = orx_cpu_alloc(j->be, (size_t)j->dim * sizeof(double));
  if (!acc) {
    __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
    return;
  }
  int64_t k1 = (task + 1) * UPDATE_CLUSTERS < j->nk ? (task + 1) * UPDATE_CLUSTERS : j->nk;
  for (int64_t k = task * UPDATE_CLUSTERS; k < k1; k++) {
    if (j->counts[k] == 0) continue;
    memset(acc, 0, (size_t)j->dim * sizeof(double));
    for (int64_t m = j->start[k]; m < j->start[k] + j->counts[k]; m++)
      j->k->acc(acc, j->x + j->order[m] * j->ldx, j->dim);
    double inv = 1.0 / (double)j->counts[k];
    float *ck = j->c + k * j->dim;
    for (int64_t d = 0; d < j->dim; d++) ck[d] = (float)(acc[d] * inv);
  }
  orx_cpu_free(j->be, acc);
}

onerec_status orx_cpu_kmeans_update(orx_backend *be, float *c, int64_t *counts, const float *x,
                                    int64_t ldx, const int32_t *assign, int64_t rows,
                                    int64_t dim, int64_t k) {
  if (rows < 0 || dim < 1 || k < 1 || ldx < dim)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "kmeans_update: rows=%lld dim=%lld k=%lld ldx=%lld",
                        (long long)rows, (long long)dim, (long long)k, (long long)ldx);
  if (!c || !counts || (rows > 0 && (!x || !assign)))
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "kmeans_update: NULL buffer");
  for (int64_t r = 0; r < rows; r++)
    if (assign[r] < 0 || assign[r] >= k)
      return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT,
                          "kmeans_update: row %lld assigned to cluster %d of %lld", (long long)r,
                          assign[r], (long long)k);
  int64_t *start = orx_cpu_alloc(be, (size_t)k * sizeof(int64_t));
  int64_t *order = orx_cpu_alloc(be, (size_t)(rows ? rows : 1) * sizeof(int64_t));
  if (!start || !order) {
    orx_cpu_free(be, start);
    orx_cpu_free(be, order);
    return ORX_CPU_FAIL(be, ONEREC_ERR_OUT_OF_MEMORY, "kmeans_update: out of memory");
  }
  memset(counts, 0, (size_t)k * sizeof(int64_t));
  for (int64_t r = 0; r < rows; r++) counts[assign[r]]++;
  int64_t s = 0;
  for (int64_t i = 0; i < k; i++) {
    start[i] = s;
    s += counts[i];
  }
  /* start[] doubles as the fill cursor, then is restored */
  for (int64_t r = 0; r < rows; r++) order[start[assign[r]]++] = r;
  for (int64_t i = 0; i < k; i++) start[i] -= counts[i];
  update_job j = {km_pick(be), c, counts, start, order, x, ldx, dim, k, be, 0};
  orx_pool_run(orx_cpu_of(be)->pool, ceil_div(k, UPDATE_CLUSTERS), update_task, &j);
  orx_cpu_free(be, start);
  orx_cpu_free(be, order);
  if (j.failed) return ORX_CPU_FAIL(be, ONEREC_ERR_OUT_OF_MEMORY, "kmeans_update: out of memory");
  return ONEREC_OK;
}

/* ---- gathered axpy ---- */

enum { GATHER_ROWS = 256 };

typedef struct gather_job {
  const km_kernels *k;
  float *y;
  int64_t ldy;
  const float *table;
  const int32_t *ids;
  int64_t rows, dim;
  float alpha;
} gather_job;

static void gather_task(void *arg, int64_t task) {
  const gather_job *j = arg;
  int64_t r1 = (task + 1) * GATHER_ROWS < j->rows ? (task + 1) * GATHER_ROWS : j->rows;
  for (int64_t r = task * GATHER_ROWS; r < r1; r++)
    j->k->axpy(j->y + r * j->ldy, j->table + (int64_t)j->ids[r] * j->dim, j->dim, j->alpha);
}

onerec_status orx_cpu_gather_axpy(orx_backend *be, float *y, int64_t ldy, const float *table,
                                  const int32_t *ids, int64_t rows, int64_t dim, int64_t vocab,
                                  float alpha) {
  if (rows < 0 || dim < 1 || vocab < 1 || ldy < dim)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "gather_axpy: rows=%lld dim=%lld vocab=%lld ldy=%lld",
                        (long long)rows, (long long)dim, (long long)vocab, (long long)ldy);
  if (rows == 0) return ONEREC_OK;
  if (!y || !table || !ids)
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "gather_axpy: NULL buffer");
  for (int64_t r = 0; r < rows; r++)
    if (ids[r] < 0 || ids[r] >= vocab)
      return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT,
                          "gather_axpy: row %lld has id %d, outside [0, %lld)", (long long)r,
                          ids[r], (long long)vocab);
  gather_job j = {km_pick(be), y, ldy, table, ids, rows, dim, alpha};
  orx_pool_run(orx_cpu_of(be)->pool, ceil_div(rows, GATHER_ROWS), gather_task, &j);
  return ONEREC_OK;
}

/* ---- k-means++ step ---- */

/* A task is MIND_ROWS rows against all new centroids, MIND_COLS at a time: one sgemm gives
 * cnorm - 2 x.c for the tile, plus ||x||^2, so the distances cost a matrix multiply rather
 * than nc passes over memory. Clamped at 0: the expanded form can round below. */
enum { MIND_ROWS = 512, MIND_COLS = 64 };

typedef struct mind_job {
  const km_kernels *k;
  float *mind;
  double *partial;
  const float *x, *c, *cnorm;
  int64_t ldx, rows, dim, nc;
  orx_backend *be;
  int failed;
} mind_job;

static void mind_task(void *arg, int64_t task) {
  mind_job *m = arg;
  int64_t r0 = task * MIND_ROWS, nr = m->rows - r0 < MIND_ROWS ? m->rows - r0 : MIND_ROWS;
  int64_t tc = m->nc < MIND_COLS ? m->nc : MIND_COLS;
  float *tile = orx_cpu_alloc(m->be, (size_t)(nr * tc) * sizeof(float));
  if (!tile) {
    __atomic_store_n(&m->failed, 1, __ATOMIC_RELAXED);
    m->partial[task] = 0;
    return;
  }
  const float *x = m->x + r0 * m->ldx;
  float best[MIND_ROWS];
  for (int64_t r = 0; r < nr; r++) best[r] = INFINITY;
  for (int64_t c0 = 0; c0 < m->nc; c0 += tc) {
    int64_t w = m->nc - c0 < tc ? m->nc - c0 : tc;
    for (int64_t r = 0; r < nr; r++) memcpy(tile + r * w, m->cnorm + c0, (size_t)w * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)nr, (blasint)w,
                (blasint)m->dim, -2.0f, x, (blasint)m->ldx, m->c + c0 * m->dim, (blasint)m->dim,
                1.0f, tile, (blasint)w);
    for (int64_t r = 0; r < nr; r++) {
      float v;
      m->k->argmin(tile + r * w, w, &v);
      if (v < best[r]) best[r] = v;
    }
  }
  orx_cpu_free(m->be, tile);
  double s = 0;
  for (int64_t r = 0; r < nr; r++) {
    float d = m->k->sqdist(x + r * m->ldx, NULL, m->dim) + best[r];
    d = d > 0.0f ? d : 0.0f;
    float *mr = m->mind + r0 + r;
    if (d < *mr) *mr = d;
    s += (double)*mr;
  }
  m->partial[task] = s;
}

onerec_status orx_cpu_kmeanspp_step(orx_backend *be, float *mind, double *host_sum,
                                    const float *x, int64_t ldx, int64_t rows, int64_t dim,
                                    const float *c, int64_t nc) {
  if (rows < 0 || dim < 1 || ldx < dim || nc < 1 || dim > INT32_MAX || ldx > INT32_MAX ||
      nc > INT32_MAX)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "kmeanspp_step: rows=%lld dim=%lld ldx=%lld nc=%lld",
                        (long long)rows, (long long)dim, (long long)ldx, (long long)nc);
  if (!host_sum || !c || (rows > 0 && (!mind || !x)))
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "kmeanspp_step: NULL buffer");
  *host_sum = 0;
  if (rows == 0) return ONEREC_OK;
  int64_t tasks = ceil_div(rows, MIND_ROWS);
  double *partial = orx_cpu_alloc(be, (size_t)tasks * sizeof(double));
  float *cnorm = orx_cpu_alloc(be, (size_t)nc * sizeof(float));
  if (!partial || !cnorm) {
    orx_cpu_free(be, partial);
    orx_cpu_free(be, cnorm);
    return ORX_CPU_FAIL(be, ONEREC_ERR_OUT_OF_MEMORY, "kmeanspp_step: out of memory");
  }
  const km_kernels *kk = km_pick(be);
  for (int64_t j = 0; j < nc; j++) cnorm[j] = kk->sqdist(c + j * dim, NULL, dim);
  mind_job m = {kk, mind, partial, x, c, cnorm, ldx, rows, dim, nc, be, 0};
  orx_pool_run(orx_cpu_of(be)->pool, tasks, mind_task, &m);
  double s = 0;
  for (int64_t t = 0; t < tasks; t++) s += partial[t];
  orx_cpu_free(be, partial);
  orx_cpu_free(be, cnorm);
  if (m.failed) return ORX_CPU_FAIL(be, ONEREC_ERR_OUT_OF_MEMORY, "kmeanspp_step: out of memory");
  *host_sum = s;
  return ONEREC_OK;
}
