/* Tensor internals: a view (shape, strides, offset) over reference-counted storage. */
#ifndef ORX_TENSOR_IMPL_H
#define ORX_TENSOR_IMPL_H

#include <stdatomic.h>

#include "context_impl.h"
#include "onerec/tensor.h"

typedef struct orx_storage {
  onerec_context *ctx;
  void *data; /* device pointer of ctx's backend */
  size_t bytes;
  atomic_int refs;
} orx_storage;

struct onerec_tensor {
  orx_storage *storage;
  onerec_dtype dtype;
  int ndim;
  int64_t shape[ONEREC_MAX_DIMS];
  int64_t strides[ONEREC_MAX_DIMS];
  int64_t offset; /* in elements */
};

/* Device pointer of the tensor's first element. */
static inline void *orx_tensor_data(const onerec_tensor *t) {
  return (char *)t->storage->data + (size_t)t->offset * onerec_dtype_size(t->dtype);
}

/* 1 if the tensor is row-major contiguous. */
int orx_tensor_is_contiguous(const onerec_tensor *t);

#endif
