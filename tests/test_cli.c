/* The onerec command-line tool (path in $ONEREC_CLI): exit codes, JSON on stdout, errors on
 * stderr only; and its option parser (examples/cli/cli_args.c, built in here). */
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* The CLI is not part of the library: its parser is compiled into this test directly. */
#include "../examples/cli/cli_args.c"

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

/* Like run_cli, with stderr into err as well. */
static int run_cli2(const char *args, char *out, size_t len, char *err, size_t elen) {
  const char *cli = getenv("ONEREC_CLI");
  if (!cli) fail_msg("ONEREC_CLI not set (run through make test)");
  char path[] = "/tmp/onerec_cli_err_XXXXXX", cmd[1024];
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  snprintf(cmd, sizeof cmd, "%s %s 2>%s", cli, args, path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, len - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  assert_true(tu_read_file(path, err, elen) >= 0);
  remove(path);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- cli_parse itself, with stdout and stderr captured ---- */

static char cap_out[4096], cap_err[4096];

static void fake_usage(FILE *f) { fputs("usage: onerec fake [options]\n", f); }

/* Reads what a capture file caught into buf and closes it. */
static void take(FILE *tmp, char *buf, size_t len) {
  rewind(tmp);
  size_t n = fread(buf, 1, len - 1, tmp);
  buf[n] = '\0';
  fclose(tmp);
}

typedef struct parsed {
  const char *name, *pos[2];
  long long count, offset;
  double rate, share;
  int verbose;
} parsed;

/* Parses the words of line (space-separated, "fake" prepended as argv[0]) into *v. */
static int parse_line(const char *line, parsed *v) {
  static char buf[512];
  char *argv[32];
  int argc = 0;
  snprintf(buf, sizeof buf, "fake %s", line);
  for (char *w = strtok(buf, " "); w && argc < 32; w = strtok(NULL, " ")) argv[argc++] = w;
  const cli_opt opts[] = {
      CLI_STR("--name", &v->name),
      CLI_INT("--count", &v->count, 1, 64),
      CLI_INT("-n", &v->count, 1, 64),
      CLI_INT("--offset", &v->offset, CLI_INT_MIN, CLI_INT_MAX),
      CLI_REAL("--rate", &v->rate, 0.0, INFINITY, CLI_OPEN_LO),
      CLI_REAL("--share", &v->share, 0.0, 1.0, CLI_OPEN_HI),
      CLI_FLAG("--verbose", &v->verbose),
  };
  FILE *o = tmpfile(), *e = tmpfile();
  assert_true(o && e);
  fflush(stdout);
  fflush(stderr);
  int so = dup(1), se = dup(2);
  dup2(fileno(o), 1);
  dup2(fileno(e), 2);
  int rc = cli_parse("fake", argc, argv, opts, CLI_COUNT(opts), fake_usage, v->pos, 2);
  fflush(stdout);
  fflush(stderr);
  dup2(so, 1);
  dup2(se, 2);
  close(so);
  close(se);
  take(o, cap_out, sizeof cap_out);
  take(e, cap_err, sizeof cap_err);
  return rc;
}

static const parsed k_defaults = {.name = "dflt", .count = 8, .offset = 0, .rate = 0.5, .share = 0};

static void test_parse_values(void **state) {
  (void)state;
  parsed v = k_defaults;
  assert_int_equal(parse_line("", &v), CLI_PARSED);
  assert_string_equal(v.name, "dflt"); /* not given: the default stays */
  assert_int_equal(v.count, 8);
  assert_null(v.pos[0]);
  assert_int_equal(parse_line("a.h5 --name x --count 3 --offset -7 --rate 1e-3 --share 0 "
                              "--verbose b.h5 -n 64 --name y",
                              &v),
                   CLI_PARSED);
  assert_string_equal(v.name, "y"); /* the last one wins */
  assert_int_equal(v.count, 64);
  assert_int_equal(v.offset, -7); /* a value starting with '-' */
  assert_true(v.rate == 1e-3 && v.share == 0.0 && v.verbose == 1);
  assert_string_equal(v.pos[0], "a.h5");
  assert_string_equal(v.pos[1], "b.h5");
  assert_int_equal(parse_line("--offset -9223372036854775808 --count 1", &v), CLI_PARSED);
  assert_true(v.offset == CLI_INT_MIN && v.count == 1);
  assert_string_equal(cap_out, "");
  assert_string_equal(cap_err, "");
}

static void test_parse_errors(void **state) {
  (void)state;
  static const struct {
    const char *line, *err;
    int usage; /* usage follows the message */
  } bad[] = {
      {"--count abc", "onerec fake: --count: 'abc' is not an integer\n", 0},
      {"--count 3x", "onerec fake: --count: '3x' is not an integer\n", 0},
      {"--count 2.0", "onerec fake: --count: '2.0' is not an integer\n", 0},
      {"--count 0", "onerec fake: --count: '0' is out of range 1..64\n", 0},
      {"-n 65", "onerec fake: -n: '65' is out of range 1..64\n", 0},
      {"--offset 9223372036854775808",
       "onerec fake: --offset: '9223372036854775808' is out of range\n", 0},
      {"--rate fast", "onerec fake: --rate: 'fast' is not a finite number\n", 0},
      {"--rate 0.1s", "onerec fake: --rate: '0.1s' is not a finite number\n", 0},
      {"--rate inf", "onerec fake: --rate: 'inf' is not a finite number\n", 0},
      {"--rate nan", "onerec fake: --rate: 'nan' is not a finite number\n", 0},
      {"--rate 0", "onerec fake: --rate: '0' is out of range (more than 0)\n", 0},
      {"--share 1", "onerec fake: --share: '1' is out of range [0, 1)\n", 0},
      {"--share -0.5", "onerec fake: --share: '-0.5' is out of range [0, 1)\n", 0},
      {"--bogus 1", "onerec fake: unknown option '--bogus'\n", 1},
      {"-x", "onerec fake: unknown option '-x'\n", 1},
      {"--name", "onerec fake: --name needs a value\n", 1},
      {"--verbose --count", "onerec fake: --count needs a value\n", 1},
      {"a b c", "onerec fake: unexpected argument 'c'\n", 1},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    parsed v = k_defaults;
    int rc = parse_line(bad[i].line, &v);
    char want[256];
    snprintf(want, sizeof want, "%s%s", bad[i].err, bad[i].usage ? "usage: onerec fake [options]\n" : "");
    if (rc != 2 || strcmp(cap_err, want) || cap_out[0])
      fail_msg("'%s': status %d, stderr '%s', stdout '%s'", bad[i].line, rc, cap_err, cap_out);
    assert_int_equal(v.count, 8); /* a bad value is not stored */
    assert_true(v.rate == 0.5 && v.share == 0.0);
  }
  /* --help and -h: usage on stdout, status 0, wherever they stand */
  const char *help[] = {"--help", "-h", "--count 3 -h --bogus"};
  for (size_t i = 0; i < sizeof help / sizeof *help; i++) {
    parsed v = k_defaults;
    assert_int_equal(parse_line(help[i], &v), 0);
    assert_string_equal(cap_out, "usage: onerec fake [options]\n");
    assert_string_equal(cap_err, "");
  }
}

/* Every command parses with cli_parse: --help to stdout with status 0, an unknown option or a
 * bad value a message on stderr, nothing on stdout, status 2. */
static void test_cli_options(void **state) {
  (void)state;
  static char out[8192], err[8192];
  static const char *const cmds[] = {"info",         "features beauty", "model create",
                                     "model info",   "data stats",      "data baseline",
                                     "data convert", "data synth",      "align",
                                     "tokenizer fit", "tokenizer stats", "recommend",
                                     "train",        "eval"};
  for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
    char args[128], want[128];
    snprintf(args, sizeof args, "%s --help", cmds[i]);
    if (run_cli2(args, out, sizeof out, err, sizeof err) != 0 ||
        strncmp(out, "usage: onerec ", 14) || err[0])
      fail_msg("%s: stdout '%s', stderr '%s'", args, out, err);
    snprintf(args, sizeof args, "%s --no-such-option", cmds[i]);
    snprintf(want, sizeof want, "onerec %s: unknown option '--no-such-option'\n", cmds[i]);
    if (run_cli2(args, out, sizeof out, err, sizeof err) != 2 || out[0] ||
        strncmp(err, want, strlen(want)) || !strstr(err, "usage: onerec "))
      fail_msg("%s: stdout '%s', stderr '%s'", args, out, err);
  }
  static const struct {
    const char *args, *err;
  } bad[] = {
      {"train --data . --dataset beauty --steps abc",
       "onerec train: --steps: 'abc' is not an integer\n"},
      {"train --data . --dataset beauty --steps 5 --levels 9",
       "onerec train: --levels: '9' is out of range 1..8\n"},
      {"train --data . --dataset beauty --steps 5 --dropout 1",
       "onerec train: --dropout: '1' is out of range [0, 1)\n"},
      {"train --data . --dataset beauty --minutes 1o", "onerec train: --minutes: '1o' is not a "
                                                       "finite number\n"},
      {"eval --model m.h5 --beam 4", "onerec eval: --beam: '4' is out of range 10.."},
      {"align --epochs 0", "onerec align: --epochs: '0' is out of range (more than 0)\n"},
      {"recommend --top-p 1.5", "onerec recommend: --top-p: '1.5' is out of range (0, 1]\n"},
      {"data synth --out x --users 5", "onerec data synth: --users: '5' is out of range "
                                       "10..10000000\n"},
      {"data synth --out x --seed 1e3", "onerec data synth: --seed: '1e3' is not an integer\n"},
      {"tokenizer fit --features f.h5 --out t.h5 --tolerance -1",
       "onerec tokenizer fit: --tolerance: '-1' is out of range (at least 0)\n"},
      {"model create --preset 0.015B --heads", "onerec model create: --heads needs a value\n"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (run_cli2(bad[i].args, out, sizeof out, err, sizeof err) != 2 || out[0] ||
        strncmp(err, bad[i].err, strlen(bad[i].err)))
      fail_msg("%s: stdout '%s', stderr '%s'", bad[i].args, out, err);
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
  /* content pairs: each of the 8 topic attributes is carried by 12 items, each of which gets 3
   * partners (288 pairs); the 4 place attributes (24 items each) are over the 12-item bound */
  snprintf(cmd, sizeof cmd,
           "align --features %s/f.h5 --data %s/s1 --dataset beauty --out %s/al2.h5 --epochs 1 "
           "--batch 16 --d-model 16 --layers 1 --queries 2 --heads 2 --threads 1 "
           "--attribute-pairs 3 --attribute-max-items 12 --json",
           dir, dir, dir);
  assert_int_equal(run_cli(cmd, out, sizeof out), 0);
  assert_int_equal((int)tu_json_num(out, "attribute_pairs"), 288);
  snprintf(cmd, sizeof cmd,
           "align --features %s/f.h5 --data %s/s1 --dataset beauty --out %s/al2.h5 --epochs 1 "
           "--batch 16 --d-model 16 --layers 1 --queries 2 --heads 2 --threads 1 "
           "--attribute-pairs 3 --attribute-max-items 24 --json",
           dir, dir, dir);
  assert_int_equal(run_cli(cmd, out, sizeof out), 0);
  assert_int_equal((int)tu_json_num(out, "attribute_pairs"), 288 + 4 * 8 * 3 * 3);
  snprintf(cmd, sizeof cmd, "align --features %s/f.h5 --data %s --dataset ml-100k --out %s/x.h5 "
           "--attribute-pairs 3", dir, dir, dir);
  assert_int_equal(run_cli(cmd, out, sizeof out), 2);
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
      cmocka_unit_test(test_parse_values),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_cli_options),
      cmocka_unit_test(test_info_json),
      cmocka_unit_test(test_bad_usage),
      cmocka_unit_test(test_synth_align),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
