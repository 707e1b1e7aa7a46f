/* Backward pass: finite-difference checks of the NTP loss's gradient. Every parameter tensor of
 * a small model (so every module: pathways and their embeddings, QFormer, positions, encoder
 * and decoder attention, cross-attention and the z_enc path, dense and MoE FFNs with the
 * router, norms, heads, decoder tokens) gets its gradient compared, at its largest entry and at
 * random ones, with central differences of the loss computed by the forward pass alone in
 * double-precision accumulation. Weights are drawn larger than the default initialisation so
 * that gradients stand well above fp32 rounding of the loss. Then each block on its own
 * (self-attention causal and masked, cross-attention with uneven groups and the gradient into
 * its memory, dense FFN, MoE FFN, a pathway MLP writing strided output): the gradient of
 * sum(r * block(x)) with respect to every input entry. */
#include "testutil.h"

#include <string.h>

#include "trainer_impl.h"

#define NB 3 /* users */

typedef struct fixture {
  int64_t off_s[NB + 1], off_p[NB + 1], off_l[NB + 1];
  int32_t items[64 * 3], cat[64 * 3];
  float num[64 * 3];
  int32_t st[NB * 3];
  int32_t codes[NB * 3];
} fixture;

static onerec_model_config tiny_cfg(int moe) {
  ONEREC_OPTS(onerec_model_config, c);
  assert_ok(onerec_model_config_preset("0.015B", &c));
  c.enc_layers = c.dec_layers = 2;
  c.d_model = 8;
  c.heads = 2;
  c.ffn_dim = 12;
  c.levels = 3;
  c.codebook = 7;
  c.short_len = 3;
  c.positive_len = 4;
  c.lifelong_queries = 2;
  c.qformer_layers = 2;
  c.lifelong_tokens = 5;
  c.lifelong_cluster_max = 3;
  c.lifelong_max_items = 20;
  for (int i = 0; i < 3; i++) c.static_cat_vocab[i] = 5;
  c.static_emb_dim = 3;
  c.item_dim = 4;
  for (int i = 0; i < 3; i++) {
    c.seq_cat_vocab[i] = 6;
    c.seq_cat_dim[i] = 3;
  }
  c.init_std = 0.3f;
  if (moe) {
    c.moe_encoder = c.moe_decoder = 1;
    c.experts = 4;
    c.top_k = 2;
    c.expert_dim = 6;
  }
  return c;
}

/* Users with different history lengths (one with none at all in some pathway); lifelong
 * histories stay within lifelong_tokens so that no compression (a discrete choice) happens. */
static void make_batch(fixture *f, onerec_user_batch *u, uint64_t seed) {
  uint64_t r = seed * 7919 + 3;
  static const int ns[NB] = {2, 5, 0}, np[NB] = {4, 1, 3}, nl[NB] = {5, 0, 2};
  f->off_s[0] = f->off_p[0] = f->off_l[0] = 0;
  for (int b = 0; b < NB; b++) {
    f->off_s[b + 1] = f->off_s[b] + ns[b];
    f->off_p[b + 1] = f->off_p[b] + np[b];
    f->off_l[b + 1] = f->off_l[b] + nl[b];
  }
  for (int i = 0; i < 64 * 3; i++) {
    f->items[i] = (int32_t)((tu_rand(&r) + 1.0f) * 3.5f) % 7;
    f->cat[i] = (int32_t)((tu_rand(&r) + 1.0f) * 3.5f) % 7 - 1; /* -1 = missing */
    f->num[i] = tu_rand(&r);
  }
  for (int i = 0; i < NB * 3; i++) f->st[i] = (int32_t)((tu_rand(&r) + 1.0f) * 2.5f) % 5;
  f->st[4] = -1;
  for (int i = 0; i < NB * 3; i++) f->codes[i] = (int32_t)((tu_rand(&r) + 1.0f) * 3.5f) % 7;
  memset(u, 0, sizeof *u);
  u->sz = sizeof *u;
  u->batch = NB;
  u->static_cat = f->st;
  onerec_seq_input *in[3] = {&u->short_term, &u->positive, &u->lifelong};
  const int64_t *offs[3] = {f->off_s, f->off_p, f->off_l};
  for (int k = 0; k < 3; k++) {
    in[k]->offsets = offs[k];
    in[k]->items = f->items + k * 20;
    in[k]->cat = f->cat + k * 20;
    in[k]->num = f->num + k * 20;
  }
}

/* A hash of every MoE layer's routing in the last forward pass. */
static uint64_t routing_hash(const onerec_trainer *t) {
  const onerec_model_config *c = &t->m->cfg;
  const onerec_session *s = t->s;
  uint64_t h = 1469598103934665603ull;
  for (int stack = 0; stack < 2; stack++) {
    int moe = stack == 0 ? c->moe_encoder : c->moe_decoder;
    int nl = stack == 0 ? c->enc_layers : c->dec_layers;
    int64_t n = stack == 0 ? s->batch * t->m->dims.enc_len : s->batch * t->m->dims.levels;
    for (int l = 0; moe && l < nl; l++) {
      const int32_t *idx = stack == 0 ? s->enc_mlp[l].moe.h_idx : s->dec_mlp[l].moe.h_idx;
      for (int64_t i = 0; i < n * c->top_k; i++) h = (h ^ (uint64_t)(idx[i] + 1)) * 1099511628211ull;
    }
  }
  return h;
}

static double loss_of(onerec_trainer *t, const onerec_user_batch *u, const int32_t *codes,
                      uint64_t *route) {
  double l = 0.0;
  assert_ok(orx_trainer_forward_backward(t, u, codes, 1.0f, &l));
  if (route) *route = routing_hash(t);
  return l;
}

/* Compares the gradient of every trainable tensor at `per` entries with central differences. */
static void check_model(onerec_model_config cfg, int per, float h, float dropout,
                        float in_drop, float smooth, const char *what) {
  onerec_context *ctx = tu_cpu_context(1);
  onerec_model *m = NULL;
  assert_ok(onerec_model_create(ctx, &cfg, 11, &m));
  /* non-trivial gains and routing biases, so that their gradients are generic */
  uint64_t r = 99;
  for (int i = 0; i < m->n_table; i++) {
    const orx_param *p = &m->table[i];
    if (p->init == ORX_INIT_ONES || p->init == ORX_INIT_ZEROS)
      for (size_t j = 0; j < p->count; j++)
        m->params[p->offset + j] += 0.3f * tu_rand(&r);
  }
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = NB, .dropout = dropout,
              .input_dropout = in_drop, .label_smoothing = smooth, .dropout_seed = 4);
  onerec_trainer *t = NULL;
  assert_ok(onerec_trainer_create(m, &o, &t));
  fixture f;
  onerec_user_batch u;
  make_batch(&f, &u, 5);
  if (dropout > 0.0f || in_drop > 0.0f || smooth > 0.0f) { /* the option must be in the loss */
    ONEREC_OPTS(onerec_trainer_opts, o0, .max_batch = NB);
    onerec_trainer *t0 = NULL;
    assert_ok(onerec_trainer_create(m, &o0, &t0));
    uint64_t ra = 0, rb = 0;
    assert_true(fabs(loss_of(t, &u, f.codes, &ra) - loss_of(t0, &u, f.codes, &rb)) > 1e-4);
    onerec_trainer_free(t0);
  }

  assert_ok(ORX_OP(t->be, memset0, t->grad, m->n_params * sizeof(float)));
  uint64_t r0 = 0, rp = 0, rm = 0;
  double l0 = loss_of(t, &u, f.codes, &r0);
  assert_true(l0 > 0.0 && l0 < 10.0);
  float *g = malloc(m->n_params * sizeof(float));
  assert_non_null(g);
  memcpy(g, t->grad, m->n_params * sizeof(float));

  int checked = 0, skipped = 0;
  for (int i = 0; i < m->n_table; i++) {
    const orx_param *p = &m->table[i];
    if (p->no_grad) continue;
    size_t big = 0;
    for (size_t j = 1; j < p->count; j++)
      if (fabsf(g[p->offset + j]) > fabsf(g[p->offset + big])) big = j;
    double gmax = fabs((double)g[p->offset + big]);
    assert_true(gmax > 0.0); /* every trainable tensor receives gradient */
    for (int k = 0; k < per; k++) {
      size_t j = k == 0 ? big : (size_t)((tu_rand(&r) + 1.0f) * 0.5f * (float)p->count) % p->count;
      float *w = &m->params[p->offset + j], w0 = *w;
      *w = w0 + h;
      double lp = loss_of(t, &u, f.codes, &rp);
      *w = w0 - h;
      double lm = loss_of(t, &u, f.codes, &rm);
      *w = w0;
      if (rp != r0 || rm != r0) { /* a top-k choice flipped: the loss jumps there */
        skipped++;
        continue;
      }
      double fd = (lp - lm) / (2.0 * h), an = g[p->offset + j];
      /* relative to the tensor's largest gradient: fp32 rounding of the loss and the O(h^2)
       * term set the floor */
      double tol = 0.03 * fabs(fd) + 0.01 * gmax + 2e-4;
      if (!(fabs(fd - an) <= tol))
        fail_msg("%s: %s/%s[%zu]: analytic %.6g, finite difference %.6g (tensor max %.3g)", what,
                 p->group, p->name, j, an, fd, gmax);
      checked++;
    }
  }
  assert_true(checked >= per * 20);
  assert_true(skipped * 10 <= checked);
  free(g);
  onerec_trainer_free(t);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

static void test_grad_dense(void **state) {
  (void)state;
  check_model(tiny_cfg(0), 3, 1e-2f, 0.0f, 0.0f, 0.0f, "dense");
}

static void test_grad_moe(void **state) {
  (void)state;
  check_model(tiny_cfg(1), 3, 2e-3f, 0.0f, 0.0f, 0.0f, "moe");
}

/* Item input by id, no lifelong pathway, one-level semantic IDs: the other layouts. */
static void test_grad_item_by_id(void **state) {
  (void)state;
  onerec_model_config c = tiny_cfg(0);
  c.item_input = ONEREC_ITEM_BY_ID;
  c.item_vocab = 7;
  c.use_lifelong = 0;
  c.enc_layers = 1;
  check_model(c, 3, 1e-2f, 0.0f, 0.0f, 0.0f, "item-by-id");
}

/* Dropout in every attention branch and FFN hidden layer (encoder, decoder, QFormer): the
 * masks are fixed for a step, so the loss is a smooth function of the weights and its gradient
 * must match central differences as without dropout. */
static void test_grad_dropout(void **state) {
  (void)state;
  check_model(tiny_cfg(0), 3, 1e-2f, 0.3f, 0.0f, 0.0f, "dense + dropout 0.3");
}

/* Dropout of the encoder's and decoder's input tokens: the gradient reaching the pathways,
 * the positions and the code embeddings goes through the same masks. */
static void test_grad_input_dropout(void **state) {
  (void)state;
  check_model(tiny_cfg(0), 3, 1e-2f, 0.0f, 0.3f, 0.0f, "input dropout 0.3");
  check_model(tiny_cfg(0), 2, 1e-2f, 0.2f, 0.2f, 0.0f, "dropout + input dropout 0.2");
}

/* Label smoothing: the loss against (1 - e) onehot + e / codebook at every level, with its
 * gradient through the whole model. */
static void test_grad_label_smoothing(void **state) {
  (void)state;
  check_model(tiny_cfg(0), 3, 1e-2f, 0.0f, 0.0f, 0.2f, "label smoothing 0.2");
}

/* ---- single blocks: loss = sum(r * y), gradient with respect to the input x (and the
 * cross-attention memory) ---- */

enum { B_SELF_CAUSAL, B_SELF_MASKED, B_CROSS, B_FFN, B_MOE, B_PATH, B_KINDS };

typedef struct blk {
  onerec_trainer *t;
  int kind;
  int64_t n, d, rows, tq, tk, B, T;
  float *x, *y, *r, *mem, *kv;
  uint8_t *mask;
  orx_groups g;
  int64_t goff[4];
  int64_t load[16];
} blk;

static void blk_forward(blk *k) {
  onerec_trainer *t = k->t;
  onerec_model *m = t->m;
  onerec_session *s = t->s;
  orx_backend *be = t->be;
  const float eps = m->cfg.norm_eps;
  const int64_t d = k->d;
  switch (k->kind) {
    case B_SELF_CAUSAL:
      assert_ok(orx_self_attn_forward(be, &m->dec[0].self, &s->dec_self[0], k->x, k->y, k->B, k->T,
                                      d, m->dims.heads, NULL, 1, eps));
      break;
    case B_SELF_MASKED:
      assert_ok(orx_self_attn_forward(be, &m->enc[0].attn, &s->enc_attn[0], k->x, k->y, k->B,
                                      k->T, d, m->dims.heads, k->mask, 0, eps));
      break;
    case B_CROSS:
      assert_ok(orx_cross_kv_forward(be, &m->dec[0].cross, k->kv, k->mem, k->g.n * k->tk, d));
      assert_ok(orx_cross_attn_forward(be, &m->dec[0].cross, &s->dec_cross[0], k->x, k->y, k->rows,
                                       k->tq, d, m->dims.heads, k->kv, k->tk, k->mask, &k->g, eps));
      break;
    case B_FFN:
      assert_ok(orx_mlp_forward(be, &m->dec[0].mlp, &s->dec_mlp[0], k->x, k->y, k->n, d, eps,
                                k->load));
      break;
    case B_MOE:
      assert_ok(orx_moe_forward(be, &m->dec[0].mlp.moe, &s->dec_mlp[0].moe, k->x, k->y, k->n, d,
                                eps, k->load));
      break;
    case B_PATH: {
      /* x holds the numeric block; out written as 3 batches of 1 row, batch stride 2d */
      orx_feature feat[ONEREC_MAX_FEATURES + 1];
      int nf = orx_static_features(m, feat);
      const orx_path_act *a = &s->p_static;
      memcpy(a->block[nf], k->x, (size_t)(k->n * m->cfg.static_num_count) * sizeof(float));
      for (int64_t i = 0; i < nf * k->n; i++) a->ids[i] = i == 4 ? -1 : (int32_t)(i % 5);
      assert_ok(orx_path_forward(be, m, &m->path_static, a, feat, nf, m->cfg.static_num_count,
                                 k->n, k->y, 3, 1, d, 2 * d));
      break;
    }
  }
}

static size_t blk_out(const blk *k) { return (size_t)(k->kind == B_PATH ? 3 * 2 * k->d : k->n * k->d); }
static size_t blk_in(const blk *k) {
  return (size_t)(k->kind == B_PATH ? k->n * k->t->m->cfg.static_num_count : k->n * k->d);
}

static double blk_loss(blk *k, uint64_t *route) {
  memset(k->y, 0, blk_out(k) * sizeof(float));
  blk_forward(k);
  double acc = 0.0;
  for (size_t i = 0; i < blk_out(k); i++) acc += (double)k->r[i] * k->y[i];
  if (route) *route = k->kind == B_MOE ? routing_hash(k->t) : 0;
  return acc;
}

static void check_fd(blk *k, float *v, const float *an, size_t n, float h, const char *what) {
  uint64_t r0 = 0, rp = 0, rm = 0;
  blk_loss(k, &r0);
  double gmax = 0.0;
  for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs((double)an[i]));
  assert_true(gmax > 0.0);
  int skipped = 0;
  for (size_t i = 0; i < n; i++) {
    float v0 = v[i];
    v[i] = v0 + h;
    double lp = blk_loss(k, &rp);
    v[i] = v0 - h;
    double lm = blk_loss(k, &rm);
    v[i] = v0;
    if (rp != r0 || rm != r0) {
      skipped++;
      continue;
    }
    double fd = (lp - lm) / (2.0 * h);
    if (!(fabs(fd - an[i]) <= 0.02 * fabs(fd) + 0.005 * gmax + 1e-4))
      fail_msg("block %d %s[%zu]: analytic %.6g, finite difference %.6g (max %.3g)", k->kind,
               what, i, (double)an[i], fd, gmax);
  }
  assert_true((size_t)skipped * 10 <= n);
}

static void check_block(int kind) {
  onerec_context *ctx = tu_cpu_context(1);
  onerec_model_config cfg = tiny_cfg(kind == B_MOE);
  cfg.static_num_count = 2;
  onerec_model *m = NULL;
  assert_ok(onerec_model_create(ctx, &cfg, 21, &m));
  uint64_t rs = 5;
  for (int i = 0; i < m->n_table; i++) {
    const orx_param *p = &m->table[i];
    if (p->init == ORX_INIT_ONES || p->init == ORX_INIT_ZEROS)
      for (size_t j = 0; j < p->count; j++) m->params[p->offset + j] += 0.3f * tu_rand(&rs);
  }
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = NB);
  blk k;
  memset(&k, 0, sizeof k);
  assert_ok(onerec_trainer_create(m, &o, &k.t));
  const int64_t d = m->dims.d;
  k.kind = kind;
  k.d = d;
  switch (kind) {
    case B_SELF_CAUSAL: k.B = 3; k.T = 3; k.n = 9; break;
    case B_SELF_MASKED: k.B = 2; k.T = 5; k.n = 10; break;
    case B_CROSS:
      k.rows = 3;
      k.tq = 3;
      k.n = 9;
      k.tk = 4;
      k.goff[0] = 0;
      k.goff[1] = 2;
      k.goff[2] = 2; /* an empty group */
      k.goff[3] = 3;
      k.g = (orx_groups){3, k.goff, 0};
      break;
    case B_FFN: k.n = 7; break;
    case B_MOE: k.n = 9; break;
    case B_PATH: k.n = 3; break;
  }
  k.x = malloc(k.n * d * sizeof(float));
  k.y = malloc(12 * 2 * d * sizeof(float) + 64);
  k.r = malloc(12 * 2 * d * sizeof(float) + 64);
  k.mem = malloc(3 * 4 * d * sizeof(float));
  k.kv = malloc(3 * 4 * 2 * d * sizeof(float));
  k.mask = malloc(16);
  tu_fill(k.x, (size_t)(k.n * d), 10 + (uint64_t)kind);
  tu_fill(k.r, 12 * 2 * (size_t)d, 20 + (uint64_t)kind);
  tu_fill(k.mem, 12 * (size_t)d, 30);
  static const uint8_t mk[16] = {1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 1};
  memcpy(k.mask, mk, 16); /* cross: group 1 is empty; rows 0-1 see keys 0,1,3 */
  const orx_bwd *b = &k.t->b;
  float *dx = malloc(k.n * d * sizeof(float)), *dmem = calloc(12 * (size_t)d, sizeof(float));
  blk_loss(&k, NULL);
  size_t nin = blk_in(&k);
  orx_backend *be = k.t->be;
  onerec_session *s = k.t->s;
  if (kind != B_PATH) memcpy(dx, k.r, (size_t)(k.n * d) * sizeof(float));
  switch (kind) {
    case B_SELF_CAUSAL:
      assert_ok(orx_self_attn_backward(be, &m->dec[0].self, &s->dec_self[0], b, k.x, dx, k.B, k.T,
                                       d, m->dims.heads, NULL, 1));
      break;
    case B_SELF_MASKED:
      assert_ok(orx_self_attn_backward(be, &m->enc[0].attn, &s->enc_attn[0], b, k.x, dx, k.B, k.T,
                                       d, m->dims.heads, k.mask, 0));
      break;
    case B_CROSS:
      memset(b->dkv, 0, 12 * 2 * (size_t)d * sizeof(float));
      assert_ok(orx_cross_attn_backward(be, &m->dec[0].cross, &s->dec_cross[0], b, k.x, dx, k.rows,
                                        k.tq, d, m->dims.heads, k.kv, k.tk, k.mask, &k.g, b->dkv));
      assert_ok(orx_cross_kv_backward(be, &m->dec[0].cross, b, k.mem, b->dkv, dmem, 12, d));
      break;
    case B_FFN:
    case B_MOE:
      assert_ok(orx_mlp_backward(be, &m->dec[0].mlp, &s->dec_mlp[0], b, k.x, dx, k.n, d));
      break;
    case B_PATH: {
      /* the numeric block's gradient: dpre w1[num rows]^T, from the backward's dpre */
      orx_feature feat[ONEREC_MAX_FEATURES + 1];
      int nf = orx_static_features(m, feat);
      assert_ok(orx_path_backward(be, m, &m->path_static, &s->p_static, b, feat, nf,
                                  m->cfg.static_num_count, k.n, k.r, 3, 1, d, 2 * d));
      const int64_t nc = m->cfg.static_num_count, row0 = nf * m->cfg.static_emb_dim;
      assert_ok(orx_mm(be, 0, 1, k.n, nc, d, b->dpre, d, m->path_static.w1 + row0 * d, d, dx, nc,
                       0.0f));
      break;
    }
  }
  check_fd(&k, k.x, dx, nin, 1e-2f, "x");
  if (kind == B_CROSS) check_fd(&k, k.mem, dmem, 12 * (size_t)d, 1e-2f, "memory");
  free(dx);
  free(dmem);
  free(k.x);
  free(k.y);
  free(k.r);
  free(k.mem);
  free(k.kv);
  free(k.mask);
  onerec_trainer_free(k.t);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

static void test_blocks(void **state) {
  (void)state;
  for (int kind = 0; kind < B_KINDS; kind++) check_block(kind);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grad_dense),
      cmocka_unit_test(test_grad_moe),
      cmocka_unit_test(test_grad_dropout),
      cmocka_unit_test(test_grad_input_dropout),
      cmocka_unit_test(test_grad_label_smoothing),
      cmocka_unit_test(test_grad_item_by_id),
      cmocka_unit_test(test_blocks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
