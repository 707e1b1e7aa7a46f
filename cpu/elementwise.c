/* Elementwise ops and reductions of the CPU backend (axpy, scale, dropout, add_bias, bias_bwd,
 * sum_squares), and the range splitter the other row ops share.
 *
 * Reductions (bias_bwd over rows, sum_squares over elements) add fixed-size chunks into partial
 * sums and then fold the partials in chunk order: the chunks depend on the sizes only, never on
 * the thread count, so results are bit-identical for any number of threads. */
#include <string.h>

#include "cpu_impl.h"
#include "../lib/dropout_hash.h"

/* Flat ops split into blocks of this many floats (whole cache lines, so no two tasks share one
 * at a boundary). */
#define SPAN 64
/* Rows per partial sum of bias_bwd, and the most partials it keeps. */
#define BIAS_CHUNK_ROWS 256
#define BIAS_MAX_CHUNKS 256
/* Columns per task of bias_bwd (a fixed width: columns are independent). */
#define BIAS_COLS 1024
/* Elements per partial sum of sum_squares. */
#define SQ_CHUNK 65536

typedef struct par_job {
  orx_cpu_range_fn fn;
  void *arg;
  int64_t items, ntasks;
} par_job;

static void par_task(void *arg, int64_t t) {
  const par_job *j = arg;
  int64_t b = j->items * t / j->ntasks, e = j->items * (t + 1) / j->ntasks;
  if (b < e) j->fn(j->arg, b, e);
}

void orx_cpu_parallel(orx_cpu *cpu, int64_t items, int64_t cost, orx_cpu_range_fn fn, void *arg) {
  if (items <= 0) return;
  double work = (double)items * (double)(cost > 1 ? cost : 1);
  int64_t nt = 1;
  if (cpu->threads > 1 && items > 1 && work >= ORX_CPU_PARALLEL_MIN) {
    /* a few tasks per thread even out cores that run slower (shared or busy ones), but none
     * smaller than a quarter of the threshold */
    nt = (int64_t)cpu->threads * 4;
    double most = work / (ORX_CPU_PARALLEL_MIN / 4);
    if ((double)nt > most) nt = (int64_t)most;
    if (nt > items) nt = items;
    if (nt < 1) nt = 1;
  }
  if (nt == 1) {
    fn(arg, 0, items);
    return;
  }
  par_job j = {fn, arg, items, nt};
  orx_pool_run(cpu->pool, nt, par_task, &j);
}

typedef struct ew_job {
  const orx_simd *simd;
  float *y;
  const float *x;
  float alpha;
  int64_t n;
} ew_job;

static void axpy_range(void *arg, int64_t b, int64_t e) {
  const ew_job *j = arg;
  int64_t i0 = b * SPAN, i1 = e * SPAN < j->n ? e * SPAN : j->n;
  j->simd->axpy(j->y + i0, j->x + i0, i1 - i0, j->alpha);
}

static void scale_range(void *arg, int64_t b, int64_t e) {
  const ew_job *j = arg;
  int64_t i0 = b * SPAN, i1 = e * SPAN < j->n ? e * SPAN : j->n;
  j->simd->scale(j->y + i0, i1 - i0, j->alpha);
}

onerec_status orx_cpu_axpy(orx_backend *be, float *y, const float *x, float alpha, int64_t n) {
  if (n < 0) return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "axpy: n=%lld", (long long)n);
  if (n == 0) return ONEREC_OK;
  if (!y || !x) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "axpy: NULL buffer");
  orx_cpu *cpu = orx_cpu_of(be);
  ew_job j = {cpu->simd, y, x, alpha, n};
  orx_cpu_parallel(cpu, (n + SPAN - 1) / SPAN, SPAN, axpy_range, &j);
  return ONEREC_OK;
}

onerec_status orx_cpu_scale(orx_backend *be, float *x, float alpha, int64_t n) {
  if (n < 0) return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "scale: n=%lld", (long long)n);
  if (n == 0) return ONEREC_OK;
  if (!x) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "scale: NULL buffer");
  orx_cpu *cpu = orx_cpu_of(be);
  ew_job j = {cpu->simd, x, NULL, alpha, n};
  orx_cpu_parallel(cpu, (n + SPAN - 1) / SPAN, SPAN, scale_range, &j);
  return ONEREC_OK;
}

/* ---- dropout: the mask is recomputed from (seed, index), never stored ---- */
typedef struct drop_job {
  const orx_simd *simd;
  float *x;
  int64_t n;
  uint32_t thr;
  float keep_scale;
  uint64_t seed;
} drop_job;

static void drop_range(void *arg, int64_t b, int64_t e) {
  const drop_job *j = arg;
  int64_t i0 = b * SPAN, i1 = e * SPAN < j->n ? e * SPAN : j->n;
  if (i1 > i0) j->simd->dropout(j->x + i0, i1 - i0, (uint64_t)i0, j->seed, j->thr, j->keep_scale);
}

onerec_status orx_cpu_dropout(orx_backend *be, float *x, int64_t n, float p, uint64_t seed) {
  if (n < 0) return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "dropout: n=%lld", (long long)n);
  if (!(p >= 0.0f && p < 1.0f))
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "dropout: p=%g (expected [0, 1))",
                        (double)p);
  if (n == 0 || p == 0.0f) return ONEREC_OK;
  if (!x) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "dropout: NULL buffer");
  orx_cpu *cpu = orx_cpu_of(be);
  drop_job j = {cpu->simd, x, n, orx_drop_threshold(p), 1.0f / (1.0f - p), seed};
  orx_cpu_parallel(cpu, (n + SPAN - 1) / SPAN, SPAN, drop_range, &j);
  return ONEREC_OK;
}

/* ---- add_bias: item (r, c) adds column block c of the bias to row r ---- */
typedef struct bias_job {
  const orx_simd *simd;
  float *x;
  const float *bias;
  int64_t rows, dim, nblk;
  float *part;
  const float *dout;
  int64_t chunk_rows, nchunks;
  float *dbias;
} bias_job;

static void add_bias_range(void *arg, int64_t b, int64_t e) {
  const bias_job *j = arg;
  for (int64_t it = b; it < e; it++) {
    int64_t r = it / j->nblk, c = it % j->nblk;
    int64_t c0 = j->dim * c / j->nblk, c1 = j->dim * (c + 1) / j->nblk;
    j->simd->axpy(j->x + r * j->dim + c0, j->bias + c0, c1 - c0, 1.0f);
  }
}

onerec_status orx_cpu_add_bias(orx_backend *be, float *x, const float *bias, int64_t rows,
                               int64_t dim) {
  if (rows < 0 || dim < 0)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "add_bias: rows=%lld dim=%lld", (long long)rows,
                        (long long)dim);
  if (rows == 0 || dim == 0) return ONEREC_OK;
  if (!x || !bias) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "add_bias: NULL buffer");
  orx_cpu *cpu = orx_cpu_of(be);
  /* few long rows (a positional table added to a handful of sequences) split their columns */
  int64_t nblk = (4 * (int64_t)cpu->threads + rows - 1) / rows;
  int64_t most = (dim + 1023) / 1024;
  if (nblk > most) nblk = most;
  if (nblk < 1) nblk = 1;
  bias_job j = {.simd = cpu->simd, .x = x, .bias = bias, .rows = rows, .dim = dim, .nblk = nblk};
  orx_cpu_parallel(cpu, rows * nblk, dim / nblk, add_bias_range, &j);
  return ONEREC_OK;
}

/* ---- bias_bwd: item (chunk, column block) sums the chunk's rows into its partial ---- */
static void bias_part_range(void *arg, int64_t b, int64_t e) {
  const bias_job *j = arg;
  for (int64_t it = b; it < e; it++) {
    int64_t k = it / j->nblk, c0 = it % j->nblk * BIAS_COLS;
    int64_t c1 = c0 + BIAS_COLS < j->dim ? c0 + BIAS_COLS : j->dim;
    int64_t r0 = k * j->chunk_rows;
    int64_t r1 = r0 + j->chunk_rows < j->rows ? r0 + j->chunk_rows : j->rows;
    float *acc = j->part + k * j->dim + c0;
    memcpy(acc, j->dout + r0 * j->dim + c0, (size_t)(c1 - c0) * sizeof *acc);
    for (int64_t r = r0 + 1; r < r1; r++)
      j->simd->axpy(acc, j->dout + r * j->dim + c0, c1 - c0, 1.0f);
  }
}

/* dbias[c] += sum of the chunks' partials, in chunk order; items are column blocks */
static void bias_fold_range(void *arg, int64_t b, int64_t e) {
  const bias_job *j = arg;
  int64_t c0 = b * BIAS_COLS, c1 = e * BIAS_COLS < j->dim ? e * BIAS_COLS : j->dim;
  for (int64_t k = 1; k < j->nchunks; k++)
    j->simd->axpy(j->part + c0, j->part + k * j->dim + c0, c1 - c0, 1.0f);
  j->simd->axpy(j->dbias + c0, j->part + c0, c1 - c0, 1.0f);
}

onerec_status orx_cpu_bias_bwd(orx_backend *be, float *dbias, const float *dout, int64_t rows,
                               int64_t dim) {
  if (rows < 0 || dim < 0)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "bias_bwd: rows=%lld dim=%lld", (long long)rows,
                        (long long)dim);
  if (rows == 0 || dim == 0) return ONEREC_OK;
  if (!dbias || !dout)
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "bias_bwd: NULL buffer");
  orx_cpu *cpu = orx_cpu_of(be);
  int64_t chunk_rows = (rows + BIAS_MAX_CHUNKS - 1) / BIAS_MAX_CHUNKS;
  if (chunk_rows < BIAS_CHUNK_ROWS) chunk_rows = BIAS_CHUNK_ROWS;
  int64_t nchunks = (rows + chunk_rows - 1) / chunk_rows;
  int64_t nblk = (dim + BIAS_COLS - 1) / BIAS_COLS;
  float *part = orx_cpu_alloc(be, (size_t)nchunks * (size_t)dim * sizeof *part);
  if (!part) return ORX_CPU_FAIL(be, ONEREC_ERR_OUT_OF_MEMORY, "bias_bwd: out of memory");
  bias_job j = {.simd = cpu->simd,
                .rows = rows,
                .dim = dim,
                .nblk = nblk,
                .part = part,
                .dout = dout,
                .chunk_rows = chunk_rows,
                .nchunks = nchunks,
                .dbias = dbias};
  orx_cpu_parallel(cpu, nchunks * nblk, chunk_rows * (dim < BIAS_COLS ? dim : BIAS_COLS),
                   bias_part_range, &j);
  orx_cpu_parallel(cpu, nblk, nchunks * (dim < BIAS_COLS ? dim : BIAS_COLS), bias_fold_range, &j);
  orx_cpu_free(be, part);
  return ONEREC_OK;
}

/* ---- sum_squares: one double partial per SQ_CHUNK elements ---- */
typedef struct sq_job {
  const orx_simd *simd;
  const float *x;
  int64_t n;
  double *part;
} sq_job;

static void sq_range(void *arg, int64_t b, int64_t e) {
  const sq_job *j = arg;
  for (int64_t k = b; k < e; k++) {
    int64_t i0 = k * SQ_CHUNK, i1 = i0 + SQ_CHUNK < j->n ? i0 + SQ_CHUNK : j->n;
    j->part[k] = j->simd->sum_squares(j->x + i0, i1 - i0);
  }
}

onerec_status orx_cpu_sum_squares(orx_backend *be, double *host_out, const float *x, int64_t n) {
  if (n < 0) return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "sum_squares: n=%lld", (long long)n);
  if (!host_out) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "sum_squares: NULL output");
  if (n == 0) {
    *host_out = 0.0;
    return ONEREC_OK;
  }
  if (!x) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "sum_squares: NULL buffer");
  orx_cpu *cpu = orx_cpu_of(be);
  int64_t nchunks = (n + SQ_CHUNK - 1) / SQ_CHUNK;
  double one, *part = nchunks == 1 ? &one : orx_cpu_alloc(be, (size_t)nchunks * sizeof *part);
  if (!part) return ORX_CPU_FAIL(be, ONEREC_ERR_OUT_OF_MEMORY, "sum_squares: out of memory");
  sq_job j = {cpu->simd, x, n, part};
  orx_cpu_parallel(cpu, nchunks, SQ_CHUNK, sq_range, &j);
  double s = 0.0;
  for (int64_t k = 0; k < nchunks; k++) s += part[k];
  if (part != &one) orx_cpu_free(be, part);
  *host_out = s;
  return ONEREC_OK;
}
