/* Batched strided matmul on OpenBLAS sgemm. OpenBLAS runs single-threaded (set when the backend
 * starts); the context's own pool splits the work, so thread count is the context's, serving
 * threads never oversubscribe the machine, and results do not depend on OpenBLAS's threading. */
#include <cblas.h>

#include "cpu_impl.h"

typedef struct gemm_job {
  const orx_matmul_args *a;
  const float *A, *B;    /* f32 operands (converted copies for bf16) */
  int64_t sa, sb;        /* batch strides of A, B as used */
  int64_t mchunk, nchunk; /* rows / columns of C per task */
  int64_t mtasks, ntasks;
} gemm_job;

static void gemm_task(void *arg, int64_t task) {
  const gemm_job *j = arg;
  const orx_matmul_args *a = j->a;
  int64_t per_batch = j->mtasks * j->ntasks;
  int64_t b = task / per_batch, r = task % per_batch;
  int64_t m0 = (r / j->ntasks) * j->mchunk, n0 = (r % j->ntasks) * j->nchunk;
  int64_t m = a->m - m0 < j->mchunk ? a->m - m0 : j->mchunk;
  int64_t n = a->n - n0 < j->nchunk ? a->n - n0 : j->nchunk;
  /* rows m0.. of op(A): A[m0, :] untransposed, A[:, m0] transposed; likewise columns of op(B) */
  const float *A = j->A + b * j->sa + (a->trans_a ? m0 : m0 * a->lda);
  const float *B = j->B + b * j->sb + (a->trans_b ? n0 * a->ldb : n0);
  float *C = a->c + b * a->stride_c + m0 * a->ldc + n0;
  cblas_sgemm(CblasRowMajor, a->trans_a ? CblasTrans : CblasNoTrans,
              a->trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)a->k,
              a->alpha, A, (blasint)a->lda, B, (blasint)a->ldb, a->beta, C, (blasint)a->ldc);
}

/* Widens a bf16 operand to f32 (the CPU path computes in f32). */
static float *widen_bf16(orx_backend *be, const uint16_t *src, int64_t n) {
  float *dst = orx_cpu_alloc(be, (size_t)n * sizeof(float));
  if (!dst) return NULL;
  for (int64_t i = 0; i < n; i++) {
    uint32_t bits = (uint32_t)src[i] << 16;
    __builtin_memcpy(&dst[i], &bits, 4);
  }
  return dst;
}

/* Elements spanned by a batched operand (rows x cols stored with pitch ld, batch stride s). */
static int64_t span(int64_t batch, int64_t s, int64_t rows, int64_t cols, int64_t ld) {
  return (batch - 1) * s + (rows - 1) * ld + cols;
}

onerec_status orx_cpu_matmul(orx_backend *be, const orx_matmul_args *a) {
  orx_cpu *cpu = orx_cpu_of(be);
  if (a->batch < 1 || a->m < 1 || a->n < 1 || a->k < 1)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "matmul: batch=%lld m=%lld n=%lld k=%lld",
                        (long long)a->batch, (long long)a->m, (long long)a->n, (long long)a->k);
  if (!a->a || !a->b || !a->c)
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "matmul: NULL operand");
  if (a->stride_a < 0 || a->stride_b < 0 || a->stride_c < 0 ||
      (a->batch > 1 && a->stride_c == 0))
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE,
                        "matmul: batch strides must be >= 0 (C's > 0 when batch > 1)");
  int64_t ar = a->trans_a ? a->k : a->m, ac = a->trans_a ? a->m : a->k;
  int64_t br = a->trans_b ? a->n : a->k, bc = a->trans_b ? a->k : a->n;
  if (a->lda < ac || a->ldb < bc || a->ldc < a->n)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "matmul: lda=%lld ldb=%lld ldc=%lld too small",
                        (long long)a->lda, (long long)a->ldb, (long long)a->ldc);
  if (a->m > INT32_MAX || a->n > INT32_MAX || a->k > INT32_MAX || a->lda > INT32_MAX ||
      a->ldb > INT32_MAX || a->ldc > INT32_MAX)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE, "matmul: dimension exceeds the BLAS int range");

  gemm_job j = {.a = a, .sa = a->stride_a, .sb = a->stride_b};
  float *wa = NULL, *wb = NULL;
  if (a->dtype == ONEREC_BF16) {
    wa = widen_bf16(be, a->a, span(a->batch, a->stride_a, ar, ac, a->lda));
    wb = widen_bf16(be, a->b, span(a->batch, a->stride_b, br, bc, a->ldb));
    if (!wa || !wb) {
      orx_cpu_free(be, wa);
      orx_cpu_free(be, wb);
      return ORX_CPU_FAIL(be, ONEREC_ERR_OUT_OF_MEMORY, "matmul: out of memory widening bf16");
    }
    j.A = wa;
    j.B = wb;
  } else if (a->dtype == ONEREC_F32) {
    j.A = a->a;
    j.B = a->b;
  } else {
    return ORX_CPU_FAIL(be, ONEREC_ERR_DTYPE, "matmul: dtype %s not supported",
                        onerec_dtype_name(a->dtype));
  }

  /* Work split: whole batch items when there are enough, else row blocks (column blocks for a
   * short, wide C), never below 32 rows/columns so sgemm keeps its efficiency. */
  int threads = cpu->threads;
  int64_t flops = 2 * a->batch * a->m * a->n * a->k;
  j.mchunk = a->m;
  j.nchunk = a->n;
  j.mtasks = j.ntasks = 1;
  if (threads > 1 && a->batch < threads && flops > (1 << 20)) {
    int64_t want = (threads + a->batch - 1) / a->batch;
    if (a->m >= a->n) {
      int64_t c = (a->m + want - 1) / want;
      j.mchunk = c < 32 ? 32 : c;
      j.mtasks = (a->m + j.mchunk - 1) / j.mchunk;
    } else {
      int64_t c = (a->n + want - 1) / want;
      j.nchunk = c < 32 ? 32 : c;
      j.ntasks = (a->n + j.nchunk - 1) / j.nchunk;
    }
  }
  int64_t tasks = a->batch * j.mtasks * j.ntasks;
  if (flops <= (1 << 20))
    orx_pool_run(NULL, tasks, gemm_task, &j); /* too small to be worth waking workers */
  else
    orx_pool_run(cpu->pool, tasks, gemm_task, &j);
  orx_cpu_free(be, wa);
  orx_cpu_free(be, wb);
  return ONEREC_OK;
}
