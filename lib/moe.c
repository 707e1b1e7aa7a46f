/* Mixture-of-experts FFN block (SPEC §3) with pre-RMSNorm and residual:
 *   xn = RMSNorm(x_in); p = softmax(xn W_router); top-k experts by p + bias (the loss-free
 *   balancing bias steers selection only); x_out = x_in + sum_j p_j Expert_j(xn), each expert a
 *   SwiGLU of hidden width expert_dim.
 *
 * Tokens are permuted so each expert sees one contiguous block: the routing goes to the host
 * (rows x k ints, small), a stable counting sort by expert gives the slot -> token map, the
 * tokens are gathered (embedding_fwd with the map as ids), each expert runs dense matmuls on its
 * block, outputs are scaled by their gates and scattered back (embedding_bwd, which adds into
 * x_out in a fixed order). No capacity limit, so no token is ever dropped. */
#include <string.h>

#include "model_impl.h"

onerec_status orx_moe_forward(orx_backend *be, const orx_moe_w *w, const orx_moe_act *a,
                              const float *x_in, float *x_out, int64_t n, int64_t d, float eps,
                              int64_t *load) {
  const int64_t E = w->experts, k = w->top_k, h = w->hidden, slots = n * k;
  if (n == 0) return ONEREC_OK;
  onerec_status s = ORX_OP(be, rmsnorm_fwd, a->xn, a->rstd, x_in, w->norm, n, d, eps);
  if (!s) s = orx_mm(be, 0, 0, n, E, d, a->xn, d, w->router, E, a->probs, E, 0.0f);
  if (!s) s = ORX_OP(be, softmax_fwd, a->probs, a->probs, n, E);
  if (!s) s = ORX_OP(be, moe_topk, a->idx, a->gates, a->probs, w->bias, n, E, k);
  if (!s) s = ORX_OP(be, copy, a->h_idx, a->idx, (size_t)slots * sizeof(int32_t), ORX_COPY_D2H);
  if (!s) s = ORX_OP(be, copy, a->h_gates, a->gates, (size_t)slots * sizeof(float), ORX_COPY_D2H);
  if (s) return s;

  /* stable counting sort of the (token, choice) slots by expert */
  int64_t *off = a->h_eoff;
  memset(off, 0, (size_t)(E + 1) * sizeof *off);
  for (int64_t i = 0; i < slots; i++) {
    int32_t e = a->h_idx[i];
    if (e < 0 || e >= E) return orx_fail(ONEREC_ERR_INTERNAL, "moe: router picked expert %d", e);
    off[e + 1]++;
  }
  for (int64_t e = 0; e < E; e++) off[e + 1] += off[e];
  for (int64_t e = 0; e < E; e++) load[e] += off[e + 1] - off[e];
  /* fill positions with a running cursor per expert; off[] is restored afterwards */
  for (int64_t i = 0; i < slots; i++) {
    int64_t pos = off[a->h_idx[i]]++;
    a->h_perm[pos] = (int32_t)(i / k);
    a->h_gperm[pos] = a->h_gates[i];
  }
  for (int64_t e = E; e > 0; e--) off[e] = off[e - 1];
  off[0] = 0;

  s = ORX_OP(be, copy, a->perm, a->h_perm, (size_t)slots * sizeof(int32_t), ORX_COPY_H2D);
  if (!s) s = ORX_OP(be, copy, a->gperm, a->h_gperm, (size_t)slots * sizeof(float), ORX_COPY_H2D);
  if (!s) s = ORX_OP(be, embedding_fwd, a->xe, a->xn, a->perm, slots, d, n);
  for (int64_t e = 0; !s && e < E; e++) {
    int64_t r0 = off[e], c = off[e + 1] - r0;
    if (c == 0) continue;
    s = orx_mm(be, 0, 0, c, h, d, a->xe + r0 * d, d, w->w_gate + e * d * h, h, a->ge + r0 * h, h, 0.0f);
    if (!s) s = orx_mm(be, 0, 0, c, h, d, a->xe + r0 * d, d, w->w_up + e * d * h, h, a->ue + r0 * h, h, 0.0f);
  }
  if (!s) s = ORX_OP(be, swiglu_fwd, a->he, h, a->ge, h, a->ue, h, slots, h);
  for (int64_t e = 0; !s && e < E; e++) {
    int64_t r0 = off[e], c = off[e + 1] - r0;
    if (c == 0) continue;
    s = orx_mm(be, 0, 0, c, d, h, a->he + r0 * h, h, w->w_down + e * h * d, d, a->ye + r0 * d, d, 0.0f);
  }
  if (!s) s = ORX_OP(be, scale_rows, a->ys, a->ye, a->gperm, slots, d);
  if (!s && x_out != x_in)
    s = ORX_OP(be, copy, x_out, x_in, (size_t)(n * d) * sizeof(float), ORX_COPY_D2D);
  if (!s) s = ORX_OP(be, embedding_bwd, x_out, a->ys, a->perm, slots, d, n);
  return s;
}

/* Backward. The top-k selection is piecewise constant, so the gradient reaches the router
 * only through the gate values: dgate of each (token, expert) slot goes to that probability,
 * then through the softmax to the router logits. */
onerec_status orx_moe_backward(orx_backend *be, const orx_moe_w *w, const orx_moe_act *a,
                               const orx_bwd *b, const float *x_in, float *dx, int64_t n,
                               int64_t d) {
  const int64_t E = w->experts, k = w->top_k, h = w->hidden, slots = n * k;
  const int64_t *off = a->h_eoff;
  if (n == 0) return ONEREC_OK;
  float *gw_gate = orx_g(b, w->w_gate), *gw_up = orx_g(b, w->w_up), *gw_down = orx_g(b, w->w_down);
  /* x_out += scatter(ys): dys = gather(dx) */
  onerec_status s = ORX_OP(be, embedding_fwd, b->dys, dx, a->perm, slots, d, n);
  if (!s) s = ORX_OP(be, memset0, b->dye, (size_t)(slots * d) * sizeof(float));
  if (!s) s = ORX_OP(be, memset0, b->dgperm, (size_t)slots * sizeof(float));
  if (!s) s = ORX_OP(be, scale_rows_bwd, b->dye, b->dgperm, b->dys, a->ye, a->gperm, slots, d);
  for (int64_t e = 0; !s && e < E; e++) {
    int64_t r0 = off[e], c = off[e + 1] - r0;
    if (c == 0) continue;
    s = orx_mm(be, 0, 1, c, h, d, b->dye + r0 * d, d, w->w_down + e * h * d, d, b->dhe + r0 * h,
               h, 0.0f);
    if (!s)
      s = orx_mm(be, 1, 0, h, d, c, a->he + r0 * h, h, b->dye + r0 * d, d, gw_down + e * h * d, d,
                 1.0f);
  }
  if (!s) s = ORX_OP(be, memset0, b->dge, (size_t)(slots * h) * sizeof(float));
  if (!s) s = ORX_OP(be, memset0, b->due, (size_t)(slots * h) * sizeof(float));
  if (!s) s = ORX_OP(be, swiglu_bwd, b->dge, h, b->due, h, b->dhe, h, a->ge, h, a->ue, h, slots, h);
  for (int64_t e = 0; !s && e < E; e++) {
    int64_t r0 = off[e], c = off[e + 1] - r0;
    if (c == 0) continue;
    s = orx_mm(be, 0, 1, c, d, h, b->dge + r0 * h, h, w->w_gate + e * d * h, h, b->dxe + r0 * d,
               d, 0.0f);
    if (!s)
      s = orx_mm(be, 0, 1, c, d, h, b->due + r0 * h, h, w->w_up + e * d * h, h, b->dxe + r0 * d,
                 d, 1.0f);
    if (!s)
      s = orx_mm(be, 1, 0, d, h, c, a->xe + r0 * d, d, b->dge + r0 * h, h, gw_gate + e * d * h, h,
                 1.0f);
    if (!s)
      s = orx_mm(be, 1, 0, d, h, c, a->xe + r0 * d, d, b->due + r0 * h, h, gw_up + e * d * h, h,
                 1.0f);
  }
  /* dxn = scatter(dxe) + dlogits router^T */
  if (!s) s = ORX_OP(be, memset0, b->dxn, (size_t)(n * d) * sizeof(float));
  if (!s) s = ORX_OP(be, embedding_bwd, b->dxn, b->dxe, a->perm, slots, d, n);
  if (!s)
    s = ORX_OP(be, copy, b->h_dgperm, b->dgperm, (size_t)slots * sizeof(float), ORX_COPY_D2H);
  if (s) return s;
  memset(b->h_dprobs, 0, (size_t)(n * E) * sizeof(float));
  for (int64_t e = 0; e < E; e++)
    for (int64_t p = off[e]; p < off[e + 1]; p++)
      b->h_dprobs[(int64_t)a->h_perm[p] * E + e] += b->h_dgperm[p];
  s = ORX_OP(be, copy, b->dprobs, b->h_dprobs, (size_t)(n * E) * sizeof(float), ORX_COPY_H2D);
  if (!s) s = ORX_OP(be, memset0, b->dlog, (size_t)(n * E) * sizeof(float));
  if (!s) s = ORX_OP(be, softmax_bwd, b->dlog, b->dprobs, a->probs, n, E);
  if (!s) s = orx_mm(be, 0, 1, n, d, E, b->dlog, E, w->router, E, b->dxn, d, 1.0f);
  if (!s) s = orx_mm(be, 1, 0, d, E, n, a->xn, d, b->dlog, E, orx_g(b, w->router), E, 1.0f);
  if (!s) s = ORX_OP(be, rmsnorm_bwd, dx, orx_g(b, w->norm), b->dxn, x_in, w->norm, a->rstd, n, d);
  return s;
}
