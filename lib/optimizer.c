/* AdamW over the parameter table (per-tensor learning rate and weight decay), the warm-up +
 * cosine schedule, clipping by the global gradient norm, and the MoE loss-free bias update. */
#include <math.h>
#include <string.h>

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

onerec_status orx_optimizer_update(onerec_trainer *t, float grad_scale) {
  onerec_model *m = t->m;
  orx_backend *be = t->be;
  const onerec_trainer_opts *o = &t->o;
  double ss = 0.0;
  onerec_status st = ORX_OP(be, sum_squares, &ss, t->grad, (int64_t)m->n_params);
  if (st) return st;
  double norm = sqrt(ss) * grad_scale;
  if (!isfinite(norm))
    return orx_fail(ONEREC_ERR_INTERNAL,
                    "onerec_trainer_step: non-finite gradient at step %lld (update skipped)",
                    (long long)t->step + 1);
  float scale = grad_scale;
  if (o->clip_norm > 0.0f && norm > o->clip_norm) scale = (float)(grad_scale * o->clip_norm / norm);
  t->grad_norm = norm;
  t->step++;
  t->lr_dense = orx_lr_at(o, t->step, o->lr_dense);
  t->lr_sparse = orx_lr_at(o, t->step, o->lr_sparse);
  for (int i = 0; i < m->n_table; i++) {
    const orx_param *p = &m->table[i];
    if (p->no_grad) continue;
    orx_adamw_args a = {0};
    a.param = m->params + p->offset;
    a.grad = t->grad + p->offset;
    a.m = t->adam_m + p->offset;
    a.v = t->adam_v + p->offset;
    a.n = (int64_t)p->count;
    a.lr = p->sparse ? t->lr_sparse : t->lr_dense;
    a.beta1 = o->beta1;
    a.beta2 = o->beta2;
    a.eps = o->adam_eps;
    a.weight_decay = orx_param_decays(p) ? o->weight_decay : 0.0f;
    a.grad_scale = scale;
    a.step = t->step;
    if ((st = ORX_OP(be, adamw, &a))) return st;
  }
  if (o->moe_bias_rate > 0.0f) return moe_bias_update(t);
  if (m->dims.moe_enc + m->dims.moe_dec > 0)
    memset(t->s->moe_load, 0,
           (size_t)((m->dims.moe_enc + m->dims.moe_dec) * m->cfg.experts) * sizeof(int64_t));
  return ONEREC_OK;
}
