/* Loads backend plugins (libonerec-<name>.so.<major>) with dlopen, so libonerec itself never
 * links CUDA and loads on any machine. Search order: each directory of $ONEREC_BACKEND_PATH
 * (colon-separated), the directory holding libonerec itself, then the dynamic loader's own path. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "context_impl.h"

static int file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Tries one candidate path; a file that exists but fails to load is the interesting reason. */
static void *try_open(const char *path, int must_exist, char *why, size_t len, int *found) {
  if (must_exist && !file_exists(path)) return NULL;
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h) return h;
  const char *err = dlerror();
  if (must_exist || !*found) snprintf(why, len, "%s", err ? err : "dlopen failed");
  if (must_exist) *found = 1;
  return NULL;
}

static void *find_plugin(const char *file, char *why, size_t len) {
  char path[4096];
  int found = 0;
  snprintf(why, len, "%s not found (set ONEREC_BACKEND_PATH to the folder holding it)", file);
  const char *env = getenv("ONEREC_BACKEND_PATH");
  if (env && *env) {
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", env);
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
      snprintf(path, sizeof path, "%s/%s", d, file);
      void *h = try_open(path, 1, why, len, &found);
      if (h) return h;
    }
  }
  Dl_info info;
  if (dladdr((void *)&find_plugin, &info) && info.dli_fname) {
    const char *slash = strrchr(info.dli_fname, '/');
    if (slash) {
      snprintf(path, sizeof path, "%.*s/%s", (int)(slash - info.dli_fname), info.dli_fname, file);
      void *h = try_open(path, 1, why, len, &found);
      if (h) return h;
    }
  }
  if (!found) {
    void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (h) return h;
    const char *err = dlerror();
    if (err) snprintf(why, len, "%s", err);
  }
  return NULL;
}

onerec_status orx_plugin_create(const char *name, const orx_backend_params *params,
                                orx_backend *out, void **handle, char *why, size_t why_len) {
  char file[128];
  snprintf(file, sizeof file, "libonerec-%s.so.%d", name, ONEREC_VERSION_MAJOR);
  *handle = NULL;
  void *h = find_plugin(file, why, why_len);
  if (!h) return ONEREC_ERR_BACKEND_UNAVAILABLE;
  orx_backend_entry_fn entry;
  *(void **)&entry = dlsym(h, ORX_PLUGIN_ENTRY);
  if (!entry) {
    snprintf(why, why_len, "%s has no symbol %s (not a libonerec backend plugin?)", file,
             ORX_PLUGIN_ENTRY);
    dlclose(h);
    return ONEREC_ERR_BACKEND_UNAVAILABLE;
  }
  onerec_status s = entry(ORX_BACKEND_API_VERSION, params, out, why, why_len);
  if (s == ONEREC_OK && (!out->ops || out->ops->api_version != ORX_BACKEND_API_VERSION)) {
    snprintf(why, why_len, "%s implements backend API %u, this libonerec needs %u", file,
             out->ops ? out->ops->api_version : 0u, ORX_BACKEND_API_VERSION);
    if (out->ops && out->ops->destroy) out->ops->destroy(out);
    s = ONEREC_ERR_BACKEND_UNAVAILABLE;
  }
  if (s != ONEREC_OK) {
    dlclose(h);
    return ONEREC_ERR_BACKEND_UNAVAILABLE;
  }
  *handle = h;
  return ONEREC_OK;
}

void orx_plugin_close(void *handle) {
  if (handle) dlclose(handle);
}
