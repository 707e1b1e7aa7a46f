/* AdamW over the parameter table (per-tensor learning rate and weight decay), the warm-up +
 * cosine schedule, clipping by the global gradient norm, and the MoE loss-free bias update. */
#include <math.h>
#include <string.h>

#include "optimizer.h"
#include "trainer_impl.h"

float orx_lr_at(const onerec_trainer_opts *o, int64_t step, float peak) {
  if (o->warmup_steps > 0 && step <= o->warmup_steps)
    return peak * (float)step / (float)o->warmup_steps;
  if (o->total_steps <= o->warmup_steps) return peak;
  double p = (double)(step - o->warmup_steps) / (double)(o->total_steps - o->warmup_steps);
  if (p > 1.0) p = 1.0;
  double lo = (double)peak * o->min_lr_ratio;
  return (float)(lo + ((double)peak - lo) * 0.5 * (1.0 + cos(M_PI * p)));
}

/* Decay shrinks weights that multiply activations; gains, biases, tables and positional
 * embeddings are not such weights (decaying a gain or a position only biases it to zero). */
int orx_param_decays(const orx_param *p) {
  return p->rank >= 2 && !p->sparse && !p->no_grad && strcmp(p->name, "pos") != 0 &&
         strcmp(p->name, "query") != 0;
}

/* bias_e += u sign(mean_load - load_e) for every MoE layer, from the loads counted since the
 * last update; the loads are reset. */
static onerec_status moe_bias_update(onerec_trainer *t) {
  const onerec_model *m = t->m;
  const onerec_model_config *c = &m->cfg;
  orx_backend *be = t->be;
  const int64_t E = c->experts;
  int64_t layer = 0;
  onerec_status st = ONEREC_OK;
  float *hb = t->b.h_dprobs; /* MoE backward scratch, N x experts floats, free here */
  for (int stack = 0; stack < 2; stack++) {
    int moe = stack == 0 ? c->moe_encoder : c->moe_decoder;
    int nl = stack == 0 ? c->enc_layers : c->dec_layers;
    if (!moe) continue;
    for (int l = 0; l < nl; l++, layer++) {
      float *bias = stack == 0 ? m->enc[l].mlp.moe.bias : m->dec[l].mlp.moe.bias;
      const int64_t *load = t->s->moe_load + layer * E;
      if ((st = ORX_OP(be, copy, hb, bias, (size_t)E * sizeof(float), ORX_COPY_D2H))) return st;
      double mean = 0.0;
      for (int64_t e = 0; e < E; e++) mean += (double)load[e];
      mean /= (double)E;
      for (int64_t e = 0; e < E; e++) {
        double diff = mean - (double)load[e];
        hb[e] += t->o.moe_bias_rate * (float)((diff > 0) - (diff < 0));
      }
      if ((st = ORX_OP(be, copy, bias, hb, (size_t)E * sizeof(float), ORX_COPY_H2D))) return st;
    }
  }
  if (layer > 0) memset(t->s->moe_load, 0, (size_t)(layer * E) * sizeof(int64_t));
  return ONEREC_OK;
}

onerec_status orx_clip_by_norm(orx_backend *be, const char *fn, int64_t update, const float *grad,
                               int64_t n, float grad_scale, float clip, double *norm,
                               float *scale) {
  double ss = 0.0;
  onerec_status st = ORX_OP(be, sum_squares, &ss, grad, n);
  if (st) return st;
  *norm = sqrt(ss) * grad_scale;
  if (!isfinite(*norm))
    return orx_fail(ONEREC_ERR_INTERNAL, "%s at update %lld: non-finite gradient (update skipped)",
                    fn, (long long)update);
  *scale = grad_scale;
  if (clip > 0.0f && *norm > clip) *scale = (float)(grad_scale * clip / *norm);
  return ONEREC_OK;
}

onerec_status orx_adamw_span(orx_backend *be, const orx_adamw_args *base, int64_t offset,
                             int64_t count, float lr, float wd) {
  orx_adamw_args a = *base;
  a.param = base->param + offset;
  a.grad = base->grad + offset;
  a.m = base->m + offset;
  a.v = base->v + offset;
  a.n = count;
  a.lr = lr;
  a.weight_decay = wd;
  return ORX_OP(be, adamw, &a);
}

onerec_status orx_optimizer_update(onerec_trainer *t, float grad_scale) {
  onerec_model *m = t->m;
  orx_backend *be = t->be;
  const onerec_trainer_opts *o = &t->o;
  double norm = 0.0;
  float scale = 1.0f;
  onerec_status st = orx_clip_by_norm(be, "onerec_trainer_step", t->step + 1, t->grad,
                                      (int64_t)m->n_params, grad_scale, o->clip_norm, &norm,
                                      &scale);
  if (st) return st;
  t->grad_norm = norm;
  t->step++;
  t->lr_dense = orx_lr_at(o, t->step, o->lr_dense);
  t->lr_sparse = orx_lr_at(o, t->step, o->lr_sparse);
  const orx_adamw_args base = {.param = m->params, .grad = t->grad, .m = t->adam_m,
                               .v = t->adam_v, .beta1 = o->beta1, .beta2 = o->beta2,
                               .eps = o->adam_eps, .grad_scale = scale, .step = t->step};
  for (int i = 0; i < m->n_table; i++) {
    const orx_param *p = &m->table[i];
    if (p->no_grad) continue;
    if ((st = orx_adamw_span(be, &base, (int64_t)p->offset, (int64_t)p->count,
                             p->sparse ? t->lr_sparse : t->lr_dense,
                             orx_param_decays(p) ? o->weight_decay : 0.0f)))
      return st;
  }
  if (o->moe_bias_rate > 0.0f)
    st = moe_bias_update(t);
  else if (m->dims.moe_enc + m->dims.moe_dec > 0)
    memset(t->s->moe_load, 0,
           (size_t)((m->dims.moe_enc + m->dims.moe_dec) * m->cfg.experts) * sizeof(int64_t));
  if (!st && t->avg) {
    /* avg = d avg + (1 - d) w; the warm-up of d keeps the first updates from being an average
     * dominated by the random initial weights */
    const double warm = (1.0 + (double)t->step) / (10.0 + (double)t->step);
    const float d = (float)(warm < o->ema_decay ? warm : o->ema_decay);
    st = ORX_OP(be, scale, t->avg, d, (int64_t)m->n_params);
    if (!st) st = ORX_OP(be, axpy, t->avg, m->params, 1.0f - d, (int64_t)m->n_params);
  }
  return st;
}
