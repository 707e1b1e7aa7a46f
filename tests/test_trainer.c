/* The trainer: AdamW against a naive reference (moments over two updates, per-tensor learning
 * rates and weight decay, clipping by the global norm, warm-up), the learning-rate schedule,
 * gradient accumulation, the MoE loss-free bias update, that training lowers the loss,
 * checkpoints (stop + resume is bit-identical; bad files change nothing), argument checks, and
 * one whole training step (loss, gradients, updated weights incl. routing biases) against the
 * PyTorch reference (tests/reference/make_train_fixture.py, float64 autograd). */
#include "testutil.h"

#include <string.h>
#include <unistd.h>

#include "h5io.h"
#include "trainer_impl.h"

#define TRAIN_FIXTURE "tests/reference/fixtures/train_step.h5"

#define MAXU 4

typedef struct users {
  int64_t off[3][MAXU + 1];
  int32_t items[3][64 * 3], cat[3][64 * 3];
  float num[3][64 * 3];
  int32_t st[MAXU * 3];
  int32_t codes[MAXU * 3];
} users;

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
  c.qformer_layers = 1;
  c.lifelong_tokens = 3;
  c.lifelong_cluster_max = 2;
  c.lifelong_max_items = 12;
  for (int i = 0; i < 3; i++) c.static_cat_vocab[i] = 5;
  c.static_emb_dim = 3;
  c.item_dim = 4;
  for (int i = 0; i < 3; i++) {
    c.seq_cat_vocab[i] = 6;
    c.seq_cat_dim[i] = 3;
  }
  if (moe) {
    c.moe_encoder = c.moe_decoder = 1;
    c.experts = 4;
    c.top_k = 2;
    c.expert_dim = 6;
  }
  return c;
}

/* Users u0 .. u0+nu-1 of a deterministic population (a user's data depends only on its index
 * and the seed), with lifelong histories long enough to be compressed. */
static void make_users(users *f, onerec_user_batch *u, int u0, int nu, uint64_t seed) {
  memset(f, 0, sizeof *f);
  for (int k = 0; k < 3; k++) {
    int rows = 0;
    for (int b = 0; b < nu; b++) {
      uint64_t r = (seed * 1000003u + (uint64_t)(u0 + b) * 7919u + (uint64_t)k) | 1u;
      int len = k == 2 ? 2 + (u0 + b) * 2 : 1 + (u0 + b + k) % 5;
      for (int i = 0; i < len; i++, rows++) {
        for (int l = 0; l < 3; l++) {
          f->items[k][rows * 3 + l] = (int32_t)((tu_rand(&r) + 1.0f) * 3.5f) % 7;
          f->cat[k][rows * 3 + l] = (int32_t)((tu_rand(&r) + 1.0f) * 3.0f) % 6;
          f->num[k][rows * 3 + l] = tu_rand(&r);
        }
      }
      f->off[k][b + 1] = rows;
    }
  }
  for (int b = 0; b < nu; b++) {
    uint64_t r = (seed * 31u + (uint64_t)(u0 + b) * 104729u) | 1u;
    for (int l = 0; l < 3; l++) {
      f->st[b * 3 + l] = (int32_t)((tu_rand(&r) + 1.0f) * 2.5f) % 5;
      f->codes[b * 3 + l] = (int32_t)((tu_rand(&r) + 1.0f) * 3.5f) % 7;
    }
  }
  memset(u, 0, sizeof *u);
  u->sz = sizeof *u;
  u->batch = nu;
  u->static_cat = f->st;
  onerec_seq_input *in[3] = {&u->short_term, &u->positive, &u->lifelong};
  for (int k = 0; k < 3; k++) {
    in[k]->offsets = f->off[k];
    in[k]->items = f->items[k];
    in[k]->cat = f->cat[k];
    in[k]->num = f->num[k];
  }
}

static onerec_model *new_model(onerec_context *ctx, onerec_model_config c, uint64_t seed) {
  onerec_model *m = NULL;
  assert_ok(onerec_model_create(ctx, &c, seed, &m));
  return m;
}

static float *grads_of(onerec_trainer *t, const onerec_user_batch *u, const int32_t *codes) {
  size_t n = t->m->n_params;
  assert_ok(ORX_OP(t->be, memset0, t->grad, n * sizeof(float)));
  double loss;
  assert_ok(orx_trainer_forward_backward(t, u, codes, 1.0f, &loss));
  float *g = malloc(n * sizeof(float));
  assert_non_null(g);
  memcpy(g, t->grad, n * sizeof(float));
  return g;
}

static void test_adamw_matches_naive(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_model *m = new_model(ctx, tiny_cfg(0), 3);
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = MAXU, .lr_dense = 0.01f, .lr_sparse = 0.05f,
              .weight_decay = 0.1f, .warmup_steps = 2, .clip_norm = 0.05f, .beta1 = 0.8f,
              .beta2 = 0.95f, .adam_eps = 1e-6f);
  onerec_trainer *t = NULL;
  assert_ok(onerec_trainer_create(m, &o, &t));
  users f;
  onerec_user_batch u;
  make_users(&f, &u, 0, 3, 1);
  const size_t n = m->n_params;
  double *p = malloc(n * sizeof(double)), *mm = calloc(n, sizeof(double)),
         *vv = calloc(n, sizeof(double));
  assert_non_null(p);
  for (size_t i = 0; i < n; i++) p[i] = m->params[i];
  for (int step = 1; step <= 2; step++) {
    float *g = grads_of(t, &u, f.codes);
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    double norm = sqrt(ss), scale = norm > 0.05 ? 0.05 / norm : 1.0;
    assert_true(norm > 0.05); /* the clipping is exercised */
    double warm = step / 2.0;
    for (int k = 0; k < m->n_table; k++) {
      const orx_param *q = &m->table[k];
      if (q->no_grad) continue;
      double lr = (q->sparse ? 0.05 : 0.01) * warm;
      double wd = orx_param_decays(q) ? 0.1 : 0.0;
      for (size_t i = q->offset; i < q->offset + q->count; i++) {
        double gi = g[i] * scale;
        mm[i] = 0.8 * mm[i] + 0.2 * gi;
        vv[i] = 0.95 * vv[i] + 0.05 * gi * gi;
        double mh = mm[i] / (1.0 - pow(0.8, step)), vh = vv[i] / (1.0 - pow(0.95, step));
        p[i] -= lr * (mh / (sqrt(vh) + 1e-6) + wd * p[i]);
      }
    }
    free(g);
    float loss = 0.0f;
    assert_ok(onerec_trainer_step(t, &u, f.codes, &loss));
    assert_true(loss > 0.0f);
    for (size_t i = 0; i < n; i++)
      if (fabs(p[i] - m->params[i]) > 1e-5 + 1e-4 * fabs(p[i]))
        fail_msg("step %d: parameter %zu: %.8g, naive AdamW %.8g", step, i,
                 (double)m->params[i], p[i]);
  }
  ONEREC_OPTS(onerec_train_stats, st);
  assert_ok(onerec_trainer_stats(t, &st));
  assert_int_equal(st.step, 2);
  assert_int_equal(st.samples, 6);
  assert_true(fabsf(st.lr_dense - 0.01f) < 1e-7f);
  assert_true(fabsf(st.lr_sparse - 0.05f) < 1e-7f);
  assert_true(st.grad_norm > 0.05);
  /* decay rules: matrices yes; norms, biases, tables, positions, queries no */
  for (int k = 0; k < m->n_table; k++) {
    const orx_param *q = &m->table[k];
    int expect = q->rank >= 2 && !q->sparse && strcmp(q->name, "pos") && strcmp(q->name, "query");
    assert_int_equal(orx_param_decays(q), expect);
  }
  free(p);
  free(mm);
  free(vv);
  onerec_trainer_free(t);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

static void test_schedule(void **state) {
  (void)state;
  onerec_trainer_opts o;
  memset(&o, 0, sizeof o);
  o.warmup_steps = 10;
  o.total_steps = 110;
  o.min_lr_ratio = 0.1f;
  assert_true(fabsf(orx_lr_at(&o, 5, 2.0f) - 1.0f) < 1e-6f);
  assert_true(fabsf(orx_lr_at(&o, 10, 2.0f) - 2.0f) < 1e-6f);
  assert_true(fabsf(orx_lr_at(&o, 60, 2.0f) - 1.1f) < 1e-5f); /* half way down the cosine */
  assert_true(fabsf(orx_lr_at(&o, 110, 2.0f) - 0.2f) < 1e-6f);
  assert_true(fabsf(orx_lr_at(&o, 500, 2.0f) - 0.2f) < 1e-6f);
  assert_true(orx_lr_at(&o, 30, 2.0f) > orx_lr_at(&o, 31, 2.0f));
  o.total_steps = 0;
  assert_true(fabsf(orx_lr_at(&o, 500, 2.0f) - 2.0f) < 1e-6f);
}

/* Two half batches accumulated give the full batch's gradient; the weights move only on the
 * accum_steps-th call. */
static void test_accumulation(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_model *m = new_model(ctx, tiny_cfg(0), 4);
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = MAXU, .accum_steps = 2);
  onerec_trainer *t = NULL;
  assert_ok(onerec_trainer_create(m, &o, &t));
  users fa, fb, ff;
  onerec_user_batch ua, ub, uf;
  make_users(&ff, &uf, 0, 4, 9);
  make_users(&fa, &ua, 0, 2, 9);
  make_users(&fb, &ub, 2, 2, 9);
  assert_memory_equal(fa.codes, ff.codes, 6 * sizeof(int32_t));
  assert_memory_equal(fb.codes, ff.codes + 6, 6 * sizeof(int32_t));
  const size_t n = m->n_params;
  float *full = grads_of(t, &uf, ff.codes);
  assert_ok(ORX_OP(t->be, memset0, t->grad, n * sizeof(float)));
  double l;
  assert_ok(orx_trainer_forward_backward(t, &ua, fa.codes, 0.5f, &l));
  assert_ok(orx_trainer_forward_backward(t, &ub, fb.codes, 0.5f, &l));
  float gmax = 0.0f;
  for (size_t i = 0; i < n; i++) gmax = fmaxf(gmax, fabsf(full[i]));
  tu_assert_close(t->grad, full, n, 1e-3f, 1e-5f * gmax, "accumulated gradient");

  float *w0 = malloc(n * sizeof(float));
  memcpy(w0, m->params, n * sizeof(float));
  assert_ok(onerec_trainer_step(t, &ua, fa.codes, NULL));
  assert_memory_equal(w0, m->params, n * sizeof(float));
  ONEREC_OPTS(onerec_train_stats, st);
  assert_ok(onerec_trainer_stats(t, &st));
  assert_int_equal(st.micro, 1);
  assert_int_equal(st.step, 0);
  assert_ok(onerec_trainer_step(t, &ub, fb.codes, NULL));
  assert_ok(onerec_trainer_stats(t, &st));
  assert_int_equal(st.micro, 0);
  assert_int_equal(st.step, 1);
  assert_true(memcmp(w0, m->params, n * sizeof(float)) != 0);
  /* the update used the accumulated gradient: its norm is the full batch's */
  double ss = 0.0;
  for (size_t i = 0; i < n; i++) ss += (double)full[i] * full[i];
  assert_true(fabs(st.grad_norm - sqrt(ss)) <= 1e-3 * sqrt(ss));
  free(w0);
  free(full);
  onerec_trainer_free(t);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

static void test_moe_bias_update(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_model *m = new_model(ctx, tiny_cfg(1), 5);
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = MAXU, .moe_bias_rate = 0.01f);
  onerec_trainer *t = NULL;
  assert_ok(onerec_trainer_create(m, &o, &t));
  users f;
  onerec_user_batch u;
  make_users(&f, &u, 0, 4, 2);
  float *g = grads_of(t, &u, f.codes);
  int32_t layers = 0;
  int64_t load[4 * 4];
  assert_ok(onerec_session_expert_load(t->s, load, 16, &layers, 1));
  assert_int_equal(layers, 4);
  for (int i = 0; i < m->n_table; i++) /* the routing bias gets no gradient */
    if (m->table[i].no_grad)
      for (size_t j = 0; j < m->table[i].count; j++) assert_true(g[m->table[i].offset + j] == 0.0f);
  free(g);
  assert_ok(onerec_trainer_step(t, &u, f.codes, NULL));
  float *bias[4] = {m->enc[0].mlp.moe.bias, m->enc[1].mlp.moe.bias, m->dec[0].mlp.moe.bias,
                    m->dec[1].mlp.moe.bias};
  int moved = 0;
  for (int l = 0; l < 4; l++) {
    double mean = 0.0;
    for (int e = 0; e < 4; e++) mean += (double)load[l * 4 + e] / 4.0;
    for (int e = 0; e < 4; e++) {
      double diff = mean - (double)load[l * 4 + e];
      float want = diff > 0 ? 0.01f : diff < 0 ? -0.01f : 0.0f;
      assert_true(bias[l][e] == want);
      moved += want != 0.0f;
    }
  }
  assert_true(moved > 0);
  /* loads were reset by the update */
  assert_ok(onerec_session_expert_load(t->s, load, 16, NULL, 0));
  for (int i = 0; i < 16; i++) assert_int_equal(load[i], 0);
  onerec_trainer_free(t);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

static void test_loss_decreases(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  onerec_model *m = new_model(ctx, tiny_cfg(1), 6);
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = MAXU, .lr_dense = 1e-2f, .lr_sparse = 3e-2f,
              .warmup_steps = 3);
  onerec_trainer *t = NULL;
  assert_ok(onerec_trainer_create(m, &o, &t));
  users f;
  onerec_user_batch u;
  make_users(&f, &u, 0, 4, 3);
  float first = 0.0f, last = 0.0f;
  for (int i = 0; i < 40; i++) assert_ok(onerec_trainer_step(t, &u, f.codes, i ? &last : &first));
  assert_true(first > 1.5f);
  assert_true(last < 0.3f * first);
  onerec_trainer_free(t);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

static void tmp_path(char *buf, size_t len) {
  snprintf(buf, len, "/tmp/onerec_ckpt_XXXXXX");
  int fd = mkstemp(buf);
  assert_true(fd >= 0);
  close(fd);
}

static void run_steps(onerec_trainer *t, int from, int to) {
  for (int s = from; s < to; s++) {
    users f;
    onerec_user_batch u;
    make_users(&f, &u, 0, 1 + s % 4, 100 + (uint64_t)s);
    assert_ok(onerec_trainer_step(t, &u, f.codes, NULL));
  }
}

/* 4 steps straight == 2 steps, save, load into a fresh trainer (model from another seed), 2
 * steps: identical weights and moments, bit for bit (MoE: routing biases included). */
static void test_resume_bit_identical(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  /* with dropout: its masks follow the update count, so they too must resume exactly */
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = MAXU, .warmup_steps = 2, .total_steps = 6,
              .accum_steps = 1, .lr_dense = 5e-3f, .dropout = 0.2f, .input_dropout = 0.1f,
              .dropout_seed = 9, .ema_decay = 0.9f, .label_smoothing = 0.1f);
  char path[64];
  tmp_path(path, sizeof path);

  onerec_model *ma = new_model(ctx, tiny_cfg(1), 7);
  onerec_trainer *ta = NULL;
  assert_ok(onerec_trainer_create(ma, &o, &ta));
  run_steps(ta, 0, 4);

  onerec_model *mb = new_model(ctx, tiny_cfg(1), 7);
  onerec_trainer *tb = NULL;
  assert_ok(onerec_trainer_create(mb, &o, &tb));
  run_steps(tb, 0, 2);
  assert_ok(onerec_trainer_save(tb, path, 12345));
  onerec_trainer_free(tb);
  onerec_model_free(mb);

  onerec_model *mc = new_model(ctx, tiny_cfg(1), 99);
  onerec_trainer *tc = NULL;
  assert_ok(onerec_trainer_create(mc, &o, &tc));
  uint64_t pos = 0;
  assert_ok(onerec_trainer_load(tc, path, &pos));
  assert_int_equal(pos, 12345);
  run_steps(tc, 2, 4);
  const size_t n = ma->n_params;
  assert_memory_equal(ma->params, mc->params, n * sizeof(float));
  assert_memory_equal(ta->adam_m, tc->adam_m, n * sizeof(float));
  assert_memory_equal(ta->adam_v, tc->adam_v, n * sizeof(float));
  assert_memory_equal(ta->avg, tc->avg, n * sizeof(float));
  ONEREC_OPTS(onerec_train_stats, sa);
  ONEREC_OPTS(onerec_train_stats, sc);
  assert_ok(onerec_trainer_stats(ta, &sa));
  assert_ok(onerec_trainer_stats(tc, &sc));
  assert_int_equal(sa.step, 4);
  assert_int_equal(sc.step, 4);
  assert_int_equal(sa.samples, sc.samples);

  /* a checkpoint of another configuration is refused and changes nothing */
  onerec_model_config c2 = tiny_cfg(0);
  onerec_model *md = new_model(ctx, c2, 1);
  onerec_trainer *td = NULL;
  assert_ok(onerec_trainer_create(md, &o, &td));
  float *w = malloc(md->n_params * sizeof(float));
  memcpy(w, md->params, md->n_params * sizeof(float));
  assert_status(onerec_trainer_load(td, path, NULL), ONEREC_ERR_SHAPE);
  assert_memory_equal(w, md->params, md->n_params * sizeof(float));
  assert_status(onerec_trainer_load(td, "/nonexistent/ckpt.h5", NULL), ONEREC_ERR_IO);
  /* a model file is not a checkpoint */
  assert_ok(onerec_model_save(md, path));
  assert_status(onerec_trainer_load(td, path, NULL), ONEREC_ERR_FORMAT);
  assert_memory_equal(w, md->params, md->n_params * sizeof(float));
  free(w);
  unlink(path);
  onerec_trainer_free(td);
  onerec_model_free(md);
  onerec_trainer_free(tc);
  onerec_model_free(mc);
  onerec_trainer_free(ta);
  onerec_model_free(ma);
  onerec_context_free(ctx);
}

/* The moving average against the recurrence in double, swapping in and out, and what a
 * swapped trainer refuses; a checkpoint without the average cannot resume a trainer with one. */
static void test_ema(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_model *m = new_model(ctx, tiny_cfg(1), 5);
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = MAXU, .lr_dense = 1e-2f, .ema_decay = 0.3f);
  onerec_trainer *t = NULL;
  assert_ok(onerec_trainer_create(m, &o, &t));
  const size_t n = m->n_params;
  double *want = malloc(n * sizeof(double));
  float *w = malloc(n * sizeof(float));
  assert_non_null(want);
  assert_non_null(w);
  for (size_t i = 0; i < n; i++) want[i] = m->params[i];
  for (int k = 0; k < 4; k++) {
    run_steps(t, k, k + 1);
    double d = (2.0 + k) / (11.0 + k); /* update u = k + 1: (1 + u) / (10 + u), capped */
    if (d > 0.3) d = 0.3;
    for (size_t i = 0; i < n; i++) want[i] = d * want[i] + (1.0 - d) * m->params[i];
  }
  memcpy(w, m->params, n * sizeof(float));
  double moved = 0.0;
  for (size_t i = 0; i < n; i++) {
    assert_true(fabs((double)t->avg[i] - want[i]) <= 1e-6 + 1e-5 * fabs(want[i]));
    moved += fabs((double)t->avg[i] - (double)w[i]);
  }
  assert_true(moved > 1e-3); /* the average is not the weights */
  assert_ok(onerec_trainer_swap_ema(t));
  for (size_t i = 0; i < n; i++)
    assert_true(fabs((double)m->params[i] - want[i]) <= 1e-6 + 1e-5 * fabs(want[i]));
  char path[64];
  tmp_path(path, sizeof path);
  users f;
  onerec_user_batch u;
  make_users(&f, &u, 0, 2, 3);
  assert_status(onerec_trainer_step(t, &u, f.codes, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "swap_ema"));
  assert_status(onerec_trainer_save(t, path, 0), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(onerec_trainer_swap_ema(t));
  assert_memory_equal(m->params, w, n * sizeof(float));
  /* a load ends a swap: the file's weights are the trained ones */
  assert_ok(onerec_trainer_save(t, path, 0));
  assert_ok(onerec_trainer_swap_ema(t));
  assert_ok(onerec_trainer_load(t, path, NULL));
  assert_memory_equal(m->params, w, n * sizeof(float));
  assert_ok(onerec_trainer_step(t, &u, f.codes, NULL));
  assert_ok(onerec_trainer_load(t, path, NULL));

  /* no average kept: swap refused; its checkpoint cannot resume a trainer that keeps one */
  onerec_model *m0 = new_model(ctx, tiny_cfg(1), 5);
  ONEREC_OPTS(onerec_trainer_opts, o0, .max_batch = MAXU);
  onerec_trainer *t0 = NULL;
  assert_ok(onerec_trainer_create(m0, &o0, &t0));
  assert_status(onerec_trainer_swap_ema(t0), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(onerec_trainer_save(t0, path, 0));
  assert_status(onerec_trainer_load(t, path, NULL), ONEREC_ERR_FORMAT);
  assert_non_null(strstr(onerec_last_error(), "moving average"));
  assert_memory_equal(m->params, w, n * sizeof(float)); /* unchanged */
  remove(path);
  assert_status(onerec_trainer_swap_ema(NULL), ONEREC_ERR_INVALID_ARGUMENT);
  /* not between micro-batches of one update (the gradient buffer is in use) */
  ONEREC_OPTS(onerec_trainer_opts, o2, .max_batch = MAXU, .accum_steps = 2, .ema_decay = 0.5f);
  onerec_trainer *t2 = NULL;
  assert_ok(onerec_trainer_create(m0, &o2, &t2));
  assert_ok(onerec_trainer_step(t2, &u, f.codes, NULL));
  assert_status(onerec_trainer_swap_ema(t2), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(onerec_trainer_step(t2, &u, f.codes, NULL));
  assert_ok(onerec_trainer_swap_ema(t2));
  onerec_trainer_free(t2);
  free(want);
  free(w);
  onerec_trainer_free(t0);
  onerec_model_free(m0);
  onerec_trainer_free(t);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

/* A backend whose copies fail from the fail_at-th call on (for fail_n calls): what a failed
 * swap leaves behind. */
static const orx_backend_ops *real_ops;
static int copy_calls, fail_at, fail_n;
static onerec_status flaky_copy(orx_backend *be, void *dst, const void *src, size_t bytes,
                                orx_copy_kind kind) {
  ++copy_calls;
  if (copy_calls >= fail_at && copy_calls < fail_at + fail_n) return ONEREC_ERR_INTERNAL;
  return real_ops->copy(be, dst, src, bytes, kind);
}

static void test_ema_swap_failure(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_model *m = new_model(ctx, tiny_cfg(0), 6);
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = MAXU, .lr_dense = 1e-2f, .ema_decay = 0.3f);
  onerec_trainer *t = NULL;
  assert_ok(onerec_trainer_create(m, &o, &t));
  run_steps(t, 0, 3);
  const size_t n = m->n_params, bytes = n * sizeof(float);
  float *w = malloc(bytes), *a = malloc(bytes);
  assert_non_null(w);
  assert_non_null(a);
  memcpy(w, m->params, bytes);
  memcpy(a, t->avg, bytes);
  char path[64];
  tmp_path(path, sizeof path);
  assert_ok(onerec_trainer_save(t, path, 0));
  real_ops = t->be->ops;
  orx_backend_ops flaky = *real_ops;
  flaky.copy = flaky_copy;
  /* the second copy (average -> model), then the third (weights -> average), fail: both are
   * put back and the trainer goes on */
  for (int k = 2; k <= 3; k++) {
    copy_calls = 0, fail_at = k, fail_n = 1;
    t->be->ops = &flaky;
    assert_status(onerec_trainer_swap_ema(t), ONEREC_ERR_INTERNAL);
    t->be->ops = real_ops;
    assert_memory_equal(m->params, w, bytes);
    assert_memory_equal(t->avg, a, bytes);
    assert_false(t->lost);
  }
  /* the third copy and the repair of the average fail: unusable until a load */
  copy_calls = 0, fail_at = 3, fail_n = 2;
  t->be->ops = &flaky;
  assert_status(onerec_trainer_swap_ema(t), ONEREC_ERR_INTERNAL);
  t->be->ops = real_ops;
  assert_memory_equal(m->params, w, bytes); /* the trained weights did come back */
  users f;
  onerec_user_batch u;
  make_users(&f, &u, 0, 2, 3);
  assert_status(onerec_trainer_step(t, &u, f.codes, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_trainer_save(t, path, 0), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_trainer_swap_ema(t), ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "onerec_trainer_load"));
  assert_ok(onerec_trainer_load(t, path, NULL));
  assert_memory_equal(t->avg, a, bytes);
  assert_ok(onerec_trainer_swap_ema(t));
  assert_ok(onerec_trainer_swap_ema(t));
  assert_ok(onerec_trainer_step(t, &u, f.codes, NULL));
  remove(path);
  free(w);
  free(a);
  onerec_trainer_free(t);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

/* Same steps on 1 and 2 threads: the same bits (the CPU ops are deterministic for any thread
 * count, and so is everything the trainer adds). */
static void test_threads_identical(void **state) {
  (void)state;
  onerec_context *c1 = tu_cpu_context(1), *c2 = tu_cpu_context(2);
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = MAXU, .warmup_steps = 1);
  onerec_model *m1 = new_model(c1, tiny_cfg(1), 12), *m2 = new_model(c2, tiny_cfg(1), 12);
  onerec_trainer *t1 = NULL, *t2 = NULL;
  assert_ok(onerec_trainer_create(m1, &o, &t1));
  assert_ok(onerec_trainer_create(m2, &o, &t2));
  run_steps(t1, 0, 3);
  run_steps(t2, 0, 3);
  assert_memory_equal(m1->params, m2->params, m1->n_params * sizeof(float));
  onerec_trainer_free(t1);
  onerec_trainer_free(t2);
  onerec_model_free(m1);
  onerec_model_free(m2);
  onerec_context_free(c1);
  onerec_context_free(c2);
}

/* Data-parallel shards: the summed gradient of 2 slices is the whole batch's (within float
 * rounding), MoE loads of every slice reach the bias update, a batch smaller than the shard count
 * works, and the result does not depend on the thread count (parallel or one after another). */
static void test_shards(void **state) {
  (void)state;
  onerec_context *c1 = tu_cpu_context(1), *c2 = tu_cpu_context(2);
  for (int moe = 0; moe < 2; moe++) {
    onerec_model *m1 = new_model(c2, tiny_cfg(moe), 21), *m2 = new_model(c2, tiny_cfg(moe), 21);
    ONEREC_OPTS(onerec_trainer_opts, o1, .max_batch = MAXU);
    ONEREC_OPTS(onerec_trainer_opts, o2, .max_batch = MAXU, .shards = 2);
    onerec_trainer *t1 = NULL, *t2 = NULL;
    assert_ok(onerec_trainer_create(m1, &o1, &t1));
    assert_ok(onerec_trainer_create(m2, &o2, &t2));
    const size_t n = m1->n_params;
    for (int nu = 1; nu <= MAXU; nu += MAXU - 1) {
      users f;
      onerec_user_batch u;
      make_users(&f, &u, 0, nu, 31);
      float *g1 = grads_of(t1, &u, f.codes), *g2 = grads_of(t2, &u, f.codes);
      float gmax = 0.0f;
      for (size_t i = 0; i < n; i++) gmax = fmaxf(gmax, fabsf(g1[i]));
      assert_true(gmax > 0.0f);
      tu_assert_close(g2, g1, n, 1e-3f, 1e-5f * gmax, "2-shard gradient");
      free(g1);
      free(g2);
      if (moe) { /* every slice's routed tokens reach shard 0's count */
        int64_t l1[16], l2[16];
        assert_ok(onerec_session_expert_load(t1->s, l1, 16, NULL, 1));
        assert_ok(onerec_session_expert_load(t2->s, l2, 16, NULL, 1));
        for (int l = 0; l < 4; l++) {
          int64_t a = 0, b = 0;
          for (int e = 0; e < 4; e++) a += l1[l * 4 + e], b += l2[l * 4 + e];
          assert_true(a > 0);
          assert_int_equal(a, b);
        }
      }
    }
    onerec_trainer_free(t1);
    onerec_trainer_free(t2);
    onerec_model_free(m1);
    onerec_model_free(m2);
  }
  /* a bad target in the second slice: the error names it, the step updates nothing */
  {
    onerec_model *m = new_model(c2, tiny_cfg(1), 23);
    ONEREC_OPTS(onerec_trainer_opts, o2, .max_batch = MAXU, .shards = 2);
    onerec_trainer *t = NULL;
    assert_ok(onerec_trainer_create(m, &o2, &t));
    users f;
    onerec_user_batch u;
    make_users(&f, &u, 0, MAXU, 32);
    f.codes[3 * 3 + 1] = 7; /* user 3, level 1: outside the codebook of 7 */
    float *w0 = malloc(m->n_params * sizeof(float));
    assert_non_null(w0);
    memcpy(w0, m->params, m->n_params * sizeof(float));
    assert_status(onerec_trainer_step(t, &u, f.codes, NULL), ONEREC_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(onerec_last_error(), "codebook"));
    assert_non_null(strstr(onerec_last_error(), "shard 1: rows 2..3"));
    assert_memory_equal(w0, m->params, m->n_params * sizeof(float));
    f.codes[3 * 3 + 1] = 1;
    assert_ok(onerec_trainer_step(t, &u, f.codes, NULL));
    free(w0);
    onerec_trainer_free(t);
    onerec_model_free(m);
  }
  /* 2 shards on 1 thread (one after another) == on 2 threads (at once), dropout included */
  onerec_model *ma = new_model(c1, tiny_cfg(1), 22), *mb = new_model(c2, tiny_cfg(1), 22);
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = MAXU, .shards = 2, .dropout = 0.2f,
              .input_dropout = 0.1f, .warmup_steps = 1);
  onerec_trainer *ta = NULL, *tb = NULL;
  assert_ok(onerec_trainer_create(ma, &o, &ta));
  assert_ok(onerec_trainer_create(mb, &o, &tb));
  run_steps(ta, 0, 3);
  run_steps(tb, 0, 3);
  assert_memory_equal(ma->params, mb->params, ma->n_params * sizeof(float));
  onerec_trainer_free(ta);
  onerec_trainer_free(tb);
  onerec_model_free(ma);
  onerec_model_free(mb);
  onerec_context_free(c1);
  onerec_context_free(c2);
}

/* A non-finite loss fails the step and updates nothing. */
static void test_non_finite(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_model *m = new_model(ctx, tiny_cfg(0), 13);
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = MAXU);
  onerec_trainer *t = NULL;
  assert_ok(onerec_trainer_create(m, &o, &t));
  m->params[m->table[m->n_table - 1].offset] = NAN; /* a head weight */
  float *w = malloc(m->n_params * sizeof(float));
  memcpy(w, m->params, m->n_params * sizeof(float));
  users f;
  onerec_user_batch u;
  make_users(&f, &u, 0, 2, 1);
  assert_status(onerec_trainer_step(t, &u, f.codes, NULL), ONEREC_ERR_INTERNAL);
  assert_non_null(strstr(onerec_last_error(), "non-finite"));
  ONEREC_OPTS(onerec_train_stats, st);
  assert_ok(onerec_trainer_stats(t, &st));
  assert_int_equal(st.step, 0);
  assert_int_equal(st.micro, 0);
  assert_memory_equal(w, m->params, m->n_params * sizeof(float)); /* NaN bits compared as bytes */
  free(w);
  onerec_trainer_free(t);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

static void test_args(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_model *m = new_model(ctx, tiny_cfg(0), 8);
  onerec_trainer *t = NULL;
  assert_status(onerec_trainer_create(NULL, NULL, &t), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_trainer_create(m, NULL, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_trainer_opts, bad, .beta1 = 1.5f);
  assert_status(onerec_trainer_create(m, &bad, &t), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_trainer_opts, bad_drop, .dropout = 1.0f);
  assert_status(onerec_trainer_create(m, &bad_drop, &t), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_trainer_opts, bad_in_drop, .input_dropout = -0.1f);
  assert_status(onerec_trainer_create(m, &bad_in_drop, &t), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_trainer_opts, bad_ema, .ema_decay = 1.0f);
  assert_status(onerec_trainer_create(m, &bad_ema, &t), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_trainer_opts, bad_smooth, .label_smoothing = 1.0f);
  assert_status(onerec_trainer_create(m, &bad_smooth, &t), ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "label_smoothing"));
  bad_smooth.label_smoothing = -0.5f;
  assert_status(onerec_trainer_create(m, &bad_smooth, &t), ONEREC_ERR_INVALID_ARGUMENT);
  bad_smooth.label_smoothing = NAN;
  assert_status(onerec_trainer_create(m, &bad_smooth, &t), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_trainer_opts, bad_shards, .shards = 65);
  assert_status(onerec_trainer_create(m, &bad_shards, &t), ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "shards"));
  bad_shards.shards = -1;
  assert_status(onerec_trainer_create(m, &bad_shards, &t), ONEREC_ERR_INVALID_ARGUMENT);
  assert_null(t);
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = 2, .accum_steps = 2);
  assert_ok(onerec_trainer_create(m, &o, &t));
  users f;
  onerec_user_batch u;
  make_users(&f, &u, 0, 3, 1);
  assert_status(onerec_trainer_step(t, &u, f.codes, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "max_batch"));
  make_users(&f, &u, 0, 2, 1);
  assert_status(onerec_trainer_step(t, NULL, f.codes, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_trainer_step(t, &u, NULL, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  f.codes[4] = 7;
  assert_status(onerec_trainer_step(t, &u, f.codes, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "codebook"));
  f.codes[4] = 1;
  f.st[0] = 5; /* static id out of its vocabulary */
  assert_status(onerec_trainer_step(t, &u, f.codes, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  f.st[0] = 1;
  assert_ok(onerec_trainer_step(t, &u, f.codes, NULL));
  assert_status(onerec_trainer_save(t, "/tmp/onerec_never.h5", 0), ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "accumulated"));
  assert_status(onerec_trainer_stats(t, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_trainer_free(t);
  onerec_trainer_free(NULL);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

/* Reads dataset `name` (rank given, any extent) into a fresh buffer. */
static void *read_ds(orx_h5 *h, hid_t loc, const char *name, orx_h5_type type, int rank,
                     int64_t *count) {
  if (!orx_h5_exists(h, loc, name)) return NULL;
  int64_t dims[4] = {-1, -1, -1, -1};
  assert_ok(orx_h5_read(h, loc, name, type, rank, dims, NULL, 0));
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= dims[i];
  size_t es = type == ORX_H5_F64 || type == ORX_H5_I64 ? 8 : type == ORX_H5_U8 ? 1 : 4;
  void *buf = malloc((size_t)(n ? n : 1) * es);
  assert_non_null(buf);
  assert_ok(orx_h5_read(h, loc, name, type, rank, dims, buf, (size_t)n * es));
  if (count) *count = n;
  return buf;
}

static double attr_f(orx_h5 *h, hid_t g, const char *name) {
  double v = 0.0;
  assert_ok(orx_h5_attr_read_f64(h, g, name, &v));
  return v;
}

static void test_golden_step(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  onerec_model *m = NULL;
  assert_ok(onerec_model_load(ctx, TRAIN_FIXTURE, &m));
  const int sid = m->cfg.item_input == ONEREC_ITEM_BY_SID;
  orx_h5 h;
  assert_ok(orx_h5_open(&h, TRAIN_FIXTURE));
  hid_t in, tg, og, gg, ug;
  assert_ok(orx_h5_group_open(&h, "train/inputs", &in));
  int64_t batch = 0;
  assert_ok(orx_h5_attr_read_i64(&h, in, "batch", &batch));
  ONEREC_OPTS(onerec_user_batch, u, .batch = batch);
  void *bufs[16] = {0};
  int nb = 0;
  u.static_cat = bufs[nb++] = read_ds(&h, in, "static_cat", ORX_H5_I32, 2, NULL);
  u.static_num = bufs[nb++] = read_ds(&h, in, "static_num", ORX_H5_F32, 2, NULL);
  static const char *const seqs[3] = {"short_term", "positive", "lifelong"};
  onerec_seq_input *sp[3] = {&u.short_term, &u.positive, &u.lifelong};
  for (int p = 0; p < 3; p++) {
    char name[64];
    snprintf(name, sizeof name, "%s/offsets", seqs[p]);
    sp[p]->offsets = bufs[nb++] = read_ds(&h, in, name, ORX_H5_I64, 1, NULL);
    snprintf(name, sizeof name, "%s/items", seqs[p]);
    sp[p]->items = bufs[nb++] = read_ds(&h, in, name, ORX_H5_I32, sid ? 2 : 1, NULL);
    snprintf(name, sizeof name, "%s/cat", seqs[p]);
    sp[p]->cat = bufs[nb++] = read_ds(&h, in, name, ORX_H5_I32, 2, NULL);
    snprintf(name, sizeof name, "%s/num", seqs[p]);
    sp[p]->num = bufs[nb++] = read_ds(&h, in, name, ORX_H5_F32, 2, NULL);
  }
  orx_h5_group_close(in);
  assert_ok(orx_h5_group_open(&h, "train", &tg));
  assert_ok(orx_h5_group_open(&h, "train/opts", &og));
  assert_ok(orx_h5_group_open(&h, "train/grads", &gg));
  assert_ok(orx_h5_group_open(&h, "train/updated", &ug));
  int32_t *codes = read_ds(&h, tg, "codes", ORX_H5_I32, 2, NULL);
  assert_non_null(codes);
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = batch);
  o.lr_dense = (float)attr_f(&h, og, "lr_dense");
  o.lr_sparse = (float)attr_f(&h, og, "lr_sparse");
  o.beta1 = (float)attr_f(&h, og, "beta1");
  o.beta2 = (float)attr_f(&h, og, "beta2");
  o.adam_eps = (float)attr_f(&h, og, "adam_eps");
  o.weight_decay = (float)attr_f(&h, og, "weight_decay");
  o.warmup_steps = (int64_t)attr_f(&h, og, "warmup_steps");
  o.total_steps = (int64_t)attr_f(&h, og, "total_steps");
  o.min_lr_ratio = (float)attr_f(&h, og, "min_lr_ratio");
  o.clip_norm = (float)attr_f(&h, og, "clip_norm");
  o.moe_bias_rate = (float)attr_f(&h, og, "moe_bias_rate");
  const double want_loss = attr_f(&h, tg, "loss"), want_norm = attr_f(&h, tg, "grad_norm");

  onerec_trainer *t = NULL;
  assert_ok(onerec_trainer_create(m, &o, &t));
  float *g = grads_of(t, &u, codes);
  /* the loss and the gradients of the tensors the fixture holds */
  int ngrads = 0;
  for (int i = 0; i < m->n_table; i++) {
    const orx_param *p = &m->table[i];
    char name[80];
    snprintf(name, sizeof name, "%s.%s", p->group, p->name);
    for (char *c = name; *c; c++)
      if (*c == '/') *c = '.';
    int64_t n = 0;
    float *want = read_ds(&h, gg, name, ORX_H5_F32, p->rank, &n);
    if (want) {
      assert_int_equal(n, (int64_t)p->count);
      float wmax = 0.0f;
      for (int64_t j = 0; j < n; j++) wmax = fmaxf(wmax, fabsf(want[j]));
      assert_true(wmax > 0.0f);
      tu_assert_close(g + p->offset, want, p->count, 2e-3f, 1e-4f * wmax, name);
      free(want);
      ngrads++;
    }
  }
  assert_true(ngrads >= 10);
  free(g);
  float *w0 = malloc(m->n_params * sizeof(float));
  memcpy(w0, m->params, m->n_params * sizeof(float));
  float loss = 0.0f;
  assert_ok(onerec_trainer_step(t, &u, codes, &loss));
  assert_true(fabs(loss - want_loss) <= 1e-5 * want_loss);
  ONEREC_OPTS(onerec_train_stats, st);
  assert_ok(onerec_trainer_stats(t, &st));
  assert_true(fabs(st.grad_norm - want_norm) <= 1e-4 * want_norm);
  /* every updated tensor, routing biases included */
  int nupd = 0;
  for (int i = 0; i < m->n_table; i++) {
    const orx_param *p = &m->table[i];
    char name[80];
    snprintf(name, sizeof name, "%s.%s", p->group, p->name);
    for (char *c = name; *c; c++)
      if (*c == '/') *c = '.';
    float *want = read_ds(&h, ug, name, ORX_H5_F32, p->rank, NULL);
    assert_non_null(want);
    tu_assert_close(m->params + p->offset, want, p->count, 1e-5f, 2e-5f, name);
    /* the step moved the weights by far more than the tolerance */
    double moved = 0.0;
    for (size_t j = 0; j < p->count; j++) moved = fmax(moved, fabs(w0[p->offset + j] - want[j]));
    if (p->no_grad) assert_true(moved >= 0.009);
    else assert_true(moved > 1e-3);
    free(want);
    nupd++;
  }
  assert_int_equal(nupd, m->n_table);
  free(w0);
  free(codes);
  for (int i = 0; i < nb; i++) free(bufs[i]);
  orx_h5_group_close(ug);
  orx_h5_group_close(gg);
  orx_h5_group_close(og);
  orx_h5_group_close(tg);
  orx_h5_close(&h);
  onerec_trainer_free(t);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_adamw_matches_naive), cmocka_unit_test(test_schedule),
      cmocka_unit_test(test_accumulation),        cmocka_unit_test(test_moe_bias_update),
      cmocka_unit_test(test_loss_decreases),      cmocka_unit_test(test_resume_bit_identical),
      cmocka_unit_test(test_args),              cmocka_unit_test(test_golden_step),
      cmocka_unit_test(test_ema),
      cmocka_unit_test(test_ema_swap_failure),
      cmocka_unit_test(test_threads_identical), cmocka_unit_test(test_non_finite),
      cmocka_unit_test(test_shards),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
