/* RQ-Kmeans (SPEC.md §1): fitting level by level on the residuals of a training sample, and
 * encoding / decoding a block of rows at a time through the backend's k-means ops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokenizer_impl.h"
#include "util.h"

/* Rows per block when encoding or decoding: big enough to keep every worker busy, small enough
 * (64 MiB at dim 1024) that the block buffer never matters. */
enum { TOK_BLOCK = 16384 };

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

onerec_status orx_tok_out(void *dst, const void *src, size_t src_size, const char *what) {
  size_t sz;
  memcpy(&sz, dst, sizeof sz);
  if (sz < sizeof(size_t))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: sz is %zu; declare it with ONEREC_OPTS so sz = sizeof(struct)", what, sz);
  memcpy((unsigned char *)dst + sizeof sz, (const unsigned char *)src + sizeof sz,
         (sz < src_size ? sz : src_size) - sizeof sz);
  return ONEREC_OK;
}

onerec_status orx_tok_check_finite(const char *fn, const float *x, int64_t n, int64_t dim) {
  int64_t total = n * dim;
  for (int64_t i = 0; i < total; i++)
    if (!isfinite(x[i]))
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: x[%lld][%lld] is %g (not finite)", fn,
                      (long long)(i / dim), (long long)(i % dim), (double)x[i]);
  return ONEREC_OK;
}

onerec_status orx_tok_check_codes(const char *fn, const onerec_tokenizer *t, const int32_t *codes,
                                  int64_t n) {
  for (int64_t i = 0; i < n * t->levels; i++)
    if (codes[i] < 0 || codes[i] >= t->k)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "%s: item %lld level %d: code %d outside 0..%d", fn,
                      (long long)(i / t->levels), (int)(i % t->levels), codes[i], t->k - 1);
  return ONEREC_OK;
}

onerec_status orx_tok_check_backend(const char *fn, const onerec_context *ctx) {
  const orx_backend_ops *o = ctx->be.ops;
  const char *missing = !o->row_sq_norms    ? "row_sq_norms"
                        : !o->kmeans_assign ? "kmeans_assign"
                        : !o->kmeans_update ? "kmeans_update"
                        : !o->gather_axpy   ? "gather_axpy"
                        : !o->kmeanspp_step ? "kmeanspp_step"
                        : !o->matmul        ? "matmul"
                                            : NULL;
  if (missing)
    return orx_fail(ONEREC_ERR_UNSUPPORTED,
                    "%s: backend %s does not implement the k-means op %s yet; use a cpu context",
                    fn, o->name, missing);
  return ONEREC_OK;
}

onerec_status orx_tok_new(onerec_context *ctx, int levels, int k, int64_t dim,
                          onerec_tokenizer **out) {
  onerec_tokenizer *t = orx_host_alloc(ctx, sizeof *t);
  if (!t) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
  memset(t, 0, sizeof *t);
  t->ctx = ctx;
  t->levels = levels;
  t->k = k;
  t->dim = dim;
  t->info.sz = sizeof t->info;
  t->info.levels = levels;
  t->info.codes_per_level = k;
  t->info.dim = dim;
  size_t cb = (size_t)levels * (size_t)k * (size_t)dim;
  t->codebooks = orx_host_alloc(ctx, cb * sizeof(float));
  if (!t->codebooks) {
    onerec_tokenizer_free(t);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY,
                    "tokenizer: out of memory for %d x %d x %lld codebooks", levels, k,
                    (long long)dim);
  }
  memset(t->codebooks, 0, cb * sizeof(float));
  *out = t;
  return ONEREC_OK;
}

ONEREC_API void onerec_tokenizer_free(onerec_tokenizer *t) {
  if (!t) return;
  onerec_context *ctx = t->ctx;
  orx_dev_free(ctx, t->d_codebooks);
  orx_dev_free(ctx, t->d_cnorm);
  orx_host_free(ctx, t->codebooks);
  orx_host_free(ctx, t);
}

onerec_status orx_tok_upload(onerec_tokenizer *t) {
  onerec_context *ctx = t->ctx;
  size_t lk = (size_t)t->levels * (size_t)t->k, cb = lk * (size_t)t->dim;
  if (!t->d_codebooks) t->d_codebooks = orx_dev_alloc(ctx, cb * sizeof(float));
  if (!t->d_cnorm) t->d_cnorm = orx_dev_alloc(ctx, lk * sizeof(float));
  if (!t->d_codebooks || !t->d_cnorm)
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "tokenizer: out of device memory for codebooks");
  onerec_status s = orx_dev_copy(ctx, t->d_codebooks, t->codebooks, cb * sizeof(float),
                                 ORX_COPY_H2D);
  if (!s) s = ORX_OP(&ctx->be, row_sq_norms, t->d_cnorm, t->d_codebooks, t->dim, (int64_t)lk, t->dim);
  return s;
}

/* ---- options ---- */

typedef struct tok_cfg {
  int levels, k, iterations, init, balanced;
  uint64_t seed;
  double tolerance;
  int64_t max_train, init_sample;       /* as given (reported by info) */
  int64_t eff_max_train, eff_init_sample; /* what fitting uses */
} tok_cfg;

static onerec_status resolve_opts(const onerec_tokenizer_opts *opts, tok_cfg *c) {
  static const char fn[] = "onerec_tokenizer_fit";
  onerec_tokenizer_opts o;
  memset(&o, 0, sizeof o);
  o.sz = sizeof o;
  if (opts) {
    onerec_status s = orx_opts_read(&o, sizeof o, opts, "onerec_tokenizer_opts");
    if (s) return s;
  }
  c->levels = o.levels ? o.levels : 3;
  c->k = o.codes_per_level ? o.codes_per_level : 256;
  c->iterations = o.iterations ? o.iterations : 25;
  c->seed = o.seed;
  c->init = (int)o.init;
  c->balanced = o.balanced != 0;
  c->tolerance = o.tolerance;
  c->max_train = o.max_train;
  c->init_sample = o.init_sample;
  if (c->levels < 1 || c->levels > ONEREC_TOKENIZER_MAX_LEVELS)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: levels %d outside 1..%d", fn, c->levels,
                    ONEREC_TOKENIZER_MAX_LEVELS);
  if (c->k < 1 || c->k > ORX_TOK_MAX_CODES)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: codes_per_level %d outside 1..%d", fn, c->k,
                    ORX_TOK_MAX_CODES);
  if (c->iterations < 1 || c->iterations > 1000000)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: iterations %d outside 1..1000000", fn,
                    c->iterations);
  if (c->init != ONEREC_KMEANS_PLUSPLUS && c->init != ONEREC_KMEANS_RANDOM)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: init %d is neither ONEREC_KMEANS_PLUSPLUS (0) nor ONEREC_KMEANS_RANDOM (1)",
                    fn, c->init);
  if (!(c->tolerance >= 0) || !isfinite(c->tolerance))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: tolerance %g is not a finite value >= 0",
                    fn, c->tolerance);
  int64_t k = c->k;
  c->eff_max_train = o.max_train == 0 ? 256 * k : o.max_train < 0 ? INT64_MAX : o.max_train;
  c->eff_init_sample = o.init_sample == 0 ? (8 * k > 65536 ? 8 * k : 65536)
                       : o.init_sample < 0 ? INT64_MAX
                                           : o.init_sample;
  if (c->eff_max_train < k)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: max_train %lld < codes_per_level %d", fn,
                    (long long)o.max_train, c->k);
  if (c->eff_init_sample < k)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: init_sample %lld < codes_per_level %d", fn,
                    (long long)o.init_sample, c->k);
  return ONEREC_OK;
}

/* ---- fit ---- */

typedef struct fit_work {
  float *r;      /* device: training residuals, n_train x dim */
  float *rnorm;  /* device: their squared norms */
  int32_t *idx;  /* device: assignment */
  float *dist;   /* device */
  float *h_norm; /* host: n_train */
  int64_t *h_pick;
} fit_work;

static void fit_work_free(onerec_context *ctx, fit_work *w) {
  orx_dev_free(ctx, w->r);
  orx_dev_free(ctx, w->rnorm);
  orx_dev_free(ctx, w->idx);
  orx_dev_free(ctx, w->dist);
  orx_host_free(ctx, w->h_norm);
  orx_host_free(ctx, w->h_pick);
}

/* Copies the training rows to the device: all of x, or a seeded uniform sample of n_train rows
 * (kept in input order). */
static onerec_status load_training(onerec_context *ctx, const float *x, int64_t n, int64_t dim,
                                   int64_t n_train, orx_rng *rng, fit_work *w) {
  size_t row = (size_t)dim * sizeof(float);
  if (n_train == n) return orx_dev_copy(ctx, w->r, x, (size_t)n * row, ORX_COPY_H2D);
  w->h_pick = orx_host_alloc(ctx, (size_t)n * sizeof(int64_t));
  if (!w->h_pick) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
  for (int64_t i = 0; i < n; i++) w->h_pick[i] = i;
  for (int64_t i = 0; i < n_train; i++) {
    int64_t j = i + orx_rng_below(rng, n - i), t = w->h_pick[i];
    w->h_pick[i] = w->h_pick[j];
    w->h_pick[j] = t;
  }
  qsort(w->h_pick, (size_t)n_train, sizeof *w->h_pick, orx_cmp_i64);
  onerec_status s = ONEREC_OK;
  for (int64_t i = 0; !s && i < n_train; i++)
    s = orx_dev_copy(ctx, w->r + i * dim, x + w->h_pick[i] * dim, row, ORX_COPY_H2D);
  return s;
}

static onerec_status norms_total(onerec_context *ctx, fit_work *w, int64_t rows, int64_t dim,
                                 double *total) {
  onerec_status s = ORX_OP(&ctx->be, row_sq_norms, w->rnorm, w->r, dim, rows, dim);
  if (!s) s = orx_dev_copy(ctx, w->h_norm, w->rnorm, (size_t)rows * sizeof(float), ORX_COPY_D2H);
  if (s) return s;
  double t = 0;
  for (int64_t i = 0; i < rows; i++) t += (double)w->h_norm[i];
  *total = t;
  return ONEREC_OK;
}

static onerec_status fit_levels(onerec_tokenizer *t, const float *x, int64_t n,
                                const tok_cfg *c, fit_work *w) {
  onerec_context *ctx = t->ctx;
  orx_backend *be = &ctx->be;
  int64_t dim = t->dim, k = t->k;
  int64_t n_train = n < c->eff_max_train ? n : c->eff_max_train;
  if (n_train < k)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_tokenizer_fit: %lld training points for %d codes per level (need at "
                    "least as many points as codes)",
                    (long long)n_train, t->k);
  t->info.train_points = n_train;
  size_t rows = (size_t)n_train;
  w->r = orx_dev_alloc(ctx, rows * (size_t)dim * sizeof(float));
  w->rnorm = orx_dev_alloc(ctx, rows * sizeof(float));
  w->idx = orx_dev_alloc(ctx, rows * sizeof(int32_t));
  w->dist = orx_dev_alloc(ctx, rows * sizeof(float));
  w->h_norm = orx_host_alloc(ctx, rows * sizeof(float));
  if (!w->r || !w->rnorm || !w->idx || !w->dist || !w->h_norm)
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY,
                    "onerec_tokenizer_fit: out of memory for %lld training points of %lld dims",
                    (long long)n_train, (long long)dim);
  orx_rng rng = {c->seed ^ 0x6A09E667F3BCC908ull};
  onerec_status s = load_training(ctx, x, n, dim, n_train, &rng, w);
  double x_total = 0, r_total = 0;
  if (!s) s = norms_total(ctx, w, n_train, dim, &x_total);
  if (!s && x_total <= 0)
    s = orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "onerec_tokenizer_fit: every training vector is zero");
  for (int l = 0; !s && l < t->levels; l++) {
    double t0 = now_s();
    float *cb = t->d_codebooks + (size_t)l * (size_t)k * (size_t)dim;
    orx_kmeans_cfg kc = {.k = k, .iterations = c->iterations, .init = c->init,
                         .balanced = c->balanced, .tolerance = c->tolerance,
                         .init_sample = c->eff_init_sample, .seed = orx_rng_next(&rng), .level = l};
    orx_kmeans_result res;
    s = orx_kmeans_fit(ctx, w->r, w->rnorm, n_train, dim, &kc, cb, t->d_cnorm + (size_t)l * k,
                       w->idx, w->dist, &res);
    if (!s) s = ORX_OP(be, gather_axpy, w->r, dim, cb, w->idx, n_train, dim, k, -1.0f);
    if (!s) s = norms_total(ctx, w, n_train, dim, &r_total);
    if (s) break;
    t->info.iterations_run[l] = res.iterations_run;
    t->info.reseeded[l] = res.reseeded;
    t->info.train_loss[l] = r_total / x_total;
    orx_log(ctx, ONEREC_LOG_INFO,
            "tokenizer: level %d/%d: %d codes, %d iterations, %d re-seeded, training loss %.6f "
            "(%.2f s)",
            l + 1, t->levels, t->k, res.iterations_run, res.reseeded, r_total / x_total,
            now_s() - t0);
  }
  return s;
}

ONEREC_API onerec_status onerec_tokenizer_fit(onerec_context *ctx, const float *x, int64_t n,
                                              int64_t dim, const onerec_tokenizer_opts *opts,
                                              onerec_tokenizer **out) {
  static const char fn[] = "onerec_tokenizer_fit";
  ORX_CHECK_ARG(ctx, fn);
  ORX_CHECK_ARG(x, fn);
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  if (n < 1 || dim < 1 || dim > INT32_MAX || n > INT64_MAX / dim)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: n = %lld, dim = %lld", fn, (long long)n,
                    (long long)dim);
  tok_cfg c = {0};
  onerec_status s = orx_tok_check_backend(fn, ctx);
  if (!s) s = resolve_opts(opts, &c);
  if (s) return s;
  s = orx_tok_check_finite(fn, x, n, dim);
  if (s) return s;
  double t0 = now_s();
  onerec_tokenizer *t = NULL;
  s = orx_tok_new(ctx, c.levels, c.k, dim, &t);
  if (s) return s;
  t->info.iterations = c.iterations;
  t->info.seed = c.seed;
  t->info.init = (onerec_kmeans_init)c.init;
  t->info.balanced = c.balanced;
  t->info.tolerance = c.tolerance;
  t->info.max_train = c.max_train;
  t->info.init_sample = c.init_sample;
  size_t lk = (size_t)c.levels * (size_t)c.k;
  t->d_codebooks = orx_dev_alloc(ctx, lk * (size_t)dim * sizeof(float));
  t->d_cnorm = orx_dev_alloc(ctx, lk * sizeof(float));
  if (!t->d_codebooks || !t->d_cnorm) {
    onerec_tokenizer_free(t);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory for the codebooks", fn);
  }
  fit_work w = {0};
  s = fit_levels(t, x, n, &c, &w);
  fit_work_free(ctx, &w);
  if (!s)
    s = orx_dev_copy(ctx, t->codebooks, t->d_codebooks, lk * (size_t)dim * sizeof(float),
                     ORX_COPY_D2H);
  if (s) {
    onerec_tokenizer_free(t);
    return s;
  }
  t->info.fit_seconds = now_s() - t0;
  *out = t;
  return ONEREC_OK;
}

/* ---- queries ---- */

ONEREC_API onerec_status onerec_tokenizer_info_get(const onerec_tokenizer *t,
                                                   onerec_tokenizer_info *info) {
  static const char fn[] = "onerec_tokenizer_info_get";
  ORX_CHECK_ARG(t, fn);
  ORX_CHECK_ARG(info, fn);
  return orx_tok_out(info, &t->info, sizeof t->info, "onerec_tokenizer_info");
}

ONEREC_API onerec_status onerec_tokenizer_codebook(const onerec_tokenizer *t, int level,
                                                   float *out, size_t out_len) {
  static const char fn[] = "onerec_tokenizer_codebook";
  ORX_CHECK_ARG(t, fn);
  ORX_CHECK_ARG(out, fn);
  if (level < 0 || level >= t->levels)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: level %d outside 0..%d", fn, level,
                    t->levels - 1);
  size_t need = (size_t)t->k * (size_t)t->dim;
  if (out_len < need)
    return orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "%s: out holds %zu floats, the codebook has %zu",
                    fn, out_len, need);
  memcpy(out, t->codebooks + (size_t)level * need, need * sizeof(float));
  return ONEREC_OK;
}

/* ---- encode / decode ---- */

typedef struct block_buf {
  float *r;       /* device: block x dim */
  float *rnorm;   /* device: block */
  int32_t *idx;   /* device: block */
  int32_t *h_idx; /* host: block */
  float *h_norm;  /* host: block */
} block_buf;

static void block_free(onerec_context *ctx, block_buf *b) {
  orx_dev_free(ctx, b->r);
  orx_dev_free(ctx, b->rnorm);
  orx_dev_free(ctx, b->idx);
  orx_host_free(ctx, b->h_idx);
  orx_host_free(ctx, b->h_norm);
}

static onerec_status block_alloc(onerec_tokenizer *t, int64_t n, block_buf *b, int64_t *rows) {
  onerec_context *ctx = t->ctx;
  int64_t bs = n < TOK_BLOCK ? n : TOK_BLOCK;
  if (bs < 1) bs = 1;
  b->r = orx_dev_alloc(ctx, (size_t)(bs * t->dim) * sizeof(float));
  b->rnorm = orx_dev_alloc(ctx, (size_t)bs * sizeof(float));
  b->idx = orx_dev_alloc(ctx, (size_t)bs * sizeof(int32_t));
  b->h_idx = orx_host_alloc(ctx, (size_t)bs * sizeof(int32_t));
  b->h_norm = orx_host_alloc(ctx, (size_t)bs * sizeof(float));
  *rows = bs;
  if (!b->r || !b->rnorm || !b->idx || !b->h_idx || !b->h_norm) {
    block_free(ctx, b);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "tokenizer: out of memory for a block of %lld rows",
                    (long long)bs);
  }
  return ONEREC_OK;
}

/* Sum of the block's squared row norms (and each row's, into rows when not NULL). */
static onerec_status block_norms(onerec_tokenizer *t, block_buf *b, int64_t m, double *sum,
                                 float *rows) {
  onerec_context *ctx = t->ctx;
  onerec_status s = ORX_OP(&ctx->be, row_sq_norms, b->rnorm, b->r, t->dim, m, t->dim);
  if (!s) s = orx_dev_copy(ctx, b->h_norm, b->rnorm, (size_t)m * sizeof(float), ORX_COPY_D2H);
  if (s) return s;
  double acc = 0;
  for (int64_t i = 0; i < m; i++) acc += (double)b->h_norm[i];
  *sum += acc;
  if (rows) memcpy(rows, b->h_norm, (size_t)m * sizeof(float));
  return ONEREC_OK;
}

onerec_status orx_tok_encode_rows(onerec_tokenizer *t, const float *x, int64_t n, int32_t *codes,
                                  double *x_sq, double *res_sq, float *res_rows) {
  onerec_context *ctx = t->ctx;
  orx_backend *be = &ctx->be;
  int64_t dim = t->dim, k = t->k, bs;
  block_buf b = {0};
  onerec_status s = block_alloc(t, n, &b, &bs);
  if (s) return s;
  double xs = 0, rs = 0;
  for (int64_t r0 = 0; !s && r0 < n; r0 += bs) {
    int64_t m = n - r0 < bs ? n - r0 : bs;
    s = orx_dev_copy(ctx, b.r, x + r0 * dim, (size_t)(m * dim) * sizeof(float), ORX_COPY_H2D);
    if (!s && x_sq) s = block_norms(t, &b, m, &xs, NULL);
    for (int l = 0; !s && l < t->levels; l++) {
      const float *cb = t->d_codebooks + (size_t)l * (size_t)k * (size_t)dim;
      orx_kmeans_assign_args a = {.x = b.r, .ldx = dim, .rows = m, .dim = dim,
                                  .c = cb, .cnorm = t->d_cnorm + (size_t)l * k, .k = k,
                                  .idx = b.idx};
      s = ORX_OP(be, kmeans_assign, &a);
      if (!s) s = ORX_OP(be, gather_axpy, b.r, dim, cb, b.idx, m, dim, k, -1.0f);
      if (!s) s = orx_dev_copy(ctx, b.h_idx, b.idx, (size_t)m * sizeof(int32_t), ORX_COPY_D2H);
      if (!s)
        for (int64_t i = 0; i < m; i++) codes[(r0 + i) * t->levels + l] = b.h_idx[i];
    }
    if (!s && (res_sq || res_rows)) s = block_norms(t, &b, m, &rs, res_rows ? res_rows + r0 : NULL);
  }
  block_free(ctx, &b);
  if (!s && x_sq) *x_sq = xs;
  if (!s && res_sq) *res_sq = rs;
  return s;
}

/* Writes the codes of one level of block rows to the device index buffer. */
static onerec_status level_ids(onerec_tokenizer *t, block_buf *b, const int32_t *codes, int64_t m,
                               int l) {
  for (int64_t i = 0; i < m; i++) b->h_idx[i] = codes[i * t->levels + l];
  return orx_dev_copy(t->ctx, b->idx, b->h_idx, (size_t)m * sizeof(int32_t), ORX_COPY_H2D);
}

onerec_status orx_tok_residual_sq(onerec_tokenizer *t, const float *x, const int32_t *codes,
                                  int64_t n, double *x_sq, double *res_sq) {
  onerec_context *ctx = t->ctx;
  int64_t dim = t->dim, k = t->k, bs;
  block_buf b = {0};
  onerec_status s = block_alloc(t, n, &b, &bs);
  if (s) return s;
  double xs = 0, rs = 0;
  for (int64_t r0 = 0; !s && r0 < n; r0 += bs) {
    int64_t m = n - r0 < bs ? n - r0 : bs;
    s = orx_dev_copy(ctx, b.r, x + r0 * dim, (size_t)(m * dim) * sizeof(float), ORX_COPY_H2D);
    if (!s) s = block_norms(t, &b, m, &xs, NULL);
    for (int l = 0; !s && l < t->levels; l++) {
      s = level_ids(t, &b, codes + r0 * t->levels, m, l);
      if (!s)
        s = ORX_OP(&ctx->be, gather_axpy, b.r, dim,
                   t->d_codebooks + (size_t)l * (size_t)k * (size_t)dim, b.idx, m, dim, k, -1.0f);
    }
    if (!s) s = block_norms(t, &b, m, &rs, NULL);
  }
  block_free(ctx, &b);
  *x_sq = xs;
  *res_sq = rs;
  return s;
}

ONEREC_API onerec_status onerec_tokenizer_encode(onerec_tokenizer *t, const float *x, int64_t n,
                                                 int32_t *codes) {
  static const char fn[] = "onerec_tokenizer_encode";
  ORX_CHECK_ARG(t, fn);
  if (n < 0) return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: n = %lld", fn, (long long)n);
  if (n == 0) return ONEREC_OK;
  ORX_CHECK_ARG(x, fn);
  ORX_CHECK_ARG(codes, fn);
  onerec_status s = orx_tok_check_finite(fn, x, n, t->dim);
  if (s) return s;
  return orx_tok_encode_rows(t, x, n, codes, NULL, NULL, NULL);
}

ONEREC_API onerec_status onerec_tokenizer_decode(onerec_tokenizer *t, const int32_t *codes,
                                                 int64_t n, float *x_hat) {
  static const char fn[] = "onerec_tokenizer_decode";
  ORX_CHECK_ARG(t, fn);
  if (n < 0) return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: n = %lld", fn, (long long)n);
  if (n == 0) return ONEREC_OK;
  ORX_CHECK_ARG(codes, fn);
  ORX_CHECK_ARG(x_hat, fn);
  onerec_status s = orx_tok_check_codes(fn, t, codes, n);
  if (s) return s;
  onerec_context *ctx = t->ctx;
  int64_t dim = t->dim, k = t->k, bs;
  block_buf b = {0};
  s = block_alloc(t, n, &b, &bs);
  if (s) return s;
  for (int64_t r0 = 0; !s && r0 < n; r0 += bs) {
    int64_t m = n - r0 < bs ? n - r0 : bs;
    s = ORX_OP(&ctx->be, memset0, b.r, (size_t)(m * dim) * sizeof(float));
    for (int l = 0; !s && l < t->levels; l++) {
      s = level_ids(t, &b, codes + r0 * t->levels, m, l);
      if (!s)
        s = ORX_OP(&ctx->be, gather_axpy, b.r, dim,
                   t->d_codebooks + (size_t)l * (size_t)k * (size_t)dim, b.idx, m, dim, k, 1.0f);
    }
    if (!s) s = orx_dev_copy(ctx, x_hat + r0 * dim, b.r, (size_t)(m * dim) * sizeof(float),
                             ORX_COPY_D2H);
  }
  block_free(ctx, &b);
  return s;
}
