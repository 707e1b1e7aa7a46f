/* A stand-in backend plugin, built as libonerec-cuda.so.0 in a folder of its own, so the plugin
 * loader can be tested on machines without CUDA. FAKE_PLUGIN_MODE picks its behaviour:
 *   ok (default)  a working backend with host memory and no compute ops
 *   fail          the entry point refuses with a reason (like "no CUDA device")
 *   version       it returns a table built for another API version
 *   refuse-api    it refuses the core's API version, as a stale plugin should */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

static void fake_destroy(orx_backend *be) { (void)be; }
static void *fake_alloc(orx_backend *be, size_t n) {
  (void)be;
  void *p = NULL;
  return posix_memalign(&p, 64, n ? n : 1) == 0 ? p : NULL;
}
static void fake_free(orx_backend *be, void *p) {
  (void)be;
  free(p);
}
static onerec_status fake_copy(orx_backend *be, void *d, const void *s, size_t n,
                               orx_copy_kind k) {
  (void)be;
  (void)k;
  memmove(d, s, n);
  return ONEREC_OK;
}
static onerec_status fake_memset0(orx_backend *be, void *d, size_t n) {
  (void)be;
  memset(d, 0, n);
  return ONEREC_OK;
}

static orx_backend_ops g_ops = {
    .api_version = ORX_BACKEND_API_VERSION,
    .name = "cuda",
    .destroy = fake_destroy,
    .alloc = fake_alloc,
    .free = fake_free,
    .copy = fake_copy,
    .memset0 = fake_memset0,
};

__attribute__((visibility("default"))) onerec_status onerec_backend_plugin_entry(
    uint32_t api_version, const orx_backend_params *params, orx_backend *out, char *why,
    size_t why_len) {
  (void)params;
  const char *mode = getenv("FAKE_PLUGIN_MODE");
  mode = mode ? mode : "ok";
  if (!strcmp(mode, "refuse-api") || api_version != ORX_BACKEND_API_VERSION) {
    snprintf(why, why_len, "fake plugin built for backend API %u, core offers %u",
             ORX_BACKEND_API_VERSION + 1, api_version);
    return ONEREC_ERR_VERSION;
  }
  if (!strcmp(mode, "fail")) {
    snprintf(why, why_len, "no CUDA device (fake plugin)");
    return ONEREC_ERR_BACKEND_UNAVAILABLE;
  }
  g_ops.api_version = !strcmp(mode, "version") ? ORX_BACKEND_API_VERSION + 7 : ORX_BACKEND_API_VERSION;
  out->ops = &g_ops;
  out->impl = NULL;
  return ONEREC_OK;
}
