#include <string.h>

#include "tensor_impl.h"

ONEREC_API size_t onerec_dtype_size(onerec_dtype dtype) {
  switch (dtype) {
    case ONEREC_F32: return 4;
    case ONEREC_BF16: return 2;
    case ONEREC_I32: return 4;
    default: return 0;
  }
}

ONEREC_API const char *onerec_dtype_name(onerec_dtype dtype) {
  switch (dtype) {
    case ONEREC_F32: return "f32";
    case ONEREC_BF16: return "bf16";
    case ONEREC_I32: return "i32";
    default: return "unknown";
  }
}

/* Validates ndim/shape and returns the element count through *numel. */
static onerec_status check_shape(const char *fn, int ndim, const int64_t *shape, int64_t *numel) {
  if (ndim < 1 || ndim > ONEREC_MAX_DIMS)
    return orx_fail(ONEREC_ERR_SHAPE, "%s: ndim = %d (expected 1..%d)", fn, ndim,
                    ONEREC_MAX_DIMS);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 1)
      return orx_fail(ONEREC_ERR_SHAPE, "%s: shape[%d] = %lld (expected >= 1)", fn, i,
                      (long long)shape[i]);
    if (n > INT64_MAX / 16 / shape[i])
      return orx_fail(ONEREC_ERR_SHAPE, "%s: tensor size overflows", fn);
    n *= shape[i];
  }
  *numel = n;
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_tensor_create(onerec_context *ctx, onerec_dtype dtype, int ndim,
                                              const int64_t *shape, onerec_tensor **out) {
  static const char fn[] = "onerec_tensor_create";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(ctx, fn);
  ORX_CHECK_ARG(shape, fn);
  size_t es = onerec_dtype_size(dtype);
  if (!es) return orx_fail(ONEREC_ERR_DTYPE, "%s: dtype %d is not a dtype", fn, (int)dtype);
  int64_t numel;
  onerec_status s = check_shape(fn, ndim, shape, &numel);
  if (s) return s;
  size_t bytes = (size_t)numel * es;
  orx_storage *st = orx_host_alloc(ctx, sizeof *st);
  onerec_tensor *t = orx_host_alloc(ctx, sizeof *t);
  void *data = (st && t) ? ctx->be.ops->alloc(&ctx->be, bytes) : NULL;
  if (!data) {
    orx_host_free(ctx, st);
    orx_host_free(ctx, t);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes on %s", fn, bytes,
                    ctx->be.ops->name);
  }
  s = ctx->be.ops->memset0(&ctx->be, data, bytes);
  if (s) {
    ctx->be.ops->free(&ctx->be, data);
    orx_host_free(ctx, st);
    orx_host_free(ctx, t);
    return s;
  }
  st->ctx = ctx;
  st->data = data;
  st->bytes = bytes;
  atomic_init(&st->refs, 1);
  memset(t, 0, sizeof *t);
  t->storage = st;
  t->dtype = dtype;
  t->ndim = ndim;
  int64_t stride = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    t->shape[i] = shape[i];
    t->strides[i] = stride;
    stride *= shape[i];
  }
  *out = t;
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_tensor_view(onerec_tensor *src, int ndim, const int64_t *shape,
                                            const int64_t *strides, int64_t offset,
                                            onerec_tensor **out) {
  static const char fn[] = "onerec_tensor_view";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(src, fn);
  ORX_CHECK_ARG(shape, fn);
  ORX_CHECK_ARG(strides, fn);
  int64_t numel;
  onerec_status s = check_shape(fn, ndim, shape, &numel);
  if (s) return s;
  int64_t cap = (int64_t)(src->storage->bytes / onerec_dtype_size(src->dtype));
  if (offset < 0 || offset >= cap)
    return orx_fail(ONEREC_ERR_SHAPE, "%s: offset %lld outside storage of %lld elements", fn,
                    (long long)offset, (long long)cap);
  int64_t last = offset;
  for (int i = 0; i < ndim; i++) {
    if (strides[i] < 0 || (strides[i] > 0 && (shape[i] - 1) > (cap - last) / strides[i]))
      return orx_fail(ONEREC_ERR_SHAPE,
                      "%s: axis %d (extent %lld, stride %lld) reaches outside the storage of "
                      "%lld elements",
                      fn, i, (long long)shape[i], (long long)strides[i], (long long)cap);
    last += (shape[i] - 1) * strides[i];
  }
  if (last >= cap)
    return orx_fail(ONEREC_ERR_SHAPE, "%s: view reaches element %lld of a storage of %lld", fn,
                    (long long)last, (long long)cap);
  onerec_context *ctx = src->storage->ctx;
  onerec_tensor *t = orx_host_alloc(ctx, sizeof *t);
  if (!t) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  memset(t, 0, sizeof *t);
  t->storage = src->storage;
  atomic_fetch_add(&t->storage->refs, 1);
  t->dtype = src->dtype;
  t->ndim = ndim;
  t->offset = offset;
  for (int i = 0; i < ndim; i++) {
    t->shape[i] = shape[i];
    t->strides[i] = strides[i];
  }
  *out = t;
  return ONEREC_OK;
}

ONEREC_API void onerec_tensor_free(onerec_tensor *t) {
  if (!t) return;
  orx_storage *st = t->storage;
  onerec_context *ctx = st->ctx;
  if (atomic_fetch_sub(&st->refs, 1) == 1) {
    ctx->be.ops->free(&ctx->be, st->data);
    orx_host_free(ctx, st);
  }
  orx_host_free(ctx, t);
}

int orx_tensor_is_contiguous(const onerec_tensor *t) {
  int64_t stride = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->strides[i] != stride) return 0;
    stride *= t->shape[i];
  }
  return 1;
}

ONEREC_API int64_t onerec_tensor_numel(const onerec_tensor *t) {
  if (!t) return 0;
  int64_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
  return n;
}

/* Moves data between host (row-major, packed) and a possibly strided tensor, one contiguous run
 * of the innermost axis per backend copy. */
static onerec_status transfer(const onerec_tensor *t, void *host, int to_device) {
  const orx_backend *be = &t->storage->ctx->be;
  size_t es = onerec_dtype_size(t->dtype);
  orx_copy_kind kind = to_device ? ORX_COPY_H2D : ORX_COPY_D2H;
  char *dev = orx_tensor_data(t);
  if (orx_tensor_is_contiguous(t)) {
    size_t bytes = (size_t)onerec_tensor_numel(t) * es;
    return to_device ? be->ops->copy((orx_backend *)be, dev, host, bytes, kind)
                     : be->ops->copy((orx_backend *)be, host, dev, bytes, kind);
  }
  int last = t->ndim - 1;
  int64_t run = t->strides[last] == 1 ? t->shape[last] : 1;
  int64_t runs = onerec_tensor_numel(t) / run;
  int64_t idx[ONEREC_MAX_DIMS] = {0};
  char *h = host;
  for (int64_t r = 0; r < runs; r++) {
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++) off += idx[i] * t->strides[i];
    char *d = dev + (size_t)off * es;
    onerec_status s = to_device ? be->ops->copy((orx_backend *)be, d, h, (size_t)run * es, kind)
                                : be->ops->copy((orx_backend *)be, h, d, (size_t)run * es, kind);
    if (s) return s;
    h += (size_t)run * es;
    /* advance the multi-index over the axes that are not covered by the run */
    for (int i = (run > 1 ? last - 1 : last); i >= 0; i--) {
      if (++idx[i] < t->shape[i]) break;
      idx[i] = 0;
    }
  }
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_tensor_copy_in(onerec_tensor *t, const void *host, size_t bytes) {
  static const char fn[] = "onerec_tensor_copy_in";
  ORX_CHECK_ARG(t, fn);
  ORX_CHECK_ARG(host, fn);
  size_t need = (size_t)onerec_tensor_numel(t) * onerec_dtype_size(t->dtype);
  if (bytes != need)
    return orx_fail(ONEREC_ERR_SHAPE, "%s: %zu bytes given, the %s tensor holds %zu", fn, bytes,
                    onerec_dtype_name(t->dtype), need);
  return transfer(t, (void *)host, 1);
}

ONEREC_API onerec_status onerec_tensor_copy_out(const onerec_tensor *t, void *host, size_t bytes) {
  static const char fn[] = "onerec_tensor_copy_out";
  ORX_CHECK_ARG(t, fn);
  ORX_CHECK_ARG(host, fn);
  size_t need = (size_t)onerec_tensor_numel(t) * onerec_dtype_size(t->dtype);
  if (bytes < need)
    return orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "%s: buffer of %zu bytes, tensor needs %zu", fn,
                    bytes, need);
  return transfer(t, host, 0);
}

ONEREC_API int onerec_tensor_ndim(const onerec_tensor *t) { return t ? t->ndim : -1; }

ONEREC_API int64_t onerec_tensor_dim(const onerec_tensor *t, int axis) {
  return (t && axis >= 0 && axis < t->ndim) ? t->shape[axis] : -1;
}

ONEREC_API int64_t onerec_tensor_stride(const onerec_tensor *t, int axis) {
  return (t && axis >= 0 && axis < t->ndim) ? t->strides[axis] : -1;
}

ONEREC_API onerec_dtype onerec_tensor_dtype(const onerec_tensor *t) {
  return t ? t->dtype : ONEREC_F32;
}

ONEREC_API const char *onerec_tensor_device(const onerec_tensor *t) {
  return t ? t->storage->ctx->be.ops->name : NULL;
}
