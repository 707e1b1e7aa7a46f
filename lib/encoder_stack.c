/* The encoder (SPEC §2): the four pathways write their tokens into slices of the input
 * [static | short-term | positive | lifelong], positional embeddings are added, L_enc
 * pre-RMSNorm layers of full self-attention and FFN (dense or MoE) follow, and a final RMSNorm
 * gives z_enc. The key mask built along the way (1 = a token with data) hides padding and
 * absent pathways from every query, here and in the decoder's cross-attention. */
#include <string.h>

#include "model_impl.h"

onerec_status orx_encoder_forward(onerec_session *s, const onerec_user_batch *u) {
  const onerec_model *m = s->m;
  const onerec_model_config *c = &m->cfg;
  const orx_dims *dm = &m->dims;
  orx_backend *be = s->be;
  const int64_t B = u->batch, T = dm->enc_len, d = dm->d, nT = B * T;
  const float eps = c->norm_eps;
  float *x0 = s->enc_x[0];
  uint8_t *hm = s->h_enc_mask;
  onerec_status st = ONEREC_OK;
  s->batch = 0; /* until this pass completes, no decode may use the buffers */
  if ((st = orx_validate_users(m, u, s->max_lifelong))) return st;
  memset(hm, 0, (size_t)nT);

  orx_feature feat[ONEREC_MAX_FEATURES + 1];
  if (c->use_static) {
    int nf = orx_static_features(m, feat);
    if ((st = orx_stage_static(m, u, &s->h_static, hm + dm->tok_static, T))) return st;
    if ((st = orx_path_upload(be, &s->p_static, &s->h_static, nf, B * c->static_cat_count,
                              B * c->static_num_count)))
      return st;
    if ((st = orx_path_forward(be, m, &m->path_static, &s->p_static, feat, nf,
                               c->static_num_count, B, x0 + dm->tok_static * d, 1, B, T * d, 0)))
      return st;
  }
  int nf = orx_seq_features(m, feat);
  const int64_t ids_per_tok = dm->item_ids + c->seq_cat_count, nnum = c->seq_num_count;
  struct {
    int use;
    const char *name;
    const onerec_seq_input *in;
    int64_t len, tok;
    const orx_path_w *w;
    const orx_path_act *a;
    const orx_path_host *h;
  } seq[2] = {
      {c->use_short, "short_term", &u->short_term, c->short_len, dm->tok_short, &m->path_short,
       &s->p_short, &s->h_short},
      {c->use_positive, "positive", &u->positive, c->positive_len, dm->tok_pos, &m->path_pos,
       &s->p_pos, &s->h_pos},
  };
  for (int p = 0; p < 2; p++) {
    if (!seq[p].use) continue;
    const int64_t L = seq[p].len, n = B * L;
    if ((st = orx_stage_seq(m, seq[p].name, seq[p].in, 0, B, L, seq[p].h, hm + seq[p].tok, T)))
      return st;
    if ((st = orx_path_upload(be, seq[p].a, seq[p].h, nf, n * ids_per_tok, n * nnum))) return st;
    if ((st = orx_path_forward(be, m, seq[p].w, seq[p].a, feat, nf, nnum, n,
                               x0 + seq[p].tok * d, B, L, d, T * d)))
      return st;
  }
  if (c->use_lifelong && (st = orx_lifelong_forward(s, u, x0, hm))) return st;
  if ((st = ORX_OP(be, add_bias, x0, m->enc_pos, B, T * d))) return st;
  if (s->enc_in_drop.p > 0.0f &&
      (st = ORX_OP(be, dropout, x0, nT * d, s->enc_in_drop.p, s->enc_in_drop.seed)))
    return st;
  if ((st = ORX_OP(be, copy, s->enc_mask, hm, (size_t)nT, ORX_COPY_H2D))) return st;

  const float *x = x0;
  for (int l = 0; l < c->enc_layers; l++) {
    int a = s->train ? l : 0;
    float *xa = s->train ? s->enc_x[2 * l + 1] : x0, *xb = s->train ? s->enc_x[2 * l + 2] : x0;
    st = orx_self_attn_forward(be, &m->enc[l].attn, &s->enc_attn[a], x, xa, B, T, d, dm->heads,
                               s->enc_mask, 0, eps);
    if (!st)
      st = orx_mlp_forward(be, &m->enc[l].mlp, &s->enc_mlp[a], xa, xb, nT, d, eps,
                           s->moe_load + (int64_t)l * c->experts);
    if (st) return st;
    x = xb;
  }
  if ((st = ORX_OP(be, rmsnorm_fwd, s->enc_z, s->enc_zrstd, x, m->enc_norm, nT, d, eps)))
    return st;
  if ((st = orx_decoder_cross_kv(s, B))) return st;
  s->batch = B;
  return ONEREC_OK;
}

onerec_status orx_encoder_backward(onerec_session *s, const orx_bwd *b,
                                   const onerec_user_batch *u) {
  const onerec_model *m = s->m;
  const onerec_model_config *c = &m->cfg;
  const orx_dims *dm = &m->dims;
  orx_backend *be = s->be;
  const int64_t B = u->batch, T = dm->enc_len, d = dm->d, nT = B * T;
  float *dx = b->dx_enc;
  const int L = c->enc_layers;
  onerec_status st = ORX_OP(be, memset0, dx, (size_t)(nT * d) * sizeof(float));
  if (!st)
    st = ORX_OP(be, rmsnorm_bwd, dx, orx_g(b, m->enc_norm), b->dz, s->enc_x[2 * L], m->enc_norm,
                s->enc_zrstd, nT, d);
  for (int l = L - 1; !st && l >= 0; l--) {
    st = orx_mlp_backward(be, &m->enc[l].mlp, &s->enc_mlp[l], b, s->enc_x[2 * l + 1], dx, nT, d);
    if (!st)
      st = orx_self_attn_backward(be, &m->enc[l].attn, &s->enc_attn[l], b, s->enc_x[2 * l], dx,
                                  B, T, d, dm->heads, s->enc_mask, 0);
  }
  /* through the input dropout (same mask) to the tokens and positions */
  if (!st && s->enc_in_drop.p > 0.0f)
    st = ORX_OP(be, dropout, dx, nT * d, s->enc_in_drop.p, s->enc_in_drop.seed);
  if (!st) st = ORX_OP(be, bias_bwd, orx_g(b, m->enc_pos), dx, B, T * d);
  if (st) return st;

  orx_feature feat[ONEREC_MAX_FEATURES + 1];
  if (c->use_static) {
    int nf = orx_static_features(m, feat);
    if ((st = orx_path_backward(be, m, &m->path_static, &s->p_static, b, feat, nf,
                                c->static_num_count, B, dx + dm->tok_static * d, 1, B, T * d, 0)))
      return st;
  }
  int nf = orx_seq_features(m, feat);
  if (c->use_short &&
      (st = orx_path_backward(be, m, &m->path_short, &s->p_short, b, feat, nf, c->seq_num_count,
                              B * c->short_len, dx + dm->tok_short * d, B, c->short_len, d,
                              T * d)))
    return st;
  if (c->use_positive &&
      (st = orx_path_backward(be, m, &m->path_pos, &s->p_pos, b, feat, nf, c->seq_num_count,
                              B * c->positive_len, dx + dm->tok_pos * d, B, c->positive_len, d,
                              T * d)))
    return st;
  if (c->use_lifelong) {
    /* the lifelong tokens' gradient, gathered from their slice of every user's tokens */
    const int64_t Nq = c->lifelong_queries;
    for (int64_t i = 0; i < B; i++) {
      st = ORX_OP(be, copy, b->dq_life + i * Nq * d, dx + (i * T + dm->tok_life) * d,
                  (size_t)(Nq * d) * sizeof(float), ORX_COPY_D2D);
      if (st) return st;
    }
    st = orx_lifelong_backward(s, b, u);
  }
  return st;
}
