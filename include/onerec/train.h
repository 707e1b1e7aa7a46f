/* Training (NTP pre-training of the OneRec model): a trainer owns a model's gradients, the
 * AdamW state and a training session, and runs steps of forward + backward + update.
 *
 * Loss: next-token prediction over the target item's semantic IDs, the mean over the batch's
 * targets and levels of -log softmax(logits_j)[s^(j+1)] (with label_smoothing e: of the cross
 * entropy against (1 - e) onehot + e / codebook).
 *
 * Optimiser: AdamW (decoupled weight decay, bias-corrected), with separate peak learning rates
 * for sparse parameters (embedding tables: item, features, decoder tokens) and dense ones.
 * Weight decay applies only to matrices of dense layers: never to RMSNorm gains, biases,
 * embedding tables, positional embeddings or the QFormer queries. Learning rate: linear
 * warm-up over warmup_steps, then a cosine decay to min_lr_ratio x peak at total_steps (held
 * there afterwards; total_steps = 0: constant after warm-up). Gradients are clipped by their
 * global L2 norm. With accum_steps > 1 the gradients of that many micro-batches are averaged
 * before one update. After each update every MoE layer's routing bias moves by
 * bias_e += moe_bias_rate * sign(mean_load - load_e) (loss-free load balancing; the bias steers
 * expert selection only and gets no gradient).
 *
 * Thread-safety: a trainer is used by one thread at a time. It updates its model in place, so
 * no other thread may run sessions of that model during a step. */
#ifndef ONEREC_TRAIN_H
#define ONEREC_TRAIN_H

#include "onerec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct onerec_trainer onerec_trainer;

/* Declare with ONEREC_OPTS(onerec_trainer_opts, o, ...); zero fields take the defaults. */
typedef struct onerec_trainer_opts {
  size_t sz;
  int64_t max_batch;    /* users (one target each) per micro-batch (default 64) */
  int64_t max_lifelong; /* lifelong interactions read per user (default: the model's) */
  int32_t accum_steps;  /* micro-batches per update (default 1) */
  float lr_dense;       /* peak learning rate of dense parameters (default 1e-3) */
  float lr_sparse;      /* peak learning rate of embedding tables (default 1e-2) */
  float beta1, beta2;   /* default 0.9, 0.999 */
  float adam_eps;       /* default 1e-8 */
  float weight_decay;   /* default 0.01 (dense matrices only, see above); < 0: none */
  int64_t warmup_steps; /* updates of linear warm-up (default 0) */
  int64_t total_steps;  /* end of the cosine decay (default 0: no decay) */
  float min_lr_ratio;   /* floor of the decay, fraction of the peak (default 0.1) */
  float clip_norm;      /* global gradient norm limit (default 1.0; < 0: no clipping) */
  float moe_bias_rate;  /* u of the routing-bias update (default 1e-3; < 0: off) */
  float dropout;        /* drop probability in training steps (default 0, < 1): the residual
                           branch of every attention block and the hidden layer of every dense
                           FFN (encoder, decoder, QFormer); MoE layers are not dropped */
  uint64_t dropout_seed; /* masks are a function of this seed, the update count, the micro-batch
                            and the layer, so a resumed run draws the same ones */
  int32_t shards;        /* data parallelism on the CPU backend (default 1, at most 64): each
                            micro-batch is split into this many slices of rows that run at once,
                            each on its own thread(s) (the context's threads / shards), and their
                            gradients are summed in slice order. Results depend on the shard
                            count, not on the thread count; with fewer threads than shards the
                            slices run one after another. Small GEMMs scale poorly over threads,
                            so 2 shards of 1 thread train faster than 1 of 2 threads. A resumed
                            run continues bit for bit only with the same shard count. */
  int32_t reserved0;     /* ignored, never to be reused: fills the padding after shards (where
                            callers built before input_dropout may leave garbage), so later
                            fields lie past the size such callers pass */
  float input_dropout;   /* drop probability (default 0, < 1) of every element of the input
                            tokens of the encoder (pathway tokens + positions, padding and
                            lifelong tokens included) and of the decoder (code embeddings +
                            positions) in training steps, as T5 drops its embeddings; masks
                            drawn like dropout's (update, micro-batch, shard) */
  float ema_decay;       /* 0 (default): off. In (0, 1): the trainer also keeps an exponential
                            moving average of the weights: after update u (counted from 1)
                            avg = d avg + (1 - d) w with d = min(ema_decay, (1 + u) / (10 + u)),
                            so early updates are not drowned by the initial weights (with 0.9999
                            the cap binds after ~90k updates; before, the average spans roughly
                            the last u / 9 updates). onerec_trainer_swap_ema puts it into the
                            model for evaluating or saving. Checkpoints carry it. */
  float label_smoothing; /* e in [0, 1) (default 0): the next-token loss of every level is taken
                            against (1 - e) onehot(target) + e / codebook instead of the one-hot
                            target, so the model is not pushed towards certainty on codes it can
                            only guess; the reported training loss is then the smoothed one */
  int32_t reserved1;     /* ignored, never to be reused: fills the tail padding after
                            label_smoothing, so a field appended later lies past it */
} onerec_trainer_opts;

typedef struct onerec_train_stats {
  size_t sz;
  int64_t step;       /* updates done */
  int64_t micro;      /* micro-batches accumulated towards the next update */
  int64_t samples;    /* targets seen */
  float loss;         /* loss of the last micro-batch */
  float lr_dense;     /* learning rates of the last update */
  float lr_sparse;
  double grad_norm;   /* global gradient norm of the last update, before clipping */
} onerec_train_stats;

/* Creates a trainer for `model` (which it updates in place and must outlive it) on the model's
 * context. opts may be NULL for defaults.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL, bad options), ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_trainer_create(onerec_model *model,
                                               const onerec_trainer_opts *opts,
                                               onerec_trainer **out);

/* Frees a trainer. NULL is a no-op. */
ONEREC_API void onerec_trainer_free(onerec_trainer *trainer);

/* One micro-batch: users (batch <= max_batch) and their target items' semantic IDs codes
 * [batch, levels]. Computes the loss and accumulates gradients; every accum_steps-th call
 * also updates the weights. *loss_out (may be NULL) receives the micro-batch's mean loss.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL, batch out of range, an id or code out of range;
 * nothing is updated then), ONEREC_ERR_INTERNAL (a non-finite loss or gradient: the update is
 * skipped and the accumulated gradients are dropped). */
ONEREC_API onerec_status onerec_trainer_step(onerec_trainer *trainer,
                                             const onerec_user_batch *users,
                                             const int32_t *codes, float *loss_out);

/* Statistics so far (the fields stats->sz covers). */
ONEREC_API onerec_status onerec_trainer_stats(const onerec_trainer *trainer,
                                              onerec_train_stats *stats);

/* Exchanges the model's weights with their moving average (ema_decay > 0): after one call the
 * model holds the average (evaluate it, onerec_model_save it), a second call restores the
 * trained weights. While swapped, onerec_trainer_step and onerec_trainer_save refuse to run;
 * onerec_trainer_load ends the swap (the file's weights are the trained ones); freeing the
 * trainer while swapped leaves the average in the model. Sessions hold the keys and values of
 * the users they encoded: encode again after a swap.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL, no average kept, micro-batches pending), a backend
 * copy's error (weights and average are put back; if that fails too, the trainer refuses all
 * further work until onerec_trainer_load). */
ONEREC_API onerec_status onerec_trainer_swap_ema(onerec_trainer *trainer);

/* Saves a checkpoint (HDF5, written atomically): weights (MoE routing biases included), AdamW
 * moments, the moving average of the weights (ema_decay > 0), the update and sample counters
 * and `data_pos` (an opaque position in the caller's data, e.g. samples consumed; the caller's
 * shuffle seed belongs there too). Saving the model for serving is onerec_model_save; a
 * checkpoint is for resuming. Take it between updates (no accumulated micro-batch): training
 * resumed from it continues bit-identically.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL, micro-batches pending, weights swapped with
 * their average), ONEREC_ERR_IO. */
ONEREC_API onerec_status onerec_trainer_save(const onerec_trainer *trainer, const char *path,
                                             uint64_t data_pos);

/* Restores a checkpoint into a trainer whose model has the same configuration: weights,
 * moments, the moving average (a trainer with ema_decay > 0 needs a checkpoint that has one; a
 * trainer without one ignores it, and its own checkpoints then have none), counters;
 * *data_pos (may be NULL) receives the saved position. Everything is read and checked before
 * anything is overwritten: on error trainer and model are unchanged.
 * Errors: ONEREC_ERR_IO, ONEREC_ERR_FORMAT (not a checkpoint, missing dataset), ONEREC_ERR_SHAPE
 * (another configuration), ONEREC_ERR_INVALID_ARGUMENT. */
ONEREC_API onerec_status onerec_trainer_load(onerec_trainer *trainer, const char *path,
                                             uint64_t *data_pos);

#ifdef __cplusplus
}
#endif

#endif
