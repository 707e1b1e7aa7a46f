/* Aligner files (HDF5 through lib/h5io.h): root stamp kind "aligner" + format version; /config
 * holds the configuration as scalar attributes and the update count; params, adam_m and adam_v
 * are float32 datasets of the padded parameter buffer, whose layout the configuration fixes
 * (lib/align.c), so a loaded aligner continues training exactly. Also the features-file writer
 * that hands aligned vectors to the tokenizer. */
#include <math.h>
#include <string.h>

#include "align_impl.h"
#include "h5io.h"

#define CFG_I(X) X(in_dim) X(tokens) X(queries) X(layers) X(d_model) X(heads) X(ffn_dim) \
  X(max_batch) X(warmup_steps)
#define CFG_F(X) X(temperature) X(lr) X(weight_decay)

static const char *const BUFS[3] = {"params", "adam_m", "adam_v"};

static float *buf_of(const orx_aligner *a, int i) {
  return i == 0 ? a->params : i == 1 ? a->adam_m : a->adam_v;
}

ONEREC_API onerec_status onerec_aligner_save(const onerec_aligner *a, const char *path) {
  static const char fn[] = "onerec_aligner_save";
  ORX_CHECK_ARG(a, fn);
  ORX_CHECK_ARG(path, fn);
  float *host = orx_host_alloc(a->ctx, a->n_floats * sizeof(float));
  if (!host) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  orx_h5 h;
  onerec_status s = orx_h5_create(&h, path);
  if (s) {
    orx_host_free(a->ctx, host);
    return s;
  }
  s = orx_h5_stamp(&h, ORX_ALIGNER_KIND, ORX_ALIGNER_FORMAT_VERSION);
  hid_t g = -1;
  if (!s) s = orx_h5_group_create(&h, "config", &g);
#define W_I(f) if (!s) s = orx_h5_attr_write_i64(&h, g, #f, (int64_t)a->cfg.f);
#define W_F(f) if (!s) s = orx_h5_attr_write_f64(&h, g, #f, (double)a->cfg.f);
  CFG_I(W_I)
  CFG_F(W_F)
#undef W_I
#undef W_F
  if (!s) s = orx_h5_attr_write_i64(&h, g, "step", a->step);
  if (g >= 0) orx_h5_group_close(g);
  const int64_t dims[1] = {(int64_t)a->n_floats};
  for (int i = 0; !s && i < 3; i++) {
    s = ORX_OP(a->be, copy, host, buf_of(a, i), a->n_floats * sizeof(float), ORX_COPY_D2H);
    if (!s) s = orx_h5_write(&h, h.file, BUFS[i], ORX_H5_F32, 1, dims, host);
  }
  orx_host_free(a->ctx, host);
  if (s) {
    orx_h5_abort(&h);
    return s;
  }
  return orx_h5_commit(&h);
}

ONEREC_API onerec_status onerec_aligner_load(onerec_context *ctx, const char *path,
                                             onerec_aligner **out) {
  static const char fn[] = "onerec_aligner_load";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(ctx, fn);
  ORX_CHECK_ARG(path, fn);
  orx_h5 h;
  onerec_status s = orx_h5_open(&h, path);
  if (s) return s;
  s = orx_h5_check_stamp(&h, ORX_ALIGNER_KIND, ORX_ALIGNER_FORMAT_VERSION, NULL);
  ONEREC_OPTS(onerec_aligner_config, c);
  int64_t step = 0;
  hid_t g = -1;
  if (!s) s = orx_h5_group_open(&h, "config", &g);
  int64_t vi = 0;
  double vf = 0.0;
  /* out-of-range values are refused by the configuration check, not wrapped */
#define R_I(f)                                                                   \
  if (!s) s = orx_h5_attr_read_i64(&h, g, #f, &vi);                              \
  if (!s) c.f = vi < INT32_MIN ? INT32_MIN : vi > INT32_MAX ? INT32_MAX : (int32_t)vi;
#define R_F(f)                                                                   \
  if (!s) s = orx_h5_attr_read_f64(&h, g, #f, &vf);                              \
  if (!s) c.f = isfinite(vf) ? (float)vf : -1.0f;
  CFG_I(R_I)
  CFG_F(R_F)
#undef R_I
#undef R_F
  if (!s) s = orx_h5_attr_read_i64(&h, g, "step", &step);
  /* a stored 0 is an explicit "none", not "default" */
  if (!s && c.warmup_steps == 0) c.warmup_steps = -1;
  if (!s && c.weight_decay == 0.0f) c.weight_decay = -1.0f;
  if (g >= 0) orx_h5_group_close(g);
  if (!s && step < 0) s = orx_fail(ONEREC_ERR_FORMAT, "%s: step = %lld < 0", path, (long long)step);
  /* zero fields would silently take defaults: a file always holds explicit values */
  if (!s && (c.queries <= 0 || c.layers <= 0 || c.d_model <= 0 || c.heads <= 0 ||
             c.ffn_dim <= 0 || c.max_batch <= 0 || !(c.temperature > 0.0f) || !(c.lr > 0.0f)))
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: configuration has zero or negative sizes", path);
  orx_aligner *a = NULL;
  if (!s) {
    s = orx_aligner_alloc(ctx, &c, fn, &a);
    if (s == ONEREC_ERR_INVALID_ARGUMENT) {
      char why[512]; /* the message buffer is orx_fail's destination: copy it out first */
      snprintf(why, sizeof why, "%s", onerec_last_error());
      s = orx_fail(ONEREC_ERR_FORMAT, "%s: bad configuration: %s", path, why);
    }
  }
  float *host = NULL;
  if (!s) {
    host = orx_host_alloc(ctx, a->n_floats * sizeof(float));
    if (!host) s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  }
  for (int i = 0; !s && i < 3; i++) {
    int64_t dims[1] = {(int64_t)a->n_floats};
    s = orx_h5_read(&h, h.file, BUFS[i], ORX_H5_F32, 1, dims, host, a->n_floats * sizeof(float));
    for (size_t j = 0; !s && j < a->n_floats; j++)
      if (!isfinite(host[j]) || (i == 2 && host[j] < 0.0f))
        s = orx_fail(ONEREC_ERR_FORMAT, "%s: %s[%zu] = %g is not a valid value", path, BUFS[i], j,
                     (double)host[j]);
    if (!s) s = ORX_OP(a->be, copy, buf_of(a, i), host, a->n_floats * sizeof(float), ORX_COPY_H2D);
  }
  orx_host_free(ctx, host);
  orx_h5_close(&h);
  if (s) {
    orx_aligner_free(a);
    return s;
  }
  a->step = step;
  *out = a;
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_features_file_write(const char *path, const float *x, int64_t n,
                                                   int64_t dim, const int64_t *item_ids,
                                                   const char *source) {
  static const char fn[] = "onerec_features_file_write";
  ORX_CHECK_ARG(path, fn);
  ORX_CHECK_ARG(x, fn);
  if (n < 1 || dim < 1)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: n = %lld, dim = %lld (both >= 1)", fn,
                    (long long)n, (long long)dim);
  for (int64_t i = 0; i < n * dim; i++)
    if (!isfinite(x[i]))
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: x[%lld] is not finite", fn, (long long)i);
  orx_h5 h;
  onerec_status s = orx_h5_create(&h, path);
  if (s) return s;
  s = orx_h5_stamp(&h, "features", 1);
  if (!s) s = orx_h5_write(&h, h.file, "features", ORX_H5_F32, 2, (const int64_t[]){n, dim}, x);
  if (!s && item_ids)
    s = orx_h5_write(&h, h.file, "item_ids", ORX_H5_I64, 1, (const int64_t[]){n}, item_ids);
  if (!s && source) s = orx_h5_attr_write_str(&h, h.file, "source", source);
  if (s) {
    orx_h5_abort(&h);
    return s;
  }
  return orx_h5_commit(&h);
}
