/* The plugin loader, against a fake libonerec-cuda.so.0 (tests/fake_plugin/) so that it runs on
 * any machine: success, refusal with a reason, API-version mismatch both ways. */
#include "testutil.h"

static void use_fake(const char *mode) {
  const char *dir = getenv("FAKE_PLUGIN_DIR");
  if (!dir) fail_msg("FAKE_PLUGIN_DIR not set (run through make test)");
  setenv("ONEREC_BACKEND_PATH", dir, 1);
  setenv("FAKE_PLUGIN_MODE", mode, 1);
}

static void test_plugin_loads(void **state) {
  (void)state;
  use_fake("ok");
  ONEREC_OPTS(onerec_context_opts, o, .backend = "cuda", .threads = 1);
  onerec_context *ctx = NULL;
  assert_ok(onerec_context_create(&o, &ctx));
  assert_string_equal(onerec_context_backend(ctx), "cuda");
  onerec_tensor *t = NULL;
  float in[3] = {1, 2, 3}, out[3];
  assert_ok(onerec_tensor_create(ctx, ONEREC_F32, 1, (const int64_t[]){3}, &t));
  assert_string_equal(onerec_tensor_device(t), "cuda");
  assert_ok(onerec_tensor_copy_in(t, in, sizeof in));
  assert_ok(onerec_tensor_copy_out(t, out, sizeof out));
  assert_memory_equal(in, out, sizeof in);
  onerec_tensor_free(t);
  onerec_context_free(ctx);
  /* auto prefers the plugin when it works */
  ONEREC_OPTS(onerec_context_opts, a, .backend = "auto", .threads = 1);
  assert_ok(onerec_context_create(&a, &ctx));
  assert_string_equal(onerec_context_backend(ctx), "cuda");
  onerec_context_free(ctx);
  assert_ok(onerec_backend_probe("cuda", NULL, 0));
}

static void expect_unavailable(const char *mode, const char *needle) {
  use_fake(mode);
  ONEREC_OPTS(onerec_context_opts, o, .backend = "cuda", .threads = 1);
  onerec_context *ctx = NULL;
  assert_status(onerec_context_create(&o, &ctx), ONEREC_ERR_BACKEND_UNAVAILABLE);
  assert_null(ctx);
  if (!strstr(onerec_last_error(), needle))
    fail_msg("mode %s: message '%s' lacks '%s'", mode, onerec_last_error(), needle);
  char why[256];
  assert_int_equal(onerec_backend_probe("cuda", why, sizeof why), ONEREC_ERR_BACKEND_UNAVAILABLE);
  assert_non_null(strstr(why, needle));
  /* auto falls back to the CPU and says why through the log */
  ONEREC_OPTS(onerec_context_opts, a, .backend = "auto", .threads = 1);
  assert_ok(onerec_context_create(&a, &ctx));
  assert_string_equal(onerec_context_backend(ctx), "cpu");
  onerec_context_free(ctx);
}

static void test_plugin_refuses(void **state) {
  (void)state;
  expect_unavailable("fail", "no CUDA device");
}

static void test_plugin_wrong_table_version(void **state) {
  (void)state;
  expect_unavailable("version", "implements backend API");
}

static void test_plugin_refuses_core_version(void **state) {
  (void)state;
  expect_unavailable("refuse-api", "fake plugin built for backend API");
}

static void test_plugin_missing(void **state) {
  (void)state;
  setenv("ONEREC_BACKEND_PATH", "/nonexistent-onerec-dir", 1);
  ONEREC_OPTS(onerec_context_opts, o, .backend = "cuda", .threads = 1);
  onerec_context *ctx = NULL;
  onerec_status s = onerec_context_create(&o, &ctx);
  if (s == ONEREC_OK) { /* a real plugin installed on the loader path and a GPU: fine */
    onerec_context_free(ctx);
    return;
  }
  assert_int_equal(s, ONEREC_ERR_BACKEND_UNAVAILABLE);
  assert_non_null(strstr(onerec_last_error(), "libonerec-cuda.so"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plugin_loads),
      cmocka_unit_test(test_plugin_refuses),
      cmocka_unit_test(test_plugin_wrong_table_version),
      cmocka_unit_test(test_plugin_refuses_core_version),
      cmocka_unit_test(test_plugin_missing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
