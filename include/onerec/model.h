/* The OneRec model (SPEC.md §2-§3): a four-pathway encoder over a user's static features and
 * behaviour (short-term, positive-feedback and lifelong sequences) and a decoder that reads the
 * encoder output and predicts an item's semantic IDs one level at a time.
 *
 *   encoder input  [static token | L_s short-term | L_p positive | N_q lifelong] + positions
 *   encoder        L_enc pre-RMSNorm layers of full self-attention + SwiGLU FFN (or MoE)
 *   decoder input  [BOS, s^1, ..., s^(L-1)] + positions     (L = codebook levels)
 *   decoder        L_dec pre-RMSNorm layers: causal self-attention, cross-attention to the
 *                  encoder output, SwiGLU FFN or MoE FFN; final RMSNorm; one output head per
 *                  level: position j predicts s^(j+1) over `codebook` codes.
 *
 * A model (onerec_model) holds the configuration and the weights. It is immutable once created
 * or loaded and may be shared by any number of threads; all per-call work goes through a session
 * (onerec_session), which owns the activation buffers, sized once for a maximum batch, so a
 * forward pass allocates nothing. Use one session per thread.
 *
 * Absent data is masked, never padded with garbage: a pathway left out of the configuration has
 * no tokens at all; a user with fewer interactions than a pathway's length has the unused
 * positions masked out of every attention; a missing categorical feature (id -1, or a NULL
 * array) has a zero embedding. */
#ifndef ONEREC_MODEL_H
#define ONEREC_MODEL_H

#include "onerec/context.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct onerec_model onerec_model;
typedef struct onerec_session onerec_session;

/* Most categorical features of one kind (static or per-interaction) a model can have. */
#define ONEREC_MAX_FEATURES 16

/* How an interaction's item enters the sequence pathways. */
typedef enum onerec_item_input {
  ONEREC_ITEM_BY_ID = 0, /* an item id embedding, item_vocab x item_dim */
  ONEREC_ITEM_BY_SID = 1 /* its `levels` semantic IDs, one item_dim embedding each, concatenated */
} onerec_item_input;

/* Model configuration. Fill it with onerec_model_config_preset and change what you need.
 * Declare it with ONEREC_OPTS(onerec_model_config, cfg) so that `sz` is set.
 *
 * Presets (SPEC.md Table 1; encoder and decoder have `layers` layers each; dense FFN hidden
 * = 2 x d_model, SwiGLU; MoE expert hidden = 2/3 x 4 x d_model rounded up to a multiple of 128):
 *   "0.015B"  4 layers, d_model 128,  4 heads, dense
 *   "0.121B"  8 layers, d_model 1024, 8 heads, dense
 *   "0.935B"  8 layers, d_model 1024, 8 heads, MoE 24 experts / top 2 in the decoder
 *   "2.633B" 24 layers, d_model 1024, 8 heads, MoE 24 experts / top 4 in encoder and decoder
 * All presets share these assumptions (the names are the paper's; the counts are ours, with
 * this schema): 3 levels x 8192 codes; items enter by semantic ID (3 x 8192 x d_model); static
 * features uid (hashed to 8192 buckets), gender (4), age bucket (16), 64-d each, no numeric
 * static feature; per interaction author (hashed to 8192 buckets, 512-d), tag (1024, 128-d),
 * label (16, 128-d) and 3 numeric features (timestamp, playtime, duration, normalised by the
 * caller); L_s = 20, L_p = 256, lifelong: up to 100,000 interactions compressed to at most 2000
 * clusters of at most 50 items, then a QFormer of 128 queries and 2 layers. */
typedef struct onerec_model_config {
  size_t sz; /* sizeof(onerec_model_config); set by ONEREC_OPTS */

  /* transformer */
  int32_t enc_layers, dec_layers; /* >= 1 each */
  int32_t d_model;                /* multiple of heads */
  int32_t heads;
  int32_t ffn_dim;                /* hidden width of the dense SwiGLU FFN */
  int32_t experts;                /* experts per MoE layer (>= 2 where MoE is used) */
  int32_t top_k;                  /* experts active per token, 1..experts */
  int32_t expert_dim;             /* hidden width of each SwiGLU expert */
  int32_t moe_encoder, moe_decoder; /* 1: that stack's FFNs are MoE */

  /* semantic IDs: the decoder's vocabulary */
  int32_t levels;   /* L_t, 1..8 */
  int32_t codebook; /* codes per level */

  /* pathways: 1 = present, 0 = left out (no tokens) */
  int32_t use_static, use_short, use_positive, use_lifelong;
  int32_t short_len;            /* L_s: most recent interactions kept */
  int32_t positive_len;         /* L_p */
  int32_t lifelong_queries;     /* N_q: QFormer queries = lifelong tokens of the encoder */
  int32_t qformer_layers;       /* N_l */
  int32_t lifelong_tokens;      /* most clusters kept after compression (QFormer memory) */
  int32_t lifelong_cluster_max; /* M: hierarchical k-means splits until clusters hold <= M */
  int32_t lifelong_max_items;   /* most recent lifelong interactions read per user */

  /* user static features */
  int32_t static_cat_count; /* categorical features (uid, gender, age, ...) */
  int32_t static_emb_dim;   /* width of each of their embeddings (64) */
  int32_t static_num_count; /* numeric features, fed as they are */
  int32_t item_input;       /* onerec_item_input */
  int64_t static_cat_vocab[ONEREC_MAX_FEATURES];

  /* per-interaction features of the sequence pathways (shared embedding tables) */
  int64_t item_vocab; /* item ids (ONEREC_ITEM_BY_ID) */
  int32_t item_dim;   /* width of the item embedding (per level for ONEREC_ITEM_BY_SID) */
  int32_t seq_cat_count;
  int64_t seq_cat_vocab[ONEREC_MAX_FEATURES];
  int32_t seq_cat_dim[ONEREC_MAX_FEATURES];
  int32_t seq_num_count; /* numeric features per interaction (timestamp, playtime, ...) */

  /* numerics */
  float norm_eps;    /* RMSNorm epsilon (1e-6) */
  float leaky_slope; /* LeakyReLU negative slope (0.01) */
  float init_std;    /* std of the normal initialisation of weights (0.02) */
} onerec_model_config;

/* Fills the fields of *cfg that cfg->sz covers with preset `name` ("0.015B", "0.121B",
 * "0.935B", "2.633B"; "default" is "0.015B"). cfg->sz must be set (ONEREC_OPTS).
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL, bad sz), ONEREC_ERR_NOT_FOUND (unknown name; the
 * message lists the presets). Thread-safe. */
ONEREC_API onerec_status onerec_model_config_preset(const char *name, onerec_model_config *cfg);

/* Checks a configuration and, when out is not NULL, returns the number of parameters (floats) a
 * model with it has. Nothing is allocated, so it works for any size.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT with a message naming the first bad field. Thread-safe. */
ONEREC_API onerec_status onerec_model_config_param_count(const onerec_model_config *cfg,
                                                         int64_t *out);

/* Creates a model with freshly initialised weights on ctx's device: weights ~ N(0, init_std^2)
 * drawn from `seed` (same seed and config -> same weights on every machine), RMSNorm gains 1,
 * biases and MoE routing biases 0. The model keeps a pointer to ctx, which must outlive it.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (bad config, NULL), ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_model_create(onerec_context *ctx, const onerec_model_config *cfg,
                                             uint64_t seed, onerec_model **out);

/* Loads a model saved by onerec_model_save. Every dataset's shape and type is checked against
 * the configuration stored in the file; a mismatch fails with ONEREC_ERR_SHAPE and a message
 * such as "m.h5: encoder/layer3 wqkv: expected [128,384], file has [128,512]".
 * Errors: ONEREC_ERR_IO (unreadable), ONEREC_ERR_FORMAT (not a model file, missing dataset),
 * ONEREC_ERR_VERSION (newer format), ONEREC_ERR_SHAPE, ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_model_load(onerec_context *ctx, const char *path,
                                           onerec_model **out);

/* Saves configuration and weights as HDF5 (one group per module, one dataset per parameter,
 * the configuration as attributes of /config, a format version). The write is atomic: readers
 * see the old file or the new one. Safe to call from several threads on a shared model.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_IO. */
ONEREC_API onerec_status onerec_model_save(const onerec_model *model, const char *path);

/* Frees a model. NULL is a no-op. Its sessions must be freed first. */
ONEREC_API void onerec_model_free(onerec_model *model);

/* Copies the model's configuration into *cfg (the fields cfg->sz covers). Thread-safe. */
ONEREC_API onerec_status onerec_model_config_get(const onerec_model *model,
                                                 onerec_model_config *cfg);

/* Number of parameters (floats) of the model, or -1 for NULL. Thread-safe. */
ONEREC_API int64_t onerec_model_param_count(const onerec_model *model);

/* Encoder output length 1 + L_s + L_p + N_q (minus the pathways left out), or -1 for NULL. */
ONEREC_API int64_t onerec_model_encoder_len(const onerec_model *model);

/* ---- inputs ---- */

/* One sequence pathway's interactions for a batch of users, ragged: user b's interactions are
 * rows offsets[b] .. offsets[b+1]-1, oldest first. The short-term and positive pathways keep the
 * most recent short_len / positive_len of them; the lifelong pathway reads the most recent
 * lifelong_max_items and compresses them. offsets == NULL: no data for any user (the pathway's
 * tokens are all masked). */
typedef struct onerec_seq_input {
  const int64_t *offsets; /* [batch + 1], non-decreasing, offsets[0] = 0 */
  const int32_t *items;   /* [n] item ids, or [n, levels] semantic IDs (ONEREC_ITEM_BY_SID) */
  const int32_t *cat;     /* [n, seq_cat_count]; -1 = missing; NULL = all missing */
  const float *num;       /* [n, seq_num_count]; NULL = all zero */
} onerec_seq_input;

/* A batch of users. Declare with ONEREC_OPTS(onerec_user_batch, u, .batch = ...). */
typedef struct onerec_user_batch {
  size_t sz;
  int64_t batch;             /* users, 1..max_batch of the session */
  const int32_t *static_cat; /* [batch, static_cat_count]; -1 = missing; NULL = all missing */
  const float *static_num;   /* [batch, static_num_count]; NULL = all zero */
  onerec_seq_input short_term, positive, lifelong;
} onerec_user_batch;

/* ---- sessions: per-thread forward passes ---- */

typedef struct onerec_session_opts {
  size_t sz;
  int64_t max_batch;    /* users per call (default 64) */
  int64_t max_targets;  /* decoder rows (target items, all users together) per call
                           (default max_batch) */
  int64_t max_lifelong; /* lifelong interactions read per user (default: the model's
                           lifelong_max_items; lower it to save memory) */
} onerec_session_opts;

/* Creates a session: the scratch and activation buffers of one thread's forward passes, sized
 * once from the options. ctx is the context whose backend (and thread pool) runs the session's
 * work: give each thread its own context with the model's backend; NULL uses the model's context
 * (then only one thread at a time may use it). opts may be NULL for defaults.
 * Thread-safety: a session is used by one thread at a time; sessions of one model are
 * independent. Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL, bad options, a context on another
 * backend or device), ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_session_create(const onerec_model *model, onerec_context *ctx,
                                               const onerec_session_opts *opts,
                                               onerec_session **out);

/* Frees a session. NULL is a no-op. */
ONEREC_API void onerec_session_free(onerec_session *session);

/* Runs the encoder on a batch of users. The output z_enc [batch, encoder_len, d_model] stays in
 * the session for the decode calls that follow, and is copied to z_out when z_out is not NULL
 * (z_count = floats available there). key_mask_out, when not NULL, receives [batch,
 * encoder_len] bytes: 1 where the token holds data, 0 where it is masked (its z_enc row is
 * well-defined but no query attends to it).
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL, batch out of range, bad offsets, an id outside its
 * vocabulary, with a message naming user, row and feature), ONEREC_ERR_BUFFER_TOO_SMALL. */
ONEREC_API onerec_status onerec_session_encode(onerec_session *session,
                                               const onerec_user_batch *users, float *z_out,
                                               size_t z_count, uint8_t *key_mask_out);

/* Teacher-forced decoder logits for target items of the users of the last encode call. User b's
 * targets are rows target_offsets[b] .. target_offsets[b+1]-1 of codes [n, levels] (each row an
 * item's semantic IDs); target_offsets == NULL means one target per user. logits_out receives
 * [n, levels, codebook]: row r, position j scores s^(j+1) given BOS, s^1..s^j. logits_count is
 * the number of floats available there.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (no encode yet, n > max_targets, code out of range),
 * ONEREC_ERR_BUFFER_TOO_SMALL. */
ONEREC_API onerec_status onerec_session_decode(onerec_session *session,
                                               const int64_t *target_offsets,
                                               const int32_t *codes, float *logits_out,
                                               size_t logits_count);

/* Exact log-probabilities log p(item | user) = sum_j log softmax(logits_j)[s^(j+1)] of target
 * items (semantic IDs codes [n, levels], grouped per user by target_offsets as in
 * onerec_session_decode) for a batch of users: encodes, decodes, and writes logp_out [n].
 * Errors: as onerec_session_encode and onerec_session_decode. */
ONEREC_API onerec_status onerec_session_score(onerec_session *session,
                                              const onerec_user_batch *users,
                                              const int64_t *target_offsets,
                                              const int32_t *codes, double *logp_out,
                                              size_t logp_count);

/* Tokens routed to each expert by this session's MoE layers since it was created or last reset:
 * counts [moe_layers, experts], encoder MoE layers first, then the decoder's, each in layer
 * order. *n_layers (if not NULL) receives the number of MoE layers (0 for a dense model); counts
 * may be NULL to ask only that. reset != 0 zeroes the counters after copying.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_BUFFER_TOO_SMALL (count < layers x experts). */
ONEREC_API onerec_status onerec_session_expert_load(onerec_session *session, int64_t *counts,
                                                    size_t count, int32_t *n_layers,
                                                    int reset);

#ifdef __cplusplus
}
#endif

#endif
