/* The context: which backend runs the work, with how many threads, which seed, where logs go and
 * how host memory is allocated. Every other handle is created from a context.
 *
 * Thread-safety: a context may be used by one thread at a time (its backend holds a thread pool
 * and scratch state). Create one context per serving thread, or serialise calls. */
#ifndef ONEREC_CONTEXT_H
#define ONEREC_CONTEXT_H

#include "onerec/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct onerec_context onerec_context;

typedef enum onerec_log_level {
  ONEREC_LOG_ERROR = 0,
  ONEREC_LOG_WARN = 1,
  ONEREC_LOG_INFO = 2,
  ONEREC_LOG_DEBUG = 3
} onerec_log_level;

/* Receives library log messages (one line, no trailing newline). Called on the thread that made
 * the libonerec call. Without a callback the library is silent: it never writes to stdout or
 * stderr on its own. */
typedef void (*onerec_log_fn)(void *user, onerec_log_level level, const char *message);

/* Optional host allocator. alloc must return memory aligned to `align` (a power of two, at most
 * 4096) or NULL; free receives pointers from alloc (never NULL). Both must be thread-safe if the
 * context's handles are used from several threads. */
typedef struct onerec_allocator {
  void *(*alloc)(void *user, size_t size, size_t align);
  void (*free)(void *user, void *ptr);
  void *user;
} onerec_allocator;

typedef struct onerec_context_opts {
  size_t sz;               /* sizeof(onerec_context_opts); set by ONEREC_OPTS */
  const char *backend;     /* "auto" (default: cuda if usable, else cpu), "cpu" or "cuda" */
  int threads;             /* CPU worker threads; 0 = number of online CPUs; at most 1024 */
  uint64_t seed;           /* seed for everything random made through this context */
  onerec_log_fn log_fn;    /* NULL = no logging */
  void *log_user;          /* passed to log_fn */
  onerec_log_level log_level; /* most verbose level delivered (default ERROR) */
  const onerec_allocator *allocator; /* NULL = malloc; copied at create time */
  int device;              /* GPU ordinal for the cuda backend (default 0) */
} onerec_context_opts;

/* Creates a context. opts may be NULL for defaults. Asking for "cuda" where the CUDA plugin
 * cannot be loaded, or no GPU is present, fails with ONEREC_ERR_BACKEND_UNAVAILABLE and a
 * last-error message that says why; "auto" falls back to the CPU backend (logged at INFO).
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL out, bad sz, unknown backend name, bad threads,
 * incomplete allocator, non-zero bytes past the known fields), ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_context_create(const onerec_context_opts *opts,
                                               onerec_context **out);

/* Frees a context. NULL is a no-op. Every handle made from it must be freed first. */
ONEREC_API void onerec_context_free(onerec_context *ctx);

/* The name of the backend the context runs on ("cpu" or "cuda"); NULL if ctx is NULL. */
ONEREC_API const char *onerec_context_backend(const onerec_context *ctx);

/* The number of CPU worker threads of the context; -1 if ctx is NULL. */
ONEREC_API int onerec_context_threads(const onerec_context *ctx);

/* The seed the context was created with, through *out. */
ONEREC_API onerec_status onerec_context_seed(const onerec_context *ctx, uint64_t *out);

/* Reports whether backend `name` ("cpu" or "cuda") can be used on this machine, without creating
 * a context. Returns ONEREC_OK if usable, ONEREC_ERR_BACKEND_UNAVAILABLE if not, with the reason
 * written to why (NUL-terminated, truncated to why_len) when why is not NULL.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT for a NULL or unknown name. */
ONEREC_API onerec_status onerec_backend_probe(const char *name, char *why, size_t why_len);

/* The CPU instruction set the CPU kernels use on this machine: "avx512", "avx2" or "scalar"
 * (the environment variable ONEREC_CPU_ISA may lower it). Never NULL; thread-safe. */
ONEREC_API const char *onerec_cpu_isa(void);

#ifdef __cplusplus
}
#endif

#endif
