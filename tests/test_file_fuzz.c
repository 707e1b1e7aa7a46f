/* Damaged files never crash a reader: for every file kind the library reads (model, catalogue,
 * tokenizer, aligner, features, trainer checkpoint, HDF5 interaction file, Beauty text files),
 * a small valid file is written, then many deterministic mutations of it (truncation at a
 * random length, random bytes flipped, a random block overwritten) are loaded. Each load must
 * either succeed (a flip that only touched padding or free space) or fail with a status and a
 * message, and leave no HDF5 object open; the sanitizer build (make test-asan) turns any
 * out-of-bounds access or undefined behaviour into a failure.
 *
 * Each damaged file is loaded in a child process: HDF5 itself keeps internal state from some
 * damaged files that it cannot tear down at exit (its free lists; "infinite loop closing
 * library"), which would otherwise show up as leaks of the test process. Children end with
 * _exit, so only the parent, which never reads a damaged file, is checked for leaks. */
#include "testutil.h"

#include <hdf5.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MUTATIONS 40

static char dir[64];
static onerec_context *ctx;

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/onerec_fuzz_XXXXXX");
  if (!mkdtemp(dir)) return -1;
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = 1);
  return onerec_context_create(&co, &ctx) ? -1 : 0;
}

static int teardown(void **state) {
  (void)state;
  onerec_context_free(ctx);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) ? -1 : 0;
}

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* One mutation of src into dst (k picks the kind, so every kind is covered). */
static size_t mutate(unsigned char *dst, const unsigned char *src, size_t n, int k) {
  memcpy(dst, src, n);
  switch (k % 3) {
  case 0: /* truncated */
    return (size_t)(next() % n);
  case 1: /* a few bytes flipped */
    for (int i = 0, m = 1 + (int)(next() % 8); i < m; i++) dst[next() % n] ^= (unsigned char)(1 + next() % 255);
    return n;
  default: { /* a block of random bytes */
    size_t at = (size_t)(next() % n), len = 16 + (size_t)(next() % 112);
    for (size_t i = at; i < n && i < at + len; i++) dst[i] = (unsigned char)next();
    return n;
  }
  }
}

typedef onerec_status (*loader)(const char *path);

/* Loads `path` in a child process: 0 = loaded, 1 = refused with a message; anything else fails
 * the test (no message, HDF5 objects left open, a crash or a sanitizer report). */
static int load_isolated(loader load, const char *path, const char *what, int k) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    alarm(60); /* a reader that loops forever on a damaged file fails instead of hanging */
    onerec_clear_error();
    onerec_status s = load(path);
    /* codes 10..13, so that a sanitizer's own exit status (1) cannot pass for one of them */
    int code = s == ONEREC_OK ? 10 : onerec_last_error()[0] ? 11 : 12;
    if (H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) code = 13;
    _exit(code);
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  if (!WIFEXITED(st)) fail_msg("%s: mutation %d: the reader crashed (signal %d)", what, k, WTERMSIG(st));
  int code = WEXITSTATUS(st);
  if (code == 12) fail_msg("%s: mutation %d failed without a message", what, k);
  if (code == 13) fail_msg("%s: mutation %d left HDF5 objects open", what, k);
  if (code != 10 && code != 11)
    fail_msg("%s: mutation %d: the reader exited with %d (a sanitizer report?)", what, k, code);
  return code - 10;
}

/* Loads every mutation of the valid file `path`; returns how many loads failed (cleanly). */
static int fuzz(const char *path, loader load, const char *what) {
  assert_int_equal(load(path), ONEREC_OK); /* the original is valid */
  size_t n = 0;
  unsigned char *src = slurp(path, &n), *buf = malloc(n);
  assert_non_null(buf);
  char bad[256];
  snprintf(bad, sizeof bad, "%s.bad", path);
  int failed = 0;
  for (int k = 0; k < MUTATIONS; k++) {
    size_t m = mutate(buf, src, n, k);
    spit(bad, buf, m);
    failed += load_isolated(load, bad, what, k);
  }
  print_message("%s: %d of %d mutations refused, the rest loaded\n", what, failed, MUTATIONS);
  free(src);
  free(buf);
  unlink(bad);
  return failed;
}

/* ---- loaders ---- */

static onerec_status load_model(const char *p) {
  onerec_model *m = NULL;
  onerec_status s = onerec_model_load(ctx, p, &m);
  onerec_model_free(m);
  return s;
}
static onerec_status load_catalog(const char *p) {
  onerec_catalog *c = NULL;
  onerec_status s = onerec_catalog_load(ctx, p, &c);
  onerec_catalog_free(c);
  return s;
}
static onerec_status load_tokenizer(const char *p) {
  onerec_tokenizer *t = NULL;
  onerec_status s = onerec_tokenizer_load(ctx, p, &t);
  onerec_tokenizer_free(t);
  return s;
}
static onerec_status load_aligner(const char *p) {
  onerec_aligner *a = NULL;
  onerec_status s = onerec_aligner_load(ctx, p, &a);
  onerec_aligner_free(a);
  return s;
}
static onerec_status load_features(const char *p) {
  int64_t n = 0, d = 0;
  int ids = 0;
  onerec_status s = onerec_features_file_info(p, &n, &d, &ids);
  if (s) return s;
  if (n < 1 || d < 1 || n > (1 << 20) / d) return ONEREC_OK; /* info refused nothing; too big to read here */
  float *x = malloc((size_t)(n * d) * sizeof(float));
  int64_t *id = malloc((size_t)n * sizeof(int64_t));
  s = x && id ? onerec_features_file_read(p, x, (size_t)(n * d), id, (size_t)n)
              : ONEREC_ERR_OUT_OF_MEMORY;
  free(x);
  free(id);
  return s;
}
static onerec_model *g_model;
static onerec_status load_checkpoint(const char *p) {
  onerec_trainer *t = NULL;
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = 2);
  onerec_status s = onerec_trainer_create(g_model, &o, &t);
  uint64_t pos = 0;
  if (!s) s = onerec_trainer_load(t, p, &pos);
  onerec_trainer_free(t);
  return s;
}
static onerec_status load_dataset_as(const char *p, const char *format) {
  onerec_dataset *ds = NULL;
  ONEREC_OPTS(onerec_dataset_opts, o, .format = format);
  onerec_status s = onerec_dataset_load(ctx, p, &o, &ds);
  onerec_dataset_free(ds);
  return s;
}
static onerec_status load_seqfile(const char *p) { return load_dataset_as(p, "h5"); }
static onerec_status load_beauty_dir(const char *p) { return load_dataset_as(p, "beauty"); }

/* ---- valid originals ---- */

static onerec_model_config small_cfg(void) {
  ONEREC_OPTS(onerec_model_config, c);
  assert_ok(onerec_model_config_preset("0.015B", &c));
  c.enc_layers = c.dec_layers = 1;
  c.d_model = 8;
  c.heads = 2;
  c.ffn_dim = 8;
  c.levels = 2;
  c.codebook = 8;
  c.short_len = 3;
  c.positive_len = 3;
  c.use_lifelong = 0;
  c.static_cat_vocab[0] = 10;
  c.static_emb_dim = 4;
  c.item_dim = 4;
  c.seq_cat_vocab[0] = 5;
  for (int i = 0; i < c.seq_cat_count; i++) c.seq_cat_dim[i] = 2;
  return c;
}

static void test_model_files(void **state) {
  (void)state;
  onerec_model_config c = small_cfg();
  assert_ok(onerec_model_create(ctx, &c, 1, &g_model));
  char p[128];
  snprintf(p, sizeof p, "%s/model.h5", dir);
  assert_ok(onerec_model_save(g_model, p));
  assert_true(fuzz(p, load_model, "model") > 0);
  onerec_trainer *t = NULL;
  ONEREC_OPTS(onerec_trainer_opts, o, .max_batch = 2);
  assert_ok(onerec_trainer_create(g_model, &o, &t));
  snprintf(p, sizeof p, "%s/checkpoint.h5", dir);
  assert_ok(onerec_trainer_save(t, p, 7));
  onerec_trainer_free(t);
  assert_true(fuzz(p, load_checkpoint, "checkpoint") > 0);
  onerec_model_free(g_model);
  g_model = NULL;
}

static void test_tokenizer_catalog_features(void **state) {
  (void)state;
  const int64_t n = 40, d = 6;
  float x[40 * 6];
  tu_fill(x, (size_t)(n * d), 3);
  ONEREC_OPTS(onerec_tokenizer_opts, to, .levels = 2, .codes_per_level = 4, .iterations = 3);
  onerec_tokenizer *t = NULL;
  assert_ok(onerec_tokenizer_fit(ctx, x, n, d, &to, &t));
  char p[128];
  snprintf(p, sizeof p, "%s/tok.h5", dir);
  assert_ok(onerec_tokenizer_save(t, p));
  onerec_tokenizer_free(t);
  assert_true(fuzz(p, load_tokenizer, "tokenizer") > 0);

  ONEREC_OPTS(onerec_catalog_opts, co, .levels = 2, .codes_per_level = 8);
  onerec_catalog *cat = NULL;
  assert_ok(onerec_catalog_create(ctx, &co, &cat));
  int64_t ids[30];
  int32_t codes[60];
  for (int i = 0; i < 30; i++) {
    ids[i] = 100 + 3 * i;
    codes[2 * i] = i / 8;
    codes[2 * i + 1] = i % 8;
  }
  assert_ok(onerec_catalog_add(cat, 30, ids, codes));
  assert_ok(onerec_catalog_commit(cat));
  snprintf(p, sizeof p, "%s/cat.h5", dir);
  assert_ok(onerec_catalog_save(cat, p));
  onerec_catalog_free(cat);
  assert_true(fuzz(p, load_catalog, "catalog") > 0);

  snprintf(p, sizeof p, "%s/features.h5", dir);
  int64_t fids[40];
  for (int i = 0; i < 40; i++) fids[i] = 7 + 2 * i;
  assert_ok(onerec_features_file_write(p, x, n, d, fids, "fuzz"));
  assert_true(fuzz(p, load_features, "features") > 0);

  ONEREC_OPTS(onerec_aligner_config, ac, .in_dim = 3, .tokens = 2, .queries = 2, .layers = 1,
              .d_model = 4, .heads = 2, .max_batch = 4);
  onerec_aligner *a = NULL;
  assert_ok(onerec_aligner_create(ctx, &ac, 1, &a));
  snprintf(p, sizeof p, "%s/aligner.h5", dir);
  assert_ok(onerec_aligner_save(a, p));
  onerec_aligner_free(a);
  assert_true(fuzz(p, load_aligner, "aligner") > 0);
}

static void test_data_files(void **state) {
  (void)state;
  /* Beauty text: a folder with Beauty.txt (and no item file needed to load interactions) */
  char p[256], d2[128];
  snprintf(d2, sizeof d2, "%s/beauty", dir);
  assert_int_equal(mkdir(d2, 0755), 0);
  snprintf(p, sizeof p, "%s/Beauty.txt", d2);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  for (int u = 1; u <= 30; u++) {
    fprintf(f, "%d", u);
    for (int k = 0; k < 4 + u % 5; k++) fprintf(f, " %d", 1 + (u * 7 + k * 3) % 23);
    fputc('\n', f);
  }
  fclose(f);
  /* the text reader: every mutation of Beauty.txt, loaded from its folder */
  size_t n = 0;
  unsigned char *src = slurp(p, &n), *buf = malloc(n);
  assert_non_null(buf);
  int failed = 0;
  for (int k = 0; k < MUTATIONS; k++) {
    size_t m = mutate(buf, src, n, k);
    spit(p, buf, m);
    failed += load_isolated(load_beauty_dir, d2, "Beauty.txt", k);
  }
  print_message("Beauty.txt: %d of %d mutations refused, the rest loaded\n", failed, MUTATIONS);
  spit(p, src, n);
  free(src);
  free(buf);
  /* the chunked HDF5 interaction file converted from it */
  onerec_dataset *ds = NULL;
  ONEREC_OPTS(onerec_dataset_opts, o, .format = "beauty");
  assert_ok(onerec_dataset_load(ctx, d2, &o, &ds));
  snprintf(p, sizeof p, "%s/seq.h5", dir);
  ONEREC_OPTS(onerec_seqfile_opts, so, .chunk_users = 8);
  assert_ok(onerec_dataset_save(ds, p, &so));
  onerec_dataset_free(ds);
  assert_true(fuzz(p, load_seqfile, "interaction file") > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_model_files),
      cmocka_unit_test(test_tokenizer_catalog_features),
      cmocka_unit_test(test_data_files),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
