/* The model's internals, shared by lib/model*.c, lib/encoder_*.c, lib/decoder.c, lib/moe.c,
 * lib/ffn.c and lib/attention_block.c (never installed).
 *
 * Memory follows llm.c: all parameters live in one device buffer, described by a table of
 * named tensors (the HDF5 layout and, later, the gradient and optimiser buffers mirror it);
 * modules hold pointers into it. A session owns one device arena and one host arena with every
 * activation and scratch buffer, carved once from the session's maximum sizes. In inference
 * sessions the layers of a stack share one set of activation buffers; training sessions
 * (train = 1) give every layer its own, keeping what the backward pass needs. */
#ifndef ORX_MODEL_IMPL_H
#define ORX_MODEL_IMPL_H

#include <stdint.h>

#include "context_impl.h"
#include "onerec/model.h"

#define ORX_MODEL_KIND "model"
#define ORX_MODEL_FORMAT_VERSION 1
/* k-means iterations per split of the lifelong compression (it stops earlier when stable) */
#define ORX_KMEANS_ITERS 10

/* ---- parameters ---- */

typedef enum orx_init { ORX_INIT_NORMAL = 0, ORX_INIT_ONES = 1, ORX_INIT_ZEROS = 2 } orx_init;

typedef struct orx_param {
  char group[48]; /* HDF5 group, "encoder/layer3" */
  char name[24];  /* dataset, "wqkv" */
  int rank;
  int64_t dims[3];
  size_t offset, count; /* floats, into the parameter buffer */
  uint8_t init;         /* orx_init */
  uint8_t sparse;       /* an embedding table (its own learning rate in training) */
  uint8_t no_grad;      /* state moved by a rule, not by gradients (MoE routing bias) */
  float **slot;         /* the module pointer that receives the parameter's address */
} orx_param;

/* Sizes derived from the configuration. */
typedef struct orx_dims {
  int64_t d, heads, head_dim, levels, codebook;
  int64_t enc_len;                                  /* T */
  int64_t tok_static, tok_short, tok_pos, tok_life; /* first token of each slice, -1 absent */
  int64_t item_ids;   /* ids per interaction for the item: 1 or levels */
  int64_t item_rows;  /* rows of the item table */
  int64_t item_width; /* width of the item block: item_dim * item_ids */
  int64_t seq_in;     /* sequence pathways' input width */
  int64_t static_in;  /* static pathway's input width */
  int64_t dec_vocab;  /* rows of the decoder token table: 1 + (levels - 1) * codebook */
  int64_t moe_enc, moe_dec; /* MoE layers in each stack */
} orx_dims;

/* ---- module weights (pointers into the parameter buffer) ---- */

typedef struct orx_attn_w { /* self-attention: norm, fused q|k|v, output */
  float *norm, *wqkv, *wo;
} orx_attn_w;

typedef struct orx_xattn_w { /* cross-attention: norm of the queries, q, fused k|v of memory */
  float *norm, *wq, *wkv, *wo;
} orx_xattn_w;

typedef struct orx_ffn_w { /* SwiGLU: down(silu(x gate) * (x up)) */
  float *norm, *w_gate, *w_up, *w_down;
  int64_t hidden;
} orx_ffn_w;

typedef struct orx_moe_w { /* router + experts stored [E, d, h], [E, d, h], [E, h, d] */
  float *norm, *router, *bias, *w_gate, *w_up, *w_down;
  int64_t experts, top_k, hidden;
} orx_moe_w;

typedef struct orx_mlp_w { /* a transformer layer's FFN: dense or MoE */
  int is_moe;
  orx_ffn_w ffn;
  orx_moe_w moe;
} orx_mlp_w;

typedef struct orx_path_w { /* pathway token MLP: Dense -> LeakyReLU -> Dense (no 2nd bias:
                             * the positional embedding of each token absorbs it) */
  float *w1, *b1, *w2;
  int64_t in_dim, hidden;
} orx_path_w;

typedef struct orx_enc_layer_w {
  orx_attn_w attn;
  orx_mlp_w mlp;
} orx_enc_layer_w;

typedef struct orx_dec_layer_w {
  orx_attn_w self;
  orx_xattn_w cross;
  orx_mlp_w mlp;
} orx_dec_layer_w;

typedef struct orx_qf_layer_w {
  orx_xattn_w cross;
  orx_ffn_w ffn;
} orx_qf_layer_w;

struct onerec_model {
  onerec_context *ctx;
  onerec_model_config cfg;
  orx_dims dims;
  float *params; /* device */
  size_t n_params;
  orx_param *table;
  int n_table;
  /* features (shared by the sequence pathways) */
  float *item_emb;
  float *seq_cat_emb[ONEREC_MAX_FEATURES];
  float *static_emb[ONEREC_MAX_FEATURES];
  orx_path_w path_static, path_short, path_pos, path_life;
  float *qf_query; /* [N_q, d] */
  orx_qf_layer_w *qf;
  float *enc_pos; /* [T, d] */
  orx_enc_layer_w *enc;
  float *enc_norm;
  float *dec_emb; /* [dec_vocab, d]: row 0 BOS, then level j's code c at 1 + (j-1) K + c */
  float *dec_pos; /* [levels, d] */
  orx_dec_layer_w *dec;
  float *dec_norm;
  float *heads; /* [levels, d, codebook] */
};

/* ---- configuration, layout (lib/model_config.c) ---- */

/* Validates cfg (a complete struct); the message names the first bad field. */
onerec_status orx_config_check(const onerec_model_config *cfg);
void orx_config_dims(const onerec_model_config *cfg, orx_dims *d);
/* Builds the parameter table. With m == NULL only counts; otherwise fills table[] (room for
 * the *n_table entries a counting call reported) with slots in m. n_floats: size of the
 * parameter buffer (each tensor padded to 16 floats); n_params: the true parameter count. */
void orx_model_layout(const onerec_model_config *cfg, const orx_dims *d, onerec_model *m,
                      orx_param *table, int *n_table, size_t *n_floats, int64_t *n_params);
/* Allocates a model for cfg (checked) with unset weights; lib/model.c. */
onerec_status orx_model_alloc(onerec_context *ctx, const onerec_model_config *cfg,
                              onerec_model **out);

/* Saves m's weights with `stored` as the file's configuration (onerec_model_save passes the
 * model's own; tests pass another one to make files that must fail to load). */
onerec_status orx_model_write(const onerec_model *m, const char *path,
                              const onerec_model_config *stored);

/* ---- sessions ---- */

/* Groups of query rows for cross-attention: group g is rows off[g] .. off[g+1]-1 (each of tq
 * tokens) and attends memory g. equal > 0: every group has exactly `equal` rows. */
typedef struct orx_groups {
  int64_t n;
  const int64_t *off; /* host, [n + 1] */
  int64_t equal;
} orx_groups;

/* Dropout of a block in a training step (p = 0: none). The mask is a function of the seed
 * (lib/dropout_hash.h), so forward and backward agree without storing it; the trainer sets a
 * fresh seed per layer and step. Attention blocks drop their residual branch (o wo); the FFN
 * drops its hidden activation h before W_down. */
typedef struct orx_drop {
  float p;
  uint64_t seed;
} orx_drop;

typedef struct orx_attn_act {
  float *xn, *rstd, *qkv, *o, *lse;
  orx_drop drop;
} orx_attn_act;

typedef struct orx_xattn_act {
  float *xn, *rstd, *q, *o, *lse;
  orx_drop drop;
} orx_xattn_act;

typedef struct orx_ffn_act {
  float *xn, *rstd, *gate, *up, *h;
  orx_drop drop;
} orx_ffn_act;

typedef struct orx_moe_act {
  float *xn, *rstd, *probs, *gates, *gperm, *xe, *ge, *ue, *he, *ye, *ys;
  int32_t *idx, *perm; /* device */
  /* host: the routing as the backward pass needs it */
  int32_t *h_idx, *h_perm;
  float *h_gates, *h_gperm;
  int64_t *h_eoff; /* [experts + 1] slot offsets per expert */
} orx_moe_act;

typedef struct orx_mlp_act {
  orx_ffn_act ffn;
  orx_moe_act moe;
} orx_mlp_act;

/* A pathway's token MLP activations: feature blocks, ids, pre-activation and hidden. */
typedef struct orx_path_act {
  float *block[ONEREC_MAX_FEATURES + 2]; /* per feature (item first for sequences), then num */
  int32_t *ids;                          /* device, all features' ids, feature-major */
  float *pre, *h;
  int64_t rows; /* capacity */
} orx_path_act;

/* Host staging of one pathway's inputs. */
typedef struct orx_path_host {
  int32_t *ids; /* feature-major, as orx_path_act.ids */
  float *num;   /* [rows, num_count] */
} orx_path_host;

typedef struct orx_lifelong_scratch { /* one user's compression */
  /* host */
  float *vec; /* [max_lifelong, item_width]: the items' vectors */
  int64_t *order, *tmp, *stack, *cl_start, *cl_len, *cl_rep, *pick, *count;
  int32_t *assign, *h_idx;
  double *sum; /* [item_width] */
  /* device */
  const float *d_vec; /* the same vectors on the device */
  float *d_x, *d_c, *d_cnorm;
  int32_t *d_ids, *d_idx;
  int64_t *d_counts;
} orx_lifelong_scratch;

struct onerec_session {
  const onerec_model *m;
  onerec_context *ctx;
  orx_backend *be;
  int train;
  /* dropout of the input tokens (after positions) of the encoder and the decoder: training
   * sessions only, set by the trainer per micro-batch */
  orx_drop enc_in_drop, dec_in_drop;
  int64_t max_batch, max_targets, max_lifelong;
  int64_t life_rows; /* lifelong memory rows (users x tokens) processed at once */
  void *dev;
  size_t dev_bytes;
  void *host;
  size_t host_bytes;

  /* encoder */
  float **enc_x;       /* residual stream: [train ? 2 L + 1 : 1] buffers of [B T, d] */
  orx_attn_act *enc_attn;
  orx_mlp_act *enc_mlp;
  float *enc_z, *enc_zrstd; /* final RMSNorm output = z_enc, and its rstd */
  uint8_t *enc_mask, *h_enc_mask;
  orx_path_act p_static, p_short, p_pos, p_life;
  orx_path_host h_static, h_short, h_pos, h_life;
  /* lifelong: memory tokens, QFormer */
  float *life_mem;  /* [life_rows, d] */
  uint8_t *life_mask, *h_life_mask; /* [life_rows] */
  float **qf_x;     /* [train ? 2 N_l + 1 : 1] of [max_batch N_q, d] */
  orx_xattn_act *qf_cross;
  float **qf_kv;    /* per layer [life_rows, 2d] */
  orx_ffn_act *qf_ffn;
  int32_t *life_gather_ids; /* device [max_lifelong item_ids] */
  float *life_gather;       /* device [max_lifelong, item_width] */
  int32_t *h_life_ids;      /* host [max_lifelong item_ids] */
  orx_lifelong_scratch lk;

  /* decoder */
  int64_t batch; /* users of the last encode; 0 = none */
  float **dec_kv; /* per layer [B T, 2d] */
  int32_t *dec_ids, *h_dec_ids;
  float **dec_x; /* [train ? 3 L + 1 : 1] of [R L, d] */
  orx_attn_act *dec_self;
  orx_xattn_act *dec_cross;
  orx_mlp_act *dec_mlp;
  float *dec_xn, *dec_rstd; /* final norm */
  float *logits;            /* [R L, K] */
  int32_t *targets, *h_targets;
  float *loss, *h_loss;
  int64_t *h_groups; /* [max_batch + 1] */
  int64_t rows;      /* rows of the last decode */

  int64_t *moe_load; /* host [moe layers, experts] */
};

/* Carves aligned pieces from a buffer; with base == NULL it only measures. */
typedef struct orx_arena {
  char *base;
  size_t used;
} orx_arena;

static inline void *orx_take(orx_arena *a, size_t bytes) {
  size_t o = (a->used + 63) & ~(size_t)63;
  a->used = o + bytes;
  return a->base ? a->base + o : NULL;
}

/* Creates a session (lib/model_session.c); train = 1 keeps every layer's activations for the
 * backward pass and runs the lifelong pathway on the whole batch at once. */
onerec_status orx_session_create(const onerec_model *m, onerec_context *ctx,
                                 const onerec_session_opts *o, int train, onerec_session **out);

/* ---- blocks (lib/attention_block.c, lib/ffn.c, lib/moe.c) ---- */

/* x_out = x_in + SelfAttn(RMSNorm(x_in)) over B sequences of T tokens (x_out may equal x_in).
 * key_mask [B, T] device or NULL. */
onerec_status orx_self_attn_forward(orx_backend *be, const orx_attn_w *w, const orx_attn_act *a,
                                    const float *x_in, float *x_out, int64_t B, int64_t T,
                                    int64_t d, int64_t heads, const uint8_t *key_mask,
                                    int causal, float eps);

/* kv [rows, 2d] = mem [rows, d] @ wkv: the keys and values a cross-attention reads. */
onerec_status orx_cross_kv_forward(orx_backend *be, const orx_xattn_w *w, float *kv,
                                   const float *mem, int64_t rows, int64_t d);

/* x_out = x_in + CrossAttn(RMSNorm(x_in), memory) for `rows` query rows of tq tokens grouped by
 * g (group i attends memory i: kv [g->n, tk, 2d], key_mask [g->n, tk] device or NULL). */
onerec_status orx_cross_attn_forward(orx_backend *be, const orx_xattn_w *w,
                                     const orx_xattn_act *a, const float *x_in, float *x_out,
                                     int64_t rows, int64_t tq, int64_t d, int64_t heads,
                                     const float *kv, int64_t tk, const uint8_t *key_mask,
                                     const orx_groups *g, float eps);

/* x_out = x_in + SwiGLU(RMSNorm(x_in)) over n tokens. */
onerec_status orx_ffn_forward(orx_backend *be, const orx_ffn_w *w, const orx_ffn_act *a,
                              const float *x_in, float *x_out, int64_t n, int64_t d, float eps);

/* x_out = x_in + MoE(RMSNorm(x_in)) over n tokens; load[e] += tokens routed to expert e. */
onerec_status orx_moe_forward(orx_backend *be, const orx_moe_w *w, const orx_moe_act *a,
                              const float *x_in, float *x_out, int64_t n, int64_t d, float eps,
                              int64_t *load);

/* Either of the two, as the layer is configured. */
onerec_status orx_mlp_forward(orx_backend *be, const orx_mlp_w *w, const orx_mlp_act *a,
                              const float *x_in, float *x_out, int64_t n, int64_t d, float eps,
                              int64_t *load);

/* ---- encoder (lib/encoder_pathway.c, lib/encoder_lifelong.c, lib/encoder_stack.c) ---- */

/* One embedding feature of a pathway: ids_per_row ids per token, each a row of table. */
typedef struct orx_feature {
  const float *table;
  int64_t vocab, dim, ids_per_row;
} orx_feature;

/* The token MLP of a pathway over n tokens: feature blocks (embedding gathers from a->ids) and
 * numeric block (already in a->block[nf]) -> Dense -> LeakyReLU -> Dense into out, written as
 * out_batch batches of out_m rows with row pitch out_ld and batch stride out_sb. */
onerec_status orx_path_forward(orx_backend *be, const onerec_model *m, const orx_path_w *w,
                               const orx_path_act *a, const orx_feature *feat, int nf,
                               int64_t num_count, int64_t n, float *out, int64_t out_batch,
                               int64_t out_m, int64_t out_ld, int64_t out_sb);

/* The features of the sequence pathways (item, then categorical) and of the static one. */
int orx_seq_features(const onerec_model *m, orx_feature *feat);
int orx_static_features(const onerec_model *m, orx_feature *feat);

/* Input staging (host). The most recent `len` interactions of users [u0, u0 + nu), oldest
 * first, padded (ids -1, num 0, mask 0); the mask of user b goes to mask[b * mask_pitch + i].
 * Ids are validated, with messages naming pathway, user, row and feature. */
onerec_status orx_stage_seq(const onerec_model *m, const char *what, const onerec_seq_input *in,
                            int64_t u0, int64_t nu, int64_t len, const orx_path_host *h,
                            uint8_t *mask, int64_t mask_pitch);
onerec_status orx_stage_static(const onerec_model *m, const onerec_user_batch *u,
                               const orx_path_host *h, uint8_t *mask, int64_t mask_pitch);
/* Token t of n (ids feature-major, num [n, seq_num_count]) from interaction `row` (-1: pad). */
onerec_status orx_stage_row(const onerec_model *m, const char *what, const onerec_seq_input *in,
                            int64_t user, int64_t row, int64_t n, int64_t t, int32_t *ids,
                            float *num);
/* The item ids (1 or levels) of interaction `row` into dst. */
onerec_status orx_stage_item(const onerec_model *m, const char *what, const int32_t *items,
                             int64_t user, int64_t row, int32_t *dst);
/* Rows [*lo, *hi) of `user` in a ragged input (validated; 0, 0 when offsets is NULL). */
onerec_status orx_seq_span(const char *what, const onerec_seq_input *in, int64_t user,
                           int64_t *lo, int64_t *hi);
/* Checks every id and offset an encode of u would read, before any work starts. */
onerec_status orx_validate_users(const onerec_model *m, const onerec_user_batch *u,
                                 int64_t max_lifelong);
/* Copies staged ids and numeric features to the pathway's device buffers. */
onerec_status orx_path_upload(orx_backend *be, const orx_path_act *a, const orx_path_host *h,
                              int nf, int64_t ids, int64_t nums);

/* Compresses n interactions with item vectors vec [n, dim] (host; also at s->d_vec on the
 * device), oldest first, into at most cap clusters of at most max_cluster items (see
 * encoder_lifelong.c). *kept = the number kept; the t-th kept cluster (chronological by
 * representative) is c = s->pick[t], with representative row s->cl_rep[c] and members
 * s->order[s->cl_start[c] .. + s->cl_len[c]). */
onerec_status orx_lifelong_compress(orx_backend *be, const float *vec, int64_t n, int64_t dim,
                                    int64_t max_cluster, int64_t cap,
                                    const orx_lifelong_scratch *s, int64_t *kept);
/* floor(n^(1/5)) exactly. */
int64_t orx_fifth_root(int64_t n);

/* Lifelong pathway + QFormer for the whole batch, writing the N_q tokens of each user into the
 * encoder input x0 and their key mask into h_mask [B, T]. */
onerec_status orx_lifelong_forward(onerec_session *s, const onerec_user_batch *u, float *x0,
                                   uint8_t *h_mask);

/* Encoder: pathways, positions, layers, final norm -> s->enc_z; then the decoder's
 * cross-attention keys and values. */
onerec_status orx_encoder_forward(onerec_session *s, const onerec_user_batch *u);

/* ---- decoder (lib/decoder.c) ---- */

/* Keys and values of every decoder layer's cross-attention from s->enc_z (`users` users). */
onerec_status orx_decoder_cross_kv(onerec_session *s, int64_t users);

/* Decoder over `rows` target rows of `len` positions (1..levels): the device ids s->dec_ids
 * [rows, len] hold BOS / code-token rows of dec_emb (orx_decoder_stage); groups map rows to the
 * users of the last encode (cross-attention keys and values are shared by a user's rows).
 * Writes logits [rows, len, K] into s->logits, or with last_only (generation) only those of
 * position len - 1, [rows, K]. Rows are limited by the session's max_targets. */
onerec_status orx_decoder_forward(onerec_session *s, int64_t rows, int64_t len,
                                  const orx_groups *g, int last_only);

/* Fills host ids [rows, len] for the decoder from codes [rows, levels] (validated). */
onerec_status orx_decoder_stage(const onerec_model *m, const int32_t *codes, int64_t rows,
                                int64_t len, int32_t *ids);

/* ---- backward (training; lib/trainer.c drives it) ----
 * Each *_backward sits next to its forward and follows the backend's convention: parameter
 * gradients ACCUMULATE into a gradient buffer that mirrors the parameter buffer (same offsets,
 * one allocation); orx_g maps a parameter pointer to its gradient. Residual blocks take dx = the
 * gradient of their output and leave there the gradient of their input (the residual makes
 * that an accumulation in place). Scratch buffers are written before they are read. */
typedef struct orx_bwd {
  const float *params; /* the model's parameter buffer */
  float *g;            /* its gradient, same layout */
  /* scratch, sized for the session's largest token count N */
  float *dxn, *dqkv, *dout, *dh, *dgate, *dup; /* [N, d], [N, 3d], [N, d], 3x [N, hidden] */
  float *dkv;                                  /* [B T (or life rows), 2d] */
  float *dx_dec;                               /* [R L, d] */
  float *dx_enc, *dz;                          /* [B T, d] */
  float *dlogits;                              /* [R L, K] */
  float *dq_life;                              /* [B N_q, d] lifelong tokens' gradient */
  float *dmem;                                 /* [life rows, d] */
  /* MoE: slots = N top_k */
  float *dys, *dye, *dgperm, *dhe, *dge, *due, *dxe, *dprobs, *dlog;
  float *h_dgperm, *h_dprobs; /* host */
  /* pathways */
  float *dpre, *dph, *dblock;
} orx_bwd;

static inline float *orx_g(const orx_bwd *b, const float *p) {
  return p ? b->g + (p - b->params) : NULL;
}

/* C = op(A) op(B) + beta C, single matrix (the shared shape of every backward product). */
static inline onerec_status orx_mm(orx_backend *be, int ta, int tb, int64_t m, int64_t n,
                                   int64_t k, const float *a, int64_t lda, const float *b,
                                   int64_t ldb, float *c, int64_t ldc, float beta) {
  orx_matmul_args g = {0};
  g.trans_a = ta;
  g.trans_b = tb;
  g.batch = 1;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a;
  g.lda = lda;
  g.b = b;
  g.ldb = ldb;
  g.c = c;
  g.ldc = ldc;
  g.alpha = 1.0f;
  g.beta = beta;
  g.dtype = ONEREC_F32;
  return ORX_OP(be, matmul, &g);
}

onerec_status orx_self_attn_backward(orx_backend *be, const orx_attn_w *w, const orx_attn_act *a,
                                     const orx_bwd *b, const float *x_in, float *dx, int64_t B,
                                     int64_t T, int64_t d, int64_t heads,
                                     const uint8_t *key_mask, int causal);
/* dkv [g->n tk, 2d] is accumulated into (the caller zeroes it). */
onerec_status orx_cross_attn_backward(orx_backend *be, const orx_xattn_w *w,
                                      const orx_xattn_act *a, const orx_bwd *b,
                                      const float *x_in, float *dx, int64_t rows, int64_t tq,
                                      int64_t d, int64_t heads, const float *kv, int64_t tk,
                                      const uint8_t *key_mask, const orx_groups *g, float *dkv);
/* dmem += dkv wkv^T, dwkv += mem^T dkv */
onerec_status orx_cross_kv_backward(orx_backend *be, const orx_xattn_w *w, const orx_bwd *b,
                                    const float *mem, const float *dkv, float *dmem, int64_t rows,
                                    int64_t d);
onerec_status orx_ffn_backward(orx_backend *be, const orx_ffn_w *w, const orx_ffn_act *a,
                               const orx_bwd *b, const float *x_in, float *dx, int64_t n,
                               int64_t d);
onerec_status orx_moe_backward(orx_backend *be, const orx_moe_w *w, const orx_moe_act *a,
                               const orx_bwd *b, const float *x_in, float *dx, int64_t n,
                               int64_t d);
onerec_status orx_mlp_backward(orx_backend *be, const orx_mlp_w *w, const orx_mlp_act *a,
                               const orx_bwd *b, const float *x_in, float *dx, int64_t n,
                               int64_t d);
/* dout: the gradient of orx_path_forward's out (same layout). */
onerec_status orx_path_backward(orx_backend *be, const onerec_model *m, const orx_path_w *w,
                                const orx_path_act *a, const orx_bwd *b, const orx_feature *feat,
                                int nf, int64_t num_count, int64_t n, const float *dout,
                                int64_t out_batch, int64_t out_m, int64_t out_ld, int64_t out_sb);
/* From b->dlogits (rows x len positions of the last decoder_forward) to the decoder's
 * parameter gradients; the gradient of z_enc is accumulated into b->dz. */
onerec_status orx_decoder_backward(onerec_session *s, const orx_bwd *b, int64_t rows,
                                   int64_t len, const orx_groups *g);
/* From b->dz to the encoder's parameter gradients (pathways, QFormer; the lifelong
 * compression is a fixed, non-differentiable selection). */
onerec_status orx_encoder_backward(onerec_session *s, const orx_bwd *b,
                                   const onerec_user_batch *u);
/* QFormer backward: b->dq_life [B N_q, d] (the lifelong tokens' gradient) to its weights,
 * queries and the lifelong token MLP. */
onerec_status orx_lifelong_backward(onerec_session *s, const orx_bwd *b,
                                    const onerec_user_batch *u);

#endif
