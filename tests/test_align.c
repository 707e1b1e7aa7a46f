/* Item alignment (onerec/align.h): the InfoNCE gradient of every parameter tensor against
 * central differences, learning on a constructed task (pairs inside hidden groups that the raw
 * features barely show), unit-norm embeddings, save / load continuing exactly, the features
 * file writer, and bad input. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "align_impl.h"

#define IN 5
#define NT 3

static onerec_aligner_config tiny(void) {
  ONEREC_OPTS(onerec_aligner_config, c, .in_dim = IN, .tokens = NT, .queries = 2, .layers = 2,
              .d_model = 8, .heads = 2, .ffn_dim = 8, .temperature = 0.5f, .max_batch = 6,
              .warmup_steps = 1);
  return c;
}

static void test_gradient(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_aligner_config c = tiny();
  onerec_aligner *a = NULL;
  assert_ok(onerec_aligner_create(ctx, &c, 3, &a));
  /* weights well above the 0.02 init, so gradients stand above fp32 rounding */
  uint64_t r = 5;
  for (size_t j = 0; j < a->n_floats; j++) a->params[j] += 0.4f * tu_rand(&r);
  const int64_t n_items = 9;
  float items[9 * NT * IN];
  tu_fill(items, sizeof items / sizeof *items, 17);
  uint8_t mask[9 * NT];
  memset(mask, 1, sizeof mask);
  mask[2 * NT + 1] = 0; /* a missing token */
  const int64_t first[5] = {0, 2, 4, 6, 2}, second[5] = {1, 3, 5, 7, 8};
  double l0 = 0.0;
  assert_ok(orx_aligner_grad(a, "test", items, mask, n_items, first, second, 5, &l0));
  assert_true(l0 > 0.0 && l0 < 10.0);
  float *g = malloc(a->n_floats * sizeof(float));
  assert_non_null(g);
  memcpy(g, a->grad, a->n_floats * sizeof(float));
  const float h = 1e-2f;
  int checked = 0;
  for (int t = 0; t < a->n_tensors; t++) {
    const orx_align_tensor *p = &a->tensors[t];
    size_t big = 0;
    for (size_t j = 1; j < p->count; j++)
      if (fabsf(g[p->offset + j]) > fabsf(g[p->offset + big])) big = j;
    const double gmax = fabs((double)g[p->offset + big]);
    assert_true(gmax > 0.0); /* every tensor receives gradient */
    for (int k = 0; k < 4; k++) {
      size_t j = k == 0 ? big : (size_t)((tu_rand(&r) + 1.0f) * 0.5f * (float)p->count) % p->count;
      float *w = &a->params[p->offset + j], w0 = *w;
      double lp = 0.0, lm = 0.0;
      *w = w0 + h;
      assert_ok(orx_aligner_grad(a, "test", items, mask, n_items, first, second, 5, &lp));
      *w = w0 - h;
      assert_ok(orx_aligner_grad(a, "test", items, mask, n_items, first, second, 5, &lm));
      *w = w0;
      const double fd = (lp - lm) / (2.0 * h), an = g[p->offset + j];
      const double tol = 0.03 * fabs(fd) + 0.01 * gmax + 2e-4;
      if (!(fabs(fd - an) <= tol))
        fail_msg("tensor %d [%zu]: analytic %.6g, finite difference %.6g (tensor max %.3g)", t,
                 j, an, fd, gmax);
      checked++;
    }
  }
  assert_true(checked == 4 * a->n_tensors);
  free(g);
  onerec_aligner_free(a);
  onerec_context_free(ctx);
}

/* Groups of items whose features carry the group only as a weak offset under strong noise;
 * pairs are drawn inside groups. After training, an item's nearest neighbour (cosine) among
 * the aligned vectors is far more often of its group than among the raw features. */
#define G 6
#define PER 12
static double nn_same_group(const float *x, int64_t n, int64_t dim) {
  int hits = 0;
  for (int64_t i = 0; i < n; i++) {
    double best = -2.0;
    int64_t arg = -1;
    double ni = 0.0;
    for (int64_t k = 0; k < dim; k++) ni += (double)x[i * dim + k] * x[i * dim + k];
    for (int64_t j = 0; j < n; j++) {
      if (j == i) continue;
      double dot = 0.0, nj = 0.0;
      for (int64_t k = 0; k < dim; k++) {
        dot += (double)x[i * dim + k] * x[j * dim + k];
        nj += (double)x[j * dim + k] * x[j * dim + k];
      }
      double cs = dot / sqrt(ni * nj + 1e-30);
      if (cs > best) {
        best = cs;
        arg = j;
      }
    }
    hits += arg / PER == i / PER;
  }
  return (double)hits / (double)n;
}

static void test_learns_groups(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(2);
  ONEREC_OPTS(onerec_aligner_config, c, .in_dim = 16, .tokens = 2, .queries = 2, .layers = 2,
              .d_model = 16, .heads = 2, .max_batch = 24, .lr = 3e-3f, .temperature = 0.1f,
              .warmup_steps = 10);
  onerec_aligner *a = NULL;
  assert_ok(onerec_aligner_create(ctx, &c, 1, &a));
  const int64_t n = G * PER, w = 2 * 16;
  float *items = malloc((size_t)(n * w) * sizeof(float));
  float *grp = malloc((size_t)(G * w) * sizeof(float));
  assert_non_null(items);
  assert_non_null(grp);
  tu_fill(grp, (size_t)(G * w), 7);
  tu_fill(items, (size_t)(n * w), 8);
  for (int64_t i = 0; i < n; i++)
    for (int64_t k = 0; k < w; k++) items[i * w + k] += 0.35f * grp[(i / PER) * w + k];
  const double raw = nn_same_group(items, n, w);
  uint64_t r = 3;
  int64_t first[24], second[24];
  float loss0 = 0.0f, loss = 0.0f;
  for (int step = 0; step < 300; step++) {
    for (int k = 0; k < 24; k++) {
      /* one pair per group and slot, so in-batch negatives come from other groups */
      int64_t gi = k % G;
      int64_t i = gi * PER + (int64_t)((tu_rand(&r) + 1.0f) * 0.5f * PER) % PER;
      int64_t j = gi * PER + (int64_t)((tu_rand(&r) + 1.0f) * 0.5f * PER) % PER;
      first[k] = i;
      second[k] = j;
    }
    assert_ok(onerec_aligner_step(a, items, NULL, n, first, second, 24, &loss));
    if (step == 0) loss0 = loss;
  }
  assert_int_equal(onerec_aligner_steps(a), 300);
  const int64_t D = onerec_aligner_dim(a);
  assert_int_equal(D, 32);
  float *z = malloc((size_t)(n * D) * sizeof(float));
  assert_non_null(z);
  assert_ok(onerec_aligner_embed(a, items, NULL, n, z, (size_t)(n * D)));
  for (int64_t i = 0; i < n; i++) {
    double s = 0.0;
    for (int64_t k = 0; k < D; k++) s += (double)z[i * D + k] * z[i * D + k];
    assert_true(fabs(s - 1.0) < 1e-4);
  }
  const double aligned = nn_same_group(z, n, D);
  print_message("loss %.3f -> %.3f; nearest neighbour in the same group: raw %.2f, aligned %.2f\n",
                (double)loss0, (double)loss, raw, aligned);
  assert_true(loss < 0.6f * loss0);
  assert_true(aligned > raw + 0.2);
  assert_true(aligned > 0.8);
  free(z);
  free(items);
  free(grp);
  onerec_aligner_free(a);
  onerec_context_free(ctx);
}

static void run_steps(onerec_aligner *a, const float *items, int64_t n, int from, int to) {
  for (int s = from; s < to; s++) {
    int64_t f[4], g[4];
    for (int k = 0; k < 4; k++) {
      f[k] = (s * 3 + k) % n;
      g[k] = (s * 5 + 2 * k + 1) % n;
    }
    float l;
    assert_ok(onerec_aligner_step(a, items, NULL, n, f, g, 4, &l));
  }
}

static void test_save_load_continues(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_aligner_config c = tiny();
  float items[10 * NT * IN];
  tu_fill(items, sizeof items / sizeof *items, 23);
  onerec_aligner *a = NULL, *b = NULL;
  assert_ok(onerec_aligner_create(ctx, &c, 9, &a));
  run_steps(a, items, 10, 0, 5);
  assert_ok(onerec_aligner_create(ctx, &c, 9, &b));
  run_steps(b, items, 10, 0, 3);
  char path[] = "/tmp/onerec_align_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_ok(onerec_aligner_save(b, path));
  onerec_aligner_free(b);
  b = NULL;
  assert_ok(onerec_aligner_load(ctx, path, &b));
  assert_int_equal(onerec_aligner_steps(b), 3);
  ONEREC_OPTS(onerec_aligner_config, got);
  assert_ok(onerec_aligner_config_get(b, &got));
  assert_int_equal(got.queries, 2);
  assert_true(got.temperature == 0.5f);
  run_steps(b, items, 10, 3, 5);
  assert_int_equal(a->n_floats, b->n_floats);
  assert_memory_equal(a->params, b->params, a->n_floats * sizeof(float));
  assert_memory_equal(a->adam_v, b->adam_v, a->n_floats * sizeof(float));

  /* a damaged file: truncated */
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  assert_int_equal(ftruncate(fileno(f), 200), 0);
  fclose(f);
  onerec_aligner *bad = NULL;
  onerec_status s = onerec_aligner_load(ctx, path, &bad);
  assert_true(s == ONEREC_ERR_FORMAT || s == ONEREC_ERR_IO);
  assert_null(bad);
  /* a file of another kind */
  const float x[6] = {1, 2, 3, 4, 5, 6};
  const int64_t ids[2] = {10, 11};
  assert_ok(onerec_features_file_write(path, x, 2, 3, ids, "test"));
  assert_status(onerec_aligner_load(ctx, path, &bad), ONEREC_ERR_FORMAT);
  /* which onerec_features_file_read reads back */
  int64_t rn = 0, rd = 0;
  int has = 0;
  assert_ok(onerec_features_file_info(path, &rn, &rd, &has));
  assert_int_equal(rn, 2);
  assert_int_equal(rd, 3);
  assert_true(has);
  float y[6];
  int64_t rid[2];
  assert_ok(onerec_features_file_read(path, y, 6, rid, 2));
  assert_memory_equal(x, y, sizeof x);
  assert_int_equal(rid[1], 11);
  unlink(path);
  onerec_aligner_free(a);
  onerec_aligner_free(b);
  onerec_context_free(ctx);
}

static void test_bad_input(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  onerec_aligner_config c = tiny();
  onerec_aligner *a = NULL;
  assert_status(onerec_aligner_create(NULL, &c, 1, &a), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_aligner_create(ctx, NULL, 1, &a), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_aligner_config b = c;
  b.heads = 3;
  assert_status(onerec_aligner_create(ctx, &b, 1, &a), ONEREC_ERR_INVALID_ARGUMENT);
  b = c;
  b.in_dim = 0;
  assert_status(onerec_aligner_create(ctx, &b, 1, &a), ONEREC_ERR_INVALID_ARGUMENT);
  b = c;
  b.temperature = -1.0f;
  assert_status(onerec_aligner_create(ctx, &b, 1, &a), ONEREC_ERR_INVALID_ARGUMENT);
  assert_null(a);
  assert_ok(onerec_aligner_create(ctx, &c, 1, &a));
  float items[4 * NT * IN];
  tu_fill(items, sizeof items / sizeof *items, 1);
  int64_t f[7] = {0, 1, 2, 3, 0, 1, 2}, g[7] = {1, 2, 3, 0, 2, 3, 0};
  float l;
  assert_status(onerec_aligner_step(NULL, items, NULL, 4, f, g, 2, &l), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_aligner_step(a, NULL, NULL, 4, f, g, 2, &l), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_aligner_step(a, items, NULL, 4, f, g, 1, &l), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_aligner_step(a, items, NULL, 4, f, g, 7, &l), ONEREC_ERR_INVALID_ARGUMENT);
  g[1] = 4;
  assert_status(onerec_aligner_step(a, items, NULL, 4, f, g, 2, &l), ONEREC_ERR_INVALID_ARGUMENT);
  g[1] = -1;
  assert_status(onerec_aligner_step(a, items, NULL, 4, f, g, 2, &l), ONEREC_ERR_INVALID_ARGUMENT);
  g[1] = 2;
  items[3] = NAN;
  assert_status(onerec_aligner_step(a, items, NULL, 4, f, g, 2, &l), ONEREC_ERR_INVALID_ARGUMENT);
  float z[4 * 16];
  assert_status(onerec_aligner_embed(a, items, NULL, 4, z, 64), ONEREC_ERR_INVALID_ARGUMENT);
  items[3] = 0.0f;
  assert_int_equal(onerec_aligner_steps(a), 0); /* nothing was applied */
  assert_status(onerec_aligner_embed(a, items, NULL, 4, z, 63), ONEREC_ERR_BUFFER_TOO_SMALL);
  assert_ok(onerec_aligner_embed(a, items, NULL, 4, z, 64));
  /* an item whose tokens are all missing still gets a finite unit vector */
  uint8_t mask[4 * NT];
  memset(mask, 1, sizeof mask);
  memset(mask + NT, 0, NT);
  assert_ok(onerec_aligner_embed(a, items, mask, 4, z, 64));
  for (int k = 0; k < 64; k++) assert_true(isfinite(z[k]));
  assert_status(onerec_aligner_save(a, "/nonexistent-dir/x.h5"), ONEREC_ERR_IO);
  onerec_aligner *x = NULL;
  assert_status(onerec_aligner_load(ctx, "/nonexistent-dir/x.h5", &x), ONEREC_ERR_IO);
  assert_null(x);
  assert_status(onerec_features_file_write("/tmp/x.h5", items, 0, 3, NULL, NULL),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_int_equal(onerec_aligner_dim(NULL), -1);
  onerec_aligner_free(NULL);
  onerec_aligner_free(a);
  onerec_context_free(ctx);
}

/* Staging smaller than the output (2 x 2 x 1 x 3 floats vs 4 x 64): creation must not overflow
 * it (the ASan build checks), and "none" (< 0) for decay and warm-up survives a file. */
static void test_small_staging_and_none(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  ONEREC_OPTS(onerec_aligner_config, c, .in_dim = 3, .tokens = 1, .queries = 4, .d_model = 64,
              .layers = 1, .max_batch = 2, .weight_decay = -1.0f, .warmup_steps = -1);
  onerec_aligner *a = NULL, *b = NULL;
  assert_ok(onerec_aligner_create(ctx, &c, 2, &a));
  ONEREC_OPTS(onerec_aligner_config, got);
  assert_ok(onerec_aligner_config_get(a, &got));
  assert_true(got.weight_decay == 0.0f);
  assert_int_equal(got.warmup_steps, 0);
  char path[] = "/tmp/onerec_align_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_ok(onerec_aligner_save(a, path));
  assert_ok(onerec_aligner_load(ctx, path, &b));
  assert_ok(onerec_aligner_config_get(b, &got));
  assert_true(got.weight_decay == 0.0f);
  assert_int_equal(got.warmup_steps, 0);
  unlink(path);
  onerec_aligner_free(a);
  onerec_aligner_free(b);
  onerec_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gradient),
      cmocka_unit_test(test_learns_groups),
      cmocka_unit_test(test_save_load_continues),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_small_staging_and_none),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
