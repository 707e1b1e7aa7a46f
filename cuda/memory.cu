/* Device memory and transfers. Everything runs on the backend's one stream, so the ops that
 * follow a copy see its data without extra synchronisation; only copies into host memory wait
 * for the stream, because the caller reads the host buffer as soon as copy() returns. */
#include "cuda_impl.h"

void *orx_cuda_alloc(orx_backend *be, size_t bytes) {
  if (orx_cuda_enter(be, "alloc") != ONEREC_OK) return NULL;
  void *p = NULL;
  /* cudaMalloc returns 256-byte aligned memory; a zero-size request still gets a real pointer,
   * as the CPU backend's does. */
  cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess) {
    orx_cuda_check(be, e, "alloc", "cudaMalloc");
    return NULL;
  }
  return p;
}

void orx_cuda_free(orx_backend *be, void *ptr) {
  if (!ptr || orx_cuda_enter(be, "free") != ONEREC_OK) return;
  /* cudaFree waits for the device: work still queued that uses ptr completes first. */
  if (cudaFree(ptr) != cudaSuccess) (void)cudaGetLastError();
}

onerec_status orx_cuda_copy(orx_backend *be, void *dst, const void *src, size_t bytes,
                            orx_copy_kind kind) {
  if (bytes == 0) return ONEREC_OK;
  if (!dst || !src)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "copy: NULL %s",
                         dst ? "source" : "destination");
  cudaMemcpyKind k;
  switch (kind) {
    case ORX_COPY_H2D: k = cudaMemcpyHostToDevice; break;
    case ORX_COPY_D2H: k = cudaMemcpyDeviceToHost; break;
    case ORX_COPY_D2D: k = cudaMemcpyDeviceToDevice; break;
    default:
      return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "copy: unknown kind %d", (int)kind);
  }
  onerec_status s = orx_cuda_enter(be, "copy");
  if (s) return s;
  orx_cuda *cu = orx_cuda_of(be);
  /* From pageable host memory, cudaMemcpyAsync returns once the source has been staged, so the
   * caller may reuse it at once. */
  s = orx_cuda_check(be, cudaMemcpyAsync(dst, src, bytes, k, cu->stream), "copy",
                     "cudaMemcpyAsync");
  if (s == ONEREC_OK && kind == ORX_COPY_D2H)
    s = orx_cuda_check(be, cudaStreamSynchronize(cu->stream), "copy", "cudaStreamSynchronize");
  return s;
}

onerec_status orx_cuda_memset0(orx_backend *be, void *dst, size_t bytes) {
  if (bytes == 0) return ONEREC_OK;
  if (!dst) return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "memset0: NULL destination");
  onerec_status s = orx_cuda_enter(be, "memset0");
  if (s) return s;
  return orx_cuda_check(be, cudaMemsetAsync(dst, 0, bytes, orx_cuda_of(be)->stream), "memset0",
                        "cudaMemsetAsync");
}

onerec_status orx_cuda_synchronize(orx_backend *be) {
  onerec_status s = orx_cuda_enter(be, "synchronize");
  if (s) return s;
  /* Errors of kernels that ran asynchronously (an illegal address, say) surface here. */
  return orx_cuda_check(be, cudaStreamSynchronize(orx_cuda_of(be)->stream), "synchronize",
                        "cudaStreamSynchronize");
}
