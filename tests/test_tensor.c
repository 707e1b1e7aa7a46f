/* Public API: tensors (create, copy in/out, views, strided transfers, bad input). */
#include "testutil.h"

static int setup(void **state) {
  *state = tu_cpu_context(2);
  return 0;
}

static int teardown(void **state) {
  onerec_context_free(*state);
  return 0;
}

static void test_dtypes(void **state) {
  (void)state;
  assert_int_equal(onerec_dtype_size(ONEREC_F32), 4);
  assert_int_equal(onerec_dtype_size(ONEREC_BF16), 2);
  assert_int_equal(onerec_dtype_size(ONEREC_I32), 4);
  assert_int_equal(onerec_dtype_size((onerec_dtype)77), 0);
  assert_string_equal(onerec_dtype_name(ONEREC_BF16), "bf16");
  assert_string_equal(onerec_dtype_name((onerec_dtype)77), "unknown");
}

static void test_create_roundtrip(void **state) {
  onerec_context *ctx = *state;
  const int64_t shape[3] = {2, 3, 4};
  onerec_tensor *t = NULL;
  assert_ok(onerec_tensor_create(ctx, ONEREC_F32, 3, shape, &t));
  assert_int_equal(onerec_tensor_ndim(t), 3);
  assert_int_equal(onerec_tensor_numel(t), 24);
  assert_int_equal(onerec_tensor_dim(t, 2), 4);
  assert_int_equal(onerec_tensor_stride(t, 0), 12);
  assert_int_equal(onerec_tensor_stride(t, 2), 1);
  assert_int_equal(onerec_tensor_dtype(t), ONEREC_F32);
  assert_string_equal(onerec_tensor_device(t), "cpu");
  float zeros[24], in[24], out[24];
  assert_ok(onerec_tensor_copy_out(t, zeros, sizeof zeros));
  for (int i = 0; i < 24; i++) assert_true(zeros[i] == 0.0f); /* fresh tensors are zeroed */
  for (int i = 0; i < 24; i++) in[i] = (float)i * 0.5f;
  assert_ok(onerec_tensor_copy_in(t, in, sizeof in));
  assert_ok(onerec_tensor_copy_out(t, out, sizeof out));
  assert_memory_equal(in, out, sizeof in);
  onerec_tensor_free(t);

  onerec_tensor *ids = NULL;
  int32_t iv[5] = {1, -2, 3, 4, 2147483647}, ov[5];
  assert_ok(onerec_tensor_create(ctx, ONEREC_I32, 1, (const int64_t[]){5}, &ids));
  assert_ok(onerec_tensor_copy_in(ids, iv, sizeof iv));
  assert_ok(onerec_tensor_copy_out(ids, ov, sizeof ov));
  assert_memory_equal(iv, ov, sizeof iv);
  onerec_tensor_free(ids);
}

/* A transposed view: copy_out walks the view's strides. */
static void test_views(void **state) {
  onerec_context *ctx = *state;
  onerec_tensor *t = NULL, *tr = NULL, *col = NULL;
  float in[6] = {1, 2, 3, 4, 5, 6}, out[6];
  assert_ok(onerec_tensor_create(ctx, ONEREC_F32, 2, (const int64_t[]){2, 3}, &t));
  assert_ok(onerec_tensor_copy_in(t, in, sizeof in));
  assert_ok(onerec_tensor_view(t, 2, (const int64_t[]){3, 2}, (const int64_t[]){1, 3}, 0, &tr));
  onerec_tensor_free(t); /* the view keeps the storage alive */
  assert_ok(onerec_tensor_copy_out(tr, out, sizeof out));
  const float want[6] = {1, 4, 2, 5, 3, 6};
  assert_memory_equal(out, want, sizeof want);
  /* column 1 of the original (a view of a view's storage) written through copy_in */
  assert_ok(onerec_tensor_view(tr, 1, (const int64_t[]){2}, (const int64_t[]){3}, 1, &col));
  float c[2] = {-1, -2};
  assert_ok(onerec_tensor_copy_in(col, c, sizeof c));
  assert_ok(onerec_tensor_copy_out(tr, out, sizeof out));
  const float want2[6] = {1, 4, -1, -2, 3, 6};
  assert_memory_equal(out, want2, sizeof want2);
  onerec_tensor_free(col);
  onerec_tensor_free(tr);
}

static void test_bad_input(void **state) {
  onerec_context *ctx = *state;
  onerec_tensor *t = NULL;
  const int64_t shape[2] = {2, 2};
  assert_status(onerec_tensor_create(NULL, ONEREC_F32, 2, shape, &t), ONEREC_ERR_INVALID_ARGUMENT);
  assert_null(t);
  assert_status(onerec_tensor_create(ctx, ONEREC_F32, 2, NULL, &t), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tensor_create(ctx, ONEREC_F32, 2, shape, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tensor_create(ctx, (onerec_dtype)9, 2, shape, &t), ONEREC_ERR_DTYPE);
  assert_status(onerec_tensor_create(ctx, ONEREC_F32, 0, shape, &t), ONEREC_ERR_SHAPE);
  assert_status(onerec_tensor_create(ctx, ONEREC_F32, 5, (const int64_t[]){1, 1, 1, 1, 1}, &t),
                ONEREC_ERR_SHAPE);
  assert_status(onerec_tensor_create(ctx, ONEREC_F32, 2, (const int64_t[]){2, 0}, &t),
                ONEREC_ERR_SHAPE);
  assert_status(onerec_tensor_create(ctx, ONEREC_F32, 2, (const int64_t[]){2, -3}, &t),
                ONEREC_ERR_SHAPE);
  assert_status(
      onerec_tensor_create(ctx, ONEREC_F32, 3, (const int64_t[]){INT64_MAX / 4, 4, 4}, &t),
      ONEREC_ERR_SHAPE);
  /* too large to allocate: a clean out-of-memory, not a crash */
  assert_status(onerec_tensor_create(ctx, ONEREC_F32, 2, (const int64_t[]){1ll << 28, 1ll << 28}, &t),
                ONEREC_ERR_OUT_OF_MEMORY);
  assert_null(t);

  assert_ok(onerec_tensor_create(ctx, ONEREC_F32, 2, shape, &t));
  float buf[4] = {0};
  assert_status(onerec_tensor_copy_in(t, buf, 3 * sizeof(float)), ONEREC_ERR_SHAPE);
  assert_status(onerec_tensor_copy_in(t, NULL, sizeof buf), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tensor_copy_in(NULL, buf, sizeof buf), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tensor_copy_out(t, buf, 2), ONEREC_ERR_BUFFER_TOO_SMALL);
  assert_status(onerec_tensor_copy_out(NULL, buf, sizeof buf), ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tensor_copy_out(t, NULL, sizeof buf), ONEREC_ERR_INVALID_ARGUMENT);
  onerec_tensor *v = NULL;
  assert_status(onerec_tensor_view(t, 1, (const int64_t[]){5}, (const int64_t[]){1}, 0, &v),
                ONEREC_ERR_SHAPE);
  assert_status(onerec_tensor_view(t, 1, (const int64_t[]){2}, (const int64_t[]){3}, 1, &v),
                ONEREC_ERR_SHAPE);
  assert_status(onerec_tensor_view(t, 1, (const int64_t[]){2}, (const int64_t[]){-1}, 1, &v),
                ONEREC_ERR_SHAPE);
  assert_status(onerec_tensor_view(t, 1, (const int64_t[]){1}, (const int64_t[]){1}, 4, &v),
                ONEREC_ERR_SHAPE);
  assert_status(onerec_tensor_view(NULL, 1, (const int64_t[]){1}, (const int64_t[]){1}, 0, &v),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tensor_view(t, 1, NULL, (const int64_t[]){1}, 0, &v),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tensor_view(t, 1, (const int64_t[]){1}, NULL, 0, &v),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_status(onerec_tensor_view(t, 1, (const int64_t[]){1}, (const int64_t[]){1}, 0, NULL),
                ONEREC_ERR_INVALID_ARGUMENT);
  assert_null(v);
  onerec_tensor_free(t);
  onerec_tensor_free(NULL);
  assert_int_equal(onerec_tensor_ndim(NULL), -1);
  assert_int_equal(onerec_tensor_dim(NULL, 0), -1);
  assert_int_equal(onerec_tensor_stride(NULL, 0), -1);
  assert_int_equal(onerec_tensor_numel(NULL), 0);
  assert_null(onerec_tensor_device(NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dtypes),
      cmocka_unit_test_setup_teardown(test_create_roundtrip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_views, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
