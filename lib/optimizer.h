/* The update step both trainers share (the model's onerec_trainer and the item aligner): clip a
 * gradient buffer by its global L2 norm, then AdamW one tensor (span of the buffers) at a time
 * with its own learning rate and decay. */
#ifndef ORX_OPTIMIZER_H
#define ORX_OPTIMIZER_H

#include "backend.h"

/* *norm = ||grad_scale * grad|| (sum of squares in double); *scale = grad_scale, lowered so that
 * ||scale * grad|| <= clip when clip > 0. A non-finite norm fails with fn's name and the number
 * of the update in the message (the caller then skips the update). */
onerec_status orx_clip_by_norm(orx_backend *be, const char *fn, int64_t update, const float *grad,
                               int64_t n, float grad_scale, float clip, double *norm,
                               float *scale);

/* AdamW on [offset, offset + count) of the buffers base names (param, grad, m, v), with base's
 * betas, eps, grad_scale and step, at learning rate lr and decoupled decay wd. */
onerec_status orx_adamw_span(orx_backend *be, const orx_adamw_args *base, int64_t offset,
                             int64_t count, float lr, float wd);

#endif
