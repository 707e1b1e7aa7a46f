/* The decoder (SPEC §3): for each target row, input [BOS, s^1, ..., s^(len-1)] from one token
 * table (row 0 BOS, level j's code c at row 1 + (j-1) K + c) plus positions; L_dec pre-RMSNorm
 * layers of causal self-attention, cross-attention to z_enc of the row's user and FFN (dense or
 * MoE); final RMSNorm; position j goes through head j (its own d x K matrix) to score s^(j+1).
 * Cross-attention keys and values come from z_enc once per encode (orx_decoder_cross_kv) and
 * are shared by every row of that user, so scoring many candidates or beams costs no extra
 * encoder work. */
#include "model_impl.h"

onerec_status orx_decoder_cross_kv(onerec_session *s, int64_t users) {
  const onerec_model *m = s->m;
  const int64_t rows = users * m->dims.enc_len;
  for (int l = 0; l < m->cfg.dec_layers; l++) {
    onerec_status st = orx_cross_kv_forward(s->be, &m->dec[l].cross, s->dec_kv[l], s->enc_z, rows,
                                            m->dims.d);
    if (st) return st;
  }
  return ONEREC_OK;
}

onerec_status orx_decoder_stage(const onerec_model *m, const int32_t *codes, int64_t rows,
                                int64_t len, int32_t *ids) {
  const int64_t L = m->dims.levels, K = m->dims.codebook;
  for (int64_t r = 0; r < rows; r++) {
    ids[r * len] = 0;
    for (int64_t j = 1; j < len; j++) {
      int32_t code = codes[r * L + j - 1];
      if (code < 0 || code >= K)
        return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                        "decoder: target %lld: code %d of level %lld outside [0, codebook = %lld)",
                        (long long)r, code, (long long)j - 1, (long long)K);
      ids[r * len + j] = (int32_t)(1 + (j - 1) * K + code);
    }
  }
  return ONEREC_OK;
}

onerec_status orx_decoder_forward(onerec_session *s, int64_t rows, int64_t len,
                                  const orx_groups *g, int last_only) {
  const onerec_model *m = s->m;
  const onerec_model_config *c = &m->cfg;
  const orx_dims *dm = &m->dims;
  orx_backend *be = s->be;
  const int64_t d = dm->d, n = rows * len, K = dm->codebook, T = dm->enc_len;
  const float eps = c->norm_eps;
  float *x0 = s->dec_x[0];
  onerec_status st = ORX_OP(be, embedding_fwd, x0, m->dec_emb, s->dec_ids, n, d, dm->dec_vocab);
  if (!st) st = ORX_OP(be, add_bias, x0, m->dec_pos, rows, len * d);
  if (!st && s->dec_in_drop.p > 0.0f)
    st = ORX_OP(be, dropout, x0, n * d, s->dec_in_drop.p, s->dec_in_drop.seed);
  if (st) return st;
  const float *x = x0;
  for (int l = 0; l < c->dec_layers; l++) {
    int a = s->train ? l : 0;
    float *xa = s->train ? s->dec_x[3 * l + 1] : x0, *xb = s->train ? s->dec_x[3 * l + 2] : x0,
          *xc = s->train ? s->dec_x[3 * l + 3] : x0;
    st = orx_self_attn_forward(be, &m->dec[l].self, &s->dec_self[a], x, xa, rows, len, d,
                               dm->heads, NULL, 1, eps);
    if (!st)
      st = orx_cross_attn_forward(be, &m->dec[l].cross, &s->dec_cross[a], xa, xb, rows, len, d,
                                  dm->heads, s->dec_kv[l], T, s->enc_mask, g, eps);
    if (!st)
      st = orx_mlp_forward(be, &m->dec[l].mlp, &s->dec_mlp[a], xb, xc, n, d, eps,
                           s->moe_load + (dm->moe_enc + l) * c->experts);
    if (st) return st;
    x = xc;
  }
  st = ORX_OP(be, rmsnorm_fwd, s->dec_xn, s->dec_rstd, x, m->dec_norm, n, d, eps);
  if (st) return st;
  /* all heads in one batched call: batch j = position j of every row, with head j */
  orx_matmul_args h = {0};
  if (last_only) { /* generation: only the newest position's head, logits [rows, K] */
    h.batch = 1;
    h.m = rows;
    h.n = K;
    h.k = d;
    h.a = s->dec_xn + (len - 1) * d;
    h.lda = len * d;
    h.b = m->heads + (len - 1) * d * K;
    h.ldb = K;
    h.c = s->logits;
    h.ldc = K;
    h.alpha = 1.0f;
    h.dtype = ONEREC_F32;
    return ORX_OP(be, matmul, &h);
  }
  h.batch = len;
  h.m = rows;
  h.n = K;
  h.k = d;
  h.a = s->dec_xn;
  h.lda = len * d;
  h.stride_a = d;
  h.b = m->heads;
  h.ldb = K;
  h.stride_b = d * K;
  h.c = s->logits;
  h.ldc = len * K;
  h.stride_c = K;
  h.alpha = 1.0f;
  h.beta = 0.0f;
  h.dtype = ONEREC_F32;
  return ORX_OP(be, matmul, &h);
}

onerec_status orx_decoder_backward(onerec_session *s, const orx_bwd *b, int64_t rows,
                                   int64_t len, const orx_groups *g) {
  const onerec_model *m = s->m;
  const onerec_model_config *c = &m->cfg;
  const orx_dims *dm = &m->dims;
  orx_backend *be = s->be;
  const int64_t d = dm->d, n = rows * len, K = dm->codebook, T = dm->enc_len;
  float *dx = b->dx_dec;
  /* heads: batch j = position j of every row, as in the forward */
  orx_matmul_args h = {0};
  h.trans_b = 1;
  h.batch = len;
  h.m = rows;
  h.n = d;
  h.k = K;
  h.a = b->dlogits;
  h.lda = len * K;
  h.stride_a = K;
  h.b = m->heads;
  h.ldb = K;
  h.stride_b = d * K;
  h.c = b->dxn;
  h.ldc = len * d;
  h.stride_c = d;
  h.alpha = 1.0f;
  h.dtype = ONEREC_F32;
  onerec_status st = ORX_OP(be, matmul, &h);
  if (st) return st;
  orx_matmul_args hw = {0};
  hw.trans_a = 1;
  hw.batch = len;
  hw.m = d;
  hw.n = K;
  hw.k = rows;
  hw.a = s->dec_xn;
  hw.lda = len * d;
  hw.stride_a = d;
  hw.b = b->dlogits;
  hw.ldb = len * K;
  hw.stride_b = K;
  hw.c = orx_g(b, m->heads);
  hw.ldc = K;
  hw.stride_c = d * K;
  hw.alpha = 1.0f;
  hw.beta = 1.0f;
  hw.dtype = ONEREC_F32;
  if ((st = ORX_OP(be, matmul, &hw))) return st;
  const int L = c->dec_layers;
  if ((st = ORX_OP(be, memset0, dx, (size_t)(n * d) * sizeof(float)))) return st;
  st = ORX_OP(be, rmsnorm_bwd, dx, orx_g(b, m->dec_norm), b->dxn, s->dec_x[3 * L], m->dec_norm,
              s->dec_rstd, n, d);
  for (int l = L - 1; !st && l >= 0; l--) {
    const float *x = s->dec_x[3 * l], *xa = s->dec_x[3 * l + 1], *xb = s->dec_x[3 * l + 2];
    st = orx_mlp_backward(be, &m->dec[l].mlp, &s->dec_mlp[l], b, xb, dx, n, d);
    if (!st) st = ORX_OP(be, memset0, b->dkv, (size_t)(g->n * T * 2 * d) * sizeof(float));
    if (!st)
      st = orx_cross_attn_backward(be, &m->dec[l].cross, &s->dec_cross[l], b, xa, dx, rows, len,
                                   d, dm->heads, s->dec_kv[l], T, s->enc_mask, g, b->dkv);
    if (!st)
      st = orx_cross_kv_backward(be, &m->dec[l].cross, b, s->enc_z, b->dkv, b->dz, g->n * T, d);
    if (!st)
      st = orx_self_attn_backward(be, &m->dec[l].self, &s->dec_self[l], b, x, dx, rows, len, d,
                                  dm->heads, NULL, 1);
  }
  if (!st && s->dec_in_drop.p > 0.0f) /* through the input dropout, same mask */
    st = ORX_OP(be, dropout, dx, n * d, s->dec_in_drop.p, s->dec_in_drop.seed);
  if (!st) st = ORX_OP(be, bias_bwd, orx_g(b, m->dec_pos), dx, rows, len * d);
  if (!st)
    st = ORX_OP(be, embedding_bwd, orx_g(b, m->dec_emb), dx, s->dec_ids, n, d, dm->dec_vocab);
  return st;
}
