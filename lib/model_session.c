/* Sessions: one thread's activation and scratch buffers, carved once from two arenas (device
 * and host) so that a forward pass allocates nothing, and the public forward calls. */
#include <string.h>

#include "model_impl.h"

/* Lifelong memory rows (users x tokens) inference sessions process at once: users are taken in
 * chunks that fit. */
#define LIFE_ROWS_PER_CHUNK 8192

typedef struct lay {
  orx_arena dev, host;
} lay;

#define DF(n) ((float *)orx_take(&L->dev, (size_t)(n) * sizeof(float)))
#define DI(n) ((int32_t *)orx_take(&L->dev, (size_t)(n) * sizeof(int32_t)))
#define DU(n) ((uint8_t *)orx_take(&L->dev, (size_t)(n)))
#define HF(n) ((float *)orx_take(&L->host, (size_t)(n) * sizeof(float)))
#define HI(n) ((int32_t *)orx_take(&L->host, (size_t)(n) * sizeof(int32_t)))
#define HL(n) ((int64_t *)orx_take(&L->host, (size_t)(n) * sizeof(int64_t)))
#define HD(n) ((double *)orx_take(&L->host, (size_t)(n) * sizeof(double)))
#define HU(n) ((uint8_t *)orx_take(&L->host, (size_t)(n)))

static void lay_attn(lay *L, orx_attn_act *a, int64_t n, int64_t d, int64_t heads) {
  a->xn = DF(n * d);
  a->rstd = DF(n);
  a->qkv = DF(n * 3 * d);
  a->o = DF(n * d);
  a->lse = DF(n * heads);
}

static void lay_xattn(lay *L, orx_xattn_act *a, int64_t n, int64_t d, int64_t heads) {
  a->xn = DF(n * d);
  a->rstd = DF(n);
  a->q = DF(n * d);
  a->o = DF(n * d);
  a->lse = DF(n * heads);
}

static void lay_ffn(lay *L, orx_ffn_act *a, int64_t n, int64_t d, int64_t h) {
  a->xn = DF(n * d);
  a->rstd = DF(n);
  a->gate = DF(n * h);
  a->up = DF(n * h);
  a->h = DF(n * h);
}

static void lay_mlp(lay *L, orx_mlp_act *a, int moe, int64_t n, const onerec_model_config *c) {
  const int64_t d = c->d_model;
  if (!moe) {
    lay_ffn(L, &a->ffn, n, d, c->ffn_dim);
    return;
  }
  orx_moe_act *m = &a->moe;
  const int64_t E = c->experts, nk = n * c->top_k, h = c->expert_dim;
  m->xn = DF(n * d);
  m->rstd = DF(n);
  m->probs = DF(n * E);
  m->gates = DF(nk);
  m->gperm = DF(nk);
  m->xe = DF(nk * d);
  m->ge = DF(nk * h);
  m->ue = DF(nk * h);
  m->he = DF(nk * h);
  m->ye = DF(nk * d);
  m->ys = DF(nk * d);
  m->idx = DI(nk);
  m->perm = DI(nk);
  m->h_idx = HI(nk);
  m->h_perm = HI(nk);
  m->h_gates = HF(nk);
  m->h_gperm = HF(nk);
  m->h_eoff = HL(E + 1);
}

static void lay_path(lay *L, orx_path_act *a, orx_path_host *h, int64_t rows,
                     const orx_feature *f, int nf, int64_t num, int64_t hidden) {
  int64_t ids = 0;
  for (int i = 0; i < nf; i++) {
    a->block[i] = DF(rows * f[i].dim * f[i].ids_per_row);
    ids += f[i].ids_per_row;
  }
  a->block[nf] = num ? DF(rows * num) : NULL;
  a->ids = DI(rows * ids);
  a->pre = DF(rows * hidden);
  a->h = DF(rows * hidden);
  a->rows = rows;
  h->ids = HI(rows * ids);
  h->num = num ? HF(rows * num) : NULL;
}

/* Everything a session holds. The per-layer tables (pointer arrays) were allocated before. */
static void lay_session(onerec_session *s, lay *L) {
  const onerec_model *m = s->m;
  const onerec_model_config *c = &m->cfg;
  const orx_dims *dm = &m->dims;
  const int64_t B = s->max_batch, T = dm->enc_len, d = dm->d, H = dm->heads, nT = B * T;
  const int tr = s->train;
  orx_feature f[ONEREC_MAX_FEATURES + 1];

  /* encoder stack */
  for (int i = 0; i < (tr ? 2 * c->enc_layers + 1 : 1); i++) s->enc_x[i] = DF(nT * d);
  for (int l = 0; l < (tr ? c->enc_layers : 1); l++) {
    lay_attn(L, &s->enc_attn[l], nT, d, H);
    lay_mlp(L, &s->enc_mlp[l], c->moe_encoder, nT, c);
  }
  s->enc_z = DF(nT * d);
  s->enc_zrstd = DF(nT);
  s->enc_mask = DU(nT);
  s->h_enc_mask = HU(nT);

  /* pathways: in inference the sequence pathways run one after the other and share buffers */
  if (c->use_static) {
    int nf = orx_static_features(m, f);
    lay_path(L, &s->p_static, &s->h_static, B, f, nf, c->static_num_count, d);
  }
  int seq = c->use_short || c->use_positive || c->use_lifelong;
  if (seq) {
    int nf = orx_seq_features(m, f);
    int64_t rs = c->use_short ? B * c->short_len : 0;
    int64_t rp = c->use_positive ? B * c->positive_len : 0;
    int64_t rl = c->use_lifelong ? s->life_rows : 0;
    if (tr) {
      if (rs) lay_path(L, &s->p_short, &s->h_short, rs, f, nf, c->seq_num_count, d);
      if (rp) lay_path(L, &s->p_pos, &s->h_pos, rp, f, nf, c->seq_num_count, d);
      if (rl) lay_path(L, &s->p_life, &s->h_life, rl, f, nf, c->seq_num_count, d);
    } else {
      int64_t r = rs > rp ? rs : rp;
      r = r > rl ? r : rl;
      lay_path(L, &s->p_short, &s->h_short, r, f, nf, c->seq_num_count, d);
      s->p_pos = s->p_life = s->p_short;
      s->h_pos = s->h_life = s->h_short;
    }
  }
  if (c->use_lifelong) {
    const int64_t rows = s->life_rows, Ll = c->lifelong_tokens, Nq = c->lifelong_queries;
    const int64_t maxl = s->max_lifelong, iw = dm->item_width;
    s->life_mem = DF(rows * d);
    s->life_mask = DU(rows);
    s->h_life_mask = HU(rows);
    for (int i = 0; i < (tr ? 2 * c->qformer_layers + 1 : 1); i++) s->qf_x[i] = DF(B * Nq * d);
    for (int l = 0; l < (tr ? c->qformer_layers : 1); l++) {
      lay_xattn(L, &s->qf_cross[l], B * Nq, d, H);
      s->qf_kv[l] = DF(rows * 2 * d);
      lay_ffn(L, &s->qf_ffn[l], B * Nq, d, c->ffn_dim);
    }
    /* compression needs the gather buffers only when a user can exceed the memory */
    int64_t g = maxl > Ll ? maxl : 0;
    s->life_gather_ids = DI(g * dm->item_ids);
    s->life_gather = DF(g * iw);
    s->h_life_ids = HI(g * dm->item_ids);
    int64_t kmax = orx_fifth_root(g > 32 ? g : 32);
    s->lk.vec = HF(g * iw);
    s->lk.order = HL(g);
    s->lk.tmp = HL(g);
    s->lk.stack = HL(2 * g);
    s->lk.cl_start = HL(g);
    s->lk.cl_len = HL(g);
    s->lk.cl_rep = HL(g);
    s->lk.pick = HL(g);
    s->lk.count = HL(kmax);
    s->lk.assign = HI(g);
    s->lk.h_idx = HI(g);
    s->lk.sum = HD(iw);
    s->lk.d_vec = s->life_gather;
    s->lk.d_x = DF(g * iw);
    s->lk.d_c = DF(kmax * iw);
    s->lk.d_cnorm = DF(kmax);
    s->lk.d_ids = DI(g);
    s->lk.d_idx = DI(g);
    s->lk.d_counts = (int64_t *)orx_take(&L->dev, (size_t)kmax * sizeof(int64_t));
  }

  /* decoder */
  const int64_t R = s->max_targets, nR = R * dm->levels;
  for (int l = 0; l < c->dec_layers; l++) s->dec_kv[l] = DF(nT * 2 * d);
  s->dec_ids = DI(nR);
  s->h_dec_ids = HI(nR);
  for (int i = 0; i < (tr ? 3 * c->dec_layers + 1 : 1); i++) s->dec_x[i] = DF(nR * d);
  for (int l = 0; l < (tr ? c->dec_layers : 1); l++) {
    lay_attn(L, &s->dec_self[l], nR, d, H);
    lay_xattn(L, &s->dec_cross[l], nR, d, H);
    lay_mlp(L, &s->dec_mlp[l], c->moe_decoder, nR, c);
  }
  s->dec_xn = DF(nR * d);
  s->dec_rstd = DF(nR);
  s->logits = DF(nR * dm->codebook);
  s->targets = DI(nR);
  s->h_targets = HI(nR);
  s->loss = DF(nR);
  s->h_loss = HF(nR);
  s->h_groups = HL(B + 1);
  s->moe_load = HL((dm->moe_enc + dm->moe_dec) * (c->experts > 0 ? c->experts : 1));
}

/* Aliases the per-layer activation tables of inference sessions to layer 0. */
static void alias_layers(onerec_session *s) {
  const onerec_model_config *c = &s->m->cfg;
  if (s->train) return;
  for (int l = 1; l < c->enc_layers; l++) {
    s->enc_attn[l] = s->enc_attn[0];
    s->enc_mlp[l] = s->enc_mlp[0];
  }
  for (int l = 1; l < c->dec_layers; l++) {
    s->dec_self[l] = s->dec_self[0];
    s->dec_cross[l] = s->dec_cross[0];
    s->dec_mlp[l] = s->dec_mlp[0];
  }
  if (c->use_lifelong)
    for (int l = 1; l < c->qformer_layers; l++) {
      s->qf_cross[l] = s->qf_cross[0];
      s->qf_kv[l] = s->qf_kv[0];
      s->qf_ffn[l] = s->qf_ffn[0];
    }
}

/* The per-layer pointer tables, in one host block. */
static onerec_status alloc_tables(onerec_session *s, void **block) {
  const onerec_model_config *c = &s->m->cfg;
  const size_t le = (size_t)c->enc_layers, ld = (size_t)c->dec_layers;
  const size_t lq = c->use_lifelong ? (size_t)c->qformer_layers : 0;
  size_t bytes = (2 * le + 1 + 2 * lq + 1 + lq + ld + 3 * ld + 1) * sizeof(float *) +
                 le * (sizeof(orx_attn_act) + sizeof(orx_mlp_act)) +
                 lq * (sizeof(orx_xattn_act) + sizeof(orx_ffn_act)) +
                 ld * (sizeof(orx_attn_act) + sizeof(orx_xattn_act) + sizeof(orx_mlp_act)) + 64;
  char *p = orx_host_alloc(s->ctx, bytes);
  if (!p) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "onerec_session_create: out of memory");
  memset(p, 0, bytes);
  *block = p;
  s->enc_x = (float **)p;
  p += (2 * le + 1) * sizeof(float *);
  s->qf_x = (float **)p;
  p += (2 * lq + 1) * sizeof(float *);
  s->qf_kv = (float **)p;
  p += lq * sizeof(float *);
  s->dec_kv = (float **)p;
  p += ld * sizeof(float *);
  s->dec_x = (float **)p;
  p += (3 * ld + 1) * sizeof(float *);
  s->enc_attn = (orx_attn_act *)p;
  p += le * sizeof(orx_attn_act);
  s->enc_mlp = (orx_mlp_act *)p;
  p += le * sizeof(orx_mlp_act);
  s->qf_cross = (orx_xattn_act *)p;
  p += lq * sizeof(orx_xattn_act);
  s->qf_ffn = (orx_ffn_act *)p;
  p += lq * sizeof(orx_ffn_act);
  s->dec_self = (orx_attn_act *)p;
  p += ld * sizeof(orx_attn_act);
  s->dec_cross = (orx_xattn_act *)p;
  p += ld * sizeof(orx_xattn_act);
  s->dec_mlp = (orx_mlp_act *)p;
  return ONEREC_OK;
}

/* The block holding the pointer tables is remembered through enc_x (its first table). */
void onerec_session_free(onerec_session *s);

onerec_status orx_session_create(const onerec_model *m, onerec_context *ctx,
                                 const onerec_session_opts *o, int train, onerec_session **out) {
  static const char fn[] = "onerec_session_create";
  *out = NULL;
  if (!ctx) ctx = m->ctx;
  if (strcmp(ctx->be.ops->name, m->ctx->be.ops->name) != 0 || ctx->device != m->ctx->device)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: the context runs on %s device %d, the model lives on %s device %d", fn,
                    ctx->be.ops->name, ctx->device, m->ctx->be.ops->name, m->ctx->device);
  const onerec_model_config *c = &m->cfg;
  int64_t B = o->max_batch ? o->max_batch : 64;
  int64_t R = o->max_targets ? o->max_targets : B;
  int64_t ML = o->max_lifelong ? o->max_lifelong : c->lifelong_max_items;
  if (B < 1 || B > (1 << 20) || R < 1 || R > (1 << 24) || ML < 1 ||
      ML > c->lifelong_max_items)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: max_batch = %lld (1..2^20), max_targets = %lld (1..2^24), max_lifelong = "
                    "%lld (1..lifelong_max_items = %d)",
                    fn, (long long)B, (long long)R, (long long)ML, c->lifelong_max_items);
  onerec_session *s = orx_host_alloc(ctx, sizeof *s);
  if (!s) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  memset(s, 0, sizeof *s);
  s->m = m;
  s->ctx = ctx;
  s->be = &ctx->be;
  s->train = train;
  s->max_batch = B;
  s->max_targets = R;
  s->max_lifelong = c->use_lifelong ? ML : 0;
  /* inference: at least one user's full memory, at most the whole batch's */
  int64_t Ll = c->use_lifelong ? c->lifelong_tokens : 0;
  s->life_rows = train || B * Ll <= LIFE_ROWS_PER_CHUNK ? B * Ll
                                                       : (Ll > LIFE_ROWS_PER_CHUNK ? Ll : LIFE_ROWS_PER_CHUNK);
  void *tables = NULL;
  onerec_status st = alloc_tables(s, &tables);
  if (st) {
    orx_host_free(ctx, s);
    return st;
  }
  lay L = {{NULL, 0}, {NULL, 0}};
  lay_session(s, &L);
  s->dev_bytes = L.dev.used;
  s->host_bytes = L.host.used;
  s->dev = s->be->ops->alloc(s->be, s->dev_bytes);
  s->host = orx_host_alloc(ctx, s->host_bytes);
  if (!s->dev || !s->host) {
    size_t db = s->dev_bytes, hb = s->host_bytes;
    if (s->dev) s->be->ops->free(s->be, s->dev);
    orx_host_free(ctx, s->host);
    orx_host_free(ctx, tables);
    orx_host_free(ctx, s);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY,
                    "%s: cannot allocate %zu bytes of activations and %zu of host scratch (lower "
                    "max_batch, max_targets or max_lifelong)",
                    fn, db, hb);
  }
  memset(s->host, 0, s->host_bytes);
  L.dev = (orx_arena){s->dev, 0};
  L.host = (orx_arena){s->host, 0};
  lay_session(s, &L);
  alias_layers(s);
  *out = s;
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_session_create(const onerec_model *model, onerec_context *ctx,
                                               const onerec_session_opts *opts,
                                               onerec_session **out) {
  static const char fn[] = "onerec_session_create";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(model, fn);
  onerec_session_opts o;
  memset(&o, 0, sizeof o);
  o.sz = sizeof o;
  if (opts) {
    onerec_status s = orx_opts_read(&o, sizeof o, opts, fn);
    if (s) return s;
  }
  return orx_session_create(model, ctx, &o, 0, out);
}

ONEREC_API void onerec_session_free(onerec_session *s) {
  if (!s) return;
  onerec_context *ctx = s->ctx;
  if (s->dev) s->be->ops->free(s->be, s->dev);
  orx_host_free(ctx, s->host);
  orx_host_free(ctx, s->enc_x); /* the tables block starts with enc_x */
  orx_host_free(ctx, s);
}

/* ---- forward calls ---- */

static onerec_status read_users(const onerec_user_batch *users, onerec_user_batch *u,
                                const onerec_session *s, const char *fn) {
  memset(u, 0, sizeof *u);
  u->sz = sizeof *u;
  onerec_status st = orx_opts_read(u, sizeof *u, users, fn);
  if (st) return st;
  if (u->batch < 1 || u->batch > s->max_batch)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: batch = %lld (1..max_batch = %lld)", fn,
                    (long long)u->batch, (long long)s->max_batch);
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_session_encode(onerec_session *s, const onerec_user_batch *users,
                                               float *z_out, size_t z_count,
                                               uint8_t *key_mask_out) {
  static const char fn[] = "onerec_session_encode";
  ORX_CHECK_ARG(s, fn);
  ORX_CHECK_ARG(users, fn);
  onerec_user_batch u;
  onerec_status st = read_users(users, &u, s, fn);
  if (st) return st;
  const int64_t nT = u.batch * s->m->dims.enc_len, d = s->m->dims.d;
  if (z_out && z_count < (size_t)(nT * d))
    return orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "%s: z_out holds %zu floats, %lld needed", fn,
                    z_count, (long long)(nT * d));
  if ((st = orx_encoder_forward(s, &u))) return st;
  if (z_out)
    st = ORX_OP(s->be, copy, z_out, s->enc_z, (size_t)(nT * d) * sizeof(float), ORX_COPY_D2H);
  if (!st && key_mask_out) memcpy(key_mask_out, s->h_enc_mask, (size_t)nT);
  return st;
}

/* Validates target offsets into s->h_groups and fills g; returns the row count. */
static onerec_status make_groups(onerec_session *s, const int64_t *off, orx_groups *g,
                                 int64_t *rows, const char *fn) {
  const int64_t B = s->batch;
  int64_t *h = s->h_groups;
  if (!off) {
    for (int64_t b = 0; b <= B; b++) h[b] = b;
  } else {
    if (off[0] != 0)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: target_offsets[0] = %lld (expected 0)",
                      fn, (long long)off[0]);
    for (int64_t b = 0; b <= B; b++) {
      if (b > 0 && off[b] < off[b - 1])
        return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                        "%s: target_offsets decrease at user %lld (%lld < %lld)", fn,
                        (long long)b, (long long)off[b], (long long)off[b - 1]);
      h[b] = off[b];
    }
  }
  *rows = h[B];
  if (*rows < 1 || *rows > s->max_targets)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: %lld targets (1..max_targets = %lld)", fn,
                    (long long)*rows, (long long)s->max_targets);
  int64_t eq = h[1] - h[0];
  for (int64_t b = 1; b < B && eq > 0; b++)
    if (h[b + 1] - h[b] != eq) eq = 0;
  g->n = B;
  g->off = h;
  g->equal = eq;
  return ONEREC_OK;
}

static onerec_status decode(onerec_session *s, const int64_t *target_offsets,
                            const int32_t *codes, int64_t *rows_out, const char *fn) {
  if (s->batch == 0)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: no encoded batch (call encode first)", fn);
  ORX_CHECK_ARG(codes, fn);
  orx_groups g;
  int64_t rows = 0;
  onerec_status st = make_groups(s, target_offsets, &g, &rows, fn);
  if (st) return st;
  const int64_t L = s->m->dims.levels;
  if ((st = orx_decoder_stage(s->m, codes, rows, L, s->h_dec_ids))) return st;
  st = ORX_OP(s->be, copy, s->dec_ids, s->h_dec_ids, (size_t)(rows * L) * sizeof(int32_t),
              ORX_COPY_H2D);
  if (!st) st = orx_decoder_forward(s, rows, L, &g, 0);
  *rows_out = rows;
  s->rows = st ? 0 : rows;
  return st;
}

ONEREC_API onerec_status onerec_session_decode(onerec_session *s, const int64_t *target_offsets,
                                               const int32_t *codes, float *logits_out,
                                               size_t logits_count) {
  static const char fn[] = "onerec_session_decode";
  ORX_CHECK_ARG(s, fn);
  ORX_CHECK_ARG(logits_out, fn);
  int64_t rows = 0;
  onerec_status st = decode(s, target_offsets, codes, &rows, fn);
  if (st) return st;
  size_t need = (size_t)(rows * s->m->dims.levels * s->m->dims.codebook);
  if (logits_count < need)
    return orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "%s: logits_out holds %zu floats, %zu needed",
                    fn, logits_count, need);
  return ORX_OP(s->be, copy, logits_out, s->logits, need * sizeof(float), ORX_COPY_D2H);
}

ONEREC_API onerec_status onerec_session_score(onerec_session *s, const onerec_user_batch *users,
                                              const int64_t *target_offsets,
                                              const int32_t *codes, double *logp_out,
                                              size_t logp_count) {
  static const char fn[] = "onerec_session_score";
  ORX_CHECK_ARG(s, fn);
  ORX_CHECK_ARG(users, fn);
  ORX_CHECK_ARG(logp_out, fn);
  onerec_status st = onerec_session_encode(s, users, NULL, 0, NULL);
  if (st) return st;
  int64_t rows = 0;
  if ((st = decode(s, target_offsets, codes, &rows, fn))) return st;
  if (logp_count < (size_t)rows)
    return orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "%s: logp_out holds %zu values, %lld needed", fn,
                    logp_count, (long long)rows);
  const int64_t L = s->m->dims.levels, n = rows * L;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < L; j++) {
      int32_t code = codes[r * L + j];
      if (code < 0 || code >= s->m->cfg.codebook)
        return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                        "%s: target %lld: code %d of level %lld outside [0, codebook = %d)", fn,
                        (long long)r, code, (long long)j, s->m->cfg.codebook);
      s->h_targets[r * L + j] = code;
    }
  st = ORX_OP(s->be, copy, s->targets, s->h_targets, (size_t)n * sizeof(int32_t), ORX_COPY_H2D);
  if (!st)
    st = ORX_OP(s->be, cross_entropy, s->loss, NULL, s->logits, s->targets, n,
                (int64_t)s->m->cfg.codebook, -1, 1.0f, 0.0f);
  if (!st) st = ORX_OP(s->be, copy, s->h_loss, s->loss, (size_t)n * sizeof(float), ORX_COPY_D2H);
  if (st) return st;
  for (int64_t r = 0; r < rows; r++) {
    double acc = 0.0;
    for (int64_t j = 0; j < L; j++) acc -= s->h_loss[r * L + j];
    logp_out[r] = acc;
  }
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_session_expert_load(onerec_session *s, int64_t *counts,
                                                    size_t count, int32_t *n_layers,
                                                    int reset) {
  static const char fn[] = "onerec_session_expert_load";
  ORX_CHECK_ARG(s, fn);
  const orx_dims *dm = &s->m->dims;
  const int64_t layers = dm->moe_enc + dm->moe_dec;
  const size_t n = (size_t)(layers * s->m->cfg.experts);
  if (n_layers) *n_layers = (int32_t)layers;
  if (counts) {
    if (count < n)
      return orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "%s: counts holds %zu, %zu needed", fn, count,
                      n);
    memcpy(counts, s->moe_load, n * sizeof *counts);
  }
  if (reset && n) memset(s->moe_load, 0, n * sizeof *s->moe_load);
  return ONEREC_OK;
}
