/* lib/h5io: atomic writes, checked reads, stamps, corrupt files. */
#include <unistd.h>

#include "h5io.h"
#include "testutil.h"

static char g_dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/onerec-h5-XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  return system(cmd);
}

static void write_file(const char *path, float fill) {
  orx_h5 h;
  assert_ok(orx_h5_create(&h, path));
  assert_ok(orx_h5_stamp(&h, "demo", 1));
  hid_t g;
  assert_ok(orx_h5_group_create(&h, "/layer0", &g));
  float w[6];
  for (int i = 0; i < 6; i++) w[i] = fill + (float)i;
  assert_ok(orx_h5_write(&h, g, "w", ORX_H5_F32, 2, (const int64_t[]){2, 3}, w));
  assert_ok(orx_h5_attr_write_i64(&h, g, "dim", 3));
  assert_ok(orx_h5_attr_write_f64(&h, g, "eps", 1e-6));
  assert_ok(orx_h5_attr_write_str(&h, g, "name", "layer zero"));
  orx_h5_group_close(g);
  assert_ok(orx_h5_commit(&h));
}

static void test_roundtrip(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/a.h5", g_dir);
  write_file(path, 1.0f);
  orx_h5 h;
  assert_ok(orx_h5_open(&h, path));
  int64_t version = 0;
  assert_ok(orx_h5_check_stamp(&h, "demo", 1, &version));
  assert_int_equal(version, 1);
  hid_t g;
  assert_ok(orx_h5_group_open(&h, "/layer0", &g));
  float w[6];
  int64_t dims[2] = {2, 3};
  assert_ok(orx_h5_read(&h, g, "w", ORX_H5_F32, 2, dims, w, sizeof w));
  assert_true(w[5] == 6.0f);
  int64_t any[2] = {-1, -1};
  assert_ok(orx_h5_read(&h, g, "w", ORX_H5_F32, 2, any, NULL, 0));
  assert_int_equal(any[0], 2);
  assert_int_equal(any[1], 3);
  int64_t wrong[2] = {2, 4};
  assert_status(orx_h5_read(&h, g, "w", ORX_H5_F32, 2, wrong, w, sizeof w), ONEREC_ERR_SHAPE);
  assert_non_null(strstr(onerec_last_error(), "expected [2,4], file has [2,3]"));
  assert_status(orx_h5_read(&h, g, "w", ORX_H5_F32, 2, dims, w, 8), ONEREC_ERR_BUFFER_TOO_SMALL);
  assert_status(orx_h5_read(&h, g, "w", ORX_H5_I32, 2, dims, w, sizeof w), ONEREC_ERR_FORMAT);
  assert_status(orx_h5_read(&h, g, "missing", ORX_H5_F32, 2, dims, w, sizeof w),
                ONEREC_ERR_FORMAT);
  int64_t d = 0;
  double eps = 0;
  char name[32];
  assert_ok(orx_h5_attr_read_i64(&h, g, "dim", &d));
  assert_ok(orx_h5_attr_read_f64(&h, g, "eps", &eps));
  assert_ok(orx_h5_attr_read_str(&h, g, "name", name, sizeof name));
  assert_int_equal(d, 3);
  assert_true(eps == 1e-6);
  assert_string_equal(name, "layer zero");
  assert_status(orx_h5_attr_read_i64(&h, g, "name", &d), ONEREC_ERR_FORMAT);
  assert_status(orx_h5_attr_read_i64(&h, g, "nope", &d), ONEREC_ERR_FORMAT);
  assert_true(orx_h5_exists(&h, g, "w"));
  assert_false(orx_h5_exists(&h, g, "v"));
  orx_h5_group_close(g);
  assert_status(orx_h5_group_open(&h, "/nogroup", &g), ONEREC_ERR_FORMAT);
  assert_status(orx_h5_check_stamp(&h, "model", 1, NULL), ONEREC_ERR_FORMAT);
  assert_non_null(strstr(onerec_last_error(), "is a libonerec demo file"));
  orx_h5_close(&h);
}

static void test_newer_version_rejected(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/v.h5", g_dir);
  orx_h5 h;
  assert_ok(orx_h5_create(&h, path));
  assert_ok(orx_h5_stamp(&h, "demo", 7));
  assert_ok(orx_h5_commit(&h));
  assert_ok(orx_h5_open(&h, path));
  assert_status(orx_h5_check_stamp(&h, "demo", 1, NULL), ONEREC_ERR_VERSION);
  orx_h5_close(&h);
}

/* An aborted write leaves the previous file untouched and no temporary behind. */
static void test_atomic_replace(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/b.h5", g_dir);
  write_file(path, 10.0f);
  orx_h5 h;
  assert_ok(orx_h5_create(&h, path));
  assert_ok(orx_h5_stamp(&h, "demo", 1));
  orx_h5_abort(&h);
  assert_int_equal(access(h.tmp_path, F_OK), -1);
  assert_ok(orx_h5_open(&h, path));
  hid_t g;
  assert_ok(orx_h5_group_open(&h, "/layer0", &g));
  float w[6];
  assert_ok(orx_h5_read(&h, g, "w", ORX_H5_F32, 2, (int64_t[]){2, 3}, w, sizeof w));
  assert_true(w[0] == 10.0f);
  orx_h5_group_close(g);
  orx_h5_close(&h);
  write_file(path, 20.0f); /* commit replaces it */
  assert_ok(orx_h5_open(&h, path));
  assert_ok(orx_h5_group_open(&h, "/layer0", &g));
  assert_ok(orx_h5_read(&h, g, "w", ORX_H5_F32, 2, (int64_t[]){2, 3}, w, sizeof w));
  assert_true(w[0] == 20.0f);
  orx_h5_group_close(g);
  orx_h5_close(&h);
}

static void test_corrupt_files(void **state) {
  (void)state;
  char path[128], bad[128];
  snprintf(path, sizeof path, "%s/c.h5", g_dir);
  write_file(path, 1.0f);
  orx_h5 h;
  /* truncated copies at several lengths: open or reads fail cleanly, never crash */
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static unsigned char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  assert_true(n > 512);
  const size_t cuts[] = {0, 7, 100, 512, n / 2, n - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
    snprintf(bad, sizeof bad, "%s/trunc%zu.h5", g_dir, i);
    f = fopen(bad, "wb");
    fwrite(buf, 1, cuts[i], f);
    fclose(f);
    onerec_status s = orx_h5_open(&h, bad);
    if (s == ONEREC_OK) {
      hid_t g;
      float w[6];
      s = orx_h5_check_stamp(&h, "demo", 1, NULL);
      if (!s) s = orx_h5_group_open(&h, "/layer0", &g);
      if (!s) {
        s = orx_h5_read(&h, g, "w", ORX_H5_F32, 2, (int64_t[]){2, 3}, w, sizeof w);
        orx_h5_group_close(g);
      }
      orx_h5_close(&h);
    }
    if (s == ONEREC_OK) fail_msg("truncated to %zu bytes but read fine", cuts[i]);
    assert_true(onerec_last_error()[0] != '\0');
  }
  snprintf(bad, sizeof bad, "%s/text.h5", g_dir);
  f = fopen(bad, "w");
  fputs("hello, not hdf5", f);
  fclose(f);
  assert_status(orx_h5_open(&h, bad), ONEREC_ERR_FORMAT);
  snprintf(bad, sizeof bad, "%s/none.h5", g_dir);
  assert_status(orx_h5_open(&h, bad), ONEREC_ERR_IO);
  assert_status(orx_h5_create(&h, "/nonexistent-dir/x.h5"), ONEREC_ERR_IO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_newer_version_rejected),
      cmocka_unit_test(test_atomic_replace),
      cmocka_unit_test(test_corrupt_files),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
