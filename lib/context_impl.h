/* The context's internals, shared by lib/ sources (never installed). */
#ifndef ORX_CONTEXT_IMPL_H
#define ORX_CONTEXT_IMPL_H

#include "backend.h"
#include "error.h"
#include "onerec/context.h"

struct onerec_context {
  onerec_allocator alloc;
  int threads;
  int device;
  uint64_t seed;
  onerec_log_fn log_fn;
  void *log_user;
  onerec_log_level log_level;
  orx_backend be;
  void *plugin; /* dlopen handle of the backend plugin, NULL for cpu */
};

/* Host memory through the context's allocator (64-byte aligned). */
void *orx_host_alloc(const onerec_context *ctx, size_t bytes);
void orx_host_free(const onerec_context *ctx, void *ptr);

/* Logs through the context's callback if the level is enabled. */
void orx_log(const onerec_context *ctx, onerec_log_level level, const char *fmt, ...)
    ORX_PRINTF(3, 4);

/* Copies a caller's options struct (which begins with size_t sz) into `dst` (dst_size bytes,
 * pre-filled with defaults): reads only the bytes sz covers, and rejects sz that is too small
 * to hold sz itself or unknown non-zero bytes past the fields this build knows. */
onerec_status orx_opts_read(void *dst, size_t dst_size, const void *src, const char *what);

/* Opens backend plugin `name` and creates its backend instance. On failure returns
 * ONEREC_ERR_BACKEND_UNAVAILABLE with the reason in why. */
onerec_status orx_plugin_create(const char *name, const orx_backend_params *params,
                                orx_backend *out, void **handle, char *why, size_t why_len);
void orx_plugin_close(void *handle);

#endif
