#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "context_impl.h"

static void *default_alloc(void *user, size_t size, size_t align) {
  (void)user;
  void *p = NULL;
  if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size ? size : 1) != 0)
    return NULL;
  return p;
}

static void default_free(void *user, void *ptr) {
  (void)user;
  free(ptr);
}

static const onerec_allocator k_default_allocator = {default_alloc, default_free, NULL};

void *orx_host_alloc(const onerec_context *ctx, size_t bytes) {
  return ctx->alloc.alloc(ctx->alloc.user, bytes, 64);
}

void orx_host_free(const onerec_context *ctx, void *ptr) {
  if (ptr) ctx->alloc.free(ctx->alloc.user, ptr);
}

static void vlog(const onerec_context *ctx, onerec_log_level level, const char *fmt, va_list ap) {
  if (!ctx->log_fn || level > ctx->log_level) return;
  char line[1024];
  vsnprintf(line, sizeof line, fmt, ap);
  ctx->log_fn(ctx->log_user, level, line);
}

void orx_log(const onerec_context *ctx, onerec_log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(ctx, level, fmt, ap);
  va_end(ap);
}

/* The shape plugins see: log_ctx is the context. */
static void params_log(void *log_ctx, onerec_log_level level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog((const onerec_context *)log_ctx, level, fmt, ap);
  va_end(ap);
}

static int online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
}

static orx_backend_params make_params(onerec_context *ctx) {
  orx_backend_params p = {sizeof p,    ctx->threads, ctx->device, &ctx->alloc,
                          orx_set_error, params_log, ctx};
  return p;
}

/* Creates backend `name` into ctx (cpu built in, others as plugins). */
static onerec_status open_backend(onerec_context *ctx, const char *name, char *why, size_t len) {
  orx_backend_params params = make_params(ctx);
  if (strcmp(name, "cpu") == 0) return orx_cpu_backend_create(&params, &ctx->be, why, len);
  return orx_plugin_create(name, &params, &ctx->be, &ctx->plugin, why, len);
}

ONEREC_API onerec_status onerec_context_create(const onerec_context_opts *opts,
                                               onerec_context **out) {
  ORX_CHECK_ARG(out, "onerec_context_create");
  *out = NULL;
  onerec_context_opts o;
  memset(&o, 0, sizeof o);
  o.sz = sizeof o;
  if (opts) {
    onerec_status s = orx_opts_read(&o, sizeof o, opts, "onerec_context_create");
    if (s) return s;
  }
  const char *backend = o.backend ? o.backend : "auto";
  if (strcmp(backend, "auto") && strcmp(backend, "cpu") && strcmp(backend, "cuda"))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_context_create: unknown backend '%.64s' (expected auto, cpu or cuda)",
                    backend);
  if (o.threads < 0 || o.threads > 1024)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_context_create: threads = %d (expected 0 for all CPUs, or 1..1024)",
                    o.threads);
  if (o.device < 0)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "onerec_context_create: device = %d < 0",
                    o.device);
  if ((unsigned)o.log_level > ONEREC_LOG_DEBUG)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "onerec_context_create: log_level = %d",
                    (int)o.log_level);
  const onerec_allocator *al = o.allocator ? o.allocator : &k_default_allocator;
  if (!al->alloc || !al->free)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_context_create: allocator needs both alloc and free");

  onerec_context *ctx = al->alloc(al->user, sizeof *ctx, 64);
  if (!ctx) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "onerec_context_create: out of memory");
  memset(ctx, 0, sizeof *ctx);
  ctx->alloc = *al;
  ctx->threads = o.threads ? o.threads : online_cpus();
  ctx->device = o.device;
  ctx->seed = o.seed;
  ctx->log_fn = o.log_fn;
  ctx->log_user = o.log_user;
  ctx->log_level = o.log_level;

  char why[512] = "";
  onerec_status s;
  if (strcmp(backend, "auto") == 0) {
    s = open_backend(ctx, "cuda", why, sizeof why);
    if (s != ONEREC_OK) {
      orx_log(ctx, ONEREC_LOG_INFO, "backend auto: using cpu (cuda unavailable: %s)", why);
      s = open_backend(ctx, "cpu", why, sizeof why);
    }
  } else {
    s = open_backend(ctx, backend, why, sizeof why);
  }
  if (s != ONEREC_OK) {
    al->free(al->user, ctx);
    return orx_fail(s, "onerec_context_create: backend '%s' unavailable: %s", backend, why);
  }
  orx_log(ctx, ONEREC_LOG_INFO, "context: backend %s, %d threads, seed %llu", ctx->be.ops->name,
          ctx->threads, (unsigned long long)ctx->seed);
  *out = ctx;
  return ONEREC_OK;
}

ONEREC_API void onerec_context_free(onerec_context *ctx) {
  if (!ctx) return;
  if (ctx->be.ops && ctx->be.ops->destroy) ctx->be.ops->destroy(&ctx->be);
  orx_plugin_close(ctx->plugin);
  onerec_allocator al = ctx->alloc;
  al.free(al.user, ctx);
}

ONEREC_API const char *onerec_context_backend(const onerec_context *ctx) {
  return ctx ? ctx->be.ops->name : NULL;
}

ONEREC_API int onerec_context_threads(const onerec_context *ctx) {
  return ctx ? ctx->threads : -1;
}

ONEREC_API onerec_status onerec_context_seed(const onerec_context *ctx, uint64_t *out) {
  ORX_CHECK_ARG(ctx, "onerec_context_seed");
  ORX_CHECK_ARG(out, "onerec_context_seed");
  *out = ctx->seed;
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_backend_probe(const char *name, char *why, size_t why_len) {
  ORX_CHECK_ARG(name, "onerec_backend_probe");
  if (why && why_len) why[0] = '\0';
  if (strcmp(name, "cpu") && strcmp(name, "cuda"))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_backend_probe: unknown backend '%.64s' (expected cpu or cuda)", name);
  ONEREC_OPTS(onerec_context_opts, o, .backend = name, .threads = 1);
  onerec_context *ctx = NULL;
  onerec_status s = onerec_context_create(&o, &ctx);
  if (s != ONEREC_OK) {
    if (why && why_len) snprintf(why, why_len, "%s", onerec_last_error());
    return s == ONEREC_ERR_OUT_OF_MEMORY ? s : ONEREC_ERR_BACKEND_UNAVAILABLE;
  }
  onerec_context_free(ctx);
  return ONEREC_OK;
}
