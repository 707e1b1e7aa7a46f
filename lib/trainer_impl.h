/* The trainer's internals, shared by lib/trainer.c, lib/optimizer.c, lib/checkpoint.c and the
 * tests (never installed). Gradients, AdamW moments m and v mirror the parameter buffer (same
 * offsets, padding included), each one device allocation. */
#ifndef ORX_TRAINER_IMPL_H
#define ORX_TRAINER_IMPL_H

#include "model_impl.h"
#include "onerec/train.h"

struct onerec_trainer {
  onerec_model *m;
  onerec_context *ctx;
  orx_backend *be;
  onerec_trainer_opts o;
  onerec_session *s; /* training session (every layer's activations kept) */
  float *grad, *adam_m, *adam_v; /* device, m->n_params floats each */
  void *scratch;                 /* device: backward scratch */
  void *host_scratch;
  orx_bwd b;
  int64_t step, micro, samples;
  float loss, lr_dense, lr_sparse;
  double grad_norm;
};

/* Forward + backward of one micro-batch, accumulating gradients scaled by grad_scale / (rows
 * x levels) into t->grad; *loss = the micro-batch's mean loss. */
onerec_status orx_trainer_forward_backward(onerec_trainer *t, const onerec_user_batch *u,
                                           const int32_t *codes, float grad_scale,
                                           double *loss);

/* lib/optimizer.c: learning rate of update `step` (1-based) for peak `peak`. */
float orx_lr_at(const onerec_trainer_opts *o, int64_t step, float peak);
/* Whether parameter p gets weight decay (dense matrices only). */
int orx_param_decays(const orx_param *p);
/* Clips (global norm) and applies one AdamW update with t->grad, advancing t->step; then the
 * MoE routing-bias update from the session's expert load (which it resets). */
onerec_status orx_optimizer_update(onerec_trainer *t, float grad_scale);

#endif
