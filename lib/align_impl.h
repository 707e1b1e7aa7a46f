/* The item aligner's internals (lib/align.c, lib/align_io.c; never installed). */
#ifndef ORX_ALIGN_IMPL_H
#define ORX_ALIGN_IMPL_H

#include "model_impl.h"
#include "onerec/align.h"

#define ORX_ALIGNER_KIND "aligner"
#define ORX_ALIGNER_FORMAT_VERSION 1

typedef struct orx_align_tensor {
  size_t offset, count; /* floats, into params / grad / adam_m / adam_v */
  int decay;            /* AdamW weight decay applies (matrices) */
  int ones;             /* initialised to 1 (RMSNorm gains), else N(0, 0.02^2) */
  float **slot;
} orx_align_tensor;

typedef struct onerec_aligner orx_aligner;

struct onerec_aligner {
  onerec_context *ctx;
  orx_backend *be;
  onerec_aligner_config cfg; /* defaults filled in */
  int64_t step;
  /* parameters (device) */
  float *w_in, *tok_pos, *queries;
  orx_qf_layer_w *layer;
  orx_align_tensor *tensors;
  int n_tensors;
  size_t n_floats;
  void *dev; /* the one device allocation everything below lives in */
  float *params, *grad, *adam_m, *adam_v;
  /* activations for 2 max_batch item rows */
  float *tok, *mem, **x, **kv, *y, *yrstd, *ones, *dgain;
  uint8_t *mask;
  orx_xattn_act *xact;
  orx_ffn_act *fact;
  float *logits, *dlogits, *rowloss, *dy, *dx, *dmem, *dkv;
  int32_t *targets;
  orx_bwd b;
  /* host staging */
  float *h_tok, *h_rowloss;
  uint8_t *h_mask;
  int32_t *h_targets;
  int64_t *h_rows;
};

/* Allocates an aligner for cfg (checked, defaults filled) with unset weights and zero AdamW
 * state. */
onerec_status orx_aligner_alloc(onerec_context *ctx, const onerec_aligner_config *cfg,
                                const char *fn, orx_aligner **out);
void orx_aligner_free(orx_aligner *a);
/* Loss of a batch of pairs and its gradient in a->grad (zeroed first), without an update:
 * onerec_aligner_step's first half, and what the gradient check in tests/ reads. */
onerec_status orx_aligner_grad(orx_aligner *a, const char *fn, const float *items,
                               const uint8_t *token_mask, int64_t n_items, const int64_t *first,
                               const int64_t *second, int64_t n_pairs, double *loss);

#endif
