/* The trainer's internals, shared by lib/trainer.c, lib/optimizer.c, lib/checkpoint.c and the
 * tests (never installed). Gradients, AdamW moments m and v mirror the parameter buffer (same
 * offsets, padding included), each one device allocation. */
#ifndef ORX_TRAINER_IMPL_H
#define ORX_TRAINER_IMPL_H

#include "model_impl.h"
#include "onerec/train.h"

/* One data-parallel shard of a micro-batch: its own training session and backward scratch, and,
 * when there are several shards, its own single-context thread pool and gradient buffer. */
typedef struct orx_shard {
  onerec_context *ctx; /* own CPU context (shards > 1), NULL: the model's */
  onerec_session *s;   /* training session (every layer's activations kept) */
  void *scratch;       /* device: backward scratch */
  void *host_scratch;
  orx_bwd b;           /* b.g: the trainer's gradient (shard 0) or the shard's own */
  int64_t *offsets;    /* host, 3 x (rows + 1), rows = ceil(max_batch / shards): a slice's
                          offsets, rebased to 0 */
} orx_shard;

struct onerec_trainer {
  onerec_model *m;
  onerec_context *ctx;
  orx_backend *be;
  onerec_trainer_opts o;
  int shards;
  orx_shard *sh;                 /* o.shards of them */
  onerec_session *s;             /* shard 0's session (its MoE load feeds the bias update) */
  float *grad, *adam_m, *adam_v; /* device, m->n_params floats each */
  float *avg;                    /* device: moving average of the weights (o.ema_decay > 0) */
  int swapped;                   /* the model holds avg, avg the trained weights */
  int lost;                      /* a failed swap left weights / average inconsistent: only
                                    onerec_trainer_load (which clears it) may follow */
  orx_bwd b;                     /* shard 0's backward scratch */
  int64_t step, micro, samples;
  float loss, lr_dense, lr_sparse;
  double grad_norm;
};

/* Forward + backward of one micro-batch, accumulating gradients scaled by grad_scale / (rows
 * x levels) into t->grad; *loss = the micro-batch's mean loss. With o.shards > 1 the rows are
 * split into that many contiguous slices run on parallel threads, whose gradients are added to
 * t->grad in shard order (the result depends on the shard count, never on the thread count). */
onerec_status orx_trainer_forward_backward(onerec_trainer *t, const onerec_user_batch *u,
                                           const int32_t *codes, float grad_scale,
                                           double *loss);

/* Refuses (ONEREC_ERR_INVALID_ARGUMENT, fn's name in the message) any work on a trainer a failed
 * swap left unusable (t->lost), and `action` (e.g. "training") while the model holds the
 * moving average; action NULL: the swap state is fine. */
onerec_status orx_trainer_check_state(const onerec_trainer *t, const char *fn,
                                      const char *action);

/* Zeroes every shard's MoE expert load (a failed micro-batch's or a loaded checkpoint's). */
void orx_trainer_clear_moe_load(onerec_trainer *t);

/* lib/optimizer.c: learning rate of update `step` (1-based) for peak `peak`. */
float orx_lr_at(const onerec_trainer_opts *o, int64_t step, float peak);
/* Whether parameter p gets weight decay (dense matrices only). */
int orx_param_decays(const orx_param *p);
/* Clips (global norm) and applies one AdamW update with t->grad, advancing t->step; then the
 * MoE routing-bias update from the session's expert load (which it resets) and the moving
 * average of the weights. */
onerec_status orx_optimizer_update(onerec_trainer *t, float grad_scale);

#endif
