/* `onerec train --catalog` and `onerec eval` end to end on a tiny synthetic Beauty-format data
 * set (50 users, 40 items) with a catalogue written here: exit codes, the JSON they print, the
 * metrics against a brute-force reference (every item scored with onerec_session_score and
 * ranked here), --resume bit-exactness with catalogue codes, and config mismatches. */
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define N_USERS 50
#define N_ITEMS 40
#define LEVELS 2
#define CODES 8
#define TINY "--layers 1 --d-model 16 --heads 2 --ffn 32 --batch 8 --threads 1 --seed 3"

static char dir[64], cli_path[4096];

/* Runs the CLI in the test's folder; out receives its stdout (and its stderr with err). */
static int run_cli_in(const char *args, int err, char *out, size_t len) {
  if (!cli_path[0]) fail_msg("ONEREC_CLI not set (run through make test)");
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "cd %s && %s %s %s", dir, cli_path, args,
           err ? "2>&1" : "2>/dev/null");
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, len - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run_cli(const char *args, char *out, size_t len) {
  return run_cli_in(args, 0, out, len);
}

/* item id i+1 (ids start at 1 as in Beauty.txt) -> codes (i / 8, 3i mod 8): unique */
static void item_codes(int64_t id, int32_t *c) {
  int64_t i = id - 1;
  c[0] = (int32_t)(i / CODES);
  c[1] = (int32_t)((i * 3) % CODES);
}

static int setup(void **state) {
  (void)state;
  const char *cli = getenv("ONEREC_CLI");
  if (cli && !realpath(cli, cli_path)) cli_path[0] = '\0';
  snprintf(dir, sizeof dir, "/tmp/onerec_cli_train_XXXXXX");
  if (!mkdtemp(dir)) return -1;
  char path[128];
  snprintf(path, sizeof path, "%s/Beauty.txt", dir);
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  uint64_t r = 12345;
  for (int u = 1; u <= N_USERS; u++) {
    r = r * 6364136223846793005ull + 1442695040888963407ull;
    int n = 4 + (int)((r >> 33) % 6), start = (int)((r >> 40) % N_ITEMS);
    fprintf(f, "%d", u);
    /* a walk with stride 2: learnable, so a trained model beats chance */
    for (int i = 0; i < n; i++) fprintf(f, " %d", (start + 2 * i) % N_ITEMS + 1);
    fprintf(f, "\n");
  }
  fclose(f);
  onerec_context *ctx = NULL;
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu");
  ONEREC_OPTS(onerec_catalog_opts, o, .levels = LEVELS, .codes_per_level = CODES);
  onerec_catalog *cat = NULL;
  int64_t ids[N_ITEMS];
  int32_t codes[N_ITEMS * LEVELS];
  for (int i = 0; i < N_ITEMS; i++) {
    ids[i] = i + 1;
    item_codes(ids[i], codes + i * LEVELS);
  }
  snprintf(path, sizeof path, "%s/cat.h5", dir);
  int bad = onerec_context_create(&co, &ctx) || onerec_catalog_create(ctx, &o, &cat) ||
            onerec_catalog_add(cat, N_ITEMS, ids, codes) || onerec_catalog_commit(cat) ||
            onerec_catalog_save(cat, path);
  onerec_catalog_free(cat);
  onerec_context_free(ctx);
  return bad ? -1 : 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) ? -1 : 0;
}

static void test_train_eval(void **state) {
  (void)state;
  static char out[8192];
  assert_int_equal(run_cli("train --data . --dataset beauty --catalog cat.h5 " TINY
                           " --steps 40 --lr 3e-3 --eval-every 10 --eval-users 30 --out run",
                           out, sizeof out),
                   0);
  /* one eval line at the end (10 minutes never pass), the best so far */
  assert_non_null(strstr(out, "\"split\":\"valid\""));
  assert_non_null(strstr(out, "\"best\":true"));
  assert_int_equal((int)tu_json_num(out, "users"), 30);
  assert_int_equal((int)tu_json_num(out, "step"), 40);
  assert_int_equal(run_cli("eval --model run/model.h5 --catalog cat.h5 --data . --dataset beauty "
                           "--split test --json",
                           out, sizeof out),
                   0);
  assert_true(out[0] == '{');
  assert_non_null(strstr(out, "}\n"));
  assert_non_null(strstr(out, "\"subset\":false"));
  assert_int_equal((int)tu_json_num(out, "users"), N_USERS);
  const char *keys[] = {"recall@5", "ndcg@5", "recall@10", "ndcg@10"};
  double v[4];
  for (int i = 0; i < 4; i++) {
    v[i] = tu_json_num(out, keys[i]);
    assert_true(v[i] >= 0.0 && v[i] <= 1.0);
  }
  assert_true(v[2] >= v[0] && v[1] <= v[0] + 1e-9 && v[3] <= v[2] + 1e-9);
  assert_true(tu_json_num(out, "seconds") >= 0.0);
  assert_int_equal(run_cli("eval --model run/model.h5 --catalog cat.h5 --data . --dataset beauty "
                           "--split valid --users 7 --json",
                           out, sizeof out),
                   0);
  assert_non_null(strstr(out, "\"subset\":true"));
  assert_int_equal((int)tu_json_num(out, "users"), 7);
  /* what training used comes from run/run.json: the same metrics without the flags */
  static char again[8192];
  assert_int_equal(run_cli("eval --model run/model.h5 --split valid --users 7 --json", again,
                           sizeof again),
                   0);
  *strstr(out, "\"seconds\"") = '\0';
  *strstr(again, "\"seconds\"") = '\0';
  assert_string_equal(out, again);
}

/* eval with a beam wider than the catalogue is the exact top 10: check it against every item
 * scored by onerec_session_score and ranked here (ties: lower item id first is not guaranteed
 * by beam search, so only untied targets are compared), and the per-user ranks --ranks writes
 * (user and target ids exactly, ranks up to such a tie). */
static void test_eval_matches_brute_force(void **state) {
  (void)state;
  static char out[8192];
  assert_int_equal(run_cli("eval --model run/model.h5 --catalog cat.h5 --data . --dataset beauty "
                           "--split test --beam 64 --ranks ranks.tsv --json",
                           out, sizeof out),
                   0);
  static char ranks[8192];
  char rpath[128];
  snprintf(rpath, sizeof rpath, "%s/ranks.tsv", dir);
  assert_true(tu_read_file(rpath, ranks, sizeof ranks) > 0);
  assert_true(strncmp(ranks, "user\ttarget\trank\n", 17) == 0);
  const char *line = strchr(ranks, '\n') + 1;
  int rank_diffs = 0;
  double want_r10 = tu_json_num(out, "recall@10"), want_n10 = tu_json_num(out, "ndcg@10");
  onerec_context *ctx = NULL;
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = 1);
  assert_ok(onerec_context_create(&co, &ctx));
  char path[128];
  onerec_model *m = NULL;
  onerec_dataset *ds = NULL;
  onerec_samples *smp = NULL;
  onerec_batch *b = NULL;
  onerec_session *ses = NULL;
  snprintf(path, sizeof path, "%s/run/model.h5", dir);
  assert_ok(onerec_model_load(ctx, path, &m));
  ONEREC_OPTS(onerec_model_config, c);
  assert_ok(onerec_model_config_get(m, &c));
  assert_int_equal(c.levels, LEVELS);
  assert_int_equal(c.codebook, CODES);
  ONEREC_OPTS(onerec_dataset_opts, dso, .format = "beauty");
  assert_ok(onerec_dataset_load(ctx, dir, &dso, &ds));
  const int64_t *ids = NULL;
  int64_t n_ids = 0;
  assert_ok(onerec_dataset_item_ids(ds, &ids, &n_ids));
  assert_int_equal(n_ids, N_ITEMS);
  int32_t *codes = malloc(N_ITEMS * LEVELS * sizeof *codes);
  for (int64_t i = 0; i < n_ids; i++) item_codes(ids[i], codes + i * LEVELS);
  ONEREC_OPTS(onerec_samples_opts, so, .max_history = 50);
  assert_ok(onerec_samples_create(ds, ONEREC_SPLIT_TEST, &so, &smp));
  ONEREC_OPTS(onerec_batch_opts, bo, .max_batch = 1, .short_len = c.short_len,
              .positive_len = c.positive_len, .uid_buckets = (int32_t)c.static_cat_vocab[0],
              .levels = LEVELS, .item_codes = codes);
  assert_ok(onerec_batch_create(ds, &bo, &b));
  ONEREC_OPTS(onerec_session_opts, sso, .max_batch = 1, .max_targets = N_ITEMS);
  assert_ok(onerec_session_create(m, ctx, &sso, &ses));
  int64_t n = onerec_samples_count(smp);
  assert_int_equal(n, N_USERS);
  double r10 = 0, n10 = 0;
  int64_t offs[2] = {0, N_ITEMS};
  const int64_t *uids = NULL;
  assert_ok(onerec_dataset_user_ids(ds, &uids, NULL));
  for (int64_t u = 0; u < n; u++) {
    ONEREC_OPTS(onerec_user_batch, ub);
    int32_t tgt = -1;
    assert_ok(onerec_batch_fill(b, smp, u, 1, &ub, &tgt, 1, NULL));
    double lp[N_ITEMS];
    assert_ok(onerec_session_score(ses, &ub, offs, codes, lp, N_ITEMS));
    int rank = 0;
    for (int i = 0; i < N_ITEMS; i++) rank += lp[i] > lp[tgt];
    long long f_user = -2, f_target = -2;
    int f_rank = -2;
    int64_t user = -1;
    assert_ok(onerec_samples_get(smp, u, &user, NULL, NULL, NULL));
    assert_int_equal(sscanf(line, "%lld\t%lld\t%d", &f_user, &f_target, &f_rank), 3);
    assert_int_equal(f_user, uids[user]);
    assert_int_equal(f_target, ids[tgt]);
    if (f_rank != (rank < 10 ? rank : -1)) {
      rank_diffs++;
      assert_true(abs(f_rank - rank) <= 1 || (f_rank == -1 && rank == 10) ||
                  (f_rank == 9 && rank >= 10));
    }
    line = strchr(line, '\n') + 1;
    if (rank < 10) {
      r10 += 1.0;
      n10 += 1.0 / log2(rank + 2.0);
    }
  }
  assert_true(*line == '\0'); /* one line per user, no more */
  assert_true(rank_diffs <= 1);
  r10 /= (double)n;
  n10 /= (double)n;
  /* the JSON has 6 decimals; a float-order tie could move one user by one rank at most */
  assert_true(fabs(r10 - want_r10) <= 1.0 / N_USERS + 1e-6);
  assert_true(fabs(n10 - want_n10) <= 1.0 / N_USERS + 1e-6);
  fprintf(stderr, "brute force recall@10 %.4f ndcg@10 %.4f, eval %.4f %.4f\n", r10, n10, want_r10,
          want_n10);
  onerec_session_free(ses);
  onerec_batch_free(b);
  onerec_samples_free(smp);
  onerec_dataset_free(ds);
  onerec_model_free(m);
  onerec_context_free(ctx);
  free(codes);
}

/* Scores of every item for one fixed user under DIR/model.h5 (DIR under the test's folder). */
static void model_scores(const char *run, double *lp) {
  onerec_context *ctx = NULL;
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = 1);
  assert_ok(onerec_context_create(&co, &ctx));
  onerec_model *m = NULL;
  onerec_session *s = NULL;
  int32_t codes[N_ITEMS * LEVELS], items[4] = {1, 2, 3, 0};
  for (int i = 0; i < N_ITEMS; i++) item_codes(i + 1, codes + i * LEVELS);
  char path[128];
  snprintf(path, sizeof path, "%s/%s/model.h5", dir, run);
  assert_ok(onerec_model_load(ctx, path, &m));
  ONEREC_OPTS(onerec_session_opts, sso, .max_batch = 1, .max_targets = N_ITEMS);
  assert_ok(onerec_session_create(m, ctx, &sso, &s));
  int64_t offs[2] = {0, 3}, toffs[2] = {0, N_ITEMS};
  int32_t sid[3 * LEVELS];
  for (int i = 0; i < 3; i++) item_codes(items[i], sid + i * LEVELS);
  ONEREC_OPTS(onerec_user_batch, ub, .batch = 1, .static_cat = items + 3,
              .short_term = {.offsets = offs, .items = sid},
              .positive = {.offsets = offs, .items = sid});
  assert_ok(onerec_session_score(s, &ub, toffs, codes, lp, N_ITEMS));
  onerec_session_free(s);
  onerec_model_free(m);
  onerec_context_free(ctx);
}

/* an interrupted run resumed from its checkpoint ends with the same model as an uninterrupted
 * one: the same scores for the same users, bit for bit */
static void test_resume_bit_exact(void **state) {
  (void)state;
  static char out[8192];
  assert_int_equal(run_cli("train --data . --dataset beauty --catalog cat.h5 " TINY
                           " --steps 12 --out ra",
                           out, sizeof out),
                   0);
  assert_int_equal(run_cli("train --data . --dataset beauty --catalog cat.h5 " TINY
                           " --steps 12 --stop-at 5 --out rb",
                           out, sizeof out),
                   0);
  assert_int_equal(run_cli("train --data . --dataset beauty --catalog cat.h5 " TINY
                           " --steps 12 --resume rb/checkpoint.h5 --out rb",
                           out, sizeof out),
                   0);
  char a[8192], bb[8192];
  assert_int_equal(run_cli("eval --model ra/model.h5 --catalog cat.h5 --data . --dataset beauty "
                           "--split test --json",
                           a, sizeof a),
                   0);
  assert_int_equal(run_cli("eval --model rb/model.h5 --catalog cat.h5 --data . --dataset beauty "
                           "--split test --json",
                           bb, sizeof bb),
                   0);
  /* the metrics match; seconds may not */
  *strstr(a, "\"seconds\"") = '\0';
  *strstr(bb, "\"seconds\"") = '\0';
  assert_string_equal(a, bb);
  double lp[2][N_ITEMS];
  model_scores("ra", lp[0]);
  model_scores("rb", lp[1]);
  assert_memory_equal(lp[0], lp[1], sizeof lp[0]);
}

/* sum over items of |score difference| between the models of two run folders */
static double score_distance(const char *a, const char *b) {
  double la[N_ITEMS], lb[N_ITEMS], d = 0.0;
  model_scores(a, la);
  model_scores(b, lb);
  for (int i = 0; i < N_ITEMS; i++) d += fabs(la[i] - lb[i]);
  return d;
}

/* exit status of `onerec train` on the tiny data set with `opts` last; stdout + stderr in out */
static int train_rc(const char *opts, char *out, size_t len) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "train --data . --dataset beauty --catalog cat.h5 " TINY " %s", opts);
  return run_cli_in(cmd, 1, out, len);
}

/* `onerec train` on the tiny data set with each of runs[] as its last options; all succeed */
static void train_runs(const char *const *runs, int n) {
  static char out[8192];
  for (int i = 0; i < n; i++) assert_int_equal(train_rc(runs[i], out, sizeof out), 0);
}

/* --ema: DIR/model.h5 is the moving average (not the trained weights), an interrupted run
 * resumes it bit for bit, and a checkpoint without one cannot resume a run that keeps one. */
static void test_ema(void **state) {
  (void)state;
  static char out[8192];
  const char *runs[] = {"--steps 12 --out rw", "--steps 12 --ema 0.5 --out deep/er/re",
                        "--steps 12 --ema 0.5 --stop-at 5 --out rf",
                        "--steps 12 --ema 0.5 --resume rf/checkpoint.h5 --out rf"};
  train_runs(runs, 4);
  double le[N_ITEMS], lf[N_ITEMS];
  model_scores("deep/er/re", le); /* --out made its parents */
  model_scores("rf", lf);
  assert_memory_equal(le, lf, sizeof le);
  assert_true(score_distance("rw", "deep/er/re") > 1e-4);
  assert_int_equal(train_rc("--steps 14 --ema 0.5 --resume rw/checkpoint.h5 --out rw2", out,
                            sizeof out),
                   1);
  assert_non_null(strstr(out, "no moving average"));
  /* evaluations swap the average in and out while training goes on */
  assert_int_equal(run_cli("train --data . --dataset beauty --catalog cat.h5 " TINY
                           " --steps 6 --ema 0.5 --eval-every 1e-6 --eval-users 5 --out rv",
                           out, sizeof out),
                   0);
  assert_true(strstr(out, "\"split\":\"valid\"") != NULL);
  double lv[N_ITEMS];
  model_scores("rv", lv);
}

/* --label-smoothing reaches the trainer (the model differs from the plain run's) and a value
 * outside [0, 1) is refused before any work. */
static void test_label_smoothing(void **state) {
  (void)state;
  static char out[8192];
  const char *runs[] = {"--steps 6 --out ls0", "--steps 6 --label-smoothing 0.2 --out ls1"};
  train_runs(runs, 2);
  assert_true(score_distance("ls0", "ls1") > 1e-4);
  assert_int_equal(train_rc("--steps 6 --label-smoothing 1 --out ls2", out, sizeof out), 2);
  assert_non_null(strstr(out, "--label-smoothing"));
}

/* `onerec eval --ensemble`: a model with itself scores as the model alone; two models run;
 * a malformed list is a usage error (exit 2). */
static void test_eval_ensemble(void **state) {
  (void)state;
  static char out[8192], a[8192], b[8192];
  const char *runs[] = {"--steps 6 --out en0", "--steps 6 --seed 5 --out en1"};
  train_runs(runs, 2);
  const char *ev = "eval --catalog cat.h5 --data . --dataset beauty --split test --json";
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s --model en0/model.h5", ev);
  assert_int_equal(run_cli(cmd, a, sizeof a), 0);
  snprintf(cmd, sizeof cmd, "%s --model en0/model.h5 --ensemble en0/model.h5", ev);
  assert_int_equal(run_cli(cmd, b, sizeof b), 0);
  assert_non_null(strstr(a, "\"models\":1"));
  assert_non_null(strstr(b, "\"models\":2"));
  *strstr(a, "\"seconds\"") = '\0';
  *strstr(b, "\"seconds\"") = '\0';
  assert_string_equal(a, b);
  snprintf(cmd, sizeof cmd, "%s --model en0/model.h5 --ensemble en1/model.h5,en0/model.h5", ev);
  assert_int_equal(run_cli(cmd, b, sizeof b), 0);
  assert_non_null(strstr(b, "\"models\":3"));
  static const char *bad[] = {"", "en1/model.h5,", ",en1/model.h5", "en1/model.h5,,en0/model.h5"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    snprintf(cmd, sizeof cmd, "%s --model en0/model.h5 --ensemble '%s'", ev, bad[i]);
    assert_int_equal(run_cli_in(cmd, 1, out, sizeof out), 2);
    assert_non_null(strstr(out, "--ensemble"));
  }
  snprintf(cmd, sizeof cmd, "%s --model en0/model.h5 --ensemble missing.h5", ev);
  assert_int_equal(run_cli_in(cmd, 1, out, sizeof out), 1);
  assert_non_null(strstr(out, "missing.h5"));
}

/* tu_read_file of a path under the test's folder */
static int file_bytes(const char *rel, char *buf, size_t len) {
  char p[128];
  snprintf(p, sizeof p, "%s/%s", dir, rel);
  return tu_read_file(p, buf, len);
}

/* A resumed run keeps DIR/model.h5 unless it beats the validation score recorded with it
 * (DIR/best.json); without a record its first evaluation saves. Also: a model without the
 * positive-feedback pathway (--positive-len 0) trains and evaluates. */
static void test_best_survives_resume(void **state) {
  (void)state;
  static char out[8192], m0[1 << 21], m1[1 << 21];
  assert_int_equal(run_cli("train --data . --dataset beauty --catalog cat.h5 " TINY
                           " --steps 12 --stop-at 6 --eval-every 10 --eval-users 30"
                           " --positive-len 0 --snapshots --out rc",
                           out, sizeof out),
                   0);
  assert_non_null(strstr(out, "\"best\":true"));
  /* --snapshots: the evaluated model is kept under its step and named in the JSON */
  assert_non_null(strstr(out, "\"snapshot\":\"rc/step6.h5\""));
  static char snap[1 << 21];
  assert_true(file_bytes("rc/step6.h5", snap, sizeof snap) > 0);
  char rec[256];
  assert_true(file_bytes("rc/best.json", rec, sizeof rec) > 0);
  assert_true(fabs(tu_json_num(rec, "recall@10") - tu_json_num(out, "recall@10")) < 1e-6);
  /* an unbeatable record: the resumed run must not replace the model */
  char p[128];
  snprintf(p, sizeof p, "%s/rc/best.json", dir);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs("{\"recall@10\":1.0,\"step\":6}\n", f);
  fclose(f);
  int n0 = file_bytes("rc/model.h5", m0, sizeof m0);
  assert_true(n0 > 0 && n0 < (int)sizeof m0 - 1); /* all of it: not cut at the buffer's end */
  assert_int_equal(run_cli("train --data . --dataset beauty --catalog cat.h5 " TINY
                           " --steps 12 --eval-every 10 --eval-users 30 --positive-len 0"
                           " --resume rc/checkpoint.h5 --out rc",
                           out, sizeof out),
                   0);
  assert_non_null(strstr(out, "\"best\":false"));
  assert_int_equal(file_bytes("rc/model.h5", m1, sizeof m1), n0);
  assert_memory_equal(m0, m1, (size_t)n0);
  /* no record: the first evaluation of the resumed run saves */
  remove(p);
  assert_int_equal(run_cli("train --data . --dataset beauty --catalog cat.h5 " TINY
                           " --steps 14 --eval-every 10 --eval-users 30 --positive-len 0"
                           " --resume rc/checkpoint.h5 --out rc",
                           out, sizeof out),
                   0);
  assert_non_null(strstr(out, "\"best\":true"));
  assert_int_equal(run_cli("eval --model rc/model.h5 --catalog cat.h5 --data . --dataset beauty "
                           "--split test --users 10 --json",
                           out, sizeof out),
                   0);
  assert_int_equal((int)tu_json_num(out, "users"), 10);
}

/* ml-100k (RecBole atomic files): the users' own features (age, gender, occupation, zip) join
 * the hashed user id in the static pathway; training, evaluation with the catalogue (its items
 * are ids 1..40, as here) and the model's static layout. */
static void test_train_ml100k_static_features(void **state) {
  (void)state;
  static char out[8192];
  char p[160];
  snprintf(p, sizeof p, "%s/ml", dir);
  assert_int_equal(mkdir(p, 0755), 0);
  snprintf(p, sizeof p, "%s/ml/ml-100k.inter", dir);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fprintf(f, "user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
  for (int u = 1; u <= 30; u++)
    for (int k = 0; k < 6; k++)
      fprintf(f, "%d\t%d\t%d\t%d\n", u, (u * 3 + 2 * k) % 20 + 1, 1 + (u + k) % 5, 880000000 + 100 * k + u);
  fclose(f);
  snprintf(p, sizeof p, "%s/ml/ml-100k.user", dir);
  f = fopen(p, "w");
  assert_non_null(f);
  fprintf(f, "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n");
  static const char *const occ[3] = {"writer", "doctor", "student"};
  for (int u = 1; u <= 30; u++)
    fprintf(f, "%d\t%d\t%c\t%s\t%05d\n", u, 18 + u % 40, u % 2 ? 'M' : 'F', occ[u % 3], 10000 + u);
  fclose(f);
  snprintf(p, sizeof p, "%s/ml/ml-100k.item", dir);
  f = fopen(p, "w");
  assert_non_null(f);
  fprintf(f, "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n");
  for (int i = 1; i <= 20; i++) fprintf(f, "%d\tMovie %d\t199%d\t%s\n", i, i, i % 10, i % 2 ? "Drama" : "Comedy Drama");
  fclose(f);
  assert_int_equal(run_cli("train --data ml --dataset ml-100k --catalog cat.h5 " TINY
                           " --steps 8 --eval-every 10 --eval-users 10 --out rml",
                           out, sizeof out),
                   0);
  assert_non_null(strstr(out, "\"split\":\"valid\""));
  assert_int_equal(run_cli("eval --model rml/model.h5 --catalog cat.h5 --data ml --dataset ml-100k "
                           "--split test --json",
                           out, sizeof out),
                   0);
  assert_int_equal((int)tu_json_num(out, "users"), 30);
  /* the same model on Beauty (no user features): refused, not read with the wrong stride */
  assert_int_equal(run_cli("eval --model rml/model.h5 --catalog cat.h5 --data . --dataset beauty "
                           "--split test --json",
                           out, sizeof out),
                   1);
  onerec_context *ctx = NULL;
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = 1);
  assert_ok(onerec_context_create(&co, &ctx));
  onerec_model *m = NULL;
  snprintf(p, sizeof p, "%s/rml/model.h5", dir);
  assert_ok(onerec_model_load(ctx, p, &m));
  ONEREC_OPTS(onerec_model_config, c);
  assert_ok(onerec_model_config_get(m, &c));
  assert_int_equal(c.static_cat_count, 5); /* hashed id + age, gender, occupation, zip */
  assert_int_equal(c.static_cat_vocab[0], 4096);
  assert_int_equal(c.static_cat_vocab[2], 2); /* gender: two values */
  onerec_model_free(m);
  onerec_context_free(ctx);
}

/* --uid-buckets 1: every user gets the one shared user token, in training, in eval and in
 * recommend (with or without --uid); the default hashed id tells users apart. */
static void test_shared_user_token(void **state) {
  (void)state;
  static char out[8192], a[8192], b[8192];
  assert_int_equal(run_cli("train --data . --dataset beauty --catalog cat.h5 " TINY
                           " --steps 6 --uid-buckets 1 --out ru1",
                           out, sizeof out),
                   0);
  assert_int_equal(run_cli("eval --model ru1/model.h5 --split test --users 9 --json", out,
                           sizeof out),
                   0);
  assert_int_equal((int)tu_json_num(out, "users"), 9);
  const char *rec = "recommend --model ru1/model.h5 --catalog cat.h5 --history '1 2 3' -k 5 "
                    "--beam 10 --json";
  char cmd[512];
  assert_int_equal(run_cli(rec, a, sizeof a), 0);
  snprintf(cmd, sizeof cmd, "%s --uid 17", rec);
  assert_int_equal(run_cli(cmd, b, sizeof b), 0);
  assert_non_null(strstr(a, "\"items\""));
  assert_string_equal(a, b);
  /* the hashed id (run/ trained with the default 4096 buckets) does depend on the user */
  const char *rec2 = "recommend --model run/model.h5 --catalog cat.h5 --history '1 2 3' -k 5 "
                     "--beam 10 --json";
  assert_int_equal(run_cli(rec2, a, sizeof a), 0);
  snprintf(cmd, sizeof cmd, "%s --uid 17", rec2);
  assert_int_equal(run_cli(cmd, b, sizeof b), 0);
  assert_string_not_equal(a, b);
}

static void test_bad_flags(void **state) {
  (void)state;
  static char out[8192];
  const char *bad2[] = {
      "eval --catalog cat.h5 --data . --dataset beauty",
      "eval --model run/model.h5 --catalog cat.h5 --data . --dataset beauty --split train",
      "eval --model run/model.h5 --catalog cat.h5 --data . --dataset beauty --beam 4",
      "eval --model run/model.h5 --catalog cat.h5 --data . --dataset beauty --bogus 1",
      "eval --model run/model.h5 --catalog cat.h5 --data . --dataset beauty --users",
      "train --data . --dataset beauty --steps 2 --eval-every 1",
      "train --data . --dataset beauty --catalog cat.h5 --steps 2 --bogus 1",
      "train --data . --dataset beauty --catalog cat.h5 --steps 2 --eval-every 1 --patience 0",
      "train --data . --dataset beauty --catalog cat.h5 --steps 2 --uid-buckets 0",
  };
  for (size_t i = 0; i < sizeof bad2 / sizeof *bad2; i++) {
    assert_int_equal(run_cli(bad2[i], out, sizeof out), 2);
    assert_string_equal(out, "");
  }
  /* an --out that cannot be a folder fails before any training */
  char af[128];
  snprintf(af, sizeof af, "%s/afile", dir);
  FILE *g = fopen(af, "w");
  assert_non_null(g);
  fclose(g);
  assert_int_equal(run_cli_in("train --data . --dataset beauty --steps 2 --out afile/run", 1,
                              out, sizeof out),
                   1);
  assert_non_null(strstr(out, "cannot create folder"));
  assert_null(strstr(out, "samples (")); /* before loading anything */
  assert_int_equal(run_cli_in("train --data . --dataset beauty --steps 2 --out ''", 1, out,
                              sizeof out),
                   1);
  assert_non_null(strstr(out, "empty folder name"));
  /* --ranks into a folder that does not exist: exit 1, no metrics on stdout */
  assert_int_equal(run_cli("eval --model run/model.h5 --catalog cat.h5 --data . --dataset beauty "
                           "--users 3 --ranks afile/r.tsv --json",
                           out, sizeof out),
                   1);
  assert_null(strstr(out, "recall@10"));
  /* a model of another shape: a clear failure, not a crash */
  assert_int_equal(run_cli("model create --preset 0.015B --levels 3 --codes 8 --layers 1 "
                           "--d-model 16 --heads 2 --ffn 32 --out m3.h5",
                           out, sizeof out),
                   0);
  assert_int_equal(run_cli("eval --model m3.h5 --catalog cat.h5 --data . --dataset beauty", out,
                           sizeof out),
                   1);
  assert_int_equal(run_cli("train --data . --dataset beauty --catalog cat.h5 --model m3.h5 "
                           "--steps 2 --out rm",
                           out, sizeof out),
                   1);
  /* a model `onerec train` wrote continues */
  assert_int_equal(run_cli("train --data . --dataset beauty --catalog cat.h5 --model "
                           "run/model.h5 --steps 2 --batch 8 --threads 1 --out rm",
                           out, sizeof out),
                   0);
  assert_int_equal(run_cli("eval --model rm/model.h5 --catalog nothing.h5 --data . --dataset "
                           "beauty",
                           out, sizeof out),
                   1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_train_eval),
      cmocka_unit_test(test_eval_matches_brute_force),
      cmocka_unit_test(test_resume_bit_exact),
      cmocka_unit_test(test_ema),
      cmocka_unit_test(test_label_smoothing),
      cmocka_unit_test(test_eval_ensemble),
      cmocka_unit_test(test_best_survives_resume),
      cmocka_unit_test(test_train_ml100k_static_features),
      cmocka_unit_test(test_shared_user_token),
      cmocka_unit_test(test_bad_flags),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
