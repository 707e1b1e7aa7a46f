/* Pre-RMSNorm attention blocks with residual: self-attention (encoder, decoder, causal or not)
 * and cross-attention (decoder to encoder, QFormer queries to lifelong memory).
 *
 * Layouts: the fused projection qkv [tokens, 3, heads, head_dim] is read by the attention op in
 * place through strides; kv [tokens, 2, heads, head_dim] likewise. Saved for the backward pass:
 * the normed input xn and its rstd, the projections, the attention output o (before wo) and lse.
 * The residual is added by the output projection itself (beta = 1 into x_out); in training
 * steps with dropout the branch o wo is dropped first (residual_out). */
#include <math.h>

#include "model_impl.h"

/* x_out = x_in, unless they are the same buffer (inference sessions alias them). */
static onerec_status residual_copy(orx_backend *be, float *x_out, const float *x_in, int64_t n) {
  if (x_out == x_in) return ONEREC_OK;
  return ORX_OP(be, copy, x_out, x_in, (size_t)n * sizeof(float), ORX_COPY_D2D);
}

/* x_out = x_in + dropout(o wo). Without dropout the product accumulates straight into x_out
 * (beta = 1); with it, x_out first holds the branch alone (training sessions never alias
 * x_out and x_in), is dropped, then gets x_in added. */
static onerec_status residual_out(orx_backend *be, const float *wo, const float *o,
                                  const orx_drop *dr, const float *x_in, float *x_out, int64_t n,
                                  int64_t d) {
  onerec_status s;
  if (dr->p > 0.0f && x_out != x_in) {
    s = orx_mm(be, 0, 0, n, d, d, o, d, wo, d, x_out, d, 0.0f);
    if (!s) s = ORX_OP(be, dropout, x_out, n * d, dr->p, dr->seed);
    if (!s) s = ORX_OP(be, axpy, x_out, x_in, 1.0f, n * d);
    return s;
  }
  if ((s = residual_copy(be, x_out, x_in, n * d))) return s;
  return orx_mm(be, 0, 0, n, d, d, o, d, wo, d, x_out, d, 1.0f);
}

/* The gradient reaching o wo: dx itself, or dropout(dx) (same mask as the forward) staged in
 * b->dxn, which the block only overwrites later. */
static onerec_status branch_grad(orx_backend *be, const orx_drop *dr, const orx_bwd *b,
                                 const float *dx, int64_t n, int64_t d, const float **out) {
  *out = dx;
  if (!(dr->p > 0.0f)) return ONEREC_OK;
  onerec_status s = ORX_OP(be, copy, b->dxn, dx, (size_t)(n * d) * sizeof(float), ORX_COPY_D2D);
  if (!s) s = ORX_OP(be, dropout, b->dxn, n * d, dr->p, dr->seed);
  *out = b->dxn;
  return s;
}

onerec_status orx_self_attn_forward(orx_backend *be, const orx_attn_w *w, const orx_attn_act *a,
                                    const float *x_in, float *x_out, int64_t B, int64_t T,
                                    int64_t d, int64_t heads, const uint8_t *key_mask,
                                    int causal, float eps) {
  const int64_t n = B * T, hd = d / heads;
  onerec_status s = ORX_OP(be, rmsnorm_fwd, a->xn, a->rstd, x_in, w->norm, n, d, eps);
  if (!s) s = orx_mm(be, 0, 0, n, 3 * d, d, a->xn, d, w->wqkv, 3 * d, a->qkv, 3 * d, 0.0f);
  if (s) return s;
  orx_attn_args at = {0};
  at.batch = B;
  at.heads = heads;
  at.tq = at.tk = T;
  at.head_dim = hd;
  at.q = a->qkv;
  at.k = a->qkv + d;
  at.v = a->qkv + 2 * d;
  at.q_sb = at.k_sb = at.v_sb = T * 3 * d;
  at.q_sh = at.k_sh = at.v_sh = hd;
  at.q_st = at.k_st = at.v_st = 3 * d;
  at.out = a->o;
  at.o_sb = T * d;
  at.o_sh = hd;
  at.o_st = d;
  at.lse = a->lse;
  at.key_mask = key_mask;
  at.causal = causal;
  at.scale = 1.0f / sqrtf((float)hd);
  if ((s = ORX_OP(be, attention_fwd, &at))) return s;
  return residual_out(be, w->wo, a->o, &a->drop, x_in, x_out, n, d);
}

onerec_status orx_cross_kv_forward(orx_backend *be, const orx_xattn_w *w, float *kv,
                                   const float *mem, int64_t rows, int64_t d) {
  if (rows == 0) return ONEREC_OK;
  return orx_mm(be, 0, 0, rows, 2 * d, d, mem, d, w->wkv, 2 * d, kv, 2 * d, 0.0f);
}

onerec_status orx_cross_attn_forward(orx_backend *be, const orx_xattn_w *w,
                                     const orx_xattn_act *a, const float *x_in, float *x_out,
                                     int64_t rows, int64_t tq, int64_t d, int64_t heads,
                                     const float *kv, int64_t tk, const uint8_t *key_mask,
                                     const orx_groups *g, float eps) {
  const int64_t n = rows * tq, hd = d / heads;
  onerec_status s = ORX_OP(be, rmsnorm_fwd, a->xn, a->rstd, x_in, w->norm, n, d, eps);
  if (!s) s = orx_mm(be, 0, 0, n, d, d, a->xn, d, w->wq, d, a->q, d, 0.0f);
  if (s) return s;
  orx_attn_args at = {0};
  at.heads = heads;
  at.tk = tk;
  at.head_dim = hd;
  at.q_sh = at.o_sh = at.k_sh = at.v_sh = hd;
  at.q_st = at.o_st = d;
  at.k_st = at.v_st = 2 * d;
  at.k_sb = at.v_sb = tk * 2 * d;
  at.causal = 0;
  at.scale = 1.0f / sqrtf((float)hd);
  /* A group's rows all read the same memory and no query depends on another, so a group's
   * rows x tq queries form one query sequence: one op call per group, or a single batched call
   * when the groups are equal. lse [rows, heads, tq] per group keeps the same layout either way
   * ([1, heads, cnt tq] at the group's first row). */
  if (g->equal > 0) {
    at.batch = g->n;
    at.tq = g->equal * tq;
    at.q = a->q;
    at.q_sb = at.o_sb = g->equal * tq * d;
    at.k = kv;
    at.v = kv + d;
    at.out = a->o;
    at.lse = a->lse;
    at.key_mask = key_mask;
    if ((s = ORX_OP(be, attention_fwd, &at))) return s;
  } else {
    at.batch = 1;
    for (int64_t i = 0; i < g->n; i++) {
      int64_t r0 = g->off[i], cnt = g->off[i + 1] - r0;
      if (cnt <= 0) continue;
      at.tq = cnt * tq;
      at.q = a->q + r0 * tq * d;
      at.q_sb = at.o_sb = cnt * tq * d;
      at.k = kv + i * tk * 2 * d;
      at.v = at.k + d;
      at.out = a->o + r0 * tq * d;
      at.lse = a->lse ? a->lse + r0 * tq * heads : NULL;
      at.key_mask = key_mask ? key_mask + i * tk : NULL;
      if ((s = ORX_OP(be, attention_fwd, &at))) return s;
    }
  }
  return residual_out(be, w->wo, a->o, &a->drop, x_in, x_out, n, d);
}

/* ---- backward ---- */

onerec_status orx_self_attn_backward(orx_backend *be, const orx_attn_w *w, const orx_attn_act *a,
                                     const orx_bwd *b, const float *x_in, float *dx, int64_t B,
                                     int64_t T, int64_t d, int64_t heads,
                                     const uint8_t *key_mask, int causal) {
  const int64_t n = B * T, hd = d / heads;
  if (n == 0) return ONEREC_OK;
  /* x_out = x_in + dropout(o wo) */
  const float *dy = dx;
  onerec_status s = branch_grad(be, &a->drop, b, dx, n, d, &dy);
  if (!s) s = orx_mm(be, 0, 1, n, d, d, dy, d, w->wo, d, b->dout, d, 0.0f);
  if (!s) s = orx_mm(be, 1, 0, d, d, n, a->o, d, dy, d, orx_g(b, w->wo), d, 1.0f);
  if (!s) s = ORX_OP(be, memset0, b->dqkv, (size_t)(n * 3 * d) * sizeof(float));
  if (s) return s;
  orx_attn_bwd_args ab = {0};
  orx_attn_args *at = &ab.fwd;
  at->batch = B;
  at->heads = heads;
  at->tq = at->tk = T;
  at->head_dim = hd;
  at->q = a->qkv;
  at->k = a->qkv + d;
  at->v = a->qkv + 2 * d;
  at->q_sb = at->k_sb = at->v_sb = T * 3 * d;
  at->q_sh = at->k_sh = at->v_sh = hd;
  at->q_st = at->k_st = at->v_st = 3 * d;
  at->out = a->o;
  at->o_sb = T * d;
  at->o_sh = hd;
  at->o_st = d;
  at->lse = a->lse;
  at->key_mask = key_mask;
  at->causal = causal;
  at->scale = 1.0f / sqrtf((float)hd);
  ab.dout = b->dout;
  ab.do_sb = T * d;
  ab.do_sh = hd;
  ab.do_st = d;
  ab.dq = b->dqkv;
  ab.dk = b->dqkv + d;
  ab.dv = b->dqkv + 2 * d;
  if ((s = ORX_OP(be, attention_bwd, &ab))) return s;
  s = orx_mm(be, 0, 1, n, d, 3 * d, b->dqkv, 3 * d, w->wqkv, 3 * d, b->dxn, d, 0.0f);
  if (!s) s = orx_mm(be, 1, 0, d, 3 * d, n, a->xn, d, b->dqkv, 3 * d, orx_g(b, w->wqkv), 3 * d, 1.0f);
  if (!s) s = ORX_OP(be, rmsnorm_bwd, dx, orx_g(b, w->norm), b->dxn, x_in, w->norm, a->rstd, n, d);
  return s;
}

onerec_status orx_cross_kv_backward(orx_backend *be, const orx_xattn_w *w, const orx_bwd *b,
                                    const float *mem, const float *dkv, float *dmem, int64_t rows,
                                    int64_t d) {
  if (rows == 0) return ONEREC_OK;
  onerec_status s = orx_mm(be, 0, 1, rows, d, 2 * d, dkv, 2 * d, w->wkv, 2 * d, dmem, d, 1.0f);
  if (!s) s = orx_mm(be, 1, 0, d, 2 * d, rows, mem, d, dkv, 2 * d, orx_g(b, w->wkv), 2 * d, 1.0f);
  return s;
}

onerec_status orx_cross_attn_backward(orx_backend *be, const orx_xattn_w *w,
                                      const orx_xattn_act *a, const orx_bwd *b,
                                      const float *x_in, float *dx, int64_t rows, int64_t tq,
                                      int64_t d, int64_t heads, const float *kv, int64_t tk,
                                      const uint8_t *key_mask, const orx_groups *g, float *dkv) {
  const int64_t n = rows * tq, hd = d / heads;
  if (n == 0) return ONEREC_OK;
  float *dq = b->dqkv;
  const float *dy = dx;
  onerec_status s = branch_grad(be, &a->drop, b, dx, n, d, &dy);
  if (!s) s = orx_mm(be, 0, 1, n, d, d, dy, d, w->wo, d, b->dout, d, 0.0f);
  if (!s) s = orx_mm(be, 1, 0, d, d, n, a->o, d, dy, d, orx_g(b, w->wo), d, 1.0f);
  if (!s) s = ORX_OP(be, memset0, dq, (size_t)(n * d) * sizeof(float));
  if (s) return s;
  /* the same per-group calls as the forward */
  orx_attn_bwd_args ab = {0};
  orx_attn_args *at = &ab.fwd;
  at->heads = heads;
  at->tk = tk;
  at->head_dim = hd;
  at->q_sh = at->o_sh = at->k_sh = at->v_sh = hd;
  at->q_st = at->o_st = d;
  at->k_st = at->v_st = 2 * d;
  at->k_sb = at->v_sb = tk * 2 * d;
  at->scale = 1.0f / sqrtf((float)hd);
  ab.do_sh = hd;
  ab.do_st = d;
  int64_t ng = g->equal > 0 ? 1 : g->n;
  for (int64_t i = 0; i < ng; i++) {
    int64_t r0 = 0, cnt = 0, m0 = i;
    if (g->equal > 0) {
      at->batch = g->n;
      at->tq = g->equal * tq;
      m0 = 0;
    } else {
      r0 = g->off[i];
      cnt = g->off[i + 1] - r0;
      if (cnt <= 0) continue;
      at->batch = 1;
      at->tq = cnt * tq;
    }
    at->q = a->q + r0 * tq * d;
    at->q_sb = at->o_sb = ab.do_sb = at->tq * d;
    at->k = kv + m0 * tk * 2 * d;
    at->v = at->k + d;
    at->out = a->o + r0 * tq * d;
    at->lse = a->lse + r0 * tq * heads;
    at->key_mask = key_mask ? key_mask + m0 * tk : NULL;
    ab.dout = b->dout + r0 * tq * d;
    ab.dq = dq + r0 * tq * d;
    ab.dk = dkv + m0 * tk * 2 * d;
    ab.dv = ab.dk + d;
    if ((s = ORX_OP(be, attention_bwd, &ab))) return s;
  }
  s = orx_mm(be, 0, 1, n, d, d, dq, d, w->wq, d, b->dxn, d, 0.0f);
  if (!s) s = orx_mm(be, 1, 0, d, d, n, a->xn, d, dq, d, orx_g(b, w->wq), d, 1.0f);
  if (!s) s = ORX_OP(be, rmsnorm_bwd, dx, orx_g(b, w->norm), b->dxn, x_in, w->norm, a->rstd, n, d);
  return s;
}
