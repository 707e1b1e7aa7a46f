/* Model files (HDF5, through lib/h5io.h): the root is stamped kind "model" + format version;
 * /config holds the configuration as scalar attributes (arrays as name_0, name_1, ...); every
 * parameter is a float32 dataset /<module group>/<name> of its exact shape, as listed by the
 * layout in lib/model_config.c, e.g. /encoder/layer3/wqkv [d, 3d], /decoder/heads [L, d, K].
 * Linear weights are stored [in, out] (y = x W). Loading checks every shape against the stored
 * configuration, so a file from another configuration or a damaged one fails with a message
 * naming the dataset. */
#include <stdio.h>
#include <string.h>

#include "h5io.h"
#include "model_impl.h"

#define CFG_I32(X)                                                                          \
  X(enc_layers) X(dec_layers) X(d_model) X(heads) X(ffn_dim) X(experts) X(top_k)            \
  X(expert_dim) X(moe_encoder) X(moe_decoder) X(levels) X(codebook) X(use_static)           \
  X(use_short) X(use_positive) X(use_lifelong) X(short_len) X(positive_len)                 \
  X(lifelong_queries) X(qformer_layers) X(lifelong_tokens) X(lifelong_cluster_max)          \
  X(lifelong_max_items) X(static_cat_count) X(static_emb_dim) X(static_num_count)           \
  X(item_input) X(item_dim) X(seq_cat_count) X(seq_num_count)
#define CFG_F32(X) X(norm_eps) X(leaky_slope) X(init_std)

static onerec_status write_config(orx_h5 *h, const onerec_model_config *c) {
  hid_t g;
  onerec_status s = orx_h5_group_create(h, "config", &g);
  if (s) return s;
#define W_I(f) if (!s) s = orx_h5_attr_write_i64(h, g, #f, c->f);
#define W_F(f) if (!s) s = orx_h5_attr_write_f64(h, g, #f, (double)c->f);
  CFG_I32(W_I)
  CFG_F32(W_F)
#undef W_I
#undef W_F
  if (!s) s = orx_h5_attr_write_i64(h, g, "item_vocab", c->item_vocab);
  char n[48];
  for (int i = 0; !s && i < c->static_cat_count && i < ONEREC_MAX_FEATURES; i++) {
    snprintf(n, sizeof n, "static_cat_vocab_%d", i);
    s = orx_h5_attr_write_i64(h, g, n, c->static_cat_vocab[i]);
  }
  for (int i = 0; !s && i < c->seq_cat_count && i < ONEREC_MAX_FEATURES; i++) {
    snprintf(n, sizeof n, "seq_cat_vocab_%d", i);
    s = orx_h5_attr_write_i64(h, g, n, c->seq_cat_vocab[i]);
    snprintf(n, sizeof n, "seq_cat_dim_%d", i);
    if (!s) s = orx_h5_attr_write_i64(h, g, n, c->seq_cat_dim[i]);
  }
  orx_h5_group_close(g);
  return s;
}

/* Reads a 32-bit config field, refusing values that do not fit. */
static onerec_status read_i32(orx_h5 *h, hid_t g, const char *name, int32_t *out) {
  int64_t v = 0;
  onerec_status s = orx_h5_attr_read_i64(h, g, name, &v);
  if (s) return s;
  if (v < INT32_MIN || v > INT32_MAX)
    return orx_fail(ONEREC_ERR_FORMAT, "%s: config %s = %lld out of range", h->path, name,
                    (long long)v);
  *out = (int32_t)v;
  return ONEREC_OK;
}

static onerec_status read_config(orx_h5 *h, onerec_model_config *c) {
  memset(c, 0, sizeof *c);
  c->sz = sizeof *c;
  hid_t g;
  onerec_status s = orx_h5_group_open(h, "config", &g);
  if (s) return s;
  double f = 0;
#define R_I(x) if (!s) s = read_i32(h, g, #x, &c->x);
#define R_F(x) if (!s && !(s = orx_h5_attr_read_f64(h, g, #x, &f))) c->x = (float)f;
  CFG_I32(R_I)
  CFG_F32(R_F)
#undef R_I
#undef R_F
  if (!s) s = orx_h5_attr_read_i64(h, g, "item_vocab", &c->item_vocab);
  if (!s && (c->static_cat_count < 0 || c->static_cat_count > ONEREC_MAX_FEATURES ||
             c->seq_cat_count < 0 || c->seq_cat_count > ONEREC_MAX_FEATURES))
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: config: %d static / %d sequence features (at most %d)",
                 h->path, c->static_cat_count, c->seq_cat_count, ONEREC_MAX_FEATURES);
  char n[48];
  for (int i = 0; !s && i < c->static_cat_count; i++) {
    snprintf(n, sizeof n, "static_cat_vocab_%d", i);
    s = orx_h5_attr_read_i64(h, g, n, &c->static_cat_vocab[i]);
  }
  for (int i = 0; !s && i < c->seq_cat_count; i++) {
    snprintf(n, sizeof n, "seq_cat_vocab_%d", i);
    s = orx_h5_attr_read_i64(h, g, n, &c->seq_cat_vocab[i]);
    snprintf(n, sizeof n, "seq_cat_dim_%d", i);
    if (!s) s = read_i32(h, g, n, &c->seq_cat_dim[i]);
  }
  orx_h5_group_close(g);
  return s;
}

static size_t largest_param(const onerec_model *m) {
  size_t n = 1;
  for (int i = 0; i < m->n_table; i++)
    if (m->table[i].count > n) n = m->table[i].count;
  return n;
}

/* Creates every group of the table (parents first, each once). */
static onerec_status make_groups(orx_h5 *h, const onerec_model *m) {
  for (int i = 0; i < m->n_table; i++) {
    const char *grp = m->table[i].group;
    if (i > 0 && !strcmp(grp, m->table[i - 1].group)) continue;
    if (orx_h5_exists(h, h->file, grp)) continue;
    hid_t g;
    onerec_status s = orx_h5_group_create(h, grp, &g);
    if (s) return s;
    orx_h5_group_close(g);
  }
  return ONEREC_OK;
}

onerec_status orx_model_write(const onerec_model *m, const char *path,
                              const onerec_model_config *stored) {
  static const char fn[] = "onerec_model_save";
  orx_backend *be = &m->ctx->be;
  float *buf = orx_host_alloc(m->ctx, largest_param(m) * sizeof(float));
  if (!buf) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  orx_h5 h;
  onerec_status s = orx_h5_create(&h, path);
  if (s) {
    orx_host_free(m->ctx, buf);
    return s;
  }
  s = orx_h5_stamp(&h, ORX_MODEL_KIND, ORX_MODEL_FORMAT_VERSION);
  if (!s) s = write_config(&h, stored);
  if (!s) s = make_groups(&h, m);
  for (int i = 0; !s && i < m->n_table; i++) {
    const orx_param *p = &m->table[i];
    char name[80];
    snprintf(name, sizeof name, "%s/%s", p->group, p->name);
    s = ORX_OP(be, copy, buf, m->params + p->offset, p->count * sizeof(float), ORX_COPY_D2H);
    if (!s) s = orx_h5_write(&h, h.file, name, ORX_H5_F32, p->rank, p->dims, buf);
  }
  orx_host_free(m->ctx, buf);
  if (s) {
    orx_h5_abort(&h);
    return s;
  }
  return orx_h5_commit(&h);
}

ONEREC_API onerec_status onerec_model_save(const onerec_model *m, const char *path) {
  ORX_CHECK_ARG(m, "onerec_model_save");
  ORX_CHECK_ARG(path, "onerec_model_save");
  return orx_model_write(m, path, &m->cfg);
}

ONEREC_API onerec_status onerec_model_load(onerec_context *ctx, const char *path,
                                           onerec_model **out) {
  static const char fn[] = "onerec_model_load";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(ctx, fn);
  ORX_CHECK_ARG(path, fn);
  orx_h5 h;
  onerec_status s = orx_h5_open(&h, path);
  if (s) return s;
  onerec_model_config c;
  onerec_model *m = NULL;
  float *buf = NULL;
  s = orx_h5_check_stamp(&h, ORX_MODEL_KIND, ORX_MODEL_FORMAT_VERSION, NULL);
  if (!s) s = read_config(&h, &c);
  if (!s && (s = orx_config_check(&c))) {
    char why[512];
    snprintf(why, sizeof why, "%s", onerec_last_error());
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: stored %s", path, why);
  }
  if (!s) s = orx_model_alloc(ctx, &c, &m);
  if (!s) {
    buf = orx_host_alloc(ctx, largest_param(m) * sizeof(float));
    if (!buf) s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  }
  for (int i = 0; !s && i < m->n_table; i++) {
    const orx_param *p = &m->table[i];
    char name[80];
    snprintf(name, sizeof name, "%s/%s", p->group, p->name);
    int64_t dims[3] = {p->dims[0], p->dims[1], p->dims[2]};
    s = orx_h5_read(&h, h.file, name, ORX_H5_F32, p->rank, dims, buf, p->count * sizeof(float));
    if (!s)
      s = ORX_OP(&ctx->be, copy, m->params + p->offset, buf, p->count * sizeof(float),
                 ORX_COPY_H2D);
  }
  orx_host_free(ctx, buf);
  orx_h5_close(&h);
  if (s) {
    onerec_model_free(m);
    return s;
  }
  *out = m;
  return ONEREC_OK;
}
