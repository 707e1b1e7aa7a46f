/* RMSNorm forward and backward of the CPU backend: one row per kernel call, rows split over the
 * pool. The weight gradient sums over rows, so the backward adds fixed chunks of rows into
 * partials (chunks set by the sizes, not the thread count) and folds them in chunk order. */
#include <string.h>

#include "cpu_impl.h"

/* Rows per weight-gradient partial: at least this many, and no more than MAX_CHUNKS partials. */
#define CHUNK_ROWS 32
#define MAX_CHUNKS 256
/* Columns per task when folding the partials. */
#define FOLD_COLS 1024

typedef struct rms_job {
  const orx_simd *simd;
  float *out, *rstd, *dx, *dw, *part;
  const float *x, *w, *dout, *rstd_in;
  int64_t rows, dim, chunk_rows, nchunks;
  float eps;
} rms_job;

static void fwd_range(void *arg, int64_t b, int64_t e) {
  const rms_job *j = arg;
  const int64_t d = j->dim;
  for (int64_t r = b; r < e; r++) {
    float rs = j->simd->rmsnorm(j->out + r * d, j->x + r * d, j->w, d, j->eps);
    if (j->rstd) j->rstd[r] = rs;
  }
}

onerec_status orx_cpu_rmsnorm_fwd(orx_backend *be, float *out, float *rstd, const float *x,
                                  const float *w, int64_t rows, int64_t dim, float eps) {
  if (rows < 0 || dim < 1)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "rmsnorm_fwd: rows=%lld dim=%lld", (long long)rows,
                        (long long)dim);
  if (!(eps >= 0.0f))
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "rmsnorm_fwd: eps=%g", (double)eps);
  if (rows == 0) return ONEREC_OK;
  if (!out || !x || !w)
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "rmsnorm_fwd: NULL buffer");
  orx_cpu *cpu = orx_cpu_of(be);
  rms_job j = {.simd = cpu->simd,
               .out = out,
               .rstd = rstd,
               .x = x,
               .w = w,
               .rows = rows,
               .dim = dim,
               .eps = eps};
  orx_cpu_parallel(cpu, rows, 2 * dim, fwd_range, &j);
  return ONEREC_OK;
}

/* items are chunks: dx for the chunk's rows, and the chunk's dw partial */
static void bwd_range(void *arg, int64_t b, int64_t e) {
  const rms_job *j = arg;
  const int64_t d = j->dim;
  for (int64_t k = b; k < e; k++) {
    float *part = j->part + k * d;
    memset(part, 0, (size_t)d * sizeof *part);
    int64_t r0 = k * j->chunk_rows;
    int64_t r1 = r0 + j->chunk_rows < j->rows ? r0 + j->chunk_rows : j->rows;
    for (int64_t r = r0; r < r1; r++)
      j->simd->rmsnorm_bwd(j->dx + r * d, part, j->dout + r * d, j->x + r * d, j->w, d,
                           j->rstd_in[r]);
  }
}

/* dw += the partials in chunk order; items are column blocks */
static void fold_range(void *arg, int64_t b, int64_t e) {
  const rms_job *j = arg;
  int64_t c0 = b * FOLD_COLS, c1 = e * FOLD_COLS < j->dim ? e * FOLD_COLS : j->dim;
  for (int64_t k = 1; k < j->nchunks; k++)
    j->simd->axpy(j->part + c0, j->part + k * j->dim + c0, c1 - c0, 1.0f);
  j->simd->axpy(j->dw + c0, j->part + c0, c1 - c0, 1.0f);
}

onerec_status orx_cpu_rmsnorm_bwd(orx_backend *be, float *dx, float *dw, const float *dout,
                                  const float *x, const float *w, const float *rstd, int64_t rows,
                                  int64_t dim) {
  if (rows < 0 || dim < 1)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "rmsnorm_bwd: rows=%lld dim=%lld", (long long)rows,
                        (long long)dim);
  if (rows == 0) return ONEREC_OK;
  if (!dx || !dw || !dout || !x || !w || !rstd)
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "rmsnorm_bwd: NULL buffer");
  orx_cpu *cpu = orx_cpu_of(be);
  int64_t chunk_rows = (rows + MAX_CHUNKS - 1) / MAX_CHUNKS;
  if (chunk_rows < CHUNK_ROWS) chunk_rows = CHUNK_ROWS;
  int64_t nchunks = (rows + chunk_rows - 1) / chunk_rows;
  float *part = orx_cpu_alloc(be, (size_t)nchunks * (size_t)dim * sizeof *part);
  if (!part) return ORX_CPU_FAIL(be, ONEREC_ERR_OUT_OF_MEMORY, "rmsnorm_bwd: out of memory");
  rms_job j = {.simd = cpu->simd,
               .dx = dx,
               .dw = dw,
               .part = part,
               .x = x,
               .w = w,
               .dout = dout,
               .rstd_in = rstd,
               .rows = rows,
               .dim = dim,
               .chunk_rows = chunk_rows,
               .nchunks = nchunks};
  orx_cpu_parallel(cpu, nchunks, chunk_rows * dim * 3, bwd_range, &j);
  orx_cpu_parallel(cpu, (dim + FOLD_COLS - 1) / FOLD_COLS,
                   nchunks * (dim < FOLD_COLS ? dim : FOLD_COLS), fold_range, &j);
  orx_cpu_free(be, part);
  return ONEREC_OK;
}
