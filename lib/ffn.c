/* The dense SwiGLU feed-forward block with pre-RMSNorm and residual:
 *   x_out = x_in + (silu(xn W_gate) * (xn W_up)) W_down,  xn = RMSNorm(x_in).
 * Saved for the backward pass: xn, rstd, both projections and their product h. */
#include "model_impl.h"

onerec_status orx_ffn_forward(orx_backend *be, const orx_ffn_w *w, const orx_ffn_act *a,
                              const float *x_in, float *x_out, int64_t n, int64_t d, float eps) {
  const int64_t h = w->hidden;
  if (n == 0) return ONEREC_OK;
  onerec_status s = ORX_OP(be, rmsnorm_fwd, a->xn, a->rstd, x_in, w->norm, n, d, eps);
  if (!s) s = orx_mm(be, 0, 0, n, h, d, a->xn, d, w->w_gate, h, a->gate, h, 0.0f);
  if (!s) s = orx_mm(be, 0, 0, n, h, d, a->xn, d, w->w_up, h, a->up, h, 0.0f);
  if (!s) s = ORX_OP(be, swiglu_fwd, a->h, h, a->gate, h, a->up, h, n, h);
  /* dropout on h in place: W_down's gradient then reads the dropped h, as it should */
  if (!s && a->drop.p > 0.0f) s = ORX_OP(be, dropout, a->h, n * h, a->drop.p, a->drop.seed);
  if (!s && x_out != x_in)
    s = ORX_OP(be, copy, x_out, x_in, (size_t)(n * d) * sizeof(float), ORX_COPY_D2D);
  if (!s) s = orx_mm(be, 0, 0, n, d, h, a->h, h, w->w_down, d, x_out, d, 1.0f);
  return s;
}

onerec_status orx_mlp_forward(orx_backend *be, const orx_mlp_w *w, const orx_mlp_act *a,
                              const float *x_in, float *x_out, int64_t n, int64_t d, float eps,
                              int64_t *load) {
  if (w->is_moe) return orx_moe_forward(be, &w->moe, &a->moe, x_in, x_out, n, d, eps, load);
  return orx_ffn_forward(be, &w->ffn, &a->ffn, x_in, x_out, n, d, eps);
}

onerec_status orx_ffn_backward(orx_backend *be, const orx_ffn_w *w, const orx_ffn_act *a,
                               const orx_bwd *b, const float *x_in, float *dx, int64_t n,
                               int64_t d) {
  const int64_t h = w->hidden;
  if (n == 0) return ONEREC_OK;
  onerec_status s = orx_mm(be, 0, 1, n, h, d, dx, d, w->w_down, d, b->dh, h, 0.0f);
  if (!s) s = orx_mm(be, 1, 0, h, d, n, a->h, h, dx, d, orx_g(b, w->w_down), d, 1.0f);
  if (!s && a->drop.p > 0.0f) s = ORX_OP(be, dropout, b->dh, n * h, a->drop.p, a->drop.seed);
  if (!s) s = ORX_OP(be, memset0, b->dgate, (size_t)(n * h) * sizeof(float));
  if (!s) s = ORX_OP(be, memset0, b->dup, (size_t)(n * h) * sizeof(float));
  if (!s)
    s = ORX_OP(be, swiglu_bwd, b->dgate, h, b->dup, h, b->dh, h, a->gate, h, a->up, h, n, h);
  if (!s) s = orx_mm(be, 0, 1, n, d, h, b->dgate, h, w->w_gate, h, b->dxn, d, 0.0f);
  if (!s) s = orx_mm(be, 0, 1, n, d, h, b->dup, h, w->w_up, h, b->dxn, d, 1.0f);
  if (!s) s = orx_mm(be, 1, 0, d, h, n, a->xn, d, b->dgate, h, orx_g(b, w->w_gate), h, 1.0f);
  if (!s) s = orx_mm(be, 1, 0, d, h, n, a->xn, d, b->dup, h, orx_g(b, w->w_up), h, 1.0f);
  if (!s) s = ORX_OP(be, rmsnorm_bwd, dx, orx_g(b, w->norm), b->dxn, x_in, w->norm, a->rstd, n, d);
  return s;
}

onerec_status orx_mlp_backward(orx_backend *be, const orx_mlp_w *w, const orx_mlp_act *a,
                               const orx_bwd *b, const float *x_in, float *dx, int64_t n,
                               int64_t d) {
  if (w->is_moe) return orx_moe_backward(be, &w->moe, &a->moe, b, x_in, dx, n, d);
  return orx_ffn_backward(be, &w->ffn, &a->ffn, b, x_in, dx, n, d);
}
