/* Model configuration: presets, validation, derived sizes and the parameter layout (the one
 * place that says which parameters exist, their HDF5 names, shapes and initialisation). */
#include <stdio.h>
#include <string.h>

#include "model_impl.h"

/* 2/3 x 4 x d, rounded up to a multiple of 128 (LLaMA's rule for SwiGLU widths). */
static int32_t expert_width(int32_t d) {
  int32_t h = (int32_t)((8 * (int64_t)d + 2) / 3);
  return (h + 127) / 128 * 128;
}

static void preset_common(onerec_model_config *c) {
  memset(c, 0, sizeof *c);
  c->sz = sizeof *c;
  c->levels = 3;
  c->codebook = 8192;
  c->use_static = c->use_short = c->use_positive = c->use_lifelong = 1;
  c->short_len = 20;
  c->positive_len = 256;
  c->lifelong_queries = 128;
  c->qformer_layers = 2;
  c->lifelong_tokens = 2000;
  c->lifelong_cluster_max = 50;
  c->lifelong_max_items = 100000;
  c->static_cat_count = 3; /* uid (hashed), gender, age bucket */
  c->static_emb_dim = 64;
  c->static_cat_vocab[0] = 8192;
  c->static_cat_vocab[1] = 4;
  c->static_cat_vocab[2] = 16;
  c->static_num_count = 0;
  c->item_input = ONEREC_ITEM_BY_SID;
  c->item_vocab = 0;
  c->seq_cat_count = 3; /* author (hashed), tag, label */
  c->seq_cat_vocab[0] = 8192;
  c->seq_cat_dim[0] = 512;
  c->seq_cat_vocab[1] = 1024;
  c->seq_cat_dim[1] = 128;
  c->seq_cat_vocab[2] = 16;
  c->seq_cat_dim[2] = 128;
  c->seq_num_count = 3; /* timestamp, playtime, duration */
  c->norm_eps = 1e-6f;
  c->leaky_slope = 0.01f;
  c->init_std = 0.02f;
  c->top_k = 1;
  c->experts = 0;
}

static void preset_size(onerec_model_config *c, int32_t layers, int32_t d, int32_t heads,
                        int32_t experts, int32_t top_k, int moe_enc, int moe_dec) {
  c->enc_layers = c->dec_layers = layers;
  c->d_model = d;
  c->heads = heads;
  c->ffn_dim = 2 * d;
  c->item_dim = d;
  c->experts = experts;
  c->top_k = experts ? top_k : 1;
  c->expert_dim = experts ? expert_width(d) : 0;
  c->moe_encoder = moe_enc;
  c->moe_decoder = moe_dec;
}

ONEREC_API onerec_status onerec_model_config_preset(const char *name, onerec_model_config *cfg) {
  static const char fn[] = "onerec_model_config_preset";
  ORX_CHECK_ARG(name, fn);
  ORX_CHECK_ARG(cfg, fn);
  if (cfg->sz < sizeof(size_t))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: cfg->sz is %zu; declare it with ONEREC_OPTS(onerec_model_config, cfg)",
                    fn, cfg->sz);
  onerec_model_config c;
  preset_common(&c);
  if (!strcmp(name, "0.015B") || !strcmp(name, "default"))
    preset_size(&c, 4, 128, 4, 0, 0, 0, 0);
  else if (!strcmp(name, "0.121B"))
    preset_size(&c, 8, 1024, 8, 0, 0, 0, 0);
  else if (!strcmp(name, "0.935B"))
    preset_size(&c, 8, 1024, 8, 24, 2, 0, 1);
  else if (!strcmp(name, "2.633B"))
    preset_size(&c, 24, 1024, 8, 24, 4, 1, 1);
  else
    return orx_fail(ONEREC_ERR_NOT_FOUND,
                    "%s: unknown preset '%.64s' (expected 0.015B, 0.121B, 0.935B or 2.633B)", fn,
                    name);
  size_t keep = cfg->sz < sizeof c ? cfg->sz : sizeof c;
  memcpy((char *)cfg + sizeof(size_t), (const char *)&c + sizeof(size_t), keep - sizeof(size_t));
  return ONEREC_OK;
}

#define BAD(...) orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "model config: " __VA_ARGS__)

onerec_status orx_config_check(const onerec_model_config *c) {
  /* generous upper bounds keep every derived size far from overflow */
  if (c->enc_layers < 1 || c->enc_layers > 256) return BAD("enc_layers = %d (1..256)", c->enc_layers);
  if (c->dec_layers < 1 || c->dec_layers > 256) return BAD("dec_layers = %d (1..256)", c->dec_layers);
  if (c->heads < 1 || c->heads > 256) return BAD("heads = %d (1..256)", c->heads);
  if (c->d_model < 1 || c->d_model > 65536 || c->d_model % c->heads)
    return BAD("d_model = %d (1..65536, a multiple of heads = %d)", c->d_model, c->heads);
  if (c->ffn_dim < 1 || c->ffn_dim > 1 << 20) return BAD("ffn_dim = %d (1..2^20)", c->ffn_dim);
  if (c->moe_encoder || c->moe_decoder) {
    if (c->experts < 2 || c->experts > 1024) return BAD("experts = %d (2..1024 with MoE)", c->experts);
    if (c->top_k < 1 || c->top_k > c->experts)
      return BAD("top_k = %d (1..experts = %d)", c->top_k, c->experts);
    if (c->expert_dim < 1 || c->expert_dim > 1 << 20)
      return BAD("expert_dim = %d (1..2^20)", c->expert_dim);
  }
  if ((unsigned)c->moe_encoder > 1 || (unsigned)c->moe_decoder > 1)
    return BAD("moe_encoder / moe_decoder must be 0 or 1");
  if (c->levels < 1 || c->levels > 8) return BAD("levels = %d (1..8)", c->levels);
  if (c->codebook < 2 || c->codebook > 1 << 24) return BAD("codebook = %d (2..2^24)", c->codebook);
  if ((unsigned)c->use_static > 1 || (unsigned)c->use_short > 1 ||
      (unsigned)c->use_positive > 1 || (unsigned)c->use_lifelong > 1)
    return BAD("use_* flags must be 0 or 1");
  if (!c->use_static && !c->use_short && !c->use_positive && !c->use_lifelong)
    return BAD("every pathway is left out: the encoder would have no input");
  if (c->use_short && (c->short_len < 1 || c->short_len > 1 << 16))
    return BAD("short_len = %d (1..65536)", c->short_len);
  if (c->use_positive && (c->positive_len < 1 || c->positive_len > 1 << 16))
    return BAD("positive_len = %d (1..65536)", c->positive_len);
  if (c->use_lifelong) {
    if (c->lifelong_queries < 1 || c->lifelong_queries > 1 << 16)
      return BAD("lifelong_queries = %d (1..65536)", c->lifelong_queries);
    if (c->qformer_layers < 1 || c->qformer_layers > 64)
      return BAD("qformer_layers = %d (1..64)", c->qformer_layers);
    if (c->lifelong_tokens < 1 || c->lifelong_tokens > 1 << 20)
      return BAD("lifelong_tokens = %d (1..2^20)", c->lifelong_tokens);
    if (c->lifelong_cluster_max < 1)
      return BAD("lifelong_cluster_max = %d (>= 1)", c->lifelong_cluster_max);
    if (c->lifelong_max_items < 1 || c->lifelong_max_items > 1 << 26)
      return BAD("lifelong_max_items = %d (1..2^26)", c->lifelong_max_items);
  }
  int seq = c->use_short || c->use_positive || c->use_lifelong;
  if (c->use_static) {
    if (c->static_cat_count < 0 || c->static_cat_count > ONEREC_MAX_FEATURES)
      return BAD("static_cat_count = %d (0..%d)", c->static_cat_count, ONEREC_MAX_FEATURES);
    if (c->static_num_count < 0 || c->static_num_count > 4096)
      return BAD("static_num_count = %d (0..4096)", c->static_num_count);
    if (c->static_cat_count + c->static_num_count < 1)
      return BAD("the static pathway has no feature (static_cat_count = static_num_count = 0)");
    if (c->static_cat_count && (c->static_emb_dim < 1 || c->static_emb_dim > 65536))
      return BAD("static_emb_dim = %d (1..65536)", c->static_emb_dim);
    for (int i = 0; i < c->static_cat_count; i++)
      if (c->static_cat_vocab[i] < 1 || c->static_cat_vocab[i] > (int64_t)1 << 32)
        return BAD("static_cat_vocab[%d] = %lld (1..2^32)", i, (long long)c->static_cat_vocab[i]);
  }
  if (seq) {
    if (c->item_input != ONEREC_ITEM_BY_ID && c->item_input != ONEREC_ITEM_BY_SID)
      return BAD("item_input = %d (ONEREC_ITEM_BY_ID or ONEREC_ITEM_BY_SID)", c->item_input);
    if (c->item_input == ONEREC_ITEM_BY_ID &&
        (c->item_vocab < 1 || c->item_vocab > (int64_t)1 << 32))
      return BAD("item_vocab = %lld (1..2^32 with items by id)", (long long)c->item_vocab);
    if (c->item_dim < 1 || c->item_dim > 65536) return BAD("item_dim = %d (1..65536)", c->item_dim);
    if (c->seq_cat_count < 0 || c->seq_cat_count > ONEREC_MAX_FEATURES)
      return BAD("seq_cat_count = %d (0..%d)", c->seq_cat_count, ONEREC_MAX_FEATURES);
    for (int i = 0; i < c->seq_cat_count; i++) {
      if (c->seq_cat_vocab[i] < 1 || c->seq_cat_vocab[i] > (int64_t)1 << 32)
        return BAD("seq_cat_vocab[%d] = %lld (1..2^32)", i, (long long)c->seq_cat_vocab[i]);
      if (c->seq_cat_dim[i] < 1 || c->seq_cat_dim[i] > 65536)
        return BAD("seq_cat_dim[%d] = %d (1..65536)", i, c->seq_cat_dim[i]);
    }
    if (c->seq_num_count < 0 || c->seq_num_count > 4096)
      return BAD("seq_num_count = %d (0..4096)", c->seq_num_count);
  }
  if (!(c->norm_eps > 0.0f && c->norm_eps < 1.0f)) return BAD("norm_eps = %g (0..1)", (double)c->norm_eps);
  if (!(c->leaky_slope >= 0.0f && c->leaky_slope < 1.0f))
    return BAD("leaky_slope = %g ([0, 1))", (double)c->leaky_slope);
  if (!(c->init_std >= 0.0f && c->init_std < 10.0f)) return BAD("init_std = %g ([0, 10))", (double)c->init_std);
  return ONEREC_OK;
}

void orx_config_dims(const onerec_model_config *c, orx_dims *d) {
  memset(d, 0, sizeof *d);
  d->d = c->d_model;
  d->heads = c->heads;
  d->head_dim = c->d_model / c->heads;
  d->levels = c->levels;
  d->codebook = c->codebook;
  int64_t t = 0;
  d->tok_static = c->use_static ? t : -1;
  t += c->use_static ? 1 : 0;
  d->tok_short = c->use_short ? t : -1;
  t += c->use_short ? c->short_len : 0;
  d->tok_pos = c->use_positive ? t : -1;
  t += c->use_positive ? c->positive_len : 0;
  d->tok_life = c->use_lifelong ? t : -1;
  t += c->use_lifelong ? c->lifelong_queries : 0;
  d->enc_len = t;
  int sid = c->item_input == ONEREC_ITEM_BY_SID;
  d->item_ids = sid ? c->levels : 1;
  d->item_rows = sid ? (int64_t)c->levels * c->codebook : c->item_vocab;
  d->item_width = (int64_t)c->item_dim * d->item_ids;
  d->seq_in = d->item_width + c->seq_num_count;
  for (int i = 0; i < c->seq_cat_count; i++) d->seq_in += c->seq_cat_dim[i];
  d->static_in = (int64_t)c->static_cat_count * c->static_emb_dim + c->static_num_count;
  d->dec_vocab = 1 + (int64_t)(c->levels - 1) * c->codebook;
  d->moe_enc = c->moe_encoder ? c->enc_layers : 0;
  d->moe_dec = c->moe_decoder ? c->dec_layers : 0;
}

/* ---- the parameter table ---- */

typedef struct layout {
  orx_param *table; /* NULL: count only */
  int n;
  size_t floats;  /* buffer size, with each tensor padded to 16 floats */
  int64_t params; /* true parameter count */
} layout;

static void add(layout *L, float **slot, const char *group, const char *name, orx_init init,
                int sparse, int rank, int64_t d0, int64_t d1, int64_t d2) {
  int64_t dims[3] = {d0, d1, d2};
  size_t count = 1;
  for (int i = 0; i < rank; i++) count *= (size_t)dims[i];
  if (L->table) {
    orx_param *p = &L->table[L->n];
    memset(p, 0, sizeof *p);
    snprintf(p->group, sizeof p->group, "%s", group);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->rank = rank;
    for (int i = 0; i < 3; i++) p->dims[i] = i < rank ? dims[i] : 0;
    p->offset = L->floats;
    p->count = count;
    p->init = (uint8_t)init;
    p->sparse = (uint8_t)sparse;
    p->slot = slot;
  }
  L->n++;
  L->params += (int64_t)count;
  /* every tensor starts on a 64-byte boundary, so kernels see aligned rows */
  L->floats += (count + 15) & ~(size_t)15;
}

#define SLOT(m, field) ((m) ? &(m)->field : NULL)

static void add_attn(layout *L, orx_attn_w *w, const char *g, int64_t d) {
  add(L, w ? &w->norm : NULL, g, "attn_norm", ORX_INIT_ONES, 0, 1, d, 0, 0);
  add(L, w ? &w->wqkv : NULL, g, "wqkv", ORX_INIT_NORMAL, 0, 2, d, 3 * d, 0);
  add(L, w ? &w->wo : NULL, g, "wo", ORX_INIT_NORMAL, 0, 2, d, d, 0);
}

static void add_xattn(layout *L, orx_xattn_w *w, const char *g, int64_t d) {
  add(L, w ? &w->norm : NULL, g, "cross_norm", ORX_INIT_ONES, 0, 1, d, 0, 0);
  add(L, w ? &w->wq : NULL, g, "cross_wq", ORX_INIT_NORMAL, 0, 2, d, d, 0);
  add(L, w ? &w->wkv : NULL, g, "cross_wkv", ORX_INIT_NORMAL, 0, 2, d, 2 * d, 0);
  add(L, w ? &w->wo : NULL, g, "cross_wo", ORX_INIT_NORMAL, 0, 2, d, d, 0);
}

static void add_ffn(layout *L, orx_ffn_w *w, const char *g, int64_t d, int64_t h) {
  if (w) w->hidden = h;
  add(L, w ? &w->norm : NULL, g, "ffn_norm", ORX_INIT_ONES, 0, 1, d, 0, 0);
  add(L, w ? &w->w_gate : NULL, g, "w_gate", ORX_INIT_NORMAL, 0, 2, d, h, 0);
  add(L, w ? &w->w_up : NULL, g, "w_up", ORX_INIT_NORMAL, 0, 2, d, h, 0);
  add(L, w ? &w->w_down : NULL, g, "w_down", ORX_INIT_NORMAL, 0, 2, h, d, 0);
}

static void add_mlp(layout *L, orx_mlp_w *w, const char *g, const onerec_model_config *c,
                    int moe) {
  int64_t d = c->d_model;
  if (w) w->is_moe = moe;
  if (!moe) {
    add_ffn(L, w ? &w->ffn : NULL, g, d, c->ffn_dim);
    return;
  }
  orx_moe_w *m = w ? &w->moe : NULL;
  int64_t e = c->experts, h = c->expert_dim;
  if (m) {
    m->experts = e;
    m->top_k = c->top_k;
    m->hidden = h;
  }
  add(L, m ? &m->norm : NULL, g, "ffn_norm", ORX_INIT_ONES, 0, 1, d, 0, 0);
  add(L, m ? &m->router : NULL, g, "router", ORX_INIT_NORMAL, 0, 2, d, e, 0);
  add(L, m ? &m->bias : NULL, g, "router_bias", ORX_INIT_ZEROS, 0, 1, e, 0, 0);
  if (L->table) L->table[L->n - 1].no_grad = 1;
  add(L, m ? &m->w_gate : NULL, g, "experts_w_gate", ORX_INIT_NORMAL, 0, 3, e, d, h);
  add(L, m ? &m->w_up : NULL, g, "experts_w_up", ORX_INIT_NORMAL, 0, 3, e, d, h);
  add(L, m ? &m->w_down : NULL, g, "experts_w_down", ORX_INIT_NORMAL, 0, 3, e, h, d);
}

static void add_path(layout *L, orx_path_w *w, const char *g, int64_t in, int64_t d) {
  if (w) {
    w->in_dim = in;
    w->hidden = d;
  }
  add(L, w ? &w->w1 : NULL, g, "w1", ORX_INIT_NORMAL, 0, 2, in, d, 0);
  add(L, w ? &w->b1 : NULL, g, "b1", ORX_INIT_ZEROS, 0, 1, d, 0, 0);
  add(L, w ? &w->w2 : NULL, g, "w2", ORX_INIT_NORMAL, 0, 2, d, d, 0);
}

void orx_model_layout(const onerec_model_config *c, const orx_dims *dm, onerec_model *m,
                      orx_param *table, int *n_table, size_t *n_floats, int64_t *n_params) {
  layout L = {m ? table : NULL, 0, 0, 0};
  const int64_t d = c->d_model;
  char g[48];
  int seq = c->use_short || c->use_positive || c->use_lifelong;

  /* embedding tables */
  if (c->use_static)
    for (int i = 0; i < c->static_cat_count; i++) {
      char n[24];
      snprintf(n, sizeof n, "static%d", i);
      add(&L, SLOT(m, static_emb[i]), "features", n, ORX_INIT_NORMAL, 1, 2,
          c->static_cat_vocab[i], c->static_emb_dim, 0);
    }
  if (seq) {
    add(&L, SLOT(m, item_emb), "features", c->item_input == ONEREC_ITEM_BY_SID ? "item_sid" : "item",
        ORX_INIT_NORMAL, 1, 2, dm->item_rows, c->item_dim, 0);
    for (int i = 0; i < c->seq_cat_count; i++) {
      char n[24];
      snprintf(n, sizeof n, "seq%d", i);
      add(&L, SLOT(m, seq_cat_emb[i]), "features", n, ORX_INIT_NORMAL, 1, 2, c->seq_cat_vocab[i],
          c->seq_cat_dim[i], 0);
    }
  }
  /* pathways */
  if (c->use_static) add_path(&L, SLOT(m, path_static), "static", dm->static_in, d);
  if (c->use_short) add_path(&L, SLOT(m, path_short), "short", dm->seq_in, d);
  if (c->use_positive) add_path(&L, SLOT(m, path_pos), "positive", dm->seq_in, d);
  if (c->use_lifelong) {
    add_path(&L, SLOT(m, path_life), "lifelong", dm->seq_in, d);
    add(&L, SLOT(m, qf_query), "qformer", "query", ORX_INIT_NORMAL, 0, 2, c->lifelong_queries, d,
        0);
    for (int l = 0; l < c->qformer_layers; l++) {
      snprintf(g, sizeof g, "qformer/layer%d", l);
      add_xattn(&L, m ? &m->qf[l].cross : NULL, g, d);
      add_ffn(&L, m ? &m->qf[l].ffn : NULL, g, d, c->ffn_dim);
    }
  }
  /* encoder */
  add(&L, SLOT(m, enc_pos), "encoder", "pos", ORX_INIT_NORMAL, 0, 2, dm->enc_len, d, 0);
  for (int l = 0; l < c->enc_layers; l++) {
    snprintf(g, sizeof g, "encoder/layer%d", l);
    add_attn(&L, m ? &m->enc[l].attn : NULL, g, d);
    add_mlp(&L, m ? &m->enc[l].mlp : NULL, g, c, c->moe_encoder);
  }
  add(&L, SLOT(m, enc_norm), "encoder", "norm", ORX_INIT_ONES, 0, 1, d, 0, 0);
  /* decoder */
  add(&L, SLOT(m, dec_emb), "decoder", "tok_emb", ORX_INIT_NORMAL, 1, 2, dm->dec_vocab, d, 0);
  add(&L, SLOT(m, dec_pos), "decoder", "pos", ORX_INIT_NORMAL, 0, 2, c->levels, d, 0);
  for (int l = 0; l < c->dec_layers; l++) {
    snprintf(g, sizeof g, "decoder/layer%d", l);
    add_attn(&L, m ? &m->dec[l].self : NULL, g, d);
    add_xattn(&L, m ? &m->dec[l].cross : NULL, g, d);
    add_mlp(&L, m ? &m->dec[l].mlp : NULL, g, c, c->moe_decoder);
  }
  add(&L, SLOT(m, dec_norm), "decoder", "norm", ORX_INIT_ONES, 0, 1, d, 0, 0);
  add(&L, SLOT(m, heads), "decoder", "heads", ORX_INIT_NORMAL, 0, 3, c->levels, d, c->codebook);

  if (n_table) *n_table = L.n;
  if (n_floats) *n_floats = L.floats;
  if (n_params) *n_params = L.params;
}

ONEREC_API onerec_status onerec_model_config_param_count(const onerec_model_config *cfg,
                                                         int64_t *out) {
  static const char fn[] = "onerec_model_config_param_count";
  ORX_CHECK_ARG(cfg, fn);
  onerec_model_config c;
  memset(&c, 0, sizeof c);
  c.sz = sizeof c;
  onerec_status s = orx_opts_read(&c, sizeof c, cfg, fn);
  if (s) return s;
  if ((s = orx_config_check(&c))) return s;
  orx_dims dm;
  orx_config_dims(&c, &dm);
  int64_t n = 0;
  orx_model_layout(&c, &dm, NULL, NULL, NULL, NULL, &n);
  if (out) *out = n;
  return ONEREC_OK;
}
