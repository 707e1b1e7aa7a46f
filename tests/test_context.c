/* Public API: version, status strings, last error, context creation and backend selection. */
#include <pthread.h>
#include <unistd.h>

#include "testutil.h"

static void test_version(void **state) {
  (void)state;
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", ONEREC_VERSION_MAJOR, ONEREC_VERSION_MINOR,
           ONEREC_VERSION_PATCH);
  assert_string_equal(onerec_version(), want);
  assert_string_equal(onerec_version(), ONEREC_VERSION_STRING);
  assert_int_equal(onerec_version_number(), ONEREC_VERSION_NUMBER);
}

static void test_status_strings(void **state) {
  (void)state;
  assert_string_equal(onerec_status_str(ONEREC_OK), "success");
  assert_string_equal(onerec_status_str(ONEREC_ERR_BACKEND_UNAVAILABLE), "backend unavailable");
  /* codes are pinned: changing one breaks every caller that stored it */
  assert_int_equal(ONEREC_ERR_INVALID_ARGUMENT, 1);
  assert_int_equal(ONEREC_ERR_BACKEND_UNAVAILABLE, 3);
  assert_int_equal(ONEREC_ERR_BUFFER_TOO_SMALL, 13);
  for (int s = 0; s < ONEREC_STATUS_COUNT_; s++)
    assert_string_not_equal(onerec_status_str((onerec_status)s), "unknown status");
  assert_string_equal(onerec_status_str((onerec_status)999), "unknown status");
  assert_string_equal(onerec_status_str((onerec_status)-1), "unknown status");
}

static void *other_thread(void *arg) {
  (void)arg;
  onerec_context *ctx = NULL;
  ONEREC_OPTS(onerec_context_opts, o, .backend = "nonsense");
  onerec_context_create(&o, &ctx);
  return (void *)(strstr(onerec_last_error(), "nonsense") != NULL ? (void *)1 : NULL);
}

static void test_last_error_is_thread_local(void **state) {
  (void)state;
  onerec_clear_error();
  assert_string_equal(onerec_last_error(), "");
  pthread_t th;
  void *ok = NULL;
  assert_int_equal(pthread_create(&th, NULL, other_thread, NULL), 0);
  pthread_join(th, &ok);
  assert_non_null(ok);                           /* the other thread saw its own message */
  assert_string_equal(onerec_last_error(), ""); /* and ours is untouched */
}

static void test_context_defaults(void **state) {
  (void)state;
  onerec_context *ctx = NULL;
  assert_ok(onerec_context_create(NULL, &ctx));
  assert_non_null(ctx);
  assert_true(onerec_context_threads(ctx) >= 1);
  const char *b = onerec_context_backend(ctx);
  assert_true(!strcmp(b, "cpu") || !strcmp(b, "cuda"));
  uint64_t seed = 99;
  assert_ok(onerec_context_seed(ctx, &seed));
  assert_int_equal(seed, 0);
  onerec_context_free(ctx);
  onerec_context_free(NULL); /* no-op */
}

static void test_context_cpu(void **state) {
  (void)state;
  ONEREC_OPTS(onerec_context_opts, o, .backend = "cpu", .threads = 3, .seed = 7);
  onerec_context *ctx = NULL;
  assert_ok(onerec_context_create(&o, &ctx));
  assert_string_equal(onerec_context_backend(ctx), "cpu");
  assert_int_equal(onerec_context_threads(ctx), 3);
  uint64_t seed = 0;
  assert_ok(onerec_context_seed(ctx, &seed));
  assert_int_equal(seed, 7);
  onerec_context_free(ctx);
}

/* With no GPU (or no plugin) "cuda" must fail cleanly with a reason and "auto" must fall back. */
static void test_cuda_unavailable_or_ok(void **state) {
  (void)state;
  char why[512];
  onerec_status probe = onerec_backend_probe("cuda", why, sizeof why);
  ONEREC_OPTS(onerec_context_opts, o, .backend = "cuda", .threads = 1);
  onerec_context *ctx = NULL;
  onerec_status s = onerec_context_create(&o, &ctx);
  if (probe == ONEREC_OK) {
    assert_int_equal(s, ONEREC_OK);
    assert_string_equal(onerec_context_backend(ctx), "cuda");
    onerec_context_free(ctx);
    return;
  }
  assert_int_equal(probe, ONEREC_ERR_BACKEND_UNAVAILABLE);
  assert_true(strlen(why) > 10);
  assert_int_equal(s, ONEREC_ERR_BACKEND_UNAVAILABLE);
  assert_null(ctx);
  assert_non_null(strstr(onerec_last_error(), "cuda"));
  print_message("cuda unavailable (expected without a GPU): %s\n", onerec_last_error());

  ONEREC_OPTS(onerec_context_opts, a, .backend = "auto", .threads = 1);
  assert_ok(onerec_context_create(&a, &ctx));
  assert_string_equal(onerec_context_backend(ctx), "cpu");
  onerec_context_free(ctx);
}

/* A plugin path that holds something that is not a plugin gives a reason, not a crash. */
static void test_bad_plugin_file(void **state) {
  (void)state;
  char dir[] = "/tmp/onerec-plugin-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/libonerec-cuda.so.%d", dir, ONEREC_VERSION_MAJOR);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("not an ELF file", f);
  fclose(f);
  const char *old = getenv("ONEREC_BACKEND_PATH");
  char *saved = old ? strdup(old) : NULL;
  setenv("ONEREC_BACKEND_PATH", dir, 1);
  char why[512];
  assert_int_equal(onerec_backend_probe("cuda", why, sizeof why), ONEREC_ERR_BACKEND_UNAVAILABLE);
  assert_non_null(strstr(why, dir));
  if (saved) {
    setenv("ONEREC_BACKEND_PATH", saved, 1);
    free(saved);
  } else {
    unsetenv("ONEREC_BACKEND_PATH");
  }
  remove(path);
  rmdir(dir);
}

static void test_context_bad_input(void **state) {
  (void)state;
  onerec_context *ctx = (onerec_context *)0x1;
  assert_status(onerec_context_create(NULL, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_context_opts, bad_backend, .backend = "tpu");
  assert_status(onerec_context_create(&bad_backend, &ctx), ONEREC_ERR_INVALID_ARGUMENT);
  assert_null(ctx);
  assert_non_null(strstr(onerec_last_error(), "tpu"));
  ONEREC_OPTS(onerec_context_opts, neg, .threads = -2);
  assert_status(onerec_context_create(&neg, &ctx), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_context_opts, many, .threads = 5000);
  assert_status(onerec_context_create(&many, &ctx), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_context_opts, dev, .device = -1);
  assert_status(onerec_context_create(&dev, &ctx), ONEREC_ERR_INVALID_ARGUMENT);
  ONEREC_OPTS(onerec_context_opts, lvl, .log_level = (onerec_log_level)9);
  assert_status(onerec_context_create(&lvl, &ctx), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_context_opts nosz;
  memset(&nosz, 0, sizeof nosz); /* forgot ONEREC_OPTS: sz = 0 */
  assert_status(onerec_context_create(&nosz, &ctx), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_allocator half = {0};
  ONEREC_OPTS(onerec_context_opts, al, .allocator = &half);
  assert_status(onerec_context_create(&al, &ctx), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_context_seed(NULL, &(uint64_t){0}), ONEREC_ERR_INVALID_ARGUMENT);
  assert_null(onerec_context_backend(NULL));
  assert_int_equal(onerec_context_threads(NULL), -1);
  assert_status(onerec_backend_probe(NULL, NULL, 0), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_backend_probe("tpu", NULL, 0), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(onerec_backend_probe("cpu", NULL, 0));
}

/* Options from a newer caller: unknown trailing bytes must be zero; older (shorter) are fine. */
static void test_options_size_rules(void **state) {
  (void)state;
  struct {
    onerec_context_opts known;
    uint64_t future_field;
  } newer;
  memset(&newer, 0, sizeof newer);
  newer.known.sz = sizeof newer;
  newer.known.backend = "cpu";
  onerec_context *ctx = NULL;
  assert_ok(onerec_context_create(&newer.known, &ctx));
  onerec_context_free(ctx);
  newer.future_field = 1;
  assert_status(onerec_context_create(&newer.known, &ctx), ONEREC_ERR_INVALID_ARGUMENT);
  /* an older caller that knew only sz and backend */
  onerec_context_opts older;
  memset(&older, 0xAB, sizeof older); /* bytes past sz must be ignored */
  older.sz = offsetof(onerec_context_opts, threads);
  older.backend = "cpu";
  assert_ok(onerec_context_create(&older, &ctx));
  assert_true(onerec_context_threads(ctx) >= 1);
  onerec_context_free(ctx);
}

typedef struct counting {
  int allocs, frees;
} counting;

static void *count_alloc(void *user, size_t size, size_t align) {
  ((counting *)user)->allocs++;
  void *p = NULL;
  return posix_memalign(&p, align, size) == 0 ? p : NULL;
}

static void count_free(void *user, void *p) {
  ((counting *)user)->frees++;
  free(p);
}

static void test_user_allocator(void **state) {
  (void)state;
  counting c = {0, 0};
  onerec_allocator al = {count_alloc, count_free, &c};
  ONEREC_OPTS(onerec_context_opts, o, .backend = "cpu", .threads = 2, .allocator = &al);
  onerec_context *ctx = NULL;
  assert_ok(onerec_context_create(&o, &ctx));
  onerec_tensor *t = NULL;
  assert_ok(onerec_tensor_create(ctx, ONEREC_F32, 1, (const int64_t[]){100}, &t));
  assert_true(c.allocs >= 3);
  onerec_tensor_free(t);
  onerec_context_free(ctx);
  assert_int_equal(c.allocs, c.frees);
}

typedef struct log_capture {
  int calls;
  char last[512];
} log_capture;

static void capture(void *user, onerec_log_level level, const char *msg) {
  log_capture *lc = user;
  (void)level;
  lc->calls++;
  snprintf(lc->last, sizeof lc->last, "%s", msg);
}

static void test_log_callback(void **state) {
  (void)state;
  log_capture lc = {0, ""};
  ONEREC_OPTS(onerec_context_opts, o, .backend = "cpu", .log_fn = capture, .log_user = &lc,
              .log_level = ONEREC_LOG_INFO);
  onerec_context *ctx = NULL;
  assert_ok(onerec_context_create(&o, &ctx));
  assert_true(lc.calls >= 1);
  assert_non_null(strstr(lc.last, "cpu"));
  onerec_context_free(ctx);
  /* level ERROR (the default) filters INFO messages out */
  log_capture quiet = {0, ""};
  ONEREC_OPTS(onerec_context_opts, q, .backend = "cpu", .log_fn = capture, .log_user = &quiet);
  assert_ok(onerec_context_create(&q, &ctx));
  assert_int_equal(quiet.calls, 0);
  onerec_context_free(ctx);
}

static void test_cpu_isa(void **state) {
  (void)state;
  const char *isa = onerec_cpu_isa();
  assert_true(!strcmp(isa, "avx512") || !strcmp(isa, "avx2") || !strcmp(isa, "scalar"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_status_strings),
      cmocka_unit_test(test_last_error_is_thread_local),
      cmocka_unit_test(test_context_defaults),
      cmocka_unit_test(test_context_cpu),
      cmocka_unit_test(test_cuda_unavailable_or_ok),
      cmocka_unit_test(test_bad_plugin_file),
      cmocka_unit_test(test_context_bad_input),
      cmocka_unit_test(test_options_size_rules),
      cmocka_unit_test(test_user_allocator),
      cmocka_unit_test(test_log_callback),
      cmocka_unit_test(test_cpu_isa),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
