/* Item representation alignment: the item QFormer and its InfoNCE training (onerec/align.h).
 *
 * Built from the model's blocks (cross-attention and SwiGLU FFN with their backward passes,
 * lib/attention_block.c and lib/ffn.c) on the backend's op table, with its own parameter
 * buffer, AdamW moments and activation arena, all carved once at creation for max_batch pairs
 * (2 max_batch item rows). The final L2 normalisation is the backend's RMSNorm with unit gain:
 * rmsnorm(x) = sqrt(D) x / ||x|| (eps 1e-12 keeps a zero row finite), so the logits carry the
 * factor 1 / (D tau). Files: lib/align_io.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align_impl.h"
#include "optimizer.h"
#include "util.h"

#define NORM_EPS 1e-6f /* the blocks' RMSNorm */
#define OUT_EPS 1e-12f /* the output normalisation */

static size_t pad16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Parameter table: offsets into one buffer, each tensor padded to 16 floats. */
static void layout(orx_aligner *a) {
  const onerec_aligner_config *c = &a->cfg;
  const size_t d = (size_t)c->d_model, h = (size_t)c->ffn_dim;
  size_t off = 0;
  int n = 0;
#define ADD(ptr_, cnt_, dec_, ones_)                                         \
  do {                                                                   \
    a->tensors[n].offset = off;                                          \
    a->tensors[n].count = (cnt_);                                        \
    a->tensors[n].decay = (dec_);                                        \
    a->tensors[n].ones = (ones_);                                        \
    a->tensors[n].slot = (ptr_);                                         \
    off += pad16(cnt_);                                                   \
    n++;                                                                 \
  } while (0)
  ADD(&a->w_in, (size_t)c->in_dim * d, 1, 0);
  ADD(&a->tok_pos, (size_t)c->tokens * d, 0, 0);
  ADD(&a->queries, (size_t)c->queries * d, 0, 0);
  for (int l = 0; l < c->layers; l++) {
    orx_qf_layer_w *w = &a->layer[l];
    ADD(&w->cross.norm, d, 0, 1);
    ADD(&w->cross.wq, d * d, 1, 0);
    ADD(&w->cross.wkv, d * 2 * d, 1, 0);
    ADD(&w->cross.wo, d * d, 1, 0);
    ADD(&w->ffn.norm, d, 0, 1);
    ADD(&w->ffn.w_gate, d * h, 1, 0);
    ADD(&w->ffn.w_up, d * h, 1, 0);
    ADD(&w->ffn.w_down, h * d, 1, 0);
    w->ffn.hidden = (int64_t)h;
  }
#undef ADD
  a->n_tensors = n;
  a->n_floats = off;
}

static onerec_status check_config(onerec_aligner_config *c, const char *fn) {
  if (!c->queries) c->queries = 4;
  if (!c->layers) c->layers = 4;
  if (!c->d_model) c->d_model = 64;
  if (!c->heads) c->heads = 4;
  if (!c->ffn_dim) c->ffn_dim = 2 * c->d_model;
  if (c->temperature == 0.0f) c->temperature = 0.07f;
  if (!c->max_batch) c->max_batch = 256;
  if (c->lr == 0.0f) c->lr = 1e-3f;
  if (c->weight_decay == 0.0f) c->weight_decay = 0.01f;
  if (c->weight_decay < 0.0f) c->weight_decay = 0.0f; /* < 0: none, as the trainer's */
  if (!c->warmup_steps) c->warmup_steps = 100;
  if (c->warmup_steps < 0) c->warmup_steps = 0;
#define BAD(...) orx_fail(ONEREC_ERR_INVALID_ARGUMENT, __VA_ARGS__)
  if (c->in_dim < 1 || c->in_dim > 1 << 20) return BAD("%s: in_dim = %d (1..2^20)", fn, c->in_dim);
  if (c->tokens < 1 || c->tokens > 4096) return BAD("%s: tokens = %d (1..4096)", fn, c->tokens);
  if (c->queries < 1 || c->queries > 1024) return BAD("%s: queries = %d (1..1024)", fn, c->queries);
  if (c->layers < 1 || c->layers > 64) return BAD("%s: layers = %d (1..64)", fn, c->layers);
  if (c->heads < 1 || c->heads > 256 || c->d_model < 1 || c->d_model > 8192 ||
      c->d_model % c->heads)
    return BAD("%s: d_model = %d, heads = %d (d_model 1..8192, a multiple of heads)", fn,
               c->d_model, c->heads);
  if (c->ffn_dim < 1 || c->ffn_dim > 1 << 16) return BAD("%s: ffn_dim = %d (1..65536)", fn, c->ffn_dim);
  if (!(c->temperature > 0.0f && c->temperature <= 100.0f))
    return BAD("%s: temperature = %g ((0, 100])", fn, (double)c->temperature);
  if (c->max_batch < 2 || c->max_batch > 1 << 16)
    return BAD("%s: max_batch = %lld (2..65536)", fn, (long long)c->max_batch);
  if (!(c->lr > 0.0f && c->lr < 10.0f)) return BAD("%s: lr = %g ((0, 10))", fn, (double)c->lr);
  if (!(c->weight_decay >= 0.0f && c->weight_decay < 1.0f))
    return BAD("%s: weight_decay = %g ([0, 1))", fn, (double)c->weight_decay);
  if (c->warmup_steps > 1 << 30)
    return BAD("%s: warmup_steps = %lld (at most 2^30)", fn, (long long)c->warmup_steps);
  if ((int64_t)c->tokens * c->in_dim > 1 << 24)
    return BAD("%s: tokens x in_dim = %lld (at most 2^24 floats per item)", fn,
               (long long)c->tokens * c->in_dim);
#undef BAD
  return ONEREC_OK;
}

/* Carves every buffer from one device allocation (base NULL: measure only). */
static size_t carve(orx_aligner *a, char *base) {
  const onerec_aligner_config *c = &a->cfg;
  const int64_t R = 2 * c->max_batch, B = c->max_batch, N = c->tokens, Q = c->queries;
  const int64_t d = c->d_model, h = c->ffn_dim, H = c->heads, L = c->layers, D = Q * d;
  const int64_t nq = R * Q, nm = R * N;
  orx_arena ar = {base, 0};
#define F(n) ((float *)orx_take(&ar, (size_t)(n) * sizeof(float)))
  a->params = F(a->n_floats);
  a->grad = F(a->n_floats);
  a->adam_m = F(a->n_floats);
  a->adam_v = F(a->n_floats);
  a->tok = F(nm * c->in_dim);
  a->mask = orx_take(&ar, (size_t)nm);
  a->mem = F(nm * d);
  for (int64_t i = 0; i <= 2 * L; i++) a->x[i] = F(nq * d);
  for (int64_t l = 0; l < L; l++) {
    a->kv[l] = F(nm * 2 * d);
    orx_xattn_act *x = &a->xact[l];
    x->xn = F(nq * d);
    x->rstd = F(nq);
    x->q = F(nq * d);
    x->o = F(nq * d);
    x->lse = F(nq * H);
    orx_ffn_act *f = &a->fact[l];
    f->xn = F(nq * d);
    f->rstd = F(nq);
    f->gate = F(nq * h);
    f->up = F(nq * h);
    f->h = F(nq * h);
  }
  a->y = F(R * D);
  a->yrstd = F(R);
  a->ones = F(D);
  a->dgain = F(D);
  a->logits = F(2 * B * B);
  a->dlogits = F(2 * B * B);
  a->rowloss = F(2 * B);
  a->targets = orx_take(&ar, (size_t)B * sizeof(int32_t));
  a->dy = F(R * D);
  a->dx = F(nq * d);
  a->dmem = F(nm * d);
  a->dkv = F(nm * 2 * d);
  orx_bwd *b = &a->b;
  b->dout = F(nq * d);
  b->dqkv = F(nq * d);
  b->dxn = F(nq * d);
  b->dh = F(nq * h);
  b->dgate = F(nq * h);
  b->dup = F(nq * h);
#undef F
  return ar.used + 64;
}

static onerec_status init_weights(orx_aligner *a, uint64_t seed) {
  orx_backend *be = a->be;
  size_t most = 0;
  for (int t = 0; t < a->n_tensors; t++)
    if (a->tensors[t].count > most) most = a->tensors[t].count;
  float *buf = orx_host_alloc(a->ctx, most * sizeof(float));
  if (!buf) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "aligner: out of memory");
  onerec_status s = ORX_OP(be, memset0, a->params, a->n_floats * sizeof(float));
  for (int t = 0; !s && t < a->n_tensors; t++) {
    const orx_align_tensor *p = &a->tensors[t];
    uint64_t st = seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(t + 1));
    if (p->ones)
      for (size_t i = 0; i < p->count; i++) buf[i] = 1.0f;
    else
      orx_fill_normal(buf, p->count, 0.02, &st); /* std 0.02, as the model's init */
    s = ORX_OP(be, copy, a->params + p->offset, buf, p->count * sizeof(float), ORX_COPY_H2D);
  }
  orx_host_free(a->ctx, buf);
  return s;
}

onerec_status orx_aligner_alloc(onerec_context *ctx, const onerec_aligner_config *cfg,
                                const char *fn, orx_aligner **out) {
  onerec_aligner_config c;
  memset(&c, 0, sizeof c);
  c.sz = sizeof c;
  onerec_status s = orx_opts_read(&c, sizeof c, cfg, fn);
  if (s) return s;
  c.sz = sizeof c;
  if ((s = check_config(&c, fn))) return s;
  orx_aligner *a = orx_host_alloc(ctx, sizeof *a);
  if (!a) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  memset(a, 0, sizeof *a);
  a->ctx = ctx;
  a->be = &ctx->be;
  a->cfg = c;
  const int L = c.layers;
  a->layer = orx_host_alloc(ctx, (size_t)L * sizeof *a->layer);
  a->tensors = orx_host_alloc(ctx, (size_t)(3 + 8 * L) * sizeof *a->tensors);
  a->x = orx_host_alloc(ctx, (size_t)(2 * L + 1) * sizeof *a->x);
  a->kv = orx_host_alloc(ctx, (size_t)L * sizeof *a->kv);
  a->xact = orx_host_alloc(ctx, (size_t)L * sizeof *a->xact);
  a->fact = orx_host_alloc(ctx, (size_t)L * sizeof *a->fact);
  const size_t R = 2 * (size_t)c.max_batch, N = (size_t)c.tokens;
  a->h_tok = orx_host_alloc(ctx, R * N * (size_t)c.in_dim * sizeof(float));
  a->h_mask = orx_host_alloc(ctx, R * N);
  a->h_targets = orx_host_alloc(ctx, (size_t)c.max_batch * sizeof(int32_t));
  a->h_rowloss = orx_host_alloc(ctx, 2 * (size_t)c.max_batch * sizeof(float));
  a->h_rows = orx_host_alloc(ctx, R * sizeof(int64_t));
  if (!a->layer || !a->tensors || !a->x || !a->kv || !a->xact || !a->fact || !a->h_tok ||
      !a->h_mask || !a->h_targets || !a->h_rowloss || !a->h_rows) {
    orx_aligner_free(a);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  }
  /* zeroed: among other things no act has dropout (the aligner never drops) */
  memset(a->layer, 0, (size_t)L * sizeof *a->layer);
  memset(a->xact, 0, (size_t)L * sizeof *a->xact);
  memset(a->fact, 0, (size_t)L * sizeof *a->fact);
  layout(a);
  size_t bytes = carve(a, NULL);
  a->dev = a->be->ops->alloc(a->be, bytes);
  if (!a->dev) {
    orx_aligner_free(a);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory (%zu bytes of scratch)", fn, bytes);
  }
  carve(a, a->dev);
  for (int t = 0; t < a->n_tensors; t++) *a->tensors[t].slot = a->params + a->tensors[t].offset;
  a->b.params = a->params;
  a->b.g = a->grad;
  for (int64_t i = 0; i < c.max_batch; i++) a->h_targets[i] = (int32_t)i;
  s = ORX_OP(a->be, copy, a->targets, a->h_targets, (size_t)c.max_batch * sizeof(int32_t),
             ORX_COPY_H2D);
  /* the unit gain of the output normalisation (its own staging: h_tok may be smaller) */
  float *ones = s ? NULL : orx_host_alloc(ctx, (size_t)(c.queries * c.d_model) * sizeof(float));
  if (!s && !ones) s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  for (int64_t i = 0; !s && i < c.queries * c.d_model; i++) ones[i] = 1.0f;
  if (!s)
    s = ORX_OP(a->be, copy, a->ones, ones, (size_t)(c.queries * c.d_model) * sizeof(float),
               ORX_COPY_H2D);
  orx_host_free(ctx, ones);
  /* rmsnorm_bwd accumulates the (unused) gain gradient here: keep it defined */
  if (!s) s = ORX_OP(a->be, memset0, a->dgain, (size_t)(c.queries * c.d_model) * sizeof(float));
  if (!s) s = ORX_OP(a->be, memset0, a->adam_m, a->n_floats * sizeof(float));
  if (!s) s = ORX_OP(a->be, memset0, a->adam_v, a->n_floats * sizeof(float));
  if (s) {
    orx_aligner_free(a);
    return s;
  }
  *out = a;
  return ONEREC_OK;
}

void orx_aligner_free(orx_aligner *a) {
  if (!a) return;
  if (a->dev) a->be->ops->free(a->be, a->dev);
  orx_host_free(a->ctx, a->layer);
  orx_host_free(a->ctx, a->tensors);
  orx_host_free(a->ctx, a->x);
  orx_host_free(a->ctx, a->kv);
  orx_host_free(a->ctx, a->xact);
  orx_host_free(a->ctx, a->fact);
  orx_host_free(a->ctx, a->h_tok);
  orx_host_free(a->ctx, a->h_mask);
  orx_host_free(a->ctx, a->h_targets);
  orx_host_free(a->ctx, a->h_rowloss);
  orx_host_free(a->ctx, a->h_rows);
  orx_host_free(a->ctx, a);
}

ONEREC_API onerec_status onerec_aligner_create(onerec_context *ctx,
                                               const onerec_aligner_config *cfg, uint64_t seed,
                                               onerec_aligner **out) {
  static const char fn[] = "onerec_aligner_create";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(ctx, fn);
  ORX_CHECK_ARG(cfg, fn);
  orx_aligner *a = NULL;
  onerec_status s = orx_aligner_alloc(ctx, cfg, fn, &a);
  if (!s) s = init_weights(a, seed);
  if (s) {
    orx_aligner_free(a);
    return s;
  }
  *out = a;
  return ONEREC_OK;
}

ONEREC_API void onerec_aligner_free(onerec_aligner *a) { orx_aligner_free(a); }

ONEREC_API onerec_status onerec_aligner_config_get(const onerec_aligner *a,
                                                   onerec_aligner_config *cfg) {
  static const char fn[] = "onerec_aligner_config_get";
  ORX_CHECK_ARG(a, fn);
  ORX_CHECK_ARG(cfg, fn);
  if (cfg->sz < sizeof(size_t))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: cfg->sz is %zu", fn, cfg->sz);
  size_t keep = cfg->sz < sizeof a->cfg ? cfg->sz : sizeof a->cfg;
  memcpy((char *)cfg + sizeof(size_t), (const char *)&a->cfg + sizeof(size_t),
         keep - sizeof(size_t));
  return ONEREC_OK;
}

ONEREC_API int64_t onerec_aligner_dim(const onerec_aligner *a) {
  return a ? (int64_t)a->cfg.queries * a->cfg.d_model : -1;
}

ONEREC_API int64_t onerec_aligner_steps(const onerec_aligner *a) { return a ? a->step : -1; }

/* Stages items rows[0..n) (tokens and mask) on the device. */
static onerec_status stage(orx_aligner *a, const float *items, const uint8_t *mask,
                           const int64_t *rows, int64_t n) {
  const int64_t N = a->cfg.tokens, w = N * a->cfg.in_dim;
  for (int64_t r = 0; r < n; r++) {
    memcpy(a->h_tok + r * w, items + rows[r] * w, (size_t)w * sizeof(float));
    if (mask)
      for (int64_t t = 0; t < N; t++) a->h_mask[r * N + t] = mask[rows[r] * N + t] != 0;
    else
      memset(a->h_mask + r * N, 1, (size_t)N);
  }
  onerec_status s =
      ORX_OP(a->be, copy, a->tok, a->h_tok, (size_t)(n * w) * sizeof(float), ORX_COPY_H2D);
  if (!s) s = ORX_OP(a->be, copy, a->mask, a->h_mask, (size_t)(n * N), ORX_COPY_H2D);
  return s;
}

/* QFormer over the n staged items, then the normalised output y [n, D]. */
static onerec_status forward(orx_aligner *a, int64_t n) {
  const onerec_aligner_config *c = &a->cfg;
  orx_backend *be = a->be;
  const int64_t N = c->tokens, Q = c->queries, d = c->d_model, D = Q * d;
  onerec_status s = orx_mm(be, 0, 0, n * N, d, c->in_dim, a->tok, c->in_dim, a->w_in, d,
                           a->mem, d, 0.0f);
  if (!s) s = ORX_OP(be, add_bias, a->mem, a->tok_pos, n, N * d);
  if (!s) s = ORX_OP(be, memset0, a->x[0], (size_t)(n * Q * d) * sizeof(float));
  if (!s) s = ORX_OP(be, add_bias, a->x[0], a->queries, n, Q * d);
  orx_groups g = {n, NULL, 1};
  for (int l = 0; !s && l < c->layers; l++) {
    const orx_qf_layer_w *w = &a->layer[l];
    s = orx_cross_kv_forward(be, &w->cross, a->kv[l], a->mem, n * N, d);
    if (!s)
      s = orx_cross_attn_forward(be, &w->cross, &a->xact[l], a->x[2 * l], a->x[2 * l + 1], n, Q,
                                 d, c->heads, a->kv[l], N, a->mask, &g, NORM_EPS);
    if (!s)
      s = orx_ffn_forward(be, &w->ffn, &a->fact[l], a->x[2 * l + 1], a->x[2 * l + 2], n * Q, d,
                          NORM_EPS);
  }
  if (!s) s = ORX_OP(be, rmsnorm_fwd, a->y, a->yrstd, a->x[2 * c->layers], a->ones, n, D, OUT_EPS);
  return s;
}

/* Symmetric InfoNCE over the B pairs staged as rows [0, B) and [B, 2B); with `grad`, the
 * gradient of the mean loss into a->dy. */
static onerec_status infonce(orx_aligner *a, int64_t B, int grad, double *loss) {
  const onerec_aligner_config *c = &a->cfg;
  orx_backend *be = a->be;
  const int64_t D = (int64_t)c->queries * c->d_model;
  const float sc = 1.0f / ((float)D * c->temperature);
  const float *ya = a->y, *yb = a->y + B * D;
  float *l1 = a->logits, *l2 = a->logits + B * B, *d1 = a->dlogits, *d2 = a->dlogits + B * B;
  /* l2 = l1^T: a second small product (B x B x D) instead of a transpose op the table lacks */
  onerec_status s = orx_mm(be, 0, 1, B, B, D, ya, D, yb, D, l1, B, 0.0f);
  if (!s) s = orx_mm(be, 0, 1, B, B, D, yb, D, ya, D, l2, B, 0.0f);
  if (!s) s = ORX_OP(be, scale, a->logits, sc, 2 * B * B);
  const float gs = 0.5f / (float)B;
  if (!s)
    s = ORX_OP(be, cross_entropy, a->rowloss, grad ? d1 : NULL, l1, a->targets, B, B, -1, gs, 0.0f);
  if (!s)
    s = ORX_OP(be, cross_entropy, a->rowloss + B, grad ? d2 : NULL, l2, a->targets, B, B, -1, gs, 0.0f);
  if (!s)
    s = ORX_OP(be, copy, a->h_rowloss, a->rowloss, (size_t)(2 * B) * sizeof(float), ORX_COPY_D2H);
  if (s) return s;
  double acc = 0.0;
  for (int64_t i = 0; i < 2 * B; i++) acc += a->h_rowloss[i];
  *loss = 0.5 * acc / (double)B;
  if (!grad) return ONEREC_OK;
  /* l1 = sc ya yb^T, l2 = sc yb ya^T:
   * dya = sc (d1 yb + d2^T yb), dyb = sc (d1^T ya + d2 ya) */
  float *dya = a->dy, *dyb = a->dy + B * D;
  s = orx_mm(be, 0, 0, B, D, B, d1, B, yb, D, dya, D, 0.0f);
  if (!s) s = orx_mm(be, 1, 0, B, D, B, d2, B, yb, D, dya, D, 1.0f);
  if (!s) s = orx_mm(be, 1, 0, B, D, B, d1, B, ya, D, dyb, D, 0.0f);
  if (!s) s = orx_mm(be, 0, 0, B, D, B, d2, B, ya, D, dyb, D, 1.0f);
  if (!s) s = ORX_OP(be, scale, a->dy, sc, 2 * B * D);
  return s;
}

/* Gradients of every parameter from a->dy (n rows), into a->grad (zeroed here). */
static onerec_status backward(orx_aligner *a, int64_t n) {
  const onerec_aligner_config *c = &a->cfg;
  orx_backend *be = a->be;
  const int64_t N = c->tokens, Q = c->queries, d = c->d_model, D = Q * d;
  onerec_status s = ORX_OP(be, memset0, a->grad, a->n_floats * sizeof(float));
  if (!s) s = ORX_OP(be, memset0, a->dx, (size_t)(n * Q * d) * sizeof(float));
  if (!s)
    s = ORX_OP(be, rmsnorm_bwd, a->dx, a->dgain, a->dy, a->x[2 * c->layers], a->ones, a->yrstd,
               n, D);
  if (!s) s = ORX_OP(be, memset0, a->dmem, (size_t)(n * N * d) * sizeof(float));
  orx_groups g = {n, NULL, 1};
  for (int l = c->layers - 1; !s && l >= 0; l--) {
    const orx_qf_layer_w *w = &a->layer[l];
    s = orx_ffn_backward(be, &w->ffn, &a->fact[l], &a->b, a->x[2 * l + 1], a->dx, n * Q, d);
    if (!s) s = ORX_OP(be, memset0, a->dkv, (size_t)(n * N * 2 * d) * sizeof(float));
    if (!s)
      s = orx_cross_attn_backward(be, &w->cross, &a->xact[l], &a->b, a->x[2 * l], a->dx, n, Q, d,
                                  c->heads, a->kv[l], N, a->mask, &g, a->dkv);
    if (!s) s = orx_cross_kv_backward(be, &w->cross, &a->b, a->mem, a->dkv, a->dmem, n * N, d);
  }
  if (!s) s = ORX_OP(be, bias_bwd, orx_g(&a->b, a->queries), a->dx, n, Q * d);
  if (!s) s = ORX_OP(be, bias_bwd, orx_g(&a->b, a->tok_pos), a->dmem, n, N * d);
  if (!s)
    s = orx_mm(be, 1, 0, c->in_dim, d, n * N, a->tok, c->in_dim, a->dmem, d,
               orx_g(&a->b, a->w_in), d, 1.0f);
  return s;
}

/* Clipping at global norm 1, then AdamW per tensor. */
static onerec_status update(orx_aligner *a) {
  const onerec_aligner_config *c = &a->cfg;
  double norm = 0.0;
  float gscale = 1.0f;
  onerec_status s = orx_clip_by_norm(a->be, "onerec_aligner_step", a->step + 1, a->grad,
                                     (int64_t)a->n_floats, 1.0f, 1.0f, &norm, &gscale);
  if (s) return s;
  const int64_t t = a->step + 1;
  const float lr = c->warmup_steps > 0 && t < c->warmup_steps
                       ? c->lr * (float)t / (float)c->warmup_steps
                       : c->lr;
  const orx_adamw_args base = {.param = a->params, .grad = a->grad, .m = a->adam_m,
                               .v = a->adam_v, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                               .grad_scale = gscale, .step = t};
  for (int i = 0; !s && i < a->n_tensors; i++) {
    const orx_align_tensor *p = &a->tensors[i];
    s = orx_adamw_span(a->be, &base, (int64_t)p->offset, (int64_t)p->count, lr,
                       p->decay ? c->weight_decay : 0.0f);
  }
  if (!s) a->step = t;
  return s;
}

static onerec_status check_pairs(const orx_aligner *a, const char *fn, const float *items,
                                 int64_t n_items, const int64_t *first, const int64_t *second,
                                 int64_t n_pairs) {
  ORX_CHECK_ARG(items, fn);
  ORX_CHECK_ARG(first, fn);
  ORX_CHECK_ARG(second, fn);
  if (n_pairs < 2 || n_pairs > a->cfg.max_batch)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: n_pairs = %lld (2..max_batch = %lld)", fn,
                    (long long)n_pairs, (long long)a->cfg.max_batch);
  for (int64_t k = 0; k < n_pairs; k++)
    if (first[k] < 0 || first[k] >= n_items || second[k] < 0 || second[k] >= n_items)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "%s: pair %lld = (%lld, %lld) outside the %lld items", fn, (long long)k,
                      (long long)first[k], (long long)second[k], (long long)n_items);
  return ONEREC_OK;
}

static onerec_status pairs_loss(orx_aligner *a, const char *fn, const float *items,
                                const uint8_t *mask, int64_t n_items, const int64_t *first,
                                const int64_t *second, int64_t n_pairs, int grad, double *loss) {
  ORX_CHECK_ARG(a, fn);
  onerec_status s = check_pairs(a, fn, items, n_items, first, second, n_pairs);
  if (s) return s;
  const int64_t B = n_pairs, w = (int64_t)a->cfg.tokens * a->cfg.in_dim;
  for (int64_t r = 0; r < 2 * B; r++) {
    a->h_rows[r] = r < B ? first[r] : second[r - B];
    const float *src = items + a->h_rows[r] * w;
    for (int64_t j = 0; j < w; j++)
      if (!isfinite(src[j]))
        return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: item %lld has a non-finite value", fn,
                        (long long)a->h_rows[r]);
  }
  s = stage(a, items, mask, a->h_rows, 2 * B);
  if (!s) s = forward(a, 2 * B);
  if (!s) s = infonce(a, B, grad, loss);
  if (s) return s;
  if (!isfinite(*loss))
    return orx_fail(ONEREC_ERR_INTERNAL, "%s: non-finite loss%s", fn,
                    grad ? "; update skipped" : "");
  return ONEREC_OK;
}

onerec_status orx_aligner_grad(orx_aligner *a, const char *fn, const float *items,
                               const uint8_t *token_mask, int64_t n_items, const int64_t *first,
                               const int64_t *second, int64_t n_pairs, double *loss) {
  onerec_status s = pairs_loss(a, fn, items, token_mask, n_items, first, second, n_pairs, 1, loss);
  return s ? s : backward(a, 2 * n_pairs);
}

ONEREC_API onerec_status onerec_aligner_step(onerec_aligner *a, const float *items,
                                             const uint8_t *token_mask, int64_t n_items,
                                             const int64_t *first, const int64_t *second,
                                             int64_t n_pairs, float *loss) {
  static const char fn[] = "onerec_aligner_step";
  double l = 0.0;
  onerec_status s =
      orx_aligner_grad(a, fn, items, token_mask, n_items, first, second, n_pairs, &l);
  if (!s) s = update(a);
  if (!s && loss) *loss = (float)l;
  return s;
}

ONEREC_API onerec_status onerec_aligner_loss(onerec_aligner *a, const float *items,
                                             const uint8_t *token_mask, int64_t n_items,
                                             const int64_t *first, const int64_t *second,
                                             int64_t n_pairs, float *loss) {
  static const char fn[] = "onerec_aligner_loss";
  ORX_CHECK_ARG(loss, fn);
  double l = 0.0;
  onerec_status s = pairs_loss(a, fn, items, token_mask, n_items, first, second, n_pairs, 0, &l);
  if (!s) *loss = (float)l;
  return s;
}

ONEREC_API onerec_status onerec_aligner_embed(onerec_aligner *a, const float *items,
                                              const uint8_t *token_mask, int64_t n_items,
                                              float *out, size_t out_count) {
  static const char fn[] = "onerec_aligner_embed";
  ORX_CHECK_ARG(a, fn);
  ORX_CHECK_ARG(items, fn);
  ORX_CHECK_ARG(out, fn);
  if (n_items < 1)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: n_items = %lld (>= 1)", fn,
                    (long long)n_items);
  const int64_t D = onerec_aligner_dim(a), R = 2 * a->cfg.max_batch;
  if (out_count / (size_t)D < (size_t)n_items)
    return orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "%s: out holds %zu floats, %lld x %lld needed",
                    fn, out_count, (long long)n_items, (long long)D);
  const int64_t w = (int64_t)a->cfg.tokens * a->cfg.in_dim;
  for (int64_t i = 0; i < n_items * w; i++)
    if (!isfinite(items[i]))
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: item %lld has a non-finite value", fn,
                      (long long)(i / w));
  onerec_status s = ONEREC_OK;
  for (int64_t i0 = 0; !s && i0 < n_items; i0 += R) {
    int64_t n = n_items - i0 < R ? n_items - i0 : R;
    for (int64_t r = 0; r < n; r++) a->h_rows[r] = i0 + r;
    s = stage(a, items, token_mask, a->h_rows, n);
    if (!s) s = forward(a, n);
    if (!s)
      s = ORX_OP(a->be, copy, out + i0 * D, a->y, (size_t)(n * D) * sizeof(float), ORX_COPY_D2H);
  }
  if (s) return s;
  /* rmsnorm gives sqrt(D) x / ||x||: scale to unit norm */
  const float inv = 1.0f / sqrtf((float)D);
  for (int64_t i = 0; i < n_items * D; i++) out[i] *= inv;
  return ONEREC_OK;
}
