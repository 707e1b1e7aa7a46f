/* Tokenizer files (HDF5 through lib/h5io.h). Root stamp: kind "tokenizer", format version 1.
 *   /config      attributes: algorithm "rq-kmeans", levels, codes_per_level, dim, iterations,
 *                seed (the uint64 bit pattern as int64), init ("kmeans++" | "random"), balanced,
 *                tolerance, max_train, init_sample, train_points, fit_seconds, and per level l
 *                iterations_run_l, train_loss_l, reseeded_l; checksum (FNV-1a 64 of the
 *                codebooks' bytes, as int64)
 *   /codebooks   float32 [levels, codes_per_level, dim]
 * HDF5 keeps no checksum of raw data, so the checksum attribute is what catches flipped bytes
 * inside the codebooks. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "h5io.h"
#include "tokenizer_impl.h"

#define TOK_KIND "tokenizer"
#define TOK_FORMAT_VERSION 1

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

static int64_t checksum(const onerec_tokenizer *t) {
  size_t lk = (size_t)t->levels * (size_t)t->k;
  uint64_t h = fnv1a(0xcbf29ce484222325ull, t->codebooks, lk * (size_t)t->dim * sizeof(float));
  int64_t v;
  memcpy(&v, &h, sizeof v);
  return v;
}

static onerec_status write_config(orx_h5 *h, const onerec_tokenizer *t) {
  const onerec_tokenizer_info *in = &t->info;
  hid_t g;
  onerec_status s = orx_h5_group_create(h, "config", &g);
  if (s) return s;
  int64_t seed;
  memcpy(&seed, &in->seed, sizeof seed);
  s = orx_h5_attr_write_str(h, g, "algorithm", "rq-kmeans");
  if (!s) s = orx_h5_attr_write_i64(h, g, "levels", t->levels);
  if (!s) s = orx_h5_attr_write_i64(h, g, "codes_per_level", t->k);
  if (!s) s = orx_h5_attr_write_i64(h, g, "dim", t->dim);
  if (!s) s = orx_h5_attr_write_i64(h, g, "iterations", in->iterations);
  if (!s) s = orx_h5_attr_write_i64(h, g, "seed", seed);
  if (!s)
    s = orx_h5_attr_write_str(h, g, "init",
                              in->init == ONEREC_KMEANS_RANDOM ? "random" : "kmeans++");
  if (!s) s = orx_h5_attr_write_i64(h, g, "balanced", in->balanced);
  if (!s) s = orx_h5_attr_write_f64(h, g, "tolerance", in->tolerance);
  if (!s) s = orx_h5_attr_write_i64(h, g, "max_train", in->max_train);
  if (!s) s = orx_h5_attr_write_i64(h, g, "init_sample", in->init_sample);
  if (!s) s = orx_h5_attr_write_i64(h, g, "train_points", in->train_points);
  if (!s) s = orx_h5_attr_write_f64(h, g, "fit_seconds", in->fit_seconds);
  char name[48];
  for (int l = 0; !s && l < t->levels; l++) {
    snprintf(name, sizeof name, "iterations_run_%d", l);
    s = orx_h5_attr_write_i64(h, g, name, in->iterations_run[l]);
    snprintf(name, sizeof name, "train_loss_%d", l);
    if (!s) s = orx_h5_attr_write_f64(h, g, name, in->train_loss[l]);
    snprintf(name, sizeof name, "reseeded_%d", l);
    if (!s) s = orx_h5_attr_write_i64(h, g, name, in->reseeded[l]);
  }
  if (!s) s = orx_h5_attr_write_i64(h, g, "checksum", checksum(t));
  orx_h5_group_close(g);
  return s;
}

ONEREC_API onerec_status onerec_tokenizer_save(const onerec_tokenizer *t, const char *path) {
  static const char fn[] = "onerec_tokenizer_save";
  ORX_CHECK_ARG(t, fn);
  ORX_CHECK_ARG(path, fn);
  orx_h5 h;
  onerec_status s = orx_h5_create(&h, path);
  if (s) return s;
  int64_t cdims[3] = {t->levels, t->k, t->dim};
  s = orx_h5_stamp(&h, TOK_KIND, TOK_FORMAT_VERSION);
  if (!s) s = write_config(&h, t);
  if (!s) s = orx_h5_write(&h, h.file, "codebooks", ORX_H5_F32, 3, cdims, t->codebooks);
  if (!s) return orx_h5_commit(&h);
  orx_h5_abort(&h);
  return s;
}

/* ---- load ---- */

static onerec_status read_range(orx_h5 *h, hid_t g, const char *name, int64_t lo, int64_t hi,
                                int64_t *out) {
  onerec_status s = orx_h5_attr_read_i64(h, g, name, out);
  if (s) return s;
  if (*out < lo || *out > hi)
    return orx_fail(ONEREC_ERR_FORMAT, "%s: config %s = %lld outside %lld..%lld", h->path, name,
                    (long long)*out, (long long)lo, (long long)hi);
  return ONEREC_OK;
}

static onerec_status read_f64(orx_h5 *h, hid_t g, const char *name, double *out) {
  onerec_status s = orx_h5_attr_read_f64(h, g, name, out);
  if (!s && !isfinite(*out))
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: config %s is not finite", h->path, name);
  return s;
}

/* Shape and fit record of the file; the tokenizer is created once the shape is known. */
static onerec_status read_config(orx_h5 *h, hid_t g, onerec_context *ctx, onerec_tokenizer **out,
                                 int64_t *sum) {
  char str[32];
  onerec_status s = orx_h5_attr_read_str(h, g, "algorithm", str, sizeof str);
  if (!s && strcmp(str, "rq-kmeans") != 0)
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: algorithm '%s', expected 'rq-kmeans'", h->path, str);
  int64_t levels = 0, k = 0, dim = 0, v = 0;
  if (!s) s = read_range(h, g, "levels", 1, ONEREC_TOKENIZER_MAX_LEVELS, &levels);
  if (!s) s = read_range(h, g, "codes_per_level", 1, ORX_TOK_MAX_CODES, &k);
  if (!s) s = read_range(h, g, "dim", 1, INT32_MAX, &dim);
  if (s) return s;
  /* the datasets must have the configured shapes before anything that size is allocated */
  int64_t cdims[3] = {levels, k, dim};
  s = orx_h5_read(h, h->file, "codebooks", ORX_H5_F32, 3, cdims, NULL, 0);
  if (s) return s;
  onerec_tokenizer *t = NULL;
  s = orx_tok_new(ctx, (int)levels, (int)k, dim, &t);
  if (s) return s;
  onerec_tokenizer_info *in = &t->info;
  if (!s) s = read_range(h, g, "iterations", 1, 1000000, &v);
  in->iterations = (int)v;
  if (!s) s = orx_h5_attr_read_i64(h, g, "seed", &v);
  memcpy(&in->seed, &v, sizeof v);
  if (!s) s = orx_h5_attr_read_str(h, g, "init", str, sizeof str);
  if (!s) {
    if (!strcmp(str, "kmeans++"))
      in->init = ONEREC_KMEANS_PLUSPLUS;
    else if (!strcmp(str, "random"))
      in->init = ONEREC_KMEANS_RANDOM;
    else
      s = orx_fail(ONEREC_ERR_FORMAT, "%s: config init '%s' is neither kmeans++ nor random",
                   h->path, str);
  }
  if (!s) s = read_range(h, g, "balanced", 0, 1, &v);
  in->balanced = (int)v;
  if (!s) s = read_f64(h, g, "tolerance", &in->tolerance);
  if (!s) s = orx_h5_attr_read_i64(h, g, "max_train", &in->max_train);
  if (!s) s = orx_h5_attr_read_i64(h, g, "init_sample", &in->init_sample);
  if (!s) s = read_range(h, g, "train_points", 1, INT64_MAX, &in->train_points);
  if (!s) s = read_f64(h, g, "fit_seconds", &in->fit_seconds);
  char name[48];
  for (int l = 0; !s && l < t->levels; l++) {
    snprintf(name, sizeof name, "iterations_run_%d", l);
    s = read_range(h, g, name, 0, in->iterations, &v);
    in->iterations_run[l] = (int)v;
    snprintf(name, sizeof name, "train_loss_%d", l);
    if (!s) s = read_f64(h, g, name, &in->train_loss[l]);
    snprintf(name, sizeof name, "reseeded_%d", l);
    if (!s) s = read_range(h, g, name, 0, INT32_MAX, &v);
    in->reseeded[l] = (int)v;
  }
  if (!s) s = orx_h5_attr_read_i64(h, g, "checksum", sum);
  if (s) {
    onerec_tokenizer_free(t);
    return s;
  }
  *out = t;
  return ONEREC_OK;
}

static onerec_status check_values(const orx_h5 *h, const float *v, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i]))
      return orx_fail(ONEREC_ERR_FORMAT, "%s: %s value %zu is not finite", h->path, what, i);
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_tokenizer_load(onerec_context *ctx, const char *path,
                                               onerec_tokenizer **out) {
  static const char fn[] = "onerec_tokenizer_load";
  ORX_CHECK_ARG(ctx, fn);
  ORX_CHECK_ARG(path, fn);
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  onerec_status s = orx_tok_check_backend(fn, ctx);
  if (s) return s;
  orx_h5 h;
  s = orx_h5_open(&h, path);
  if (s) return s;
  s = orx_h5_check_stamp(&h, TOK_KIND, TOK_FORMAT_VERSION, NULL);
  hid_t g = -1;
  if (!s) s = orx_h5_group_open(&h, "config", &g);
  onerec_tokenizer *t = NULL;
  int64_t sum = 0;
  if (!s) s = read_config(&h, g, ctx, &t, &sum);
  if (g >= 0) orx_h5_group_close(g);
  if (!s) {
    size_t lk = (size_t)t->levels * (size_t)t->k;
    int64_t cdims[3] = {t->levels, t->k, t->dim};
    s = orx_h5_read(&h, h.file, "codebooks", ORX_H5_F32, 3, cdims, t->codebooks,
                    lk * (size_t)t->dim * sizeof(float));
    if (!s && checksum(t) != sum)
      s = orx_fail(ONEREC_ERR_FORMAT, "%s: checksum mismatch: the codebooks are corrupt", path);
    if (!s) s = check_values(&h, t->codebooks, lk * (size_t)t->dim, "codebook");
  }
  orx_h5_close(&h);
  if (!s) s = orx_tok_upload(t);
  if (s) {
    onerec_tokenizer_free(t);
    return s;
  }
  *out = t;
  return ONEREC_OK;
}

/* ---- features files ---- */

static onerec_status features_shape(orx_h5 *h, int64_t *n, int64_t *dim, int *has_ids) {
  int64_t d[2] = {-1, -1};
  onerec_status s = orx_h5_read(h, h->file, "features", ORX_H5_F32, 2, d, NULL, 0);
  if (s) return s;
  if (d[0] < 1 || d[1] < 1)
    return orx_fail(ONEREC_ERR_SHAPE, "%s: features is [%lld, %lld]: empty", h->path,
                    (long long)d[0], (long long)d[1]);
  *has_ids = orx_h5_exists(h, h->file, "item_ids");
  if (*has_ids) {
    int64_t in = d[0];
    s = orx_h5_read(h, h->file, "item_ids", ORX_H5_I64, 1, &in, NULL, 0);
    if (s) return s;
  }
  *n = d[0];
  *dim = d[1];
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_features_file_info(const char *path, int64_t *n, int64_t *dim,
                                                   int *has_item_ids) {
  ORX_CHECK_ARG(path, "onerec_features_file_info");
  orx_h5 h;
  onerec_status s = orx_h5_open(&h, path);
  if (s) return s;
  int64_t rn = 0, rd = 0;
  int ids = 0;
  s = features_shape(&h, &rn, &rd, &ids);
  orx_h5_close(&h);
  if (s) return s;
  if (n) *n = rn;
  if (dim) *dim = rd;
  if (has_item_ids) *has_item_ids = ids;
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_features_file_read(const char *path, float *x, size_t x_len,
                                                   int64_t *item_ids, size_t ids_len) {
  static const char fn[] = "onerec_features_file_read";
  ORX_CHECK_ARG(path, fn);
  ORX_CHECK_ARG(x, fn);
  orx_h5 h;
  onerec_status s = orx_h5_open(&h, path);
  if (s) return s;
  int64_t n = 0, dim = 0;
  int ids = 0;
  s = features_shape(&h, &n, &dim, &ids);
  if (!s && x_len / (size_t)dim < (size_t)n)
    s = orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "%s: %s holds %lld x %lld floats, x has %zu", fn,
                 path, (long long)n, (long long)dim, x_len);
  if (!s && item_ids && ids_len < (size_t)n)
    s = orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "%s: %s holds %lld item ids, item_ids has %zu", fn,
                 path, (long long)n, ids_len);
  int64_t d[2] = {n, dim};
  if (!s)
    s = orx_h5_read(&h, h.file, "features", ORX_H5_F32, 2, d, x, x_len * sizeof(float));
  if (!s && item_ids) {
    if (ids) {
      int64_t in = n;
      s = orx_h5_read(&h, h.file, "item_ids", ORX_H5_I64, 1, &in, item_ids,
                      ids_len * sizeof(int64_t));
    } else {
      for (int64_t i = 0; i < n; i++) item_ids[i] = i;
    }
  }
  orx_h5_close(&h);
  return s;
}
