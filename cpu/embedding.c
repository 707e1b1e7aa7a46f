/* Embedding gather (forward) and scatter-add (backward) of the CPU backend; also the MoE token
 * permute / unpermute (ids = the slot -> token map).
 *
 * The backward adds every row i into dtable[ids[i]], and an id may repeat. Each table row is owned
 * by one task, which adds its contributions in row order: rows are grouped by id range with a
 * stable counting sort, tasks take id ranges (times column blocks, so that one hot id does not
 * serialise a wide table). Any grouping gives the same order per table row, hence the same bits
 * for every thread count. */
#include <string.h>

#include "cpu_impl.h"

/* Columns per backward task: the table row is split so that a hot id still spreads out. */
#define COLS 256

typedef struct emb_job {
  const orx_simd *simd;
  float *out;         /* forward: the rows gathered; backward: the table gradient */
  const float *table; /* forward: the table; backward: the rows' gradients (dout) */
  const int32_t *ids;
  int64_t dim;
  /* backward */
  const int64_t *start; /* start[g]..start[g + 1]: positions in order[] of group g's rows */
  const int64_t *order; /* row indices grouped by id range, ascending within a group */
  int64_t ncol;         /* column blocks per group */
} emb_job;

static onerec_status check_ids(orx_backend *be, const char *op, const int32_t *ids, int64_t n,
                               int64_t vocab) {
  for (int64_t i = 0; i < n; i++)
    if (ids[i] >= vocab)
      return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: ids[%lld] = %d, vocab is %lld", op,
                          (long long)i, (int)ids[i], (long long)vocab);
  return ONEREC_OK;
}

static onerec_status check(orx_backend *be, const char *op, const void *a, const void *b,
                           const int32_t *ids, int64_t n, int64_t dim, int64_t vocab) {
  if (n < 0 || dim < 0 || vocab < 0)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "%s: n=%lld dim=%lld vocab=%lld", op, (long long)n,
                        (long long)dim, (long long)vocab);
  if (n == 0 || dim == 0) return ONEREC_OK;
  if (!a || !b || !ids) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: NULL buffer", op);
  return check_ids(be, op, ids, n, vocab);
}

static void fwd_range(void *arg, int64_t b, int64_t e) {
  const emb_job *j = arg;
  const size_t bytes = (size_t)j->dim * sizeof(float);
  for (int64_t i = b; i < e; i++) {
    float *o = j->out + i * j->dim;
    if (j->ids[i] < 0)
      memset(o, 0, bytes);
    else
      memcpy(o, j->table + (int64_t)j->ids[i] * j->dim, bytes);
  }
}

onerec_status orx_cpu_embedding_fwd(orx_backend *be, float *out, const float *table,
                                    const int32_t *ids, int64_t n, int64_t dim, int64_t vocab) {
  onerec_status s = check(be, "embedding_fwd", out, table, ids, n, dim, vocab);
  if (s || n == 0 || dim == 0) return s;
  orx_cpu *cpu = orx_cpu_of(be);
  emb_job j = {.simd = cpu->simd, .out = out, .table = table, .ids = ids, .dim = dim};
  orx_cpu_parallel(cpu, n, dim, fwd_range, &j);
  return ONEREC_OK;
}

/* items are (group, column block) pairs */
static void bwd_range(void *arg, int64_t b, int64_t e) {
  const emb_job *j = arg;
  for (int64_t it = b; it < e; it++) {
    int64_t g = it / j->ncol, c = it % j->ncol;
    int64_t c0 = j->dim * c / j->ncol, c1 = j->dim * (c + 1) / j->ncol;
    for (int64_t p = j->start[g]; p < j->start[g + 1]; p++) {
      int64_t i = j->order[p];
      j->simd->axpy(j->out + (int64_t)j->ids[i] * j->dim + c0, j->table + i * j->dim + c0, c1 - c0,
                    1.0f);
    }
  }
}

onerec_status orx_cpu_embedding_bwd(orx_backend *be, float *dtable, const float *dout,
                                    const int32_t *ids, int64_t n, int64_t dim, int64_t vocab) {
  onerec_status s = check(be, "embedding_bwd", dtable, dout, ids, n, dim, vocab);
  if (s || n == 0 || dim == 0 || vocab == 0) return s;
  orx_cpu *cpu = orx_cpu_of(be);
  int64_t ngroups = 8 * (int64_t)cpu->threads;
  if (ngroups > vocab) ngroups = vocab;
  if (cpu->threads == 1 || (double)n * (double)dim < ORX_CPU_PARALLEL_MIN) ngroups = 1;
  if (ngroups == 1) {
    for (int64_t i = 0; i < n; i++)
      if (ids[i] >= 0) cpu->simd->axpy(dtable + (int64_t)ids[i] * dim, dout + i * dim, dim, 1.0f);
    return ONEREC_OK;
  }
  int64_t *start = orx_cpu_alloc(be, ((size_t)ngroups + 1 + (size_t)n) * sizeof *start);
  if (!start) return ORX_CPU_FAIL(be, ONEREC_ERR_OUT_OF_MEMORY, "embedding_bwd: out of memory");
  int64_t *order = start + ngroups + 1;
  /* counting sort of the rows by group (negative ids dropped), stable */
  memset(start, 0, ((size_t)ngroups + 1) * sizeof *start);
  for (int64_t i = 0; i < n; i++)
    if (ids[i] >= 0) start[(int64_t)ids[i] * ngroups / vocab + 1]++;
  for (int64_t g = 0; g < ngroups; g++) start[g + 1] += start[g];
  for (int64_t i = 0; i < n; i++)
    if (ids[i] >= 0) order[start[(int64_t)ids[i] * ngroups / vocab]++] = i;
  /* the scatter advanced every start[g] to the end of group g: shift back */
  for (int64_t g = ngroups; g > 0; g--) start[g] = start[g - 1];
  start[0] = 0;
  int64_t ncol = (dim + COLS - 1) / COLS;
  if (ncol > 4) ncol = 4;
  emb_job j = {.simd = cpu->simd,
               .out = dtable,
               .table = dout,
               .ids = ids,
               .dim = dim,
               .start = start,
               .order = order,
               .ncol = ncol};
  orx_cpu_parallel(cpu, ngroups * ncol, n * dim / (ngroups * ncol) + 1, bwd_range, &j);
  orx_cpu_free(be, start);
  return ONEREC_OK;
}
