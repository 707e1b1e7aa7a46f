/* Tensors: n-dimensional arrays (up to 4-D) that live on a context's device. Shapes and strides
 * are counted in elements; a fresh tensor is contiguous (row-major). Data moves between the
 * caller's host memory and the device only through copy_in / copy_out.
 *
 * Thread-safety: a tensor may be read by several threads at once; writes (copy_in) need
 * exclusive access. A tensor must be freed before its context. */
#ifndef ONEREC_TENSOR_H
#define ONEREC_TENSOR_H

#include "onerec/context.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ONEREC_MAX_DIMS 4

typedef struct onerec_tensor onerec_tensor;

/* Values pinned; appended only. */
typedef enum onerec_dtype {
  ONEREC_F32 = 0,  /* IEEE binary32 */
  ONEREC_BF16 = 1, /* bfloat16: the high half of a binary32 */
  ONEREC_I32 = 2   /* int32 (ids, targets) */
} onerec_dtype;

/* Bytes per element of dtype; 0 for a value that is not a dtype. */
ONEREC_API size_t onerec_dtype_size(onerec_dtype dtype);

/* The name of dtype ("f32", "bf16", "i32"); "unknown" otherwise. */
ONEREC_API const char *onerec_dtype_name(onerec_dtype dtype);

/* Creates a zero-filled contiguous tensor of `ndim` (1..4) dimensions on ctx's device.
 * shape[i] must be >= 1 and the total size must fit in memory.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_SHAPE (bad ndim or extent, overflow),
 * ONEREC_ERR_DTYPE, ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_tensor_create(onerec_context *ctx, onerec_dtype dtype, int ndim,
                                              const int64_t *shape, onerec_tensor **out);

/* Creates a tensor that views `src` with a different shape and strides (in elements) over the
 * same storage, starting `offset` elements into it. Every reachable element must lie inside the
 * storage of src. The view keeps the storage alive; free it like any tensor.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_SHAPE (out of bounds). */
ONEREC_API onerec_status onerec_tensor_view(onerec_tensor *src, int ndim, const int64_t *shape,
                                            const int64_t *strides, int64_t offset,
                                            onerec_tensor **out);

/* Frees a tensor (the storage goes when the last view of it is freed). NULL is a no-op. */
ONEREC_API void onerec_tensor_free(onerec_tensor *t);

/* Copies `bytes` bytes of host data into the tensor, element (0,0,..) first in row-major order
 * of its shape (strided tensors are scattered accordingly). bytes must equal
 * numel * dtype size. Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_SHAPE, ONEREC_ERR_DEVICE. */
ONEREC_API onerec_status onerec_tensor_copy_in(onerec_tensor *t, const void *host, size_t bytes);

/* Copies the tensor out to host memory in row-major order of its shape. bytes must be at least
 * numel * dtype size (ONEREC_ERR_BUFFER_TOO_SMALL otherwise). */
ONEREC_API onerec_status onerec_tensor_copy_out(const onerec_tensor *t, void *host, size_t bytes);

/* Shape queries. They return -1 / 0 / ONEREC_F32 for NULL or out-of-range arguments and never
 * fail loudly, so they can be used in expressions; check the handle first. */
ONEREC_API int onerec_tensor_ndim(const onerec_tensor *t);
ONEREC_API int64_t onerec_tensor_dim(const onerec_tensor *t, int axis);
ONEREC_API int64_t onerec_tensor_stride(const onerec_tensor *t, int axis);
ONEREC_API int64_t onerec_tensor_numel(const onerec_tensor *t);
ONEREC_API onerec_dtype onerec_tensor_dtype(const onerec_tensor *t);
/* The device name of the tensor's storage ("cpu" or "cuda"); NULL for NULL. */
ONEREC_API const char *onerec_tensor_device(const onerec_tensor *t);

#ifdef __cplusplus
}
#endif

#endif
