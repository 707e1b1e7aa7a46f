/* The CUDA backend plugin's entry point (the only exported symbol, see cuda/plugin.map), its op
 * table, and the error helpers every op file uses.
 *
 * The core dlopen()s libonerec-cuda.so.N and calls onerec_backend_plugin_entry with the backend
 * API version it was built for. The plugin refuses any other version (the op table layout is the
 * contract), then checks for a usable device: on a machine with the CUDA libraries but no GPU it
 * loads fine and returns ONEREC_ERR_BACKEND_UNAVAILABLE with "no CUDA device: ...", so "auto"
 * falls back to the CPU with a reason the user can read. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>

#include "cuda_impl.h"

/* The exported name must be the one the core looks up. */
static constexpr bool same_str(const char *a, const char *b) {
  return *a == *b && (*a == '\0' || same_str(a + 1, b + 1));
}
static_assert(same_str(ORX_PLUGIN_ENTRY, "onerec_backend_plugin_entry"),
              "ORX_PLUGIN_ENTRY changed: rename the entry point and cuda/plugin.map");

static void say(char *why, size_t len, const char *fmt, ...) ORX_PRINTF(3, 4);
static void say(char *why, size_t len, const char *fmt, ...) {
  if (!why || !len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, len, fmt, ap);
  va_end(ap);
}

onerec_status orx_cuda_enter(orx_backend *be, const char *op) {
  /* The runtime's last error is per thread and may hold a failure of the host program's own
   * CUDA calls; cleared here so that the launch checks after this op report only its own. */
  (void)cudaGetLastError();
  int cur = -1;
  cudaError_t e = cudaGetDevice(&cur);
  if (e == cudaSuccess && cur == orx_cuda_of(be)->device) return ONEREC_OK;
  return orx_cuda_check(be, cudaSetDevice(orx_cuda_of(be)->device), op, "cudaSetDevice");
}

onerec_status orx_cuda_check(orx_backend *be, cudaError_t err, const char *op, const char *what) {
  if (err == cudaSuccess) return ONEREC_OK;
  (void)cudaGetLastError();
  onerec_status s = (err == cudaErrorMemoryAllocation) ? ONEREC_ERR_OUT_OF_MEMORY
                                                       : ONEREC_ERR_DEVICE;
  return ORX_CUDA_FAIL(be, s, "%s: %s: %s", op, what, cudaGetErrorString(err));
}

onerec_status orx_cuda_launched(orx_backend *be, const char *op) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return ONEREC_OK;
  return ORX_CUDA_FAIL(be, ONEREC_ERR_DEVICE, "%s: kernel launch failed: %s", op,
                       cudaGetErrorString(e));
}

onerec_status orx_cuda_bad_reset(orx_backend *be, const char *op) {
  orx_cuda *cu = orx_cuda_of(be);
  return orx_cuda_check(be, cudaMemsetAsync(cu->bad, 0xFF, sizeof *cu->bad, cu->stream), op,
                        "cudaMemsetAsync");
}

onerec_status orx_cuda_bad_read(orx_backend *be, const char *op, int64_t *pos) {
  orx_cuda *cu = orx_cuda_of(be);
  unsigned long long v = ~0ull;
  onerec_status s = orx_cuda_check(
      be, cudaMemcpyAsync(&v, cu->bad, sizeof v, cudaMemcpyDeviceToHost, cu->stream), op,
      "cudaMemcpyAsync");
  if (s == ONEREC_OK) s = orx_cuda_check(be, cudaStreamSynchronize(cu->stream), op, "kernel");
  *pos = (s == ONEREC_OK && v != ~0ull) ? (int64_t)v : -1;
  return s;
}

static orx_backend_ops make_ops(void) {
  orx_backend_ops o;
  memset(&o, 0, sizeof o); /* slots added to the table later stay NULL (= unsupported) */
  o.api_version = ORX_BACKEND_API_VERSION;
  o.name = "cuda";
  o.destroy = orx_cuda_destroy;
  o.alloc = orx_cuda_alloc;
  o.free = orx_cuda_free;
  o.copy = orx_cuda_copy;
  o.memset0 = orx_cuda_memset0;
  o.synchronize = orx_cuda_synchronize;
  o.convert = orx_cuda_convert;
  o.matmul = orx_cuda_matmul;
  o.rmsnorm_fwd = orx_cuda_rmsnorm_fwd;
  o.rmsnorm_bwd = orx_cuda_rmsnorm_bwd;
  o.softmax_fwd = orx_cuda_softmax_fwd;
  o.softmax_bwd = orx_cuda_softmax_bwd;
  o.attention_fwd = orx_cuda_attention_fwd;
  o.attention_bwd = orx_cuda_attention_bwd;
  o.swiglu_fwd = orx_cuda_swiglu_fwd;
  o.swiglu_bwd = orx_cuda_swiglu_bwd;
  o.leaky_relu_fwd = orx_cuda_leaky_relu_fwd;
  o.leaky_relu_bwd = orx_cuda_leaky_relu_bwd;
  o.embedding_fwd = orx_cuda_embedding_fwd;
  o.embedding_bwd = orx_cuda_embedding_bwd;
  o.cross_entropy = orx_cuda_cross_entropy;
  o.adamw = orx_cuda_adamw;
  o.axpy = orx_cuda_axpy;
  o.scale = orx_cuda_scale;
  o.add_bias = orx_cuda_add_bias;
  o.bias_bwd = orx_cuda_bias_bwd;
  o.sum_squares = orx_cuda_sum_squares;
  o.dropout = orx_cuda_dropout;
  o.moe_topk = orx_cuda_moe_topk;
  o.scale_rows = orx_cuda_scale_rows;
  o.scale_rows_bwd = orx_cuda_scale_rows_bwd;
  return o;
}

/* A kernel whose attributes tell whether this build has code the device can run (sm_90 SASS or
 * PTX it can JIT): without it every launch would fail with "no kernel image". */
__global__ void orx_cuda_probe_kernel(int *p) {
  if (p) *p = 0;
}

/* Releases what create() made so far (fields left NULL are skipped). */
static void release(orx_cuda *cu) {
  if (cu->bad) cudaFree(cu->bad);
  if (cu->partials) cudaFree(cu->partials);
  if (cu->blas) cublasDestroy(cu->blas);
  if (cu->stream) cudaStreamDestroy(cu->stream);
  (void)cudaGetLastError();
  cu->allocator->free(cu->allocator->user, cu);
}

static onerec_status create(const orx_backend_params *params, orx_backend *out, char *why,
                            size_t why_len) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    say(why, why_len, "no CUDA device: cudaGetDeviceCount: %s", cudaGetErrorString(e));
    return ONEREC_ERR_BACKEND_UNAVAILABLE;
  }
  if (count < 1) {
    say(why, why_len, "no CUDA device: cudaGetDeviceCount found none");
    return ONEREC_ERR_BACKEND_UNAVAILABLE;
  }
  int dev = params->device;
  if (dev < 0 || dev >= count) {
    say(why, why_len, "CUDA device %d requested, but only %d CUDA device%s present", dev, count,
        count == 1 ? " is" : "s are");
    return ONEREC_ERR_BACKEND_UNAVAILABLE;
  }
  if ((e = cudaSetDevice(dev)) != cudaSuccess) {
    (void)cudaGetLastError();
    say(why, why_len, "CUDA device %d: cudaSetDevice: %s", dev, cudaGetErrorString(e));
    return ONEREC_ERR_BACKEND_UNAVAILABLE;
  }
  cudaDeviceProp prop;
  if ((e = cudaGetDeviceProperties(&prop, dev)) != cudaSuccess) {
    (void)cudaGetLastError();
    say(why, why_len, "CUDA device %d: cudaGetDeviceProperties: %s", dev, cudaGetErrorString(e));
    return ONEREC_ERR_BACKEND_UNAVAILABLE;
  }
  cudaFuncAttributes fa;
  if ((e = cudaFuncGetAttributes(&fa, orx_cuda_probe_kernel)) != cudaSuccess) {
    (void)cudaGetLastError();
    say(why, why_len,
        "CUDA device %d (%s, compute capability %d.%d) cannot run this plugin's code (built for "
        "sm_90 and PTX 9.0; rebuild with CUDA_ARCH for this GPU): %s",
        dev, prop.name, prop.major, prop.minor, cudaGetErrorString(e));
    return ONEREC_ERR_BACKEND_UNAVAILABLE;
  }

  const onerec_allocator *al = params->allocator;
  orx_cuda *cu = (orx_cuda *)al->alloc(al->user, sizeof *cu, 64);
  if (!cu) {
    say(why, why_len, "out of memory");
    return ONEREC_ERR_OUT_OF_MEMORY;
  }
  memset(cu, 0, sizeof *cu);
  cu->device = dev;
  cu->sm_count = prop.multiProcessorCount;
  cu->allocator = al;
  cu->set_error = params->set_error;
  cu->log = params->log;
  cu->log_ctx = params->log_ctx;

  const char *step = "cudaStreamCreateWithFlags";
  /* Non-blocking: no implicit synchronisation with work the host program puts on the legacy
   * default stream. */
  e = cudaStreamCreateWithFlags(&cu->stream, cudaStreamNonBlocking);
  if (e == cudaSuccess) {
    step = "cudaMalloc";
    e = cudaMalloc((void **)&cu->bad, sizeof *cu->bad);
  }
  if (e == cudaSuccess)
    e = cudaMalloc((void **)&cu->partials, (ORX_CUDA_PARTIALS + 1) * sizeof(double));
  if (e != cudaSuccess) {
    say(why, why_len, "CUDA device %d: %s: %s", dev, step, cudaGetErrorString(e));
    release(cu);
    return ONEREC_ERR_BACKEND_UNAVAILABLE;
  }
  cublasStatus_t bs = cublasCreate(&cu->blas);
  if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetStream(cu->blas, cu->stream);
  /* Plain FP32 products (no TF32), so results track the CPU reference. */
  if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetMathMode(cu->blas, CUBLAS_DEFAULT_MATH);
  if (bs != CUBLAS_STATUS_SUCCESS) {
    say(why, why_len, "CUDA device %d: cuBLAS initialisation: %s", dev,
        cublasGetStatusString(bs));
    release(cu);
    return ONEREC_ERR_BACKEND_UNAVAILABLE;
  }

  static const orx_backend_ops ops = make_ops();
  out->ops = &ops;
  out->impl = cu;
  if (cu->log)
    cu->log(cu->log_ctx, ONEREC_LOG_INFO,
            "cuda: device %d %s, compute capability %d.%d, %d SMs, %.1f GiB", dev, prop.name,
            prop.major, prop.minor, prop.multiProcessorCount,
            (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
  return ONEREC_OK;
}

void orx_cuda_destroy(orx_backend *be) {
  orx_cuda *cu = orx_cuda_of(be);
  if (!cu) return;
  int cur = -1;
  if (cudaGetDevice(&cur) != cudaSuccess || cur != cu->device) cudaSetDevice(cu->device);
  cudaStreamSynchronize(cu->stream); /* errors here have nowhere to go: the context is ending */
  release(cu);
  be->impl = NULL;
}

/* Keeps this plugin (and with it the CUDA runtime and cuBLAS) loaded once it has been loaded:
 * the core dlclose()s it with each context, and reloading cuBLAS costs about half a second per
 * context; the CUDA libraries also keep state (libstdc++'s and the runtime's own allocations)
 * that does not survive being unmapped and mapped again cleanly. */
static bool pin_self(void) {
  Dl_info info;
  return dladdr((void *)&pin_self, &info) && info.dli_fname &&
         dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != NULL;
}

extern "C" __attribute__((visibility("default"))) onerec_status onerec_backend_plugin_entry(
    uint32_t api_version, const orx_backend_params *params, orx_backend *out, char *why,
    size_t why_len) {
  static const bool pinned = pin_self(); /* once, thread-safe (a C++ static) */
  (void)pinned;
  if (api_version != ORX_BACKEND_API_VERSION) {
    say(why, why_len,
        "libonerec-cuda implements backend API %u, the core offers %u (plugin and library come "
        "from different builds)",
        ORX_BACKEND_API_VERSION, api_version);
    return ONEREC_ERR_VERSION;
  }
  if (!params || !out || params->sz < sizeof *params || !params->allocator ||
      !params->set_error) {
    say(why, why_len, "libonerec-cuda: incomplete backend parameters");
    return ONEREC_ERR_BACKEND_UNAVAILABLE;
  }
  return create(params, out, why, why_len);
}

/* The entry point must keep the exact type the core calls it through. */
static_assert(std::is_same<decltype(&onerec_backend_plugin_entry), orx_backend_entry_fn>::value,
              "onerec_backend_plugin_entry does not match orx_backend_entry_fn");
