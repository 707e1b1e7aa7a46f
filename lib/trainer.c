/* The trainer handle: training sessions (one per data-parallel shard), gradient and backward
 * scratch buffers, and the micro-batch step (forward, NTP loss, backward; every accum_steps-th
 * call an update through lib/optimizer.c). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "trainer_impl.h"

typedef struct lay {
  orx_arena dev, host;
} lay;

#define DF(n) ((float *)orx_take(&L->dev, (size_t)(n) * sizeof(float)))
#define HF(n) ((float *)orx_take(&L->host, (size_t)(n) * sizeof(float)))

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* The backward scratch, sized from the session's maxima. */
static void lay_bwd(const onerec_model *m, const onerec_session *s, orx_bwd *b, lay *L) {
  const onerec_model_config *c = &m->cfg;
  const orx_dims *dm = &m->dims;
  const int64_t B = s->max_batch, T = dm->enc_len, d = dm->d, R = s->max_targets;
  const int64_t nT = B * T, nR = R * dm->levels;
  const int64_t Nq = c->use_lifelong ? c->lifelong_queries : 0, life = c->use_lifelong ? s->life_rows : 0;
  const int64_t N = max64(max64(nT, nR), B * Nq);
  b->dxn = DF(N * d);
  b->dqkv = DF(N * 3 * d);
  b->dout = DF(N * d);
  b->dh = DF(N * c->ffn_dim);
  b->dgate = DF(N * c->ffn_dim);
  b->dup = DF(N * c->ffn_dim);
  b->dkv = DF(max64(nT, life) * 2 * d);
  b->dx_dec = DF(nR * d);
  b->dx_enc = DF(nT * d);
  b->dz = DF(nT * d);
  b->dlogits = DF(nR * dm->codebook);
  b->dq_life = DF(B * Nq * d);
  b->dmem = DF(life * d);
  if (c->moe_encoder || c->moe_decoder) {
    const int64_t slots = N * c->top_k, h = c->expert_dim, E = c->experts;
    b->dys = DF(slots * d);
    b->dye = DF(slots * d);
    b->dxe = DF(slots * d);
    b->dgperm = DF(slots);
    b->dhe = DF(slots * h);
    b->dge = DF(slots * h);
    b->due = DF(slots * h);
    b->dprobs = DF(N * E);
    b->dlog = DF(N * E);
    b->h_dgperm = HF(slots);
    b->h_dprobs = HF(N * E);
  }
  int64_t rows = c->use_static ? B : 0, w = 1;
  if (c->use_short) rows = max64(rows, B * c->short_len);
  if (c->use_positive) rows = max64(rows, B * c->positive_len);
  rows = max64(rows, life);
  if (c->use_static) w = max64(w, c->static_emb_dim);
  if (c->use_short || c->use_positive || c->use_lifelong) {
    w = max64(w, dm->item_width);
    for (int i = 0; i < c->seq_cat_count; i++) w = max64(w, c->seq_cat_dim[i]);
  }
  b->dpre = DF(rows * d);
  b->dph = DF(rows * d);
  b->dblock = DF(rows * w);
}

static onerec_status read_opts(const onerec_trainer_opts *in, onerec_trainer_opts *o,
                               const char *fn) {
  memset(o, 0, sizeof *o);
  o->sz = sizeof *o;
  if (in) {
    onerec_status s = orx_opts_read(o, sizeof *o, in, fn);
    if (s) return s;
  }
  if (!o->max_batch) o->max_batch = 64;
  if (!o->accum_steps) o->accum_steps = 1;
  if (o->lr_dense == 0.0f) o->lr_dense = 1e-3f;
  if (o->lr_sparse == 0.0f) o->lr_sparse = 1e-2f;
  if (o->beta1 == 0.0f) o->beta1 = 0.9f;
  if (o->beta2 == 0.0f) o->beta2 = 0.999f;
  if (o->adam_eps == 0.0f) o->adam_eps = 1e-8f;
  if (o->weight_decay == 0.0f) o->weight_decay = 0.01f;
  if (o->weight_decay < 0.0f) o->weight_decay = 0.0f;
  if (o->min_lr_ratio == 0.0f) o->min_lr_ratio = 0.1f;
  if (o->clip_norm == 0.0f) o->clip_norm = 1.0f;
  if (o->moe_bias_rate == 0.0f) o->moe_bias_rate = 1e-3f;
  if (!o->shards) o->shards = 1;
  if (o->shards < 1 || o->shards > 64)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: shards = %d (expected 1..64)", fn,
                    (int)o->shards);
  if (o->max_batch < 1 || o->accum_steps < 1 || !(o->lr_dense > 0.0f) ||
      !(o->lr_sparse > 0.0f) || !(o->beta1 > 0.0f && o->beta1 < 1.0f) ||
      !(o->beta2 > 0.0f && o->beta2 < 1.0f) || !(o->adam_eps > 0.0f) || o->warmup_steps < 0 ||
      o->total_steps < 0 || !(o->min_lr_ratio >= 0.0f && o->min_lr_ratio <= 1.0f) ||
      !isfinite(o->clip_norm) || !isfinite(o->moe_bias_rate) || !isfinite(o->weight_decay) ||
      !(o->dropout >= 0.0f && o->dropout < 1.0f) ||
      !(o->input_dropout >= 0.0f && o->input_dropout < 1.0f) ||
      !(o->ema_decay >= 0.0f && o->ema_decay < 1.0f) ||
      !(o->label_smoothing >= 0.0f && o->label_smoothing < 1.0f))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: bad options (max_batch %lld >= 1, accum_steps %d >= 1, learning rates "
                    "%g / %g > 0, betas in (0,1), adam_eps > 0, warmup / total steps >= 0, "
                    "min_lr_ratio in [0,1], dropout, input_dropout, ema_decay and "
                    "label_smoothing in [0,1))",
                    fn, (long long)o->max_batch, o->accum_steps, (double)o->lr_dense,
                    (double)o->lr_sparse);
  return ONEREC_OK;
}

/* Frees what shard_create made (any part may be missing). */
static void shard_free(onerec_trainer *t, orx_shard *sh) {
  onerec_context *ctx = sh->ctx ? sh->ctx : t->ctx;
  orx_backend *be = &ctx->be;
  if (sh->b.g && sh->b.g != t->grad) be->ops->free(be, sh->b.g);
  if (sh->scratch) be->ops->free(be, sh->scratch);
  orx_host_free(ctx, sh->host_scratch);
  orx_host_free(ctx, sh->offsets);
  onerec_session_free(sh->s); /* before its context */
  onerec_context_free(sh->ctx);
}

/* Shard k: with several shards its own CPU context (the trainer's threads split between the
 * shards) and, past shard 0, its own gradient buffer; then a session for its slice of rows and
 * the backward scratch. */
static onerec_status shard_create(onerec_trainer *t, orx_shard *sh, int k) {
  static const char fn[] = "onerec_trainer_create";
  onerec_model *m = t->m;
  const int64_t rows = (t->o.max_batch + t->shards - 1) / t->shards;
  onerec_context *ctx = t->ctx;
  onerec_status st;
  if (t->shards > 1) {
    int th = t->ctx->threads / t->shards;
    ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = th > 0 ? th : 1,
                .device = t->ctx->device, .seed = t->ctx->seed, .log_fn = t->ctx->log_fn, .log_user = t->ctx->log_user,
                .log_level = t->ctx->log_level, .allocator = &t->ctx->alloc);
    if ((st = onerec_context_create(&co, &sh->ctx))) return st;
    ctx = sh->ctx;
  }
  orx_backend *be = &ctx->be;
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = rows, .max_targets = rows,
              .max_lifelong = t->o.max_lifelong);
  if ((st = orx_session_create(m, ctx, &so, 1, &sh->s))) return st;
  lay L = {{NULL, 0}, {NULL, 0}};
  lay_bwd(m, sh->s, &sh->b, &L);
  const size_t db = L.dev.used, hb = L.host.used, gb = m->n_params * sizeof(float);
  sh->scratch = be->ops->alloc(be, db ? db : 64);
  sh->host_scratch = orx_host_alloc(ctx, hb ? hb : 64);
  sh->offsets = orx_host_alloc(ctx, (size_t)(3 * (rows + 1)) * sizeof(int64_t));
  float *g = k == 0 ? t->grad : be->ops->alloc(be, gb);
  if (!sh->scratch || !sh->host_scratch || !sh->offsets || !g) {
    if (g && g != t->grad) be->ops->free(be, g);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY,
                    "%s: cannot allocate %zu bytes of backward scratch%s for shard %d (lower "
                    "max_batch)",
                    fn, db, k > 0 ? " and a gradient buffer" : "", k);
  }
  L.dev = (orx_arena){sh->scratch, 0};
  L.host = (orx_arena){sh->host_scratch, 0};
  lay_bwd(m, sh->s, &sh->b, &L);
  sh->b.params = m->params;
  sh->b.g = g;
  return ONEREC_OK;
}

ONEREC_API void onerec_trainer_free(onerec_trainer *t) {
  if (!t) return;
  orx_backend *be = t->be;
  for (int k = 0; t->sh && k < t->shards; k++) shard_free(t, &t->sh[k]);
  orx_host_free(t->ctx, t->sh);
  if (t->grad) be->ops->free(be, t->grad);
  if (t->adam_m) be->ops->free(be, t->adam_m);
  if (t->adam_v) be->ops->free(be, t->adam_v);
  if (t->avg) be->ops->free(be, t->avg);
  orx_host_free(t->ctx, t);
}

ONEREC_API onerec_status onerec_trainer_create(onerec_model *model,
                                               const onerec_trainer_opts *opts,
                                               onerec_trainer **out) {
  static const char fn[] = "onerec_trainer_create";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(model, fn);
  onerec_trainer_opts o;
  onerec_status st = read_opts(opts, &o, fn);
  if (st) return st;
  if (o.shards > 1 && strcmp(model->ctx->be.ops->name, "cpu") != 0)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: shards = %d needs the cpu backend (this model lives on %s)", fn,
                    (int)o.shards, model->ctx->be.ops->name);
  onerec_trainer *t = orx_host_alloc(model->ctx, sizeof *t);
  if (!t) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  memset(t, 0, sizeof *t);
  t->m = model;
  t->ctx = model->ctx;
  t->be = &model->ctx->be;
  t->o = o;
  t->shards = o.shards;
  orx_backend *be = t->be;
  const size_t bytes = model->n_params * sizeof(float);
  t->grad = be->ops->alloc(be, bytes);
  t->adam_m = be->ops->alloc(be, bytes);
  t->adam_v = be->ops->alloc(be, bytes);
  if (o.ema_decay > 0.0f) t->avg = be->ops->alloc(be, bytes);
  t->sh = orx_host_alloc(t->ctx, (size_t)t->shards * sizeof *t->sh);
  if (!t->grad || !t->adam_m || !t->adam_v || (o.ema_decay > 0.0f && !t->avg) || !t->sh) {
    orx_host_free(t->ctx, t->sh);
    t->sh = NULL;
    onerec_trainer_free(t);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY,
                    "%s: cannot allocate gradients and optimiser state (%d x %zu bytes)", fn,
                    o.ema_decay > 0.0f ? 4 : 3, bytes);
  }
  memset(t->sh, 0, (size_t)t->shards * sizeof *t->sh);
  for (int k = 0; k < t->shards && !st; k++) st = shard_create(t, &t->sh[k], k);
  if (!st) st = ORX_OP(be, memset0, t->grad, bytes);
  if (!st) st = ORX_OP(be, memset0, t->adam_m, bytes);
  if (!st) st = ORX_OP(be, memset0, t->adam_v, bytes);
  if (!st && t->avg) st = ORX_OP(be, copy, t->avg, model->params, bytes, ORX_COPY_D2D);
  if (st) {
    onerec_trainer_free(t);
    return st;
  }
  t->s = t->sh[0].s;
  t->b = t->sh[0].b;
  *out = t;
  return ONEREC_OK;
}

onerec_status orx_trainer_check_state(const onerec_trainer *t, const char *fn,
                                      const char *action) {
  if (t->lost)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: a failed onerec_trainer_swap_ema left the weights and their average "
                    "inconsistent: onerec_trainer_load a checkpoint first",
                    fn);
  if (action && t->swapped)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: the model holds the moving average; onerec_trainer_swap_ema it back "
                    "before %s",
                    fn, action);
  return ONEREC_OK;
}

/* A seed per (update, micro-batch, shard, block): splitmix64 of the combination (shard 0 adds
 * nothing, so one shard draws what the trainer drew before shards existed). */
static uint64_t drop_seed(const onerec_trainer *t, int shard, uint64_t block) {
  uint64_t z = t->o.dropout_seed ^ ((uint64_t)t->step * 0x9E3779B97F4A7C15ull) ^
               ((uint64_t)t->micro << 48) ^ (block * 0xD1B54A32D192ED03ull) ^
               ((uint64_t)shard * 0xA24BAED4963EE407ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Sets every block's dropout of shard k's session for this micro-batch (p = 0: off). */
static void set_dropout(const onerec_trainer *t, int shard) {
  onerec_session *s = t->sh[shard].s;
  const onerec_model_config *c = &t->m->cfg;
  const float p = t->o.dropout;
  uint64_t k = 1;
  for (int l = 0; l < c->enc_layers; l++) {
    s->enc_attn[l].drop = (orx_drop){p, drop_seed(t, shard, k++)};
    s->enc_mlp[l].ffn.drop = (orx_drop){p, drop_seed(t, shard, k++)};
  }
  for (int l = 0; l < c->dec_layers; l++) {
    s->dec_self[l].drop = (orx_drop){p, drop_seed(t, shard, k++)};
    s->dec_cross[l].drop = (orx_drop){p, drop_seed(t, shard, k++)};
    s->dec_mlp[l].ffn.drop = (orx_drop){p, drop_seed(t, shard, k++)};
  }
  for (int l = 0; c->use_lifelong && l < c->qformer_layers; l++) {
    s->qf_cross[l].drop = (orx_drop){p, drop_seed(t, shard, k++)};
    s->qf_ffn[l].drop = (orx_drop){p, drop_seed(t, shard, k++)};
  }
  /* block numbers past any layer's, so the layers' masks are those of runs without it */
  const float pin = t->o.input_dropout;
  s->enc_in_drop = (orx_drop){pin, drop_seed(t, shard, (uint64_t)1 << 32)};
  s->dec_in_drop = (orx_drop){pin, drop_seed(t, shard, ((uint64_t)1 << 32) + 1)};
}

/* Forward + backward of shard k's slice u (rows already checked against its session). */
static onerec_status shard_forward_backward(const onerec_trainer *t, int k,
                                            const onerec_user_batch *u, const int32_t *codes,
                                            float grad_scale, double *loss) {
  static const char fn[] = "onerec_trainer_step";
  const orx_shard *sh = &t->sh[k];
  onerec_session *s = sh->s;
  const onerec_model *m = t->m;
  orx_backend *be = s->be;
  const orx_bwd *b = &sh->b;
  const int64_t rows = u->batch, L = m->dims.levels, K = m->dims.codebook, n = rows * L;
  for (int64_t i = 0; i < n; i++) {
    if (codes[i] < 0 || codes[i] >= K)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "%s: target %lld: code %d of level %lld outside [0, codebook = %lld)", fn,
                      (long long)(i / L), codes[i], (long long)(i % L), (long long)K);
    s->h_targets[i] = codes[i];
  }
  set_dropout(t, k);
  onerec_status st = orx_encoder_forward(s, u);
  if (st) return st;
  for (int64_t r = 0; r <= rows; r++) s->h_groups[r] = r;
  orx_groups g = {rows, s->h_groups, 1};
  st = orx_decoder_stage(m, codes, rows, L, s->h_dec_ids);
  if (!st)
    st = ORX_OP(be, copy, s->dec_ids, s->h_dec_ids, (size_t)n * sizeof(int32_t), ORX_COPY_H2D);
  if (!st) st = orx_decoder_forward(s, rows, L, &g, 0);
  if (!st)
    st = ORX_OP(be, copy, s->targets, s->h_targets, (size_t)n * sizeof(int32_t), ORX_COPY_H2D);
  if (!st)
    st = ORX_OP(be, cross_entropy, s->loss, b->dlogits, s->logits, s->targets, n, K, -1,
                grad_scale / (float)n, t->o.label_smoothing);
  if (!st) st = ORX_OP(be, copy, s->h_loss, s->loss, (size_t)n * sizeof(float), ORX_COPY_D2H);
  if (st) return st;
  double acc = 0.0;
  for (int64_t i = 0; i < n; i++) acc += s->h_loss[i];
  *loss = acc / (double)n;
  st = ORX_OP(be, memset0, b->dz, (size_t)(rows * m->dims.enc_len * m->dims.d) * sizeof(float));
  if (!st) st = orx_decoder_backward(s, b, rows, L, &g);
  if (!st) st = orx_encoder_backward(s, b, u);
  return st;
}

/* Entries of a session's MoE load table: [MoE layers, experts]. */
static int64_t moe_load_count(const onerec_model *m) {
  return (m->dims.moe_enc + m->dims.moe_dec) * (m->cfg.experts > 0 ? m->cfg.experts : 1);
}

void orx_trainer_clear_moe_load(onerec_trainer *t) {
  const int64_t nl = moe_load_count(t->m);
  for (int k = 0; nl && k < t->shards; k++)
    memset(t->sh[k].s->moe_load, 0, (size_t)nl * sizeof(int64_t));
}

/* One shard's part of a micro-batch, run on its own thread. */
typedef struct shard_job {
  const onerec_trainer *t;
  int k;
  onerec_user_batch u;
  const int32_t *codes;
  float scale;
  double loss;
  onerec_status st;
  char msg[1024]; /* the failing thread's last error (messages are per thread) */
} shard_job;

static void *shard_run(void *arg) {
  shard_job *j = arg;
  const orx_shard *sh = &j->t->sh[j->k];
  j->st = ONEREC_OK;
  if (j->k > 0) /* the shard's own gradient holds this micro-batch only */
    j->st = ORX_OP(sh->s->be, memset0, sh->b.g, j->t->m->n_params * sizeof(float));
  if (!j->st) j->st = shard_forward_backward(j->t, j->k, &j->u, j->codes, j->scale, &j->loss);
  if (j->st) snprintf(j->msg, sizeof j->msg, "%s", onerec_last_error());
  return NULL;
}

/* Whether the model reads sequence pathway p (short-term, positive, lifelong). */
static int uses_pathway(const onerec_model_config *c, int p) {
  return p == 0 ? c->use_short : p == 1 ? c->use_positive : c->use_lifelong;
}

/* Rows r0..r0+rows-1 of u, each sequence pathway's offsets rebased into buf (3 x (rows + 1)). The
 * whole batch was validated first, so the slices' pointers stay inside the arrays. */

static onerec_user_batch slice_users(const onerec_model *m, const onerec_user_batch *u,
                                     int64_t r0, int64_t rows, int64_t *buf) {
  const onerec_model_config *c = &m->cfg;
  onerec_user_batch v = *u;
  v.batch = rows;
  if (u->static_cat) v.static_cat = u->static_cat + r0 * c->static_cat_count;
  if (u->static_num) v.static_num = u->static_num + r0 * c->static_num_count;
  const onerec_seq_input *in[3] = {&u->short_term, &u->positive, &u->lifelong};
  onerec_seq_input *out[3] = {&v.short_term, &v.positive, &v.lifelong};
  for (int p = 0; p < 3; p++) {
    if (!in[p]->offsets || !uses_pathway(c, p)) continue;
    const int64_t base = in[p]->offsets[r0];
    int64_t *off = buf + p * (rows + 1);
    for (int64_t i = 0; i <= rows; i++) off[i] = in[p]->offsets[r0 + i] - base;
    out[p]->offsets = off;
    if (in[p]->items) out[p]->items = in[p]->items + base * m->dims.item_ids;
    if (in[p]->cat) out[p]->cat = in[p]->cat + base * c->seq_cat_count;
    if (in[p]->num) out[p]->num = in[p]->num + base * c->seq_num_count;
  }
  return v;
}

onerec_status orx_trainer_forward_backward(onerec_trainer *t, const onerec_user_batch *users,
                                           const int32_t *codes, float grad_scale,
                                           double *loss) {
  static const char fn[] = "onerec_trainer_step";
  const onerec_model *m = t->m;
  onerec_user_batch u;
  memset(&u, 0, sizeof u);
  u.sz = sizeof u;
  onerec_status st = orx_opts_read(&u, sizeof u, users, fn);
  if (st) return st;
  if (u.batch < 1 || u.batch > t->o.max_batch)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: batch = %lld (1..max_batch = %lld)", fn,
                    (long long)u.batch, (long long)t->o.max_batch);
  if (t->shards == 1) return shard_forward_backward(t, 0, &u, codes, grad_scale, loss);
  /* the encoder's own check, on the whole batch: slicing trusts the offsets, and errors name
   * users by their place in the batch */
  if ((st = orx_validate_users(m, &u, t->s->max_lifelong))) return st;
  /* contiguous slices, the first ones one row longer; empty shards (batch < shards) idle */
  shard_job job[64];
  pthread_t th[64];
  int started[64] = {0};
  const int S = t->shards, parallel = t->ctx->threads >= S;
  const int64_t L = m->dims.levels;
  for (int k = 0, r0 = 0; k < S; k++) {
    const int64_t rows = u.batch / S + (k < u.batch % S);
    job[k] = (shard_job){t, k, slice_users(m, &u, r0, rows, t->sh[k].offsets), codes + r0 * L,
                         grad_scale * (float)rows / (float)u.batch, 0.0, ONEREC_OK, ""};
    r0 += (int)rows;
  }
  for (int k = 1; parallel && k < S; k++)
    if (job[k].u.batch > 0) started[k] = pthread_create(&th[k], NULL, shard_run, &job[k]) == 0;
  for (int k = 0; k < S; k++)
    if (job[k].u.batch > 0 && !started[k]) shard_run(&job[k]);
  for (int k = 1; k < S; k++)
    if (started[k]) pthread_join(th[k], NULL);
  /* the routing-bias update reads shard 0's expert load: the others' are added (and reset) */
  const int64_t nl = moe_load_count(m);
  double acc = 0.0;
  for (int k = 0, r0 = 0; k < S; r0 += (int)job[k].u.batch, k++) {
    if (job[k].u.batch == 0) continue;
    if (!job[k].st) {
      acc += job[k].loss * (double)job[k].u.batch;
      if (k > 0 &&
          (job[k].st = ORX_OP(t->be, axpy, t->grad, t->sh[k].b.g, 1.0f, (int64_t)m->n_params)))
        snprintf(job[k].msg, sizeof job[k].msg, "%s", onerec_last_error());
    }
    if (job[k].st) {
      orx_trainer_clear_moe_load(t);
      return orx_fail(job[k].st, "%s (in shard %d: rows %d..%d of the batch)", job[k].msg, k,
                      r0, r0 + (int)job[k].u.batch - 1);
    }
    for (int64_t i = 0; k > 0 && i < nl; i++) {
      t->s->moe_load[i] += t->sh[k].s->moe_load[i];
      t->sh[k].s->moe_load[i] = 0;
    }
  }
  *loss = acc / (double)u.batch;
  return ONEREC_OK;
}

ONEREC_API onerec_status onerec_trainer_step(onerec_trainer *t, const onerec_user_batch *users,
                                             const int32_t *codes, float *loss_out) {
  static const char fn[] = "onerec_trainer_step";
  ORX_CHECK_ARG(t, fn);
  ORX_CHECK_ARG(users, fn);
  ORX_CHECK_ARG(codes, fn);
  onerec_status st = orx_trainer_check_state(t, fn, "training");
  if (st) return st;
  if (t->micro == 0 &&
      (st = ORX_OP(t->be, memset0, t->grad, t->m->n_params * sizeof(float))))
    return st;
  double loss = 0.0;
  st = orx_trainer_forward_backward(t, users, codes, 1.0f / (float)t->o.accum_steps, &loss);
  if (!st && !isfinite(loss))
    st = orx_fail(ONEREC_ERR_INTERNAL, "%s: non-finite loss at step %lld", fn,
                  (long long)t->step + 1);
  if (st) {
    t->micro = 0; /* drop what was accumulated: the next call starts afresh */
    return st;
  }
  t->loss = (float)loss;
  t->micro++;
  t->samples += users->batch;
  if (loss_out) *loss_out = (float)loss;
  if (t->micro >= t->o.accum_steps) {
    t->micro = 0;
    st = orx_optimizer_update(t, 1.0f);
  }
  return st;
}

ONEREC_API onerec_status onerec_trainer_swap_ema(onerec_trainer *t) {
  static const char fn[] = "onerec_trainer_swap_ema";
  ORX_CHECK_ARG(t, fn);
  if (!t->avg)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: this trainer keeps no moving average (ema_decay = 0)", fn);
  if (t->micro != 0)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: %lld micro-batches are accumulated; swap after an update", fn,
                    (long long)t->micro);
  onerec_status st = orx_trainer_check_state(t, fn, NULL);
  if (st) return st;
  /* between updates the gradient buffer is free (the next micro-batch zeroes it): the swap
   * goes through it */
  const size_t bytes = t->m->n_params * sizeof(float);
  orx_backend *be = t->be;
  if ((st = ORX_OP(be, copy, t->grad, t->m->params, bytes, ORX_COPY_D2D)))
    return st; /* nothing changed */
  st = ORX_OP(be, copy, t->m->params, t->avg, bytes, ORX_COPY_D2D);
  onerec_status st3 = st ? ONEREC_OK : ORX_OP(be, copy, t->avg, t->grad, bytes, ORX_COPY_D2D);
  if (!st && !st3) {
    t->swapped = !t->swapped;
    return ONEREC_OK;
  }
  /* Copy 2 failed: the model is half written, the average intact. Copy 3 failed: the model
   * holds a whole copy of the old average, the average is half written: restore it from the
   * model first. Then the trained weights go back from the gradient buffer. */
  char why[256];
  snprintf(why, sizeof why, "%s", onerec_last_error());
  if (st3 && ORX_OP(be, copy, t->avg, t->m->params, bytes, ORX_COPY_D2D)) t->lost = 1;
  if (ORX_OP(be, copy, t->m->params, t->grad, bytes, ORX_COPY_D2D)) t->lost = 1;
  return orx_fail(st ? st : st3, "%s: %s%s", fn, why,
                  t->lost ? " (the trainer is unusable until onerec_trainer_load)"
                          : " (weights and average restored)");
}

ONEREC_API onerec_status onerec_trainer_stats(const onerec_trainer *t, onerec_train_stats *out) {
  static const char fn[] = "onerec_trainer_stats";
  ORX_CHECK_ARG(t, fn);
  ORX_CHECK_ARG(out, fn);
  if (out->sz < sizeof(size_t))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: stats->sz = %zu (set it with ONEREC_OPTS)",
                    fn, out->sz);
  onerec_train_stats s;
  memset(&s, 0, sizeof s);
  s.sz = sizeof s;
  s.step = t->step;
  s.micro = t->micro;
  s.samples = t->samples;
  s.loss = t->loss;
  s.lr_dense = t->lr_dense;
  s.lr_sparse = t->lr_sparse;
  s.grad_norm = t->grad_norm;
  size_t n = out->sz < sizeof s ? out->sz : sizeof s;
  memcpy((char *)out + sizeof(size_t), (char *)&s + sizeof(size_t), n - sizeof(size_t));
  return ONEREC_OK;
}
