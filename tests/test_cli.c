/* The onerec command-line tool (path in $ONEREC_CLI): exit codes, JSON on stdout, errors on
 * stderr only. */
#include <sys/wait.h>

#include "testutil.h"

/* Runs the CLI with args; captures stdout into out; returns the exit status. */
static int run_cli(const char *args, char *out, size_t len) {
  const char *cli = getenv("ONEREC_CLI");
  if (!cli) fail_msg("ONEREC_CLI not set (run through make test)");
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", cli, args);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, len - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_info_json(void **state) {
  (void)state;
  char out[4096];
  assert_int_equal(run_cli("info --json", out, sizeof out), 0);
  char want[64];
  snprintf(want, sizeof want, "\"version\":\"%s\"", onerec_version());
  assert_non_null(strstr(out, want));
  assert_non_null(strstr(out, "{\"name\":\"cpu\",\"available\":true}"));
  assert_non_null(strstr(out, "{\"name\":\"cuda\",\"available\":"));
  assert_non_null(strstr(out, "\"cpu_isa\":\""));
  assert_non_null(strstr(out, "\"threads\":"));
  /* one JSON object on one line */
  assert_true(out[0] == '{');
  assert_non_null(strstr(out, "}\n"));
  assert_null(strchr(strchr(out, '\n') + 1, '{'));
}

static void test_bad_usage(void **state) {
  (void)state;
  char out[4096];
  assert_int_equal(run_cli("no-such-command", out, sizeof out), 2);
  assert_string_equal(out, ""); /* nothing on stdout */
  assert_int_equal(run_cli("info --bogus", out, sizeof out), 2);
  assert_string_equal(out, "");
  assert_int_equal(run_cli("", out, sizeof out), 2);
  assert_int_equal(run_cli("recommend", out, sizeof out), 2);
  assert_string_equal(out, "");
  /* a model file that does not exist: a failure with a message, not a crash */
  int rc = run_cli("recommend --model /nonexistent.h5 --catalog /nonexistent-c.h5 --history 1",
                   out, sizeof out);
  assert_true(rc == 1 || rc == 2);
  assert_string_equal(out, "");
  assert_int_equal(run_cli("version", out, sizeof out), 0);
  assert_non_null(strstr(out, onerec_version()));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_info_json),
      cmocka_unit_test(test_bad_usage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
