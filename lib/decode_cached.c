/* Incremental decoding for generation: each step runs the decoder on the newest position only,
 * with the self-attention keys and values of the earlier positions kept per row in a cache
 * (reordered by parent when beams are selected). The teacher-forced decoder (lib/decoder.c)
 * recomputes every position of the prefix at every step; for 3 levels this does 1 + 1 + 1
 * position-passes per row instead of 1 + 2 + 3, and BOS once per user instead of per beam.
 * The arithmetic is the same as the full pass (same ops, same order per position), so the
 * results agree with onerec_session_score to float rounding; tests/test_generate*.c check it
 * against exact scores and the PyTorch reference. */
#include <math.h>
#include <string.h>

#include "generate_impl.h"

onerec_status orx_gen_cache_alloc(orx_gen *g) {
  onerec_session *s = g->s;
  const int64_t layers = s->m->cfg.dec_layers, d = s->m->dims.d;
  g->cache_row = g->L * 2 * d;
  size_t bytes = (size_t)(2 * layers * g->R * g->cache_row) * sizeof(float);
  g->cache_block = s->be->ops->alloc(s->be, bytes);
  if (!g->cache_block) return ONEREC_ERR_OUT_OF_MEMORY;
  g->cache[0] = g->cache_block;
  g->cache[1] = g->cache[0] + layers * g->R * g->cache_row;
  return ONEREC_OK;
}

void orx_gen_cache_free(orx_gen *g) {
  if (g->cache_block) g->s->be->ops->free(g->s->be, g->cache_block);
  g->cache_block = NULL;
}

/* Self-attention of the new position p against the row's cached positions 0..p. */
static onerec_status self_step(orx_gen *g, const orx_attn_w *w, float *x, float *cache,
                               int64_t rows, int64_t p) {
  onerec_session *s = g->s;
  orx_backend *be = s->be;
  const orx_attn_act *a = &s->dec_self[0];
  const int64_t d = s->m->dims.d, H = s->m->dims.heads, hd = d / H, cr = g->cache_row;
  onerec_status st = ORX_OP(be, rmsnorm_fwd, a->xn, a->rstd, x, w->norm, rows, d,
                            s->m->cfg.norm_eps);
  /* q into qkv, k|v straight into the cache slot of position p */
  if (!st) st = orx_mm(be, 0, 0, rows, d, d, a->xn, d, w->wqkv, 3 * d, a->qkv, d, 0.0f);
  if (!st) st = orx_mm(be, 0, 0, rows, 2 * d, d, a->xn, d, w->wqkv + d, 3 * d, cache + p * 2 * d, cr, 0.0f);
  if (st) return st;
  orx_attn_args at = {0};
  at.batch = rows;
  at.heads = H;
  at.tq = 1;
  at.tk = p + 1;
  at.head_dim = hd;
  at.q = a->qkv;
  at.q_sb = d;
  at.q_sh = hd;
  at.q_st = d;
  at.k = cache;
  at.v = cache + d;
  at.k_sb = at.v_sb = cr;
  at.k_sh = at.v_sh = hd;
  at.k_st = at.v_st = 2 * d;
  at.out = a->o;
  at.o_sb = d;
  at.o_sh = hd;
  at.o_st = d;
  at.scale = 1.0f / sqrtf((float)hd);
  if ((st = ORX_OP(be, attention_fwd, &at))) return st;
  return orx_mm(be, 0, 0, rows, d, d, a->o, d, w->wo, d, x, d, 1.0f);
}

/* Cross-attention of each row's new position to its user's encoder output. */
static onerec_status cross_step(orx_gen *g, const orx_xattn_w *w, float *x, const float *kv,
                                int64_t rows, int64_t eq) {
  onerec_session *s = g->s;
  orx_backend *be = s->be;
  const orx_xattn_act *a = &s->dec_cross[0];
  const int64_t d = s->m->dims.d, H = s->m->dims.heads, hd = d / H, T = s->m->dims.enc_len;
  onerec_status st = ORX_OP(be, rmsnorm_fwd, a->xn, a->rstd, x, w->norm, rows, d,
                            s->m->cfg.norm_eps);
  if (!st) st = orx_mm(be, 0, 0, rows, d, d, a->xn, d, w->wq, d, a->q, d, 0.0f);
  if (st) return st;
  orx_attn_args at = {0};
  at.heads = H;
  at.tk = T;
  at.head_dim = hd;
  at.q_sh = at.o_sh = at.k_sh = at.v_sh = hd;
  at.q_st = at.o_st = d;
  at.k_st = at.v_st = 2 * d;
  at.k_sb = at.v_sb = T * 2 * d;
  at.scale = 1.0f / sqrtf((float)hd);
  /* a user's rows form one query sequence against its memory (as lib/attention_block.c) */
  if (eq > 0) {
    at.batch = s->batch;
    at.tq = eq;
    at.q = a->q;
    at.out = a->o;
    at.q_sb = at.o_sb = eq * d;
    at.k = kv;
    at.v = kv + d;
    at.key_mask = s->enc_mask;
    if ((st = ORX_OP(be, attention_fwd, &at))) return st;
  } else {
    at.batch = 1;
    for (int64_t b = 0; b < s->batch; b++) {
      const int64_t r0 = g->off[b], cnt = g->off[b + 1] - r0;
      if (cnt <= 0) continue;
      at.tq = cnt;
      at.q = a->q + r0 * d;
      at.out = a->o + r0 * d;
      at.q_sb = at.o_sb = cnt * d;
      at.k = kv + b * T * 2 * d;
      at.v = at.k + d;
      at.key_mask = s->enc_mask + b * T;
      if ((st = ORX_OP(be, attention_fwd, &at))) return st;
    }
  }
  return orx_mm(be, 0, 0, rows, d, d, a->o, d, w->wo, d, x, d, 1.0f);
}

onerec_status orx_gen_forward_cached(orx_gen *g, int64_t rows, int64_t p, int reorder,
                                     int64_t rows_before) {
  onerec_session *s = g->s;
  const onerec_model *m = s->m;
  orx_backend *be = s->be;
  const int64_t d = m->dims.d, K = m->dims.codebook, layers = m->cfg.dec_layers;
  const int64_t per_layer = g->R * g->cache_row;
  onerec_status st = ONEREC_OK;
  /* beams chose their parents: carry each parent's cached positions to its child rows */
  if (p > 0 && reorder) {
    st = ORX_OP(be, copy, s->targets, g->parent, (size_t)rows * sizeof(int32_t), ORX_COPY_H2D);
    for (int64_t l = 0; l < layers && !st; l++)
      st = ORX_OP(be, embedding_fwd, g->cache[1] + l * per_layer, g->cache[0] + l * per_layer,
                  s->targets, rows, g->cache_row, rows_before);
    if (st) return st;
    float *t = g->cache[0];
    g->cache[0] = g->cache[1];
    g->cache[1] = t;
  }
  /* the new position's token: BOS, or level p's code (row 1 + (p-1) K + code) */
  for (int64_t r = 0; r < rows; r++)
    s->h_dec_ids[r] = p == 0 ? 0 : (int32_t)(1 + (p - 1) * K + g->codes[0][r * g->L + p - 1]);
  float *x = s->dec_x[0];
  st = ORX_OP(be, copy, s->dec_ids, s->h_dec_ids, (size_t)rows * sizeof(int32_t), ORX_COPY_H2D);
  if (!st) st = ORX_OP(be, embedding_fwd, x, m->dec_emb, s->dec_ids, rows, d, m->dims.dec_vocab);
  if (!st) st = ORX_OP(be, add_bias, x, m->dec_pos + p * d, rows, d);
  if (st) return st;
  int64_t eq = g->off[1] - g->off[0];
  for (int64_t b = 1; b < s->batch && eq > 0; b++)
    if (g->off[b + 1] - g->off[b] != eq) eq = 0;
  for (int64_t l = 0; l < layers; l++) {
    const orx_dec_layer_w *w = &m->dec[l];
    st = self_step(g, &w->self, x, g->cache[0] + l * per_layer, rows, p);
    if (!st) st = cross_step(g, &w->cross, x, s->dec_kv[l], rows, eq);
    if (!st)
      st = orx_mlp_forward(be, &w->mlp, &s->dec_mlp[0], x, x, rows, d, m->cfg.norm_eps,
                           s->moe_load + (m->dims.moe_enc + l) * m->cfg.experts);
    if (st) return st;
  }
  st = ORX_OP(be, rmsnorm_fwd, s->dec_xn, s->dec_rstd, x, m->dec_norm, rows, d, m->cfg.norm_eps);
  if (st) return st;
  return orx_mm(be, 0, 0, rows, K, d, s->dec_xn, d, m->heads + p * d * K, K, s->logits, K, 0.0f);
}
