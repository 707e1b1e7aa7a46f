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

/* `data synth` writes a deterministic Beauty-format data set the readers accept; `features
 * beauty` and `align` run on it, the aligned vectors beat the chance loss on held-out pairs and
 * `tokenizer fit` reads them. */
static void test_synth_align(void **state) {
  (void)state;
  static char out[8192], a[1 << 16], b[1 << 16];
  char dir[] = "/tmp/onerec_cli_XXXXXX", cmd[1024];
  assert_non_null(mkdtemp(dir));
  snprintf(cmd, sizeof cmd, "data synth --out %s/s1 --users 300 --items 96 --topics 8 --seed 3", dir);
  assert_int_equal(run_cli(cmd, out, sizeof out), 0);
  snprintf(cmd, sizeof cmd, "data synth --out %s/s2 --users 300 --items 96 --topics 8 --seed 3", dir);
  assert_int_equal(run_cli(cmd, out, sizeof out), 0);
  char p1[256], p2[256];
  snprintf(p1, sizeof p1, "%s/s1/Beauty.txt", dir);
  snprintf(p2, sizeof p2, "%s/s2/Beauty.txt", dir);
  int n1 = tu_read_file(p1, a, sizeof a), n2 = tu_read_file(p2, b, sizeof b);
  assert_true(n1 > 1000 && n1 == n2);
  assert_string_equal(a, b); /* deterministic for a seed */
  snprintf(cmd, sizeof cmd, "data stats --data %s/s1 --dataset beauty --json", dir);
  assert_int_equal(run_cli(cmd, out, sizeof out), 0);
  assert_int_equal((int)tu_json_num(out, "users"), 300);
  snprintf(cmd, sizeof cmd, "data synth --out %s/s3 --topics 1", dir);
  assert_int_equal(run_cli(cmd, out, sizeof out), 2);
  snprintf(cmd, sizeof cmd, "features beauty %s/s1 --out %s/f.h5 --json", dir, dir);
  assert_int_equal(run_cli(cmd, out, sizeof out), 0);
  snprintf(cmd, sizeof cmd,
           "align --features %s/f.h5 --data %s/s1 --dataset beauty --out %s/al.h5 --epochs 6 "
           "--batch 16 --d-model 16 --layers 1 --queries 2 --heads 2 --threads 1 "
           "--model-out %s/aligner.h5 --json",
           dir, dir, dir, dir);
  assert_int_equal(run_cli(cmd, out, sizeof out), 0);
  assert_int_equal((int)tu_json_num(out, "dim"), 32);
  assert_true(tu_json_num(out, "heldout_loss") < 0.9 * tu_json_num(out, "chance_loss"));
  snprintf(cmd, sizeof cmd,
           "tokenizer fit --features %s/al.h5 --levels 2 --codes 16 --seed 1 --out %s/t.h5 "
           "--catalog %s/c.h5 --json",
           dir, dir, dir);
  assert_int_equal(run_cli(cmd, out, sizeof out), 0);
  assert_true(tu_json_num(out, "items") == 96);
  /* a split that does not cover the features */
  snprintf(cmd, sizeof cmd,
           "align --features %s/f.h5 --data %s/s1 --dataset beauty --out %s/x.h5 --split 100,100",
           dir, dir, dir);
  assert_int_equal(run_cli(cmd, out, sizeof out), 2);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_info_json),
      cmocka_unit_test(test_bad_usage),
      cmocka_unit_test(test_synth_align),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
