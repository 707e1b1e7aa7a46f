/* Batched strided matmul on cuBLAS. cuBLAS is column-major and our matrices are row-major; a
 * row-major X (r x c, pitch ld) is, read column-major, X^T (c x r, same ld). So the row-major
 * product C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: operands
 * swapped, transposition flags kept, m and n swapped. Stride 0 (broadcast) passes through:
 * cuBLAS allows it for A and B. */
#include "cuda_impl.h"

static inline cublasOperation_t op_of(int trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

onerec_status orx_cuda_matmul(orx_backend *be, const orx_matmul_args *a) {
  if (!a) return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "matmul: args is NULL");
  if (a->batch < 1 || a->m < 1 || a->n < 1 || a->k < 1)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "matmul: batch=%lld m=%lld n=%lld k=%lld",
                         (long long)a->batch, (long long)a->m, (long long)a->n,
                         (long long)a->k);
  int64_t ac = a->trans_a ? a->m : a->k, bc = a->trans_b ? a->k : a->n;
  if (a->lda < ac || a->ldb < bc || a->ldc < a->n)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "matmul: lda=%lld ldb=%lld ldc=%lld too small",
                         (long long)a->lda, (long long)a->ldb, (long long)a->ldc);
  if (a->m > INT32_MAX || a->n > INT32_MAX || a->k > INT32_MAX || a->lda > INT32_MAX ||
      a->ldb > INT32_MAX || a->ldc > INT32_MAX || a->batch > INT32_MAX)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "matmul: dimension exceeds the BLAS int range");
  if (a->stride_a < 0 || a->stride_b < 0 || a->stride_c < 0)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE, "matmul: negative batch stride");
  if (!a->a || !a->b || !a->c)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "matmul: NULL operand");
  if (a->dtype != ONEREC_F32 && a->dtype != ONEREC_BF16)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_DTYPE, "matmul: dtype %s not supported",
                         orx_cuda_dtype_name(a->dtype));
  onerec_status s = orx_cuda_enter(be, "matmul");
  if (s) return s;

  cublasHandle_t h = orx_cuda_of(be)->blas;
  int M = (int)a->n, N = (int)a->m, K = (int)a->k;
  cublasStatus_t bs;
  if (a->dtype == ONEREC_F32) {
    bs = cublasSgemmStridedBatched(h, op_of(a->trans_b), op_of(a->trans_a), M, N, K, &a->alpha,
                                   (const float *)a->b, (int)a->ldb, a->stride_b,
                                   (const float *)a->a, (int)a->lda, a->stride_a, &a->beta, a->c,
                                   (int)a->ldc, a->stride_c, (int)a->batch);
  } else {
    /* bf16 inputs, f32 accumulation and output (tensor cores) */
    bs = cublasGemmStridedBatchedEx(h, op_of(a->trans_b), op_of(a->trans_a), M, N, K, &a->alpha,
                                    a->b, CUDA_R_16BF, (int)a->ldb, a->stride_b, a->a,
                                    CUDA_R_16BF, (int)a->lda, a->stride_a, &a->beta, a->c,
                                    CUDA_R_32F, (int)a->ldc, a->stride_c, (int)a->batch,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  }
  if (bs != CUBLAS_STATUS_SUCCESS) {
    (void)cudaGetLastError();
    return ORX_CUDA_FAIL(be, bs == CUBLAS_STATUS_ALLOC_FAILED ? ONEREC_ERR_OUT_OF_MEMORY
                                                             : ONEREC_ERR_DEVICE,
                         "matmul: cuBLAS (%s, m=%lld n=%lld k=%lld batch=%lld): %s",
                         orx_cuda_dtype_name(a->dtype), (long long)a->m, (long long)a->n,
                         (long long)a->k, (long long)a->batch, cublasGetStatusString(bs));
  }
  return ONEREC_OK;
}
