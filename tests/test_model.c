/* The model handle: presets and their parameter counts (0.015B against a count written out by
 * hand), configuration checks, initialisation, save / load and the load-time validation, and the
 * argument checks of sessions. The forward pass itself is checked against the PyTorch reference
 * in test_model_golden.c. */
#include "testutil.h"

#include <unistd.h>

#include "h5io.h"
#include "model_impl.h"

/* A small model with every pathway: 2 + 2 layers, d_model 16. */
static onerec_model_config small_cfg(void) {
  ONEREC_OPTS(onerec_model_config, c);
  assert_ok(onerec_model_config_preset("0.015B", &c));
  c.enc_layers = c.dec_layers = 2;
  c.d_model = 16;
  c.heads = 2;
  c.ffn_dim = 24;
  c.levels = 3;
  c.codebook = 16;
  c.short_len = 4;
  c.positive_len = 5;
  c.lifelong_queries = 3;
  c.lifelong_tokens = 6;
  c.lifelong_cluster_max = 3;
  c.lifelong_max_items = 40;
  c.static_cat_vocab[0] = 50;
  c.static_emb_dim = 4;
  c.item_dim = 8;
  c.seq_cat_vocab[0] = 30;
  c.seq_cat_dim[0] = 8;
  c.seq_cat_dim[1] = 4;
  c.seq_cat_dim[2] = 4;
  return c;
}

static void tmp_path(char *buf, size_t len) {
  snprintf(buf, len, "/tmp/onerec_model_XXXXXX");
  int fd = mkstemp(buf);
  assert_true(fd >= 0);
  close(fd);
}

static void test_presets(void **state) {
  (void)state;
  static const char *const names[] = {"0.015B", "0.121B", "0.935B", "2.633B", "default"};
  int64_t counts[5];
  for (int i = 0; i < 5; i++) {
    ONEREC_OPTS(onerec_model_config, c);
    assert_ok(onerec_model_config_preset(names[i], &c));
    assert_ok(onerec_model_config_param_count(&c, &counts[i]));
    assert_int_equal(c.enc_layers, c.dec_layers);
    assert_int_equal(c.ffn_dim, 2 * c.d_model);
    assert_int_equal(c.levels, 3);
    assert_int_equal(c.codebook, 8192);
    assert_int_equal(c.short_len, 20);
    assert_int_equal(c.positive_len, 256);
    assert_int_equal(c.lifelong_queries, 128);
    assert_int_equal(c.qformer_layers, 2);
  }
  assert_int_equal(counts[4], counts[0]);
  assert_true(counts[0] < counts[1] && counts[1] < counts[2] && counts[2] < counts[3]);

  ONEREC_OPTS(onerec_model_config, c);
  assert_ok(onerec_model_config_preset("0.935B", &c));
  /* 2/3 x 4 x 1024 = 2730.7, rounded up to a multiple of 128 */
  assert_int_equal(c.expert_dim, 2816);
  assert_int_equal(c.experts, 24);
  assert_int_equal(c.top_k, 2);
  assert_int_equal(c.moe_encoder, 0);
  assert_int_equal(c.moe_decoder, 1);
  assert_ok(onerec_model_config_preset("2.633B", &c));
  assert_int_equal(c.enc_layers, 24);
  assert_int_equal(c.top_k, 4);
  assert_int_equal(c.moe_encoder, 1);
  assert_int_equal(c.moe_decoder, 1);

  assert_status(onerec_model_config_preset("1B", &c), ONEREC_ERR_NOT_FOUND);
  assert_non_null(strstr(onerec_last_error(), "0.015B"));
  assert_status(onerec_model_config_preset(NULL, &c), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_model_config_preset("0.015B", NULL), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_model_config bad = {0};
  assert_status(onerec_model_config_preset("0.015B", &bad), ONEREC_ERR_INVALID_ARGUMENT);

  /* a caller with an older, shorter struct gets only the fields it has */
  struct {
    size_t sz;
    int32_t enc_layers, dec_layers, d_model;
  } old = {sizeof old, 0, 0, 0};
  assert_ok(onerec_model_config_preset("0.121B", (onerec_model_config *)&old));
  assert_int_equal(old.d_model, 1024);
}

/* The parameter count of preset 0.015B, by hand, with the preset's schema (model.h):
 * d = 128, 4 + 4 layers, 4 heads, SwiGLU FFN 256, 3 levels x 8192 codes, items by semantic ID
 * (3 x 8192 x 128), static uid 8192 / gender 4 / age 16 at 64-d, per interaction author 8192 x
 * 512, tag 1024 x 128, label 16 x 128 and 3 numeric features, L_s 20, L_p 256, 128 queries. */
static void test_hand_count_0_015B(void **state) {
  (void)state;
  const int64_t d = 128, K = 8192;
  const int64_t attn = d + d * 3 * d + d * d;             /* norm, wqkv, wo        =  65664 */
  const int64_t xattn = d + d * d + d * 2 * d + d * d;    /* norm, wq, wkv, wo     =  65664 */
  const int64_t ffn = d + 3 * d * 256;                    /* norm, gate, up, down  =  98432 */
  const int64_t features = 8192 * 64 + 4 * 64 + 16 * 64   /* static tables         = 525568 */
                           + 3 * K * d                    /* item semantic IDs     = 3145728 */
                           + 8192 * 512 + 1024 * 128 + 16 * 128; /* author, tag, label */
  const int64_t seq_in = 3 * d + 512 + 128 + 128 + 3;     /* = 1155 */
  const int64_t path_static = 3 * 64 * d + d + d * d;     /* w1, b1, w2 = 41088 */
  const int64_t path_seq = seq_in * d + d + d * d;        /* = 164352, x3 pathways */
  const int64_t qformer = 128 * d + 2 * (xattn + ffn);    /* queries + 2 layers = 344576 */
  const int64_t T = 1 + 20 + 256 + 128;                   /* encoder tokens = 405 */
  const int64_t encoder = T * d + 4 * (attn + ffn) + d;   /* pos, layers, final norm */
  const int64_t decoder = (1 + 2 * K) * d + 3 * d         /* BOS + level-1/2 tokens, pos */
                          + 4 * (attn + xattn + ffn) + d  /* layers, final norm */
                          + 3 * d * K;                    /* one head per level */
  const int64_t hand = features + path_static + 3 * path_seq + qformer + encoder + decoder;
  assert_int_equal(hand, 15748352);

  ONEREC_OPTS(onerec_model_config, c);
  assert_ok(onerec_model_config_preset("0.015B", &c));
  int64_t n = 0;
  assert_ok(onerec_model_config_param_count(&c, &n));
  assert_int_equal(n, hand);

  onerec_context *ctx = tu_cpu_context(2);
  onerec_model *m = NULL;
  assert_ok(onerec_model_create(ctx, &c, 7, &m));
  assert_int_equal(onerec_model_param_count(m), hand);
  assert_int_equal(onerec_model_encoder_len(m), T);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

static void test_config_checks(void **state) {
  (void)state;
  /* each case breaks one field; the message must name it */
  static const char *const fields[] = {
      "d_model", "heads", "experts", "top_k", "levels", "codebook", "every pathway",
      "static_cat_vocab[1]", "item_vocab", "seq_cat_dim[2]", "lifelong_cluster_max", "norm_eps"};
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
    onerec_model_config c = small_cfg();
    switch (i) {
      case 0: c.d_model = 15; break; /* not a multiple of heads = 2 */
      case 1: c.heads = 0; break;
      case 2: c.moe_decoder = 1; c.experts = 1; c.expert_dim = 8; break;
      case 3: c.moe_decoder = 1; c.experts = 4; c.top_k = 5; c.expert_dim = 8; break;
      case 4: c.levels = 9; break;
      case 5: c.codebook = 1; break;
      case 6: c.use_static = c.use_short = c.use_positive = c.use_lifelong = 0; break;
      case 7: c.static_cat_vocab[1] = 0; break;
      case 8: c.item_input = ONEREC_ITEM_BY_ID; c.item_vocab = 0; break;
      case 9: c.seq_cat_dim[2] = 0; break;
      case 10: c.lifelong_cluster_max = 0; break;
      case 11: c.norm_eps = 0.0f; break;
    }
    int64_t n = 0;
    assert_status(onerec_model_config_param_count(&c, &n), ONEREC_ERR_INVALID_ARGUMENT);
    if (!strstr(onerec_last_error(), fields[i]))
      fail_msg("case %zu: message '%s' does not name %s", i, onerec_last_error(), fields[i]);
  }
  /* a pathway left out no longer needs its fields */
  onerec_model_config c = small_cfg();
  c.use_lifelong = 0;
  c.lifelong_cluster_max = 0;
  int64_t with = 0, without = 0;
  assert_ok(onerec_model_config_param_count(&c, &without));
  c = small_cfg();
  assert_ok(onerec_model_config_param_count(&c, &with));
  assert_true(without < with);
  assert_status(onerec_model_config_param_count(NULL, &with), ONEREC_ERR_INVALID_ARGUMENT);
}

/* Parameter values of a tensor of the model, by table name. */
static const orx_param *find_param(const onerec_model *m, const char *group, const char *name) {
  for (int i = 0; i < m->n_table; i++)
    if (!strcmp(m->table[i].group, group) && !strcmp(m->table[i].name, name)) return &m->table[i];
  fail_msg("no parameter %s/%s", group, name);
  return NULL;
}

static void test_create_init(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  onerec_model_config c = small_cfg();
  c.init_std = 0.5f;
  onerec_model *a = NULL, *b = NULL, *o = NULL;
  assert_ok(onerec_model_create(ctx, &c, 42, &a));
  assert_ok(onerec_model_create(ctx, &c, 42, &b));
  assert_ok(onerec_model_create(ctx, &c, 43, &o));
  assert_int_equal(a->n_params, b->n_params);
  assert_memory_equal(a->params, b->params, a->n_params * sizeof(float)); /* same seed */
  assert_memory_not_equal(a->params, o->params, a->n_params * sizeof(float));
  /* gains 1, biases 0, weights N(0, 0.5^2) */
  const orx_param *p = find_param(a, "encoder/layer1", "attn_norm");
  for (size_t i = 0; i < p->count; i++) assert_true(a->params[p->offset + i] == 1.0f);
  p = find_param(a, "short", "b1");
  for (size_t i = 0; i < p->count; i++) assert_true(a->params[p->offset + i] == 0.0f);
  p = find_param(a, "decoder", "heads");
  assert_int_equal(p->rank, 3);
  assert_int_equal(p->dims[0], 3);
  assert_int_equal(p->dims[1], 16);
  assert_int_equal(p->dims[2], 16);
  double s = 0, s2 = 0;
  for (size_t i = 0; i < p->count; i++) {
    double v = a->params[p->offset + i];
    s += v;
    s2 += v * v;
  }
  double mean = s / (double)p->count, sd = sqrt(s2 / (double)p->count - mean * mean);
  assert_true(fabs(mean) < 0.1);
  assert_true(fabs(sd - 0.5) < 0.05);

  onerec_model_config got;
  got.sz = sizeof got;
  assert_ok(onerec_model_config_get(a, &got));
  assert_memory_equal(&got, &c, sizeof c);
  assert_int_equal(onerec_model_param_count(NULL), -1);
  assert_int_equal(onerec_model_encoder_len(NULL), -1);
  assert_int_equal(onerec_model_encoder_len(a), 1 + 4 + 5 + 3);

  onerec_model *x = (onerec_model *)&got;
  assert_status(onerec_model_create(NULL, &c, 1, &x), ONEREC_ERR_INVALID_ARGUMENT);
  assert_null(x); /* out is cleared on failure */
  assert_status(onerec_model_create(ctx, NULL, 1, &x), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_model_create(ctx, &c, 1, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  c.heads = 3;
  assert_status(onerec_model_create(ctx, &c, 1, &x), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_model_free(NULL);
  onerec_model_free(a);
  onerec_model_free(b);
  onerec_model_free(o);
  onerec_context_free(ctx);
}

static void test_save_load(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  onerec_model_config variants[3];
  variants[0] = small_cfg();
  variants[1] = small_cfg(); /* MoE everywhere, items by id */
  variants[1].moe_encoder = variants[1].moe_decoder = 1;
  variants[1].experts = 4;
  variants[1].top_k = 2;
  variants[1].expert_dim = 12;
  variants[1].item_input = ONEREC_ITEM_BY_ID;
  variants[1].item_vocab = 77;
  variants[2] = small_cfg(); /* pathways left out */
  variants[2].use_static = variants[2].use_lifelong = 0;
  for (int v = 0; v < 3; v++) {
    onerec_model *m = NULL, *l = NULL;
    assert_ok(onerec_model_create(ctx, &variants[v], 5 + v, &m));
    char path[64];
    tmp_path(path, sizeof path);
    assert_ok(onerec_model_save(m, path));
    assert_ok(onerec_model_load(ctx, path, &l));
    assert_memory_equal(&l->cfg, &m->cfg, sizeof m->cfg);
    assert_int_equal(l->n_params, m->n_params);
    for (int i = 0; i < m->n_table; i++) {
      const orx_param *p = &m->table[i];
      assert_memory_equal(l->params + p->offset, m->params + p->offset, p->count * sizeof(float));
    }
    /* readable as plain HDF5: one dataset per parameter, shaped as documented */
    orx_h5 h;
    assert_ok(orx_h5_open(&h, path));
    int64_t dims[2] = {-1, -1};
    assert_ok(orx_h5_read(&h, h.file, "encoder/layer1/wqkv", ORX_H5_F32, 2, dims, NULL, 0));
    assert_int_equal(dims[0], 16);
    assert_int_equal(dims[1], 48);
    orx_h5_close(&h);
    /* saving over an existing file replaces it atomically */
    assert_ok(onerec_model_save(l, path));
    onerec_model_free(l);
    assert_ok(onerec_model_load(ctx, path, &l));
    onerec_model_free(l);
    remove(path);
    onerec_model_free(m);
  }
  onerec_context_free(ctx);
}

static void test_load_errors(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_model_config c = small_cfg();
  onerec_model *m = NULL, *l = NULL;
  assert_ok(onerec_model_create(ctx, &c, 1, &m));
  char path[64];
  tmp_path(path, sizeof path);

  assert_status(onerec_model_load(ctx, "/nonexistent/m.h5", &l), ONEREC_ERR_IO);
  FILE *f = fopen(path, "w");
  fputs("not hdf5", f);
  fclose(f);
  assert_status(onerec_model_load(ctx, path, &l), ONEREC_ERR_FORMAT);

  /* the file claims a wider FFN than its datasets have */
  onerec_model_config wrong = c;
  wrong.ffn_dim = 32;
  assert_ok(orx_model_write(m, path, &wrong));
  assert_status(onerec_model_load(ctx, path, &l), ONEREC_ERR_SHAPE);
  if (!strstr(onerec_last_error(), "qformer/layer0/w_gate: expected [16,32], file has [16,24]"))
    fail_msg("message: %s", onerec_last_error());
  assert_null(l);

  /* the file claims a third encoder layer */
  wrong = c;
  wrong.enc_layers = 3;
  assert_ok(orx_model_write(m, path, &wrong));
  assert_status(onerec_model_load(ctx, path, &l), ONEREC_ERR_FORMAT);
  assert_non_null(strstr(onerec_last_error(), "encoder/layer2"));

  /* an invalid stored configuration */
  wrong = c;
  wrong.heads = 3;
  assert_ok(orx_model_write(m, path, &wrong));
  assert_status(onerec_model_load(ctx, path, &l), ONEREC_ERR_FORMAT);
  assert_non_null(strstr(onerec_last_error(), "d_model"));

  /* another kind of file; a newer format */
  orx_h5 h;
  assert_ok(orx_h5_create(&h, path));
  assert_ok(orx_h5_stamp(&h, "catalog", 1));
  assert_ok(orx_h5_commit(&h));
  assert_status(onerec_model_load(ctx, path, &l), ONEREC_ERR_FORMAT);
  assert_non_null(strstr(onerec_last_error(), "catalog"));
  assert_ok(orx_h5_create(&h, path));
  assert_ok(orx_h5_stamp(&h, "model", 99));
  assert_ok(orx_h5_commit(&h));
  assert_status(onerec_model_load(ctx, path, &l), ONEREC_ERR_VERSION);

  assert_status(onerec_model_load(NULL, path, &l), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_model_load(ctx, NULL, &l), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_model_load(ctx, path, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_model_save(NULL, path), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_model_save(m, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_model_save(m, "/nonexistent/dir/m.h5"), ONEREC_ERR_IO);
  remove(path);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

static void test_session_checks(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_model_config c = small_cfg();
  onerec_model *m = NULL;
  assert_ok(onerec_model_create(ctx, &c, 1, &m));
  onerec_session *s = NULL;
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = 2, .max_targets = 3);
  assert_status(onerec_session_create(NULL, ctx, &so, &s), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_session_create(m, ctx, &so, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_session_opts, bad, .max_batch = -1);
  assert_status(onerec_session_create(m, ctx, &bad, &s), ONEREC_ERR_INVALID_ARGUMENT);
  bad.max_batch = 1;
  bad.max_lifelong = c.lifelong_max_items + 1;
  assert_status(onerec_session_create(m, ctx, &bad, &s), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(onerec_session_create(m, NULL, NULL, &s)); /* defaults, the model's context */
  onerec_session_free(s);
  assert_ok(onerec_session_create(m, ctx, &so, &s));

  int32_t codes[3] = {1, 2, 3};
  float logits[3 * 16];
  assert_status(onerec_session_decode(s, NULL, codes, logits, 48), ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "encode"));

  int64_t off[3] = {0, 2, 3};
  int32_t items[3 * 3] = {1, 2, 3, 4, 5, 16, 7, 8, 9}; /* row 1, level 2: 16 >= codebook */
  ONEREC_OPTS(onerec_user_batch, u, .batch = 2);
  u.short_term.offsets = off;
  u.short_term.items = items;
  float z[1];
  assert_status(onerec_session_encode(s, &u, NULL, 0, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "short_term: user 0, row 1"));
  items[5] = 5;
  int64_t dec[3] = {0, 2, 1};
  u.positive.offsets = dec;
  u.positive.items = items;
  assert_status(onerec_session_encode(s, &u, NULL, 0, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "positive"));
  u.positive.offsets = NULL;
  int32_t st[2 * 3] = {0, 0, 0, 0, 4, 0}; /* user 1, feature 1: gender 4 >= 4 */
  u.static_cat = st;
  assert_status(onerec_session_encode(s, &u, NULL, 0, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(onerec_last_error(), "static: user 1: feature 1"));
  u.static_cat = NULL;
  u.batch = 3;
  assert_status(onerec_session_encode(s, &u, NULL, 0, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  u.batch = 0;
  assert_status(onerec_session_encode(s, &u, NULL, 0, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  u.batch = 1;
  u.sz = 3;
  assert_status(onerec_session_encode(s, &u, NULL, 0, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  u.sz = sizeof u;
  assert_status(onerec_session_encode(s, &u, z, 1, NULL), ONEREC_ERR_BUFFER_TOO_SMALL);
  assert_status(onerec_session_encode(NULL, &u, NULL, 0, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_session_encode(s, NULL, NULL, 0, NULL), ONEREC_ERR_INVALID_ARGUMENT);

  int32_t layers = -1;
  assert_ok(onerec_session_expert_load(s, NULL, 0, &layers, 1));
  assert_int_equal(layers, 0); /* dense */
  assert_status(onerec_session_expert_load(NULL, NULL, 0, &layers, 0),
                ONEREC_ERR_INVALID_ARGUMENT);
  onerec_session_free(s);
  onerec_session_free(NULL);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_presets),        cmocka_unit_test(test_hand_count_0_015B),
      cmocka_unit_test(test_config_checks),  cmocka_unit_test(test_create_init),
      cmocka_unit_test(test_save_load),      cmocka_unit_test(test_load_errors),
      cmocka_unit_test(test_session_checks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
