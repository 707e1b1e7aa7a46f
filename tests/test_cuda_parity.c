/* CUDA backend parity (ggml test-backend-ops style): every op the cuda table implements runs on
 * the same random inputs as the CPU backend, the reference, and the results are compared by
 * normalised mean squared error (bit for bit where the op is exact). Where the CPU table leaves
 * an op empty, a naive host loop written from lib/backend.h's comments is the reference.
 *
 * Without a GPU (or without the plugin) the parity tests skip, printing why; the plugin-loading
 * test always runs: on a machine with the CUDA libraries but no GPU the plugin must load and
 * report "no CUDA device" rather than a loader error.
 *
 * ONEREC_REQUIRE_CUDA=1 turns the skip into a failure (GPU machines, tools/gpu-check.sh).
 * ONEREC_PARITY_DEVICE=cpu runs the harness with a second CPU context as the device under test
 * (a self-check of the harness and the naive references on machines without a GPU). */
#include <sys/stat.h>

#include "testutil.h"

#include "context_impl.h"

typedef struct parity {
  onerec_context *cpu, *dev;
  orx_backend *rb, *db; /* reference (cpu) and device-under-test backends */
  char why[512];
} parity;

static parity g;

static int setup(void **state) {
  (void)state;
  ONEREC_OPTS(onerec_context_opts, c, .backend = "cpu", .threads = 2, .seed = 1);
  if (onerec_context_create(&c, &g.cpu) != ONEREC_OK) return -1;
  g.rb = &g.cpu->be;
  const char *want = getenv("ONEREC_PARITY_DEVICE");
  want = want && *want ? want : "cuda";
  ONEREC_OPTS(onerec_context_opts, d, .backend = want, .threads = 2, .seed = 1);
  onerec_status s = onerec_context_create(&d, &g.dev);
  if (s == ONEREC_OK) {
    g.db = &g.dev->be;
    print_message("parity: device backend '%s' against cpu\n", g.db->ops->name);
    return 0;
  }
  snprintf(g.why, sizeof g.why, "%s", onerec_last_error());
  const char *req = getenv("ONEREC_REQUIRE_CUDA"); /* set on GPU machines (tools/gpu-check.sh) */
  if (s != ONEREC_ERR_BACKEND_UNAVAILABLE || (req && !strcmp(req, "1"))) {
    print_message("parity: device backend '%s' unavailable: %s\n", want, g.why);
    return -1;
  }
  print_message("parity tests skipped: %s\n", g.why);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  onerec_context_free(g.dev);
  onerec_context_free(g.cpu);
  memset(&g, 0, sizeof g);
  return 0;
}

/* Skips the test when there is no device, or when the device table leaves `op` empty. */
#define NEED(op)                                                                    \
  do {                                                                              \
    if (!g.db) skip();                                                              \
    if (!g.db->ops->op) {                                                           \
      print_message("%s: not implemented by %s, skipped\n", #op, g.db->ops->name);  \
      skip();                                                                       \
    }                                                                               \
  } while (0)

/* The reference runs on the CPU backend when it has the op. */
#define HAVE_CPU(op) (g.rb->ops->op != NULL)

/* ---- device buffers ---- */

static void *dput(const void *host, size_t bytes) {
  void *d = g.db->ops->alloc(g.db, bytes);
  assert_non_null(d);
  if (host)
    assert_ok(g.db->ops->copy(g.db, d, host, bytes, ORX_COPY_H2D));
  else
    assert_ok(g.db->ops->memset0(g.db, d, bytes));
  return d;
}

static void dget(void *host, const void *d, size_t bytes) {
  assert_ok(g.db->ops->copy(g.db, host, d, bytes, ORX_COPY_D2H));
}

static void dfree(void *d) { g.db->ops->free(g.db, d); }

static float *hrand(size_t n, uint64_t seed) {
  float *x = malloc((n ? n : 1) * sizeof *x);
  assert_non_null(x);
  tu_fill(x, n, seed);
  return x;
}

static float *hdup(const float *x, size_t n) {
  float *y = malloc((n ? n : 1) * sizeof *y);
  assert_non_null(y);
  if (n) memcpy(y, x, n * sizeof *y);
  return y;
}

/* Device copy of a host array of floats, run through the device and read back into out. */
static float *dputf(const float *x, size_t n) { return dput(x, n * sizeof *x); }
static void dgetf(float *out, const float *d, size_t n) { dget(out, d, n * sizeof *out); }

/* ---- comparisons ---- */

/* sum (a - b)^2 / sum b^2 (ggml's NMSE); NaN in one and not the other fails outright */
static void check_nmse(const char *what, const float *got, const float *want, size_t n,
                       double tol) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; i++) {
    if (isnan(got[i]) != isnan(want[i]))
      fail_msg("%s: element %zu: got %g, want %g", what, i, (double)got[i], (double)want[i]);
    if (isnan(got[i])) continue;
    double d = (double)got[i] - want[i];
    num += d * d;
    den += (double)want[i] * want[i];
  }
  double e = den > 0 ? num / den : num;
  if (!(e <= tol)) {
    size_t worst = 0;
    double wd = -1;
    for (size_t i = 0; i < n; i++) {
      double d = fabs((double)got[i] - want[i]);
      if (d > wd) {
        wd = d;
        worst = i;
      }
    }
    fail_msg("%s: NMSE %.3g > %.3g (worst element %zu: got %.8g, want %.8g)", what, e, tol,
             worst, (double)got[worst], (double)want[worst]);
  }
}

static void check_bits(const char *what, const void *got, const void *want, size_t bytes) {
  if (memcmp(got, want, bytes) != 0) {
    const unsigned char *a = got, *b = want;
    size_t i = 0;
    while (a[i] == b[i]) i++;
    fail_msg("%s: differs from the reference at byte %zu of %zu", what, i, bytes);
  }
}

/* Tolerances: f32 kernels differ from the CPU only in summation order and libm. */
static const double k_tol = 1e-10;
static const double k_tol_bwd = 1e-9;

/* ---- host helpers shared by the references ---- */

static uint16_t bf16_rne(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

static float bf16_to_f32(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static int32_t *rand_ids(size_t n, int64_t lo, int64_t hi, uint64_t seed) {
  int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
  assert_non_null(ids);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
  for (size_t i = 0; i < n; i++) {
    float r = (tu_rand(&s) + 1.0f) * 0.5f; /* [0, 1) */
    int64_t v = lo + (int64_t)(r * (float)(hi - lo));
    ids[i] = (int32_t)(v >= hi ? hi - 1 : v);
  }
  return ids;
}

/* ======================= tests that always run ======================= */

/* The plugin, when built, loads on this machine (its CUDA libraries resolve through its rpath)
 * and either works or says that there is no usable CUDA device. */
static void test_plugin_loads(void **state) {
  (void)state;
  const char *path = getenv("ONEREC_BACKEND_PATH");
  char file[4096] = "";
  if (path && *path) {
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path);
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d && !file[0]; d = strtok_r(NULL, ":", &save)) {
      char f[4096];
      struct stat st;
      snprintf(f, sizeof f, "%s/libonerec-cuda.so.%d", d, ONEREC_VERSION_MAJOR);
      if (stat(f, &st) == 0) snprintf(file, sizeof file, "%s", f);
    }
  }
  if (!file[0]) {
    print_message("cuda plugin not built in ONEREC_BACKEND_PATH (%s): `make cuda` first; "
                  "skipped\n", path ? path : "unset");
    skip();
  }
  char why[512] = "";
  onerec_status s = onerec_backend_probe("cuda", why, sizeof why);
  if (s == ONEREC_OK) {
    print_message("%s: loads, and a CUDA device is present\n", file);
    return;
  }
  assert_int_equal(s, ONEREC_ERR_BACKEND_UNAVAILABLE);
  print_message("%s: %s\n", file, why);
  /* the plugin itself answered (not the loader): its reason names the CUDA device */
  if (!strstr(why, "CUDA device"))
    fail_msg("probe failed for another reason than a missing CUDA device: %s", why);
  assert_null(strstr(why, "cannot open shared object"));
  assert_null(strstr(why, "undefined symbol"));
}

/* ======================= parity: memory and conversion ======================= */

static void test_copy_memset(void **state) {
  (void)state;
  NEED(copy);
  const size_t n = 1000;
  float *x = hrand(n, 1), *y = hrand(n, 2);
  float *d = dputf(x, n), *d2 = dput(NULL, n * sizeof(float));
  assert_ok(g.db->ops->copy(g.db, d2, d, n * sizeof(float), ORX_COPY_D2D));
  dgetf(y, d2, n);
  check_bits("copy d2d", y, x, n * sizeof *x);
  assert_ok(g.db->ops->memset0(g.db, d2 + 10, 5 * sizeof(float)));
  dgetf(y, d2, n);
  for (size_t i = 0; i < n; i++)
    assert_true(y[i] == (i >= 10 && i < 15 ? 0.0f : x[i]));
  assert_ok(g.db->ops->synchronize(g.db));
  dfree(d);
  dfree(d2);
  free(x);
  free(y);
}

static void test_convert(void **state) {
  (void)state;
  NEED(convert);
  const size_t n = 4099;
  float *x = hrand(n, 3);
  /* ties that round to even in both directions, and the special values */
  float special[] = {1.00390625f, 1.01171875f, -1.00390625f, 65504.0f, 3.4e38f, INFINITY,
                     -INFINITY, 0.0f, -0.0f, 1e-40f};
  memcpy(x, special, sizeof special);
  uint16_t *want = malloc(n * 2), *got = malloc(n * 2);
  float *back = malloc(n * 4), *wback = malloc(n * 4);
  assert_true(want && got && back && wback);
  for (size_t i = 0; i < n; i++) {
    want[i] = bf16_rne(x[i]);
    wback[i] = bf16_to_f32(want[i]);
  }
  float *dx = dputf(x, n);
  uint16_t *db = dput(NULL, n * 2);
  float *dy = dput(NULL, n * 4);
  assert_ok(g.db->ops->convert(g.db, db, ONEREC_BF16, dx, ONEREC_F32, (int64_t)n));
  dget(got, db, n * 2);
  check_bits("convert f32->bf16", got, want, n * 2);
  assert_ok(g.db->ops->convert(g.db, dy, ONEREC_F32, db, ONEREC_BF16, (int64_t)n));
  dgetf(back, dy, n);
  check_bits("convert bf16->f32", back, wback, n * 4);
  assert_ok(g.db->ops->convert(g.db, dy, ONEREC_F32, dx, ONEREC_F32, (int64_t)n));
  dgetf(back, dy, n);
  check_bits("convert f32->f32", back, x, n * 4);
  onerec_clear_error();
  assert_int_equal(g.db->ops->convert(g.db, dy, ONEREC_I32, dx, ONEREC_F32, 4), ONEREC_ERR_DTYPE);
  assert_true(onerec_last_error()[0] != '\0');
  dfree(dx);
  dfree(db);
  dfree(dy);
  free(x);
  free(want);
  free(got);
  free(back);
  free(wback);
}

/* ======================= parity: matmul ======================= */

typedef struct mm_case {
  int ta, tb;
  int64_t batch, m, n, k, pad;
  int bcast_b;
  float alpha, beta;
} mm_case;

static void run_matmul(const mm_case *c, onerec_dtype dt, double tol) {
  int64_t ar = c->ta ? c->k : c->m, ac = c->ta ? c->m : c->k;
  int64_t br = c->tb ? c->n : c->k, bc = c->tb ? c->k : c->n;
  int64_t lda = ac + c->pad, ldb = bc + c->pad, ldc = c->n + c->pad;
  int64_t sa = ar * lda, sb = c->bcast_b ? 0 : br * ldb, sc = c->m * ldc;
  size_t na = (size_t)(c->batch * sa), nb = (size_t)(c->bcast_b ? br * ldb : c->batch * sb);
  size_t nc = (size_t)(c->batch * sc);
  float *A = hrand(na, 11), *B = hrand(nb, 12), *C0 = hrand(nc, 13);
  float *want = hdup(C0, nc), *got = hdup(C0, nc);
  size_t es = dt == ONEREC_BF16 ? 2 : 4;
  void *Ah = A, *Bh = B;
  uint16_t *A16 = NULL, *B16 = NULL;
  if (dt == ONEREC_BF16) {
    A16 = malloc(na * 2);
    B16 = malloc(nb * 2);
    assert_true(A16 && B16);
    for (size_t i = 0; i < na; i++) A16[i] = bf16_rne(A[i]);
    for (size_t i = 0; i < nb; i++) B16[i] = bf16_rne(B[i]);
    Ah = A16;
    Bh = B16;
  }
  orx_matmul_args a = {.trans_a = c->ta, .trans_b = c->tb, .batch = c->batch, .m = c->m,
                       .n = c->n, .k = c->k, .a = Ah, .lda = lda, .stride_a = sa, .b = Bh,
                       .ldb = ldb, .stride_b = sb, .c = want, .ldc = ldc, .stride_c = sc,
                       .alpha = c->alpha, .beta = c->beta, .dtype = dt};
  assert_ok(g.rb->ops->matmul(g.rb, &a));
  void *dA = dput(Ah, na * es), *dB = dput(Bh, nb * es);
  float *dC = dputf(C0, nc);
  a.a = dA;
  a.b = dB;
  a.c = dC;
  assert_ok(g.db->ops->matmul(g.db, &a));
  dgetf(got, dC, nc);
  char what[160];
  snprintf(what, sizeof what, "matmul %s ta=%d tb=%d batch=%lld m=%lld n=%lld k=%lld%s",
           dt == ONEREC_BF16 ? "bf16" : "f32", c->ta, c->tb, (long long)c->batch,
           (long long)c->m, (long long)c->n, (long long)c->k, c->bcast_b ? " bcast" : "");
  check_nmse(what, got, want, nc, tol);
  /* the padding between rows is not C's: it must come back untouched */
  for (int64_t b = 0; b < c->batch; b++)
    for (int64_t r = 0; r < c->m; r++)
      for (int64_t j = c->n; j < ldc; j++) {
        size_t i = (size_t)(b * sc + r * ldc + j);
        if (got[i] != C0[i]) fail_msg("%s: wrote into row padding at %zu", what, i);
      }
  dfree(dA);
  dfree(dB);
  dfree(dC);
  free(A);
  free(B);
  free(C0);
  free(want);
  free(got);
  free(A16);
  free(B16);
}

static const mm_case k_mm_cases[] = {
    {0, 0, 1, 64, 48, 80, 0, 0, 1.0f, 0.0f},
    {0, 1, 1, 37, 19, 53, 3, 0, 1.0f, 0.0f},
    {1, 0, 2, 33, 65, 17, 1, 0, 0.5f, 1.0f},
    {1, 1, 3, 20, 31, 129, 0, 0, 1.0f, 0.25f},
    {0, 1, 4, 128, 96, 64, 0, 1, 1.0f, 0.0f}, /* one B for every batch item (weights) */
    {0, 0, 1, 1, 300, 200, 0, 0, 1.0f, 0.0f}, /* a single row */
    {1, 0, 1, 256, 512, 1000, 0, 0, 1.0f, 1.0f}, /* weight-gradient shape, accumulating */
};

static void test_matmul_f32(void **state) {
  (void)state;
  NEED(matmul);
  for (size_t i = 0; i < sizeof k_mm_cases / sizeof *k_mm_cases; i++)
    run_matmul(&k_mm_cases[i], ONEREC_F32, k_tol);
}

static void test_matmul_bf16(void **state) {
  (void)state;
  NEED(matmul);
  /* inputs are exact in bf16 and products exact in f32: only the summation order differs */
  for (size_t i = 0; i < sizeof k_mm_cases / sizeof *k_mm_cases; i++)
    run_matmul(&k_mm_cases[i], ONEREC_BF16, 1e-8);
}

static void test_matmul_bad_shape(void **state) {
  (void)state;
  NEED(matmul);
  float *d = dput(NULL, 64 * sizeof(float));
  orx_matmul_args a = {.batch = 1, .m = 4, .n = 4, .k = 4, .a = d, .lda = 3, .b = d, .ldb = 4,
                       .c = d, .ldc = 4, .alpha = 1.0f, .dtype = ONEREC_F32};
  onerec_clear_error();
  assert_int_equal(g.db->ops->matmul(g.db, &a), ONEREC_ERR_SHAPE);
  assert_non_null(strstr(onerec_last_error(), "matmul"));
  a.lda = 4;
  a.dtype = ONEREC_I32;
  assert_int_equal(g.db->ops->matmul(g.db, &a), ONEREC_ERR_DTYPE);
  dfree(d);
}

/* ======================= parity: normalisation, softmax ======================= */

static void ref_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int64_t rows,
                            int64_t dim, float eps) {
  for (int64_t r = 0; r < rows; r++) {
    double ss = 0;
    for (int64_t j = 0; j < dim; j++) ss += (double)x[r * dim + j] * x[r * dim + j];
    float rs = (float)(1.0 / sqrt(ss / (double)dim + eps));
    for (int64_t j = 0; j < dim; j++) out[r * dim + j] = x[r * dim + j] * rs * w[j];
    if (rstd) rstd[r] = rs;
  }
}

static void ref_rmsnorm_bwd(float *dx, float *dw, const float *g_, const float *x, const float *w,
                            const float *rstd, int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; r++) {
    const float *gr = g_ + r * dim, *xr = x + r * dim;
    double rs = rstd[r], dot = 0;
    for (int64_t j = 0; j < dim; j++) dot += (double)gr[j] * w[j] * xr[j];
    for (int64_t j = 0; j < dim; j++) {
      dx[r * dim + j] += (float)(rs * w[j] * gr[j] - xr[j] * rs * rs * rs * dot / (double)dim);
      dw[j] += (float)((double)gr[j] * xr[j] * rs);
    }
  }
}

static void test_rmsnorm(void **state) {
  (void)state;
  NEED(rmsnorm_fwd);
  const int64_t shapes[][2] = {{7, 1}, {33, 64}, {5, 1000}, {300, 257}};
  for (size_t c = 0; c < sizeof shapes / sizeof *shapes; c++) {
    int64_t rows = shapes[c][0], dim = shapes[c][1];
    size_t n = (size_t)(rows * dim);
    float *x = hrand(n, 20 + c), *w = hrand((size_t)dim, 30 + c);
    float *out = hrand(n, 1), *rstd = hrand((size_t)rows, 2);
    float *gout = hrand(n, 3), *grstd = hrand((size_t)rows, 4);
    if (HAVE_CPU(rmsnorm_fwd))
      assert_ok(g.rb->ops->rmsnorm_fwd(g.rb, out, rstd, x, w, rows, dim, 1e-5f));
    else
      ref_rmsnorm_fwd(out, rstd, x, w, rows, dim, 1e-5f);
    float *dx = dputf(x, n), *dw = dputf(w, (size_t)dim), *dout = dput(NULL, n * 4);
    float *drs = dput(NULL, (size_t)rows * 4);
    assert_ok(g.db->ops->rmsnorm_fwd(g.db, dout, drs, dx, dw, rows, dim, 1e-5f));
    dgetf(gout, dout, n);
    dgetf(grstd, drs, (size_t)rows);
    check_nmse("rmsnorm_fwd out", gout, out, n, k_tol);
    check_nmse("rmsnorm_fwd rstd", grstd, rstd, (size_t)rows, k_tol);
    /* in place (out == x) */
    assert_ok(g.db->ops->rmsnorm_fwd(g.db, dx, NULL, dx, dw, rows, dim, 1e-5f));
    dgetf(gout, dx, n);
    check_nmse("rmsnorm_fwd in place", gout, out, n, k_tol);

    if (g.db->ops->rmsnorm_bwd) {
      float *go = hrand(n, 40 + c), *gx0 = hrand(n, 41 + c), *gw0 = hrand((size_t)dim, 42 + c);
      float *wx = hdup(gx0, n), *ww = hdup(gw0, (size_t)dim);
      if (HAVE_CPU(rmsnorm_bwd))
        assert_ok(g.rb->ops->rmsnorm_bwd(g.rb, wx, ww, go, x, w, rstd, rows, dim));
      else
        ref_rmsnorm_bwd(wx, ww, go, x, w, rstd, rows, dim);
      float *d_go = dputf(go, n), *d_gx = dputf(gx0, n), *d_gw = dputf(gw0, (size_t)dim);
      float *d_x = dputf(x, n), *d_rs = dputf(rstd, (size_t)rows);
      assert_ok(g.db->ops->rmsnorm_bwd(g.db, d_gx, d_gw, d_go, d_x, dw, d_rs, rows, dim));
      float *hx = hdup(gx0, n), *hw = hdup(gw0, (size_t)dim);
      dgetf(hx, d_gx, n);
      dgetf(hw, d_gw, (size_t)dim);
      check_nmse("rmsnorm_bwd dx (accumulated)", hx, wx, n, k_tol_bwd);
      check_nmse("rmsnorm_bwd dw (accumulated)", hw, ww, (size_t)dim, k_tol_bwd);
      dfree(d_go);
      dfree(d_gx);
      dfree(d_gw);
      dfree(d_x);
      dfree(d_rs);
      free(go);
      free(gx0);
      free(gw0);
      free(wx);
      free(ww);
      free(hx);
      free(hw);
    }
    dfree(dx);
    dfree(dw);
    dfree(dout);
    dfree(drs);
    free(x);
    free(w);
    free(out);
    free(rstd);
    free(gout);
    free(grstd);
  }
}

static void ref_softmax_fwd(float *out, const float *x, int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * dim;
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < dim; j++) m = xr[j] > m ? xr[j] : m;
    for (int64_t j = 0; j < dim; j++) s += exp(xr[j] - m);
    for (int64_t j = 0; j < dim; j++) out[r * dim + j] = (float)(exp(xr[j] - m) / s);
  }
}

static void ref_softmax_bwd(float *dx, const float *dout, const float *y, int64_t rows,
                            int64_t dim) {
  for (int64_t r = 0; r < rows; r++) {
    double dot = 0;
    for (int64_t j = 0; j < dim; j++) dot += (double)dout[r * dim + j] * y[r * dim + j];
    for (int64_t j = 0; j < dim; j++)
      dx[r * dim + j] += (float)(y[r * dim + j] * (dout[r * dim + j] - dot));
  }
}

static void test_softmax(void **state) {
  (void)state;
  NEED(softmax_fwd);
  const int64_t shapes[][2] = {{9, 8}, {40, 33}, {3, 5000}};
  for (size_t c = 0; c < sizeof shapes / sizeof *shapes; c++) {
    int64_t rows = shapes[c][0], dim = shapes[c][1];
    size_t n = (size_t)(rows * dim);
    float *x = hrand(n, 50 + c), *want = hrand(n, 1), *got = hrand(n, 2);
    for (size_t i = 0; i < n; i++) x[i] *= 8.0f; /* logits spread enough to need the max */
    if (HAVE_CPU(softmax_fwd))
      assert_ok(g.rb->ops->softmax_fwd(g.rb, want, x, rows, dim));
    else
      ref_softmax_fwd(want, x, rows, dim);
    float *dx = dputf(x, n), *dy = dput(NULL, n * 4);
    assert_ok(g.db->ops->softmax_fwd(g.db, dy, dx, rows, dim));
    dgetf(got, dy, n);
    check_nmse("softmax_fwd", got, want, n, k_tol);
    assert_ok(g.db->ops->softmax_fwd(g.db, dx, dx, rows, dim)); /* out may equal x */
    dgetf(got, dx, n);
    check_nmse("softmax_fwd in place", got, want, n, k_tol);
    if (g.db->ops->softmax_bwd) {
      float *go = hrand(n, 60 + c), *g0 = hrand(n, 61 + c), *wd = hdup(g0, n);
      if (HAVE_CPU(softmax_bwd))
        assert_ok(g.rb->ops->softmax_bwd(g.rb, wd, go, want, rows, dim));
      else
        ref_softmax_bwd(wd, go, want, rows, dim);
      float *d_go = dputf(go, n), *d_g = dputf(g0, n), *d_y = dputf(want, n);
      assert_ok(g.db->ops->softmax_bwd(g.db, d_g, d_go, d_y, rows, dim));
      dgetf(got, d_g, n);
      check_nmse("softmax_bwd (accumulated)", got, wd, n, k_tol_bwd);
      dfree(d_go);
      dfree(d_g);
      dfree(d_y);
      free(go);
      free(g0);
      free(wd);
    }
    dfree(dx);
    dfree(dy);
    free(x);
    free(want);
    free(got);
  }
}

/* ======================= parity: activations ======================= */

static double silu(double x) { return x / (1.0 + exp(-x)); }

static void test_swiglu(void **state) {
  (void)state;
  NEED(swiglu_fwd);
  /* gate and up interleaved in one [rows, 2 dim + 3] buffer, as a fused projection writes them;
   * out with its own padded pitch */
  const int64_t rows = 37, dim = 300, ldi = 2 * dim + 3, ldo = dim + 5;
  size_t ni = (size_t)(rows * ldi), no = (size_t)(rows * ldo);
  float *in = hrand(ni, 70), *o0 = hrand(no, 71);
  for (size_t i = 0; i < ni; i++) in[i] *= 4.0f;
  float *want = hdup(o0, no), *got = hdup(o0, no);
  const float *gate = in, *up = in + dim;
  if (HAVE_CPU(swiglu_fwd)) {
    assert_ok(g.rb->ops->swiglu_fwd(g.rb, want, ldo, gate, ldi, up, ldi, rows, dim));
  } else {
    for (int64_t r = 0; r < rows; r++)
      for (int64_t j = 0; j < dim; j++)
        want[r * ldo + j] = (float)(silu(gate[r * ldi + j]) * up[r * ldi + j]);
  }
  float *d_in = dputf(in, ni), *d_o = dputf(o0, no);
  assert_ok(g.db->ops->swiglu_fwd(g.db, d_o, ldo, d_in, ldi, d_in + dim, ldi, rows, dim));
  dgetf(got, d_o, no);
  check_nmse("swiglu_fwd", got, want, no, k_tol);
  for (int64_t r = 0; r < rows; r++) /* padding untouched */
    for (int64_t j = dim; j < ldo; j++) assert_true(got[r * ldo + j] == o0[r * ldo + j]);

  if (g.db->ops->swiglu_bwd) {
    float *dout = hrand(no, 72), *din0 = hrand(ni, 73), *wd = hdup(din0, ni), *gd = hdup(din0, ni);
    if (HAVE_CPU(swiglu_bwd)) {
      assert_ok(g.rb->ops->swiglu_bwd(g.rb, wd, ldi, wd + dim, ldi, dout, ldo, gate, ldi, up, ldi,
                                      rows, dim));
    } else {
      for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < dim; j++) {
          double gv = gate[r * ldi + j], uv = up[r * ldi + j], d = dout[r * ldo + j];
          double s = 1.0 / (1.0 + exp(-gv));
          wd[r * ldi + j] += (float)(d * uv * s * (1.0 + gv * (1.0 - s)));
          wd[r * ldi + dim + j] += (float)(d * silu(gv));
        }
    }
    float *d_do = dputf(dout, no), *d_din = dputf(din0, ni);
    assert_ok(g.db->ops->swiglu_bwd(g.db, d_din, ldi, d_din + dim, ldi, d_do, ldo, d_in, ldi,
                                    d_in + dim, ldi, rows, dim));
    dgetf(gd, d_din, ni);
    check_nmse("swiglu_bwd (accumulated)", gd, wd, ni, k_tol_bwd);
    dfree(d_do);
    dfree(d_din);
    free(dout);
    free(din0);
    free(wd);
    free(gd);
  }
  dfree(d_in);
  dfree(d_o);
  free(in);
  free(o0);
  free(want);
  free(got);
}

static void test_leaky_relu(void **state) {
  (void)state;
  NEED(leaky_relu_fwd);
  const int64_t n = 10007;
  const float slope = 0.01f;
  float *x = hrand((size_t)n, 80), *want = hrand((size_t)n, 1), *got = hrand((size_t)n, 2);
  x[0] = 0.0f;
  x[1] = -0.0f;
  if (HAVE_CPU(leaky_relu_fwd))
    assert_ok(g.rb->ops->leaky_relu_fwd(g.rb, want, x, n, slope));
  else
    for (int64_t i = 0; i < n; i++) want[i] = x[i] > 0 ? x[i] : slope * x[i];
  float *dx = dputf(x, (size_t)n), *dy = dput(NULL, (size_t)n * 4);
  assert_ok(g.db->ops->leaky_relu_fwd(g.db, dy, dx, n, slope));
  dgetf(got, dy, (size_t)n);
  check_bits("leaky_relu_fwd", got, want, (size_t)n * 4);
  if (g.db->ops->leaky_relu_bwd) {
    float *go = hrand((size_t)n, 81), *g0 = hrand((size_t)n, 82), *wd = hdup(g0, (size_t)n);
    if (HAVE_CPU(leaky_relu_bwd))
      assert_ok(g.rb->ops->leaky_relu_bwd(g.rb, wd, go, x, n, slope));
    else
      for (int64_t i = 0; i < n; i++) wd[i] += x[i] > 0 ? go[i] : slope * go[i];
    float *d_go = dputf(go, (size_t)n), *d_g = dputf(g0, (size_t)n);
    assert_ok(g.db->ops->leaky_relu_bwd(g.db, d_g, d_go, dx, n, slope));
    dgetf(got, d_g, (size_t)n);
    check_nmse("leaky_relu_bwd (accumulated)", got, wd, (size_t)n, 1e-12);
    dfree(d_go);
    dfree(d_g);
    free(go);
    free(g0);
    free(wd);
  }
  dfree(dx);
  dfree(dy);
  free(x);
  free(want);
  free(got);
}

/* ======================= parity: embeddings ======================= */

static void test_embedding(void **state) {
  (void)state;
  NEED(embedding_fwd);
  const int64_t vocab = 97, dim = 300, n = 2000; /* many repeats of each id */
  float *table = hrand((size_t)(vocab * dim), 90);
  int32_t *ids = rand_ids((size_t)n, -3, vocab, 91); /* some absent (negative) ids */
  size_t no = (size_t)(n * dim);
  float *want = hrand(no, 1), *got = hrand(no, 2);
  if (HAVE_CPU(embedding_fwd)) {
    assert_ok(g.rb->ops->embedding_fwd(g.rb, want, table, ids, n, dim, vocab));
  } else {
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < dim; j++)
        want[i * dim + j] = ids[i] < 0 ? 0.0f : table[ids[i] * dim + j];
  }
  float *d_t = dputf(table, (size_t)(vocab * dim)), *d_o = dput(NULL, no * 4);
  int32_t *d_ids = dput(ids, (size_t)n * 4);
  assert_ok(g.db->ops->embedding_fwd(g.db, d_o, d_t, d_ids, n, dim, vocab));
  dgetf(got, d_o, no);
  check_bits("embedding_fwd", got, want, no * 4);

  /* an id past the table is an error, and names the position */
  int32_t bad = (int32_t)vocab;
  assert_ok(g.db->ops->copy(g.db, d_ids + 1234, &bad, 4, ORX_COPY_H2D));
  onerec_clear_error();
  assert_int_equal(g.db->ops->embedding_fwd(g.db, d_o, d_t, d_ids, n, dim, vocab),
                   ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "1234"));
  if (g.db->ops->embedding_bwd) {
    onerec_clear_error();
    assert_int_equal(g.db->ops->embedding_bwd(g.db, d_t, d_o, d_ids, n, dim, vocab),
                     ONEREC_ERR_INVALID_ARGUMENT);
    assert_true(onerec_last_error()[0] != '\0');
  }
  assert_ok(g.db->ops->copy(g.db, d_ids + 1234, ids + 1234, 4, ORX_COPY_H2D));

  if (g.db->ops->embedding_bwd) {
    /* deterministic scatter-add: bit-identical to a sequential loop, and run to run */
    float *dout = hrand(no, 92), *t0 = hrand((size_t)(vocab * dim), 93);
    float *wt = hdup(t0, (size_t)(vocab * dim)), *gt = hdup(t0, (size_t)(vocab * dim));
    if (HAVE_CPU(embedding_bwd)) {
      assert_ok(g.rb->ops->embedding_bwd(g.rb, wt, dout, ids, n, dim, vocab));
    } else {
      for (int64_t i = 0; i < n; i++)
        if (ids[i] >= 0)
          for (int64_t j = 0; j < dim; j++) wt[ids[i] * dim + j] += dout[i * dim + j];
    }
    float *d_do = dputf(dout, no), *d_dt = dputf(t0, (size_t)(vocab * dim));
    assert_ok(g.db->ops->embedding_bwd(g.db, d_dt, d_do, d_ids, n, dim, vocab));
    dgetf(gt, d_dt, (size_t)(vocab * dim));
    check_nmse("embedding_bwd (accumulated)", gt, wt, (size_t)(vocab * dim), 1e-12);
    float *gt2 = hdup(t0, (size_t)(vocab * dim));
    assert_ok(g.db->ops->copy(g.db, d_dt, t0, (size_t)(vocab * dim) * 4, ORX_COPY_H2D));
    assert_ok(g.db->ops->embedding_bwd(g.db, d_dt, d_do, d_ids, n, dim, vocab));
    dgetf(gt2, d_dt, (size_t)(vocab * dim));
    check_bits("embedding_bwd run to run", gt2, gt, (size_t)(vocab * dim) * 4);
    dfree(d_do);
    dfree(d_dt);
    free(dout);
    free(t0);
    free(wt);
    free(gt);
    free(gt2);
  }
  dfree(d_t);
  dfree(d_o);
  dfree(d_ids);
  free(table);
  free(ids);
  free(want);
  free(got);
}

/* ======================= parity: loss ======================= */

static void ref_cross_entropy(float *loss, float *dl, const float *x, const int32_t *t,
                              int64_t rows, int64_t vocab, int32_t ignore, float gs, float e) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * vocab;
    if (t[r] == ignore) {
      loss[r] = 0.0f;
      if (dl)
        for (int64_t j = 0; j < vocab; j++) dl[r * vocab + j] = 0.0f;
      continue;
    }
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < vocab; j++) m = xr[j] > m ? xr[j] : m;
    for (int64_t j = 0; j < vocab; j++) s += exp(xr[j] - m);
    double lse = m + log(s), mean = 0;
    for (int64_t j = 0; j < vocab; j++) mean += xr[j] / (double)vocab;
    loss[r] = (float)(lse - (1.0 - e) * xr[t[r]] - e * mean);
    if (dl)
      for (int64_t j = 0; j < vocab; j++)
        dl[r * vocab + j] =
            (float)((exp(xr[j] - lse) - (1.0 - e) * (j == t[r]) - e / (double)vocab) * gs);
  }
}

static void test_cross_entropy(void **state) {
  (void)state;
  NEED(cross_entropy);
  const int64_t rows = 65, vocab = 8195;
  const int32_t ignore = -100;
  const float gs = 1.0f / 64.0f;
  size_t n = (size_t)(rows * vocab);
  float *x = hrand(n, 100);
  for (size_t i = 0; i < n; i++) x[i] *= 6.0f;
  int32_t *t = rand_ids((size_t)rows, 0, vocab, 101);
  t[3] = t[40] = ignore;
  float *wl = hrand((size_t)rows, 1), *gl = hrand((size_t)rows, 2);
  float *wd = hrand(n, 3), *gd = hrand(n, 4);
  float *d_x = dputf(x, n), *d_l = dput(NULL, (size_t)rows * 4), *d_d = dputf(gd, n);
  int32_t *d_t = dput(t, (size_t)rows * 4);
  for (int c = 0; c < 2; c++) { /* plain, then label-smoothed */
    const float e = c ? 0.1f : 0.0f;
    if (HAVE_CPU(cross_entropy))
      assert_ok(g.rb->ops->cross_entropy(g.rb, wl, wd, x, t, rows, vocab, ignore, gs, e));
    else
      ref_cross_entropy(wl, wd, x, t, rows, vocab, ignore, gs, e);
    assert_ok(g.db->ops->cross_entropy(g.db, d_l, d_d, d_x, d_t, rows, vocab, ignore, gs, e));
    dgetf(gl, d_l, (size_t)rows);
    dgetf(gd, d_d, n);
    check_nmse(c ? "cross_entropy loss, smoothed" : "cross_entropy loss", gl, wl, (size_t)rows,
               k_tol);
    check_nmse(c ? "cross_entropy dlogits, smoothed" : "cross_entropy dlogits (written)", gd, wd,
               n, k_tol_bwd);
    assert_true(gl[3] == 0.0f && gl[40] == 0.0f);
    for (int64_t j = 0; j < vocab; j++) assert_true(gd[3 * vocab + j] == 0.0f);
    /* loss only */
    assert_ok(g.db->ops->cross_entropy(g.db, d_l, NULL, d_x, d_t, rows, vocab, ignore, gs, e));
    dgetf(gl, d_l, (size_t)rows);
    check_nmse("cross_entropy loss without dlogits", gl, wl, (size_t)rows, k_tol);
  }
  /* dlogits written over the logits (smoothed: the loss reads every logit) */
  float *d_xi = dputf(x, n);
  assert_ok(g.db->ops->cross_entropy(g.db, d_l, d_xi, d_xi, d_t, rows, vocab, ignore, gs, 0.1f));
  dgetf(gl, d_l, (size_t)rows);
  dgetf(gd, d_xi, n);
  check_nmse("cross_entropy in place: loss", gl, wl, (size_t)rows, k_tol);
  check_nmse("cross_entropy in place: dlogits", gd, wd, n, k_tol_bwd);
  dfree(d_xi);
  /* a target outside the vocabulary is an error naming the row */
  int32_t bad = (int32_t)vocab;
  assert_ok(g.db->ops->copy(g.db, d_t + 17, &bad, 4, ORX_COPY_H2D));
  onerec_clear_error();
  assert_int_equal(
      g.db->ops->cross_entropy(g.db, d_l, d_d, d_x, d_t, rows, vocab, ignore, gs, 0.0f),
      ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "17"));
  dfree(d_x);
  dfree(d_l);
  dfree(d_d);
  dfree(d_t);
  free(x);
  free(t);
  free(wl);
  free(gl);
  free(wd);
  free(gd);
}

/* ======================= parity: optimiser ======================= */

static void test_adamw(void **state) {
  (void)state;
  NEED(adamw);
  const int64_t n = 5003;
  float *p = hrand((size_t)n, 110), *gr = hrand((size_t)n, 111);
  float *m = calloc((size_t)n, 4), *v = calloc((size_t)n, 4);
  assert_true(m && v);
  float *d_p = dputf(p, (size_t)n), *d_g = dputf(gr, (size_t)n);
  float *d_m = dputf(m, (size_t)n), *d_v = dputf(v, (size_t)n);
  orx_adamw_args a = {.n = n, .lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                      .weight_decay = 0.1f, .grad_scale = 0.5f};
  for (int64_t step = 1; step <= 3; step++) {
    a.step = step;
    a.param = p;
    a.grad = gr;
    a.m = m;
    a.v = v;
    if (HAVE_CPU(adamw)) {
      assert_ok(g.rb->ops->adamw(g.rb, &a));
    } else {
      double bc1 = 1.0 - pow(0.9, (double)step), bc2 = 1.0 - pow(0.999, (double)step);
      for (int64_t i = 0; i < n; i++) {
        double gv = (double)gr[i] * a.grad_scale;
        m[i] = (float)(0.9 * m[i] + 0.1 * gv);
        v[i] = (float)(0.999 * v[i] + 0.001 * gv * gv);
        double upd = (m[i] / bc1) / (sqrt(v[i] / bc2) + a.eps) + a.weight_decay * p[i];
        p[i] = (float)(p[i] - a.lr * upd);
      }
    }
    a.param = d_p;
    a.grad = d_g;
    a.m = d_m;
    a.v = d_v;
    assert_ok(g.db->ops->adamw(g.db, &a));
  }
  float *hp = hrand((size_t)n, 1), *hm = hrand((size_t)n, 2), *hv = hrand((size_t)n, 3);
  dgetf(hp, d_p, (size_t)n);
  dgetf(hm, d_m, (size_t)n);
  dgetf(hv, d_v, (size_t)n);
  check_nmse("adamw param", hp, p, (size_t)n, k_tol);
  check_nmse("adamw m", hm, m, (size_t)n, k_tol);
  check_nmse("adamw v", hv, v, (size_t)n, k_tol);
  a.step = 0;
  onerec_clear_error();
  assert_int_not_equal(g.db->ops->adamw(g.db, &a), ONEREC_OK);
  assert_true(onerec_last_error()[0] != '\0');
  dfree(d_p);
  dfree(d_g);
  dfree(d_m);
  dfree(d_v);
  free(p);
  free(gr);
  free(m);
  free(v);
  free(hp);
  free(hm);
  free(hv);
}

/* ======================= parity: elementwise, reductions ======================= */

static void test_elementwise(void **state) {
  (void)state;
  if (!g.db) skip();
  const orx_backend_ops *o = g.db->ops;
  if (!o->axpy && !o->scale && !o->add_bias && !o->bias_bwd && !o->sum_squares) {
    print_message("axpy, scale, add_bias, bias_bwd, sum_squares: not implemented, skipped\n");
    skip();
  }
  const int64_t rows = 301, dim = 77, n = rows * dim;
  float *x = hrand((size_t)n, 120), *y = hrand((size_t)n, 121), *b = hrand((size_t)dim, 122);
  float *d_x = dputf(x, (size_t)n), *d_y = dputf(y, (size_t)n), *d_b = dputf(b, (size_t)dim);
  float *want = hdup(y, (size_t)n), *got = hdup(y, (size_t)n);
  if (g.db->ops->axpy) {
    if (HAVE_CPU(axpy))
      assert_ok(g.rb->ops->axpy(g.rb, want, x, -0.75f, n));
    else
      for (int64_t i = 0; i < n; i++) want[i] += -0.75f * x[i];
    assert_ok(g.db->ops->axpy(g.db, d_y, d_x, -0.75f, n));
    dgetf(got, d_y, (size_t)n);
    check_nmse("axpy", got, want, (size_t)n, 1e-12);
  }
  if (g.db->ops->scale) {
    dgetf(want, d_y, (size_t)n);
    if (HAVE_CPU(scale))
      assert_ok(g.rb->ops->scale(g.rb, want, 3.0f, n));
    else
      for (int64_t i = 0; i < n; i++) want[i] *= 3.0f;
    assert_ok(g.db->ops->scale(g.db, d_y, 3.0f, n));
    dgetf(got, d_y, (size_t)n);
    check_bits("scale", got, want, (size_t)n * 4);
  }
  if (g.db->ops->add_bias) {
    dgetf(want, d_y, (size_t)n);
    if (HAVE_CPU(add_bias))
      assert_ok(g.rb->ops->add_bias(g.rb, want, b, rows, dim));
    else
      for (int64_t i = 0; i < n; i++) want[i] += b[i % dim];
    assert_ok(g.db->ops->add_bias(g.db, d_y, d_b, rows, dim));
    dgetf(got, d_y, (size_t)n);
    check_bits("add_bias", got, want, (size_t)n * 4);
  }
  if (g.db->ops->bias_bwd) {
    float *wb = hdup(b, (size_t)dim), *gb = hdup(b, (size_t)dim);
    if (HAVE_CPU(bias_bwd)) {
      assert_ok(g.rb->ops->bias_bwd(g.rb, wb, x, rows, dim));
    } else {
      for (int64_t j = 0; j < dim; j++) {
        double s = 0;
        for (int64_t r = 0; r < rows; r++) s += x[r * dim + j];
        wb[j] += (float)s;
      }
    }
    assert_ok(g.db->ops->bias_bwd(g.db, d_b, d_x, rows, dim));
    dgetf(gb, d_b, (size_t)dim);
    check_nmse("bias_bwd (accumulated)", gb, wb, (size_t)dim, k_tol_bwd);
    free(wb);
    free(gb);
  }
  if (g.db->ops->dropout && HAVE_CPU(dropout)) {
    /* the mask is a function of (seed, index) on every backend: the same bits */
    dgetf(want, d_y, (size_t)n);
    assert_ok(g.rb->ops->dropout(g.rb, want, n, 0.3f, 1234));
    assert_ok(g.db->ops->dropout(g.db, d_y, n, 0.3f, 1234));
    dgetf(got, d_y, (size_t)n);
    check_bits("dropout", got, want, (size_t)n * 4);
  }
  if (g.db->ops->sum_squares) {
    double want_ss = 0, got_ss = -1;
    if (HAVE_CPU(sum_squares))
      assert_ok(g.rb->ops->sum_squares(g.rb, &want_ss, x, n));
    else
      for (int64_t i = 0; i < n; i++) want_ss += (double)x[i] * x[i];
    assert_ok(g.db->ops->sum_squares(g.db, &got_ss, d_x, n));
    if (!(fabs(got_ss - want_ss) <= 1e-12 * want_ss))
      fail_msg("sum_squares: got %.17g, want %.17g", got_ss, want_ss);
    assert_ok(g.db->ops->sum_squares(g.db, &got_ss, d_x, 0));
    assert_true(got_ss == 0.0);
  }
  dfree(d_x);
  dfree(d_y);
  dfree(d_b);
  free(x);
  free(y);
  free(b);
  free(want);
  free(got);
}

/* ======================= parity: MoE routing ======================= */

static void test_moe(void **state) {
  (void)state;
  NEED(moe_topk);
  if (!HAVE_CPU(moe_topk)) skip();
  const int64_t rows = 513, ne = 24, k = 4;
  float *probs = hrand((size_t)(rows * ne), 130), *bias = hrand((size_t)ne, 131);
  for (int64_t e = 0; e < ne; e++) probs[5 * ne + e] = 0.25f; /* a row of ties */
  int32_t *wi = calloc((size_t)(rows * k), 4), *gi = calloc((size_t)(rows * k), 4);
  float *wg = calloc((size_t)(rows * k), 4), *gg = calloc((size_t)(rows * k), 4);
  assert_true(wi && gi && wg && gg);
  float *d_p = dputf(probs, (size_t)(rows * ne)), *d_b = dputf(bias, (size_t)ne);
  int32_t *d_i = dput(NULL, (size_t)(rows * k) * 4);
  float *d_g = dput(NULL, (size_t)(rows * k) * 4);
  for (int with_bias = 0; with_bias < 2; with_bias++) {
    assert_ok(g.rb->ops->moe_topk(g.rb, wi, wg, probs, with_bias ? bias : NULL, rows, ne, k));
    assert_ok(g.db->ops->moe_topk(g.db, d_i, d_g, d_p, with_bias ? d_b : NULL, rows, ne, k));
    dget(gi, d_i, (size_t)(rows * k) * 4);
    dget(gg, d_g, (size_t)(rows * k) * 4);
    check_bits("moe_topk idx", gi, wi, (size_t)(rows * k) * 4);
    check_bits("moe_topk gates", gg, wg, (size_t)(rows * k) * 4);
  }
  if (g.db->ops->scale_rows && HAVE_CPU(scale_rows)) {
    const int64_t dim = 130;
    float *x = hrand((size_t)(rows * dim), 132), *s = hrand((size_t)rows, 133);
    float *want = hrand((size_t)(rows * dim), 1), *got = hrand((size_t)(rows * dim), 2);
    float *d_x = dputf(x, (size_t)(rows * dim)), *d_s = dputf(s, (size_t)rows);
    float *d_o = dput(NULL, (size_t)(rows * dim) * 4);
    assert_ok(g.rb->ops->scale_rows(g.rb, want, x, s, rows, dim));
    assert_ok(g.db->ops->scale_rows(g.db, d_o, d_x, d_s, rows, dim));
    dgetf(got, d_o, (size_t)(rows * dim));
    check_bits("scale_rows", got, want, (size_t)(rows * dim) * 4);
    if (g.db->ops->scale_rows_bwd && HAVE_CPU(scale_rows_bwd)) {
      float *dout = hrand((size_t)(rows * dim), 134), *dx0 = hrand((size_t)(rows * dim), 135);
      float *ds0 = hrand((size_t)rows, 136);
      float *wdx = hdup(dx0, (size_t)(rows * dim)), *wds = hdup(ds0, (size_t)rows);
      float *gdx = hdup(dx0, (size_t)(rows * dim)), *gds = hdup(ds0, (size_t)rows);
      assert_ok(g.rb->ops->scale_rows_bwd(g.rb, wdx, wds, dout, x, s, rows, dim));
      float *d_do = dputf(dout, (size_t)(rows * dim)), *d_dx = dputf(dx0, (size_t)(rows * dim));
      float *d_ds = dputf(ds0, (size_t)rows);
      assert_ok(g.db->ops->scale_rows_bwd(g.db, d_dx, d_ds, d_do, d_x, d_s, rows, dim));
      dgetf(gdx, d_dx, (size_t)(rows * dim));
      dgetf(gds, d_ds, (size_t)rows);
      check_nmse("scale_rows_bwd dx", gdx, wdx, (size_t)(rows * dim), 1e-12);
      check_nmse("scale_rows_bwd ds", gds, wds, (size_t)rows, 1e-12);
      dfree(d_do);
      dfree(d_dx);
      dfree(d_ds);
      free(dout);
      free(dx0);
      free(ds0);
      free(wdx);
      free(wds);
      free(gdx);
      free(gds);
    }
    dfree(d_x);
    dfree(d_s);
    dfree(d_o);
    free(x);
    free(s);
    free(want);
    free(got);
  }
  dfree(d_p);
  dfree(d_b);
  dfree(d_i);
  dfree(d_g);
  free(probs);
  free(bias);
  free(wi);
  free(gi);
  free(wg);
  free(gg);
}

/* ======================= parity: attention ======================= */

typedef struct att_case {
  int64_t batch, heads, tq, tk, dh;
  int causal, masked, fused, mqa;
} att_case;

static void run_attention(const att_case *c, uint64_t seed) {
  const int64_t B = c->batch, H = c->heads, Tq = c->tq, Tk = c->tk, Dh = c->dh;
  orx_attn_args a;
  memset(&a, 0, sizeof a);
  a.batch = B;
  a.heads = H;
  a.tq = Tq;
  a.tk = Tk;
  a.head_dim = Dh;
  a.causal = c->causal;
  a.scale = 1.0f / sqrtf((float)Dh);
  /* q, k, v in one buffer: fused [B, T, 3, H, Dh] or three blocks [B, H, T, Dh] one after
   * another (k and v with head stride 0 for multi-query attention) */
  size_t nqkv, offk, offv;
  if (c->fused) {
    int64_t st = 3 * H * Dh;
    a.q_sb = a.k_sb = a.v_sb = Tq * st;
    a.q_sh = a.k_sh = a.v_sh = Dh;
    a.q_st = a.k_st = a.v_st = st;
    offk = (size_t)(H * Dh);
    offv = (size_t)(2 * H * Dh);
    nqkv = (size_t)(B * Tq * st);
  } else {
    int64_t hk = c->mqa ? 1 : H;
    a.q_sb = H * Tq * Dh;
    a.q_sh = Tq * Dh;
    a.q_st = Dh;
    a.k_sb = a.v_sb = hk * Tk * Dh;
    a.k_sh = a.v_sh = c->mqa ? 0 : Tk * Dh;
    a.k_st = a.v_st = Dh;
    offk = (size_t)(B * H * Tq * Dh);
    offv = offk + (size_t)(B * hk * Tk * Dh);
    nqkv = offv + (size_t)(B * hk * Tk * Dh);
  }
  a.o_sb = H * Tq * Dh;
  a.o_sh = Tq * Dh;
  a.o_st = Dh;
  size_t no = (size_t)(B * H * Tq * Dh), nl = (size_t)(B * H * Tq);
  float *qkv = hrand(nqkv, seed);
  uint8_t *mask = NULL;
  if (c->masked) {
    mask = malloc((size_t)(B * Tk));
    assert_non_null(mask);
    for (int64_t i = 0; i < B * Tk; i++) mask[i] = (uint8_t)((i * 7 + 3) % 5 != 0);
    mask[0] = mask[1] = 0;
    if (B > 1)
      for (int64_t j = 0; j < Tk; j++) mask[Tk + j] = 0; /* batch 1 sees nothing */
  }
  float *wo = hrand(no, 2), *wl = hrand(nl, 3), *go = hrand(no, 4), *gl = hrand(nl, 5);
  a.q = qkv;
  a.k = qkv + offk;
  a.v = qkv + offv;
  a.out = wo;
  a.lse = wl;
  a.key_mask = mask;
  assert_ok(g.rb->ops->attention_fwd(g.rb, &a));

  float *d_qkv = dputf(qkv, nqkv), *d_o = dput(NULL, no * 4), *d_l = dput(NULL, nl * 4);
  uint8_t *d_m = mask ? dput(mask, (size_t)(B * Tk)) : NULL;
  orx_attn_args da = a;
  da.q = d_qkv;
  da.k = d_qkv + offk;
  da.v = d_qkv + offv;
  da.out = d_o;
  da.lse = d_l;
  da.key_mask = d_m;
  assert_ok(g.db->ops->attention_fwd(g.db, &da));
  dgetf(go, d_o, no);
  dgetf(gl, d_l, nl);
  char what[128];
  snprintf(what, sizeof what, "attention B%lld H%lld tq%lld tk%lld dh%lld%s%s%s%s",
           (long long)B, (long long)H, (long long)Tq, (long long)Tk, (long long)Dh,
           c->causal ? " causal" : "", c->masked ? " masked" : "", c->fused ? " fused" : "",
           c->mqa ? " mqa" : "");
  check_nmse(what, go, wo, no, k_tol);
  for (size_t i = 0; i < nl; i++) { /* rows that see no key: lse = -inf on both */
    if (isinf(wl[i]) || isinf(gl[i])) {
      if (wl[i] != gl[i]) fail_msg("%s: lse[%zu] got %g want %g", what, i, gl[i], wl[i]);
    } else if (!(fabsf(gl[i] - wl[i]) <= 1e-5f * (1.0f + fabsf(wl[i])))) {
      fail_msg("%s: lse[%zu] got %g want %g", what, i, (double)gl[i], (double)wl[i]);
    }
  }

  if (g.db->ops->attention_bwd) {
    /* both sides get the CPU forward's out and lse, so only the backward is compared */
    float *dout = hrand(no, seed + 10), *g0 = hrand(nqkv, seed + 11), *wg = hdup(g0, nqkv);
    float *gg = hdup(g0, nqkv);
    orx_attn_bwd_args b = {.fwd = a, .dout = dout, .do_sb = a.o_sb, .do_sh = a.o_sh,
                           .do_st = a.o_st, .dq = wg, .dk = wg + offk, .dv = wg + offv};
    assert_ok(g.rb->ops->attention_bwd(g.rb, &b));
    float *d_do = dputf(dout, no), *d_g = dputf(g0, nqkv);
    assert_ok(g.db->ops->copy(g.db, d_o, wo, no * 4, ORX_COPY_H2D));
    assert_ok(g.db->ops->copy(g.db, d_l, wl, nl * 4, ORX_COPY_H2D));
    orx_attn_bwd_args db = {.fwd = da, .dout = d_do, .do_sb = a.o_sb, .do_sh = a.o_sh,
                            .do_st = a.o_st, .dq = d_g, .dk = d_g + offk, .dv = d_g + offv};
    assert_ok(g.db->ops->attention_bwd(g.db, &db));
    dgetf(gg, d_g, nqkv);
    snprintf(what + strlen(what), sizeof what - strlen(what), " bwd");
    check_nmse(what, gg, wg, nqkv, k_tol_bwd);
    dfree(d_do);
    dfree(d_g);
    free(dout);
    free(g0);
    free(wg);
    free(gg);
  }
  dfree(d_qkv);
  dfree(d_o);
  dfree(d_l);
  if (d_m) dfree(d_m);
  free(qkv);
  free(mask);
  free(wo);
  free(wl);
  free(go);
  free(gl);
}

static void test_attention(void **state) {
  (void)state;
  NEED(attention_fwd);
  if (!HAVE_CPU(attention_fwd)) skip();
  static const att_case cases[] = {
      {2, 3, 17, 17, 32, 0, 0, 0, 0},
      {2, 4, 45, 45, 32, 1, 1, 1, 0},   /* fused QKV, causal, padded keys */
      {1, 2, 130, 130, 64, 1, 0, 0, 0},
      {2, 2, 7, 41, 48, 0, 1, 0, 0},    /* cross attention, head_dim not a multiple of 32 */
      {1, 2, 20, 9, 5, 1, 0, 0, 0},     /* tq > tk causal: early rows see nothing */
      {2, 4, 30, 41, 16, 0, 1, 0, 1},   /* k and v shared by the heads */
      {1, 1, 33, 64, 160, 1, 0, 0, 0},  /* widest register path */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_attention(&cases[i], 140 + i);
}

/* ======================= public API on the device ======================= */

static void test_tensor_round_trip(void **state) {
  (void)state;
  if (!g.db) skip();
  int64_t shape[3] = {3, 5, 7};
  onerec_tensor *t = NULL;
  assert_ok(onerec_tensor_create(g.dev, ONEREC_F32, 3, shape, &t));
  assert_string_equal(onerec_tensor_device(t), g.db->ops->name);
  float in[105], out[105];
  tu_fill(in, 105, 150);
  memset(out, 0, sizeof out);
  assert_ok(onerec_tensor_copy_out(t, out, sizeof out)); /* created zero-filled */
  for (int i = 0; i < 105; i++) assert_true(out[i] == 0.0f);
  assert_ok(onerec_tensor_copy_in(t, in, sizeof in));
  assert_ok(onerec_tensor_copy_out(t, out, sizeof out));
  check_bits("tensor round trip", out, in, sizeof in);
  /* a strided view (every other column of rows 1..2 of the middle plane) scatters and gathers */
  int64_t vs[2] = {2, 3}, st[2] = {7, 2};
  onerec_tensor *v = NULL;
  assert_ok(onerec_tensor_view(t, 2, vs, st, 35 + 7, &v));
  float vin[6] = {-1, -2, -3, -4, -5, -6}, vout[6];
  assert_ok(onerec_tensor_copy_in(v, vin, sizeof vin));
  assert_ok(onerec_tensor_copy_out(v, vout, sizeof vout));
  check_bits("view round trip", vout, vin, sizeof vin);
  assert_ok(onerec_tensor_copy_out(t, out, sizeof out));
  for (int i = 0; i < 105; i++) {
    int r = (i - 42) / 7, c = (i - 42) % 7;
    int in_view = i >= 42 && r < 2 && c % 2 == 0 && c / 2 < 3;
    assert_true(out[i] == (in_view ? vin[r * 3 + c / 2] : in[i]));
  }
  onerec_tensor_free(v);
  onerec_tensor_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plugin_loads),
      cmocka_unit_test(test_copy_memset),
      cmocka_unit_test(test_convert),
      cmocka_unit_test(test_matmul_f32),
      cmocka_unit_test(test_matmul_bf16),
      cmocka_unit_test(test_matmul_bad_shape),
      cmocka_unit_test(test_rmsnorm),
      cmocka_unit_test(test_softmax),
      cmocka_unit_test(test_swiglu),
      cmocka_unit_test(test_leaky_relu),
      cmocka_unit_test(test_embedding),
      cmocka_unit_test(test_cross_entropy),
      cmocka_unit_test(test_adamw),
      cmocka_unit_test(test_elementwise),
      cmocka_unit_test(test_moe),
      cmocka_unit_test(test_attention),
      cmocka_unit_test(test_tensor_round_trip),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
