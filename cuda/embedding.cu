/* Embedding gather (forward) and scatter-add (backward).
 *
 * The backward is deterministic, with no atomics: the (id, position) pairs are sorted by id with
 * CUB's stable radix sort, then one block per run of equal ids adds that run's rows in position
 * order, starting from the table's current value. That is the same sequence of float additions
 * as a sequential loop over positions, so results are bit-identical to the CPU reference and from
 * run to run. (A run of one very frequent id is summed by a single block; fine for token and
 * item tables, where the id distribution is spread.) */
#include <cub/device/device_radix_sort.cuh>

#include "kernel_util.h"

/* Rejects ids >= vocab before anything is written (the first offending position is reported). */
__global__ void k_check_ids(unsigned long long *bad, const int32_t *ids, int64_t n,
                            int64_t vocab) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    if (ids[i] >= vocab) orx_mark_bad(bad, i);
}

__global__ void k_embedding_fwd(float *out, const float *table, const int32_t *ids, int64_t n,
                                int64_t dim, int64_t vocab) {
  int64_t total = n * dim;
  for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total;
       t += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = t / dim, j = t - i * dim;
    int32_t id = ids[i];
    out[t] = (id >= 0 && id < vocab) ? table[(int64_t)id * dim + j] : 0.0f;
  }
}

/* Sort keys: the id, or vocab for a negative (absent) id so that those sort last. */
__global__ void k_embedding_keys(uint32_t *keys, int32_t *pos, const int32_t *ids, int64_t n,
                                 int64_t vocab) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    int32_t id = ids[i];
    keys[i] = id < 0 ? (uint32_t)vocab : (uint32_t)id;
    pos[i] = (int32_t)i;
  }
}

/* Block p (x) and column slice (y): if p starts a run of equal ids, add the run's rows. */
__global__ void k_embedding_runs(float *dtable, const float *dout, const uint32_t *keys,
                                 const int32_t *pos, int64_t n, int64_t dim, int64_t vocab) {
  int64_t p = blockIdx.x;
  uint32_t key = keys[p];
  if (key >= (uint64_t)vocab || (p > 0 && keys[p - 1] == key)) return;
  int64_t j = (int64_t)blockIdx.y * blockDim.x + threadIdx.x;
  if (j >= dim) return;
  float *dst = dtable + (int64_t)key * dim + j;
  float acc = *dst;
  for (int64_t q = p; q < n && keys[q] == key; q++) acc += dout[(int64_t)pos[q] * dim + j];
  *dst = acc;
}

static onerec_status check_args(orx_backend *be, const char *op, const void *dst,
                                const void *src, const int32_t *ids, int64_t n, int64_t dim,
                                int64_t vocab) {
  if (n < 0 || dim < 0 || vocab < 0 || vocab > INT32_MAX || n > INT32_MAX)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "%s: n=%lld dim=%lld vocab=%lld", op,
                         (long long)n, (long long)dim, (long long)vocab);
  if (n > 0 && dim > 0 && (!dst || !src || !ids))
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: NULL buffer", op);
  return ONEREC_OK;
}

/* Reads the marker the check kernel set and turns it into a message naming the id. */
static onerec_status report_bad_id(orx_backend *be, const char *op, const int32_t *ids,
                                   int64_t vocab) {
  int64_t pos;
  onerec_status s = orx_cuda_bad_read(be, op, &pos);
  if (s || pos < 0) return s;
  int32_t id = 0;
  s = orx_cuda_check(be, cudaMemcpy(&id, ids + pos, sizeof id, cudaMemcpyDeviceToHost), op,
                     "cudaMemcpy");
  if (s) return s;
  return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: ids[%lld] = %d >= vocab %lld", op,
                       (long long)pos, (int)id, (long long)vocab);
}

onerec_status orx_cuda_embedding_fwd(orx_backend *be, float *out, const float *table,
                                     const int32_t *ids, int64_t n, int64_t dim, int64_t vocab) {
  const char *op = "embedding_fwd";
  onerec_status s = check_args(be, op, out, table, ids, n, dim, vocab);
  if (s || n == 0 || dim == 0) return s;
  if ((s = orx_cuda_enter(be, op)) || (s = orx_cuda_bad_reset(be, op))) return s;
  cudaStream_t st = orx_cuda_of(be)->stream;
  k_check_ids<<<orx_cuda_blocks(n, 256), 256, 0, st>>>(orx_cuda_of(be)->bad, ids, n, vocab);
  k_embedding_fwd<<<orx_cuda_blocks(n * dim, 256), 256, 0, st>>>(out, table, ids, n, dim, vocab);
  if ((s = orx_cuda_launched(be, op))) return s;
  return report_bad_id(be, op, ids, vocab);
}

onerec_status orx_cuda_embedding_bwd(orx_backend *be, float *dtable, const float *dout,
                                     const int32_t *ids, int64_t n, int64_t dim, int64_t vocab) {
  const char *op = "embedding_bwd";
  onerec_status s = check_args(be, op, dtable, dout, ids, n, dim, vocab);
  if (s || n == 0 || dim == 0) return s;
  if ((s = orx_cuda_enter(be, op)) || (s = orx_cuda_bad_reset(be, op))) return s;
  orx_cuda *cu = orx_cuda_of(be);
  cudaStream_t st = cu->stream;
  k_check_ids<<<orx_cuda_blocks(n, 256), 256, 0, st>>>(cu->bad, ids, n, vocab);
  if ((s = orx_cuda_launched(be, op)) || (s = report_bad_id(be, op, ids, vocab))) return s;

  /* keys in [0, vocab]: sort only the bits that can be set */
  int end_bit = 1;
  while (end_bit < 32 && ((uint64_t)vocab >> end_bit) != 0) end_bit++;
  int num = (int)n;
  size_t temp = 0;
  cudaError_t e = cub::DeviceRadixSort::SortPairs(nullptr, temp, (uint32_t *)nullptr,
                                                  (uint32_t *)nullptr, (int32_t *)nullptr,
                                                  (int32_t *)nullptr, num, 0, end_bit, st);
  if ((s = orx_cuda_check(be, e, op, "cub::DeviceRadixSort (size query)"))) return s;
  size_t pairs = ((size_t)n * 4 + 255) & ~(size_t)255; /* each of the 4 arrays, 256-aligned */
  char *buf = NULL;
  e = cudaMallocAsync((void **)&buf, 4 * pairs + temp, st);
  if ((s = orx_cuda_check(be, e, op, "cudaMallocAsync"))) return s;
  uint32_t *keys_in = (uint32_t *)buf, *keys = (uint32_t *)(buf + pairs);
  int32_t *pos_in = (int32_t *)(buf + 2 * pairs), *pos = (int32_t *)(buf + 3 * pairs);
  k_embedding_keys<<<orx_cuda_blocks(n, 256), 256, 0, st>>>(keys_in, pos_in, ids, n, vocab);
  s = orx_cuda_launched(be, op);
  if (s == ONEREC_OK) {
    e = cub::DeviceRadixSort::SortPairs(buf + 4 * pairs, temp, keys_in, keys, pos_in, pos, num, 0,
                                        end_bit, st);
    s = orx_cuda_check(be, e, op, "cub::DeviceRadixSort");
  }
  if (s == ONEREC_OK) {
    int threads = dim >= 256 ? 256 : (int)((dim + 31) / 32 * 32);
    dim3 grid((unsigned)n, (unsigned)((dim + threads - 1) / threads));
    if (grid.y > 65535)
      s = ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "%s: dim=%lld too large", op, (long long)dim);
    else {
      k_embedding_runs<<<grid, threads, 0, st>>>(dtable, dout, keys, pos, n, dim, vocab);
      s = orx_cuda_launched(be, op);
    }
  }
  /* stream-ordered: freed once the kernels above are done with it */
  onerec_status fs = orx_cuda_check(be, cudaFreeAsync(buf, st), op, "cudaFreeAsync");
  return s ? s : fs;
}
