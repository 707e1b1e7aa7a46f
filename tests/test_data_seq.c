/* The sequence reader (Beauty.txt format) and its leave-one-out split; malformed input is
 * rejected with the line number. The real-data check skips when ../shared/data is absent. */
#include <unistd.h>

#include "data_seq.h"
#include "testutil.h"

/* The reference data root: $ONEREC_DATA_DIR, else ../shared/data beside the repository. */
static const char *data_root(void) {
  const char *env = getenv("ONEREC_DATA_DIR");
  if (env && *env) return env;
  return "../shared/data";
}

static void parse_ok(onerec_context *ctx, const char *text, orx_seq_data *d) {
  assert_ok(orx_seq_parse(ctx, "mem", text, strlen(text), d));
}

static void test_parse_and_split(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  orx_seq_data d;
  /* blank lines, CRLF, tabs, runs of spaces, no final newline */
  parse_ok(ctx, "7 1 2 3 4 5\r\n\n  \n8\t9  10\t 11\r\n9 4\n10 3 5 ", &d);
  assert_int_equal(d.n_users, 4);
  assert_int_equal(d.n_items_total, 5 + 3 + 1 + 2);
  assert_int_equal(d.max_item_id, 11);
  assert_int_equal(d.user_ids[1], 8);
  assert_int_equal(d.offsets[1], 5);
  assert_int_equal(d.items[d.offsets[1]], 9);
  /* leave-one-out */
  assert_int_equal(orx_seq_train_len(&d, 0), 3);
  assert_int_equal(orx_seq_valid_target(&d, 0), 4);
  assert_int_equal(orx_seq_test_target(&d, 0), 5);
  assert_int_equal(orx_seq_train_len(&d, 1), 1);
  assert_int_equal(orx_seq_valid_target(&d, 1), 10);
  assert_int_equal(orx_seq_test_target(&d, 1), 11);
  assert_int_equal(orx_seq_train_len(&d, 2), 0); /* one item: test only */
  assert_int_equal(orx_seq_valid_target(&d, 2), -1);
  assert_int_equal(orx_seq_test_target(&d, 2), 4);
  assert_int_equal(orx_seq_train_len(&d, 3), 0); /* two items: validation and test */
  assert_int_equal(orx_seq_valid_target(&d, 3), 3);
  int64_t *off, *items;
  assert_ok(orx_seq_train_csr(&d, &off, &items));
  assert_int_equal(off[4], 4);
  const int64_t want[4] = {1, 2, 3, 9};
  assert_memory_equal(items, want, sizeof want);
  assert_int_equal(off[1], 3);
  assert_int_equal(off[2], 4);
  assert_int_equal(off[3], 4);
  orx_host_free(ctx, off);
  orx_host_free(ctx, items);
  orx_seq_free(&d);
  /* empty input: no users */
  parse_ok(ctx, "", &d);
  assert_int_equal(d.n_users, 0);
  orx_seq_free(&d);
  parse_ok(ctx, "\n\n", &d);
  assert_int_equal(d.n_users, 0);
  orx_seq_free(&d);
  /* the largest int64 is an id */
  parse_ok(ctx, "1 9223372036854775807\n", &d);
  assert_int_equal(d.max_item_id, INT64_MAX);
  orx_seq_free(&d);
  onerec_context_free(ctx);
}

static void expect_bad(onerec_context *ctx, const char *text, size_t len, const char *msg1,
                       const char *msg2) {
  orx_seq_data d;
  assert_status(orx_seq_parse(ctx, "seq.txt", text, len, &d), ONEREC_ERR_FORMAT);
  const char *e = onerec_last_error();
  if (!strstr(e, msg1) || (msg2 && !strstr(e, msg2)))
    fail_msg("message '%s' lacks '%s' / '%s'", e, msg1, msg2 ? msg2 : "");
  assert_int_equal(d.n_users, 0);
  assert_null(d.items);
  orx_seq_free(&d);
}

static void test_malformed(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
#define BAD(text, m1, m2) expect_bad(ctx, text, sizeof(text) - 1, m1, m2)
  BAD("1 2 3\n2 4 x5 6\n", "seq.txt:2:", "item id 'x5'");
  BAD("1 2 3\n\nu3 4 5\n", "seq.txt:3:", "user id 'u3'");
  BAD("1 2 3\n2 -4\n", "seq.txt:2:", "'-4'");
  BAD("1 2 3.5\n", "seq.txt:1:", "'3.5'");
  BAD("1 99999999999999999999\n", "seq.txt:1:", "int64");
  BAD("1 2\n2\n3 4\n", "seq.txt:2:", "user 2 has no items");
  BAD("5 1 2\n6 1\n5 3\n", "seq.txt:3:", "user 5 already has a line (line 1)");
  BAD("1 2 \x01 3\n", "seq.txt:1:", "'?'");
  BAD("1 2\0 3\n", "seq.txt:1:", NULL);
  /* a long token is shown cut */
  BAD("1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", "seq.txt:1:", "...'");
#undef BAD
  onerec_context_free(ctx);
}

static void test_file(void **state) {
  (void)state;
  onerec_context *ctx = tu_cpu_context(1);
  char path[] = "/tmp/onerec-seq-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char text[] = "1 5 6 7\n2 6 7 8 9\n";
  assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
  close(fd);
  orx_seq_data d;
  assert_ok(orx_seq_read(ctx, path, &d));
  assert_int_equal(d.n_users, 2);
  assert_int_equal(d.n_items_total, 7);
  orx_seq_free(&d);
  unlink(path);
  assert_status(orx_seq_read(ctx, path, &d), ONEREC_ERR_IO);
  assert_non_null(strstr(onerec_last_error(), path));
  assert_status(orx_seq_read(ctx, "/tmp", &d), ONEREC_ERR_IO);
  onerec_context_free(ctx);
}

static void test_beauty(void **state) {
  (void)state;
  char path[4096];
  snprintf(path, sizeof path, "%s/amazon/Beauty.txt", data_root());
  if (access(path, R_OK) != 0) {
    print_message("skipped: %s not found (set ONEREC_DATA_DIR to the data folder)\n", path);
    skip();
  }
  onerec_context *ctx = tu_cpu_context(1);
  orx_seq_data d;
  assert_ok(orx_seq_read(ctx, path, &d));
  /* the README's figures */
  assert_int_equal(d.n_users, 22363);
  assert_int_equal(d.n_items_total, 198502);
  assert_int_equal(d.max_item_id, 12101);
  int64_t min_len = INT64_MAX, train = 0;
  for (int64_t u = 0; u < d.n_users; u++) {
    if (orx_seq_len(&d, u) < min_len) min_len = orx_seq_len(&d, u);
    train += orx_seq_train_len(&d, u);
  }
  assert_true(min_len >= 5);
  assert_int_equal(train, 198502 - 2 * 22363);
  orx_seq_free(&d);
  onerec_context_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_and_split),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_file),
      cmocka_unit_test(test_beauty),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
