/* Training benchmark (issue 5): full training steps (forward + backward + AdamW update) of the
 * model at SPEC preset 0.015B, with the inputs of bench/infer.c: batch 64, encoder input 1 + 20
 * + 256 + 128 tokens (static, short-term, positive, lifelong queries; 256 lifelong interactions
 * per user, under the compression threshold), 3 levels x 8192 codes, the decoder teacher-forced
 * on each user's target (3 semantic IDs), NTP loss over the 3 levels. The trainer runs with its
 * defaults (AdamW, dense lr 1e-3, sparse 1e-2, weight decay 0.01, clip 1.0, one micro-batch per
 * update), side by side with the PyTorch peer bench/train_torch.py (run in the same process tree
 * with torch.set_num_threads = our threads, same shapes, same warm-up and timing):
 *
 *   build/bench/train [--json] [--threads N] [--shards S] [--quick] [--no-torch] [--reps N]
 *                     [--warmup N]                                       (from the repo root)
 *
 * --shards S: the trainer's data-parallel shards (default 1; the torch side has none).
 *
 * Each side runs `warmup` untimed steps (default 2 here, 1 for torch), then `reps` timed ones
 * (default 5 here, 3 for torch, whose steps take ~10x longer; --reps sets both, --quick makes it
 * 1 warm-up and 1 timed step each); samples/s = 64 / the best step time (the median goes into
 * the JSON too). One line on stdout (JSON with --json: name, onerec, torch, ratio = onerec /
 * torch, unit, medians, threads, parameter counts, load averages before and after); progress on
 * stderr. The machine may be shared, so the numbers are noisy: the load averages say how much. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onerec/onerec.h"

static const char *const bench_name = "train";
#include "bench_common.h"

#define MAXREPS 1000

typedef struct torch_res {
  double best, med; /* samples/s; NAN when the peer gave nothing */
  long long params;
} torch_res;

/* Runs the PyTorch peer and reads its JSON line. */
static torch_res run_torch(int threads, int warmup, int reps) {
  torch_res r = {NAN, NAN, -1};
  char cmd[512];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 bench/train_torch.py --threads %d --batch %d --lifelong %d "
           "--warmup %d --reps %d",
           threads, B, NLIFE, warmup, reps);
  fprintf(stderr, "train: running %s\n", cmd);
  FILE *p = popen(cmd, "r");
  if (!p) return r;
  char line[1024];
  while (fgets(line, sizeof line, p)) {
    const char *t = strstr(line, "\"torch\": ");
    const char *m = strstr(line, "\"torch_median\": ");
    const char *n = strstr(line, "\"params\": ");
    if (!strstr(line, "\"name\": \"train_step_b") || !t) continue;
    if (sscanf(t + 9, "%lf", &r.best) != 1) r.best = NAN;
    if (m && sscanf(m + 16, "%lf", &r.med) != 1) r.med = NAN;
    if (n && sscanf(n + 10, "%lld", &r.params) != 1) r.params = -1;
  }
  if (pclose(p) != 0) fprintf(stderr, "train: the torch peer failed\n");
  return r;
}

static void print_num(const char *key, double v, const char *fmt) {
  printf("\"%s\":", key);
  if (isnan(v)) printf("null");
  else printf(fmt, v);
  printf(",");
}

int main(int argc, char **argv) {
  int json = 0, threads = 2, quick = 0, torch = 1, reps_opt = 0, warm_opt = -1, shards = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--no-torch")) torch = 0;
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--shards") && i + 1 < argc) shards = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps_opt = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warm_opt = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: train [--json] [--threads N] [--shards S] [--quick] [--no-torch] "
                      "[--reps N] [--warmup N]\n");
      return 2;
    }
  }
  if (threads < 1 || shards < 1 || shards > 64 || reps_opt < 0 || reps_opt > MAXREPS ||
      warm_opt > MAXREPS) {
    fprintf(stderr, "train: --threads >= 1, --shards 1..64, --reps and --warmup 0..%d\n", MAXREPS);
    return 2;
  }
  const int reps = reps_opt > 0 ? reps_opt : quick ? 1 : 5;
  const int warmup = warm_opt >= 0 ? warm_opt : quick ? 1 : 2;
  const int t_reps = reps_opt > 0 ? reps_opt : quick ? 1 : 3;
  const int t_warmup = warm_opt >= 0 ? warm_opt : 1;
  const double load0 = loadavg();

  onerec_status st;
  onerec_context *ctx = NULL;
  ONEREC_OPTS(onerec_model_config, c);
  onerec_model *m = bench_model(threads, &ctx, &c);
  const long long n_params = (long long)onerec_model_param_count(m);
  fprintf(stderr, "train: onerec 0.015B, %lld parameters, %d threads\n", n_params, threads);

  /* users, as bench/infer */
  bench_users bu;
  bench_users_make(&bu, &c);
  const onerec_user_batch u = bu.u;
  int32_t *codes = malloc((size_t)B * (size_t)c.levels * sizeof *codes);
  if (!codes) die("inputs", ONEREC_ERR_OUT_OF_MEMORY);
  for (int64_t i = 0; i < B * c.levels; i++) codes[i] = (int32_t)(next() % (uint64_t)c.codebook);

  /* trainer defaults, but buffers sized for the 256 lifelong interactions given (the default
   * sizes them for the model's lifelong_max_items, 100,000 per user) */
  ONEREC_OPTS(onerec_trainer_opts, to, .max_batch = B, .max_lifelong = NLIFE, .shards = shards);
  onerec_trainer *tr = NULL;
  if ((st = onerec_trainer_create(m, &to, &tr))) die("trainer", st);

  static double t[MAXREPS];
  for (int r = 0; r < warmup + reps; r++) {
    float loss = 0.0f;
    double t0 = now_s();
    if ((st = onerec_trainer_step(tr, &u, codes, &loss))) die("step", st);
    double dt = now_s() - t0;
    if (r >= warmup) t[r - warmup] = dt;
    fprintf(stderr, "train: onerec %s step %d: %.3f s, loss %.4f\n",
            r < warmup ? "warm-up" : "timed", r < warmup ? r + 1 : r - warmup + 1, dt, loss);
  }
  double best = INFINITY;
  for (int r = 0; r < reps; r++) best = t[r] < best ? t[r] : best;
  const double onerec_best = B / best, onerec_med = B / median(t, reps);
  onerec_trainer_free(tr);
  onerec_model_free(m);
  onerec_context_free(ctx);
  const double load_mid = loadavg();

  torch_res tres = {NAN, NAN, -1};
  if (torch) {
    tres = run_torch(threads, t_warmup, t_reps);
    if (tres.params >= 0)
      fprintf(stderr, "train: parameters: onerec %lld, torch %lld (%s)\n", n_params, tres.params,
              tres.params == n_params ? "equal" : "DIFFERENT");
  }
  const double load1 = loadavg();
  const double ratio = onerec_best / tres.best, ratio_med = onerec_med / tres.med;
  if (json) {
    printf("{\"name\":\"train_step_b%d\",", B);
    print_num("onerec", onerec_best, "%.4g");
    print_num("torch", tres.best, "%.4g");
    print_num("ratio", ratio, "%.3g");
    printf("\"unit\":\"samples/s\",");
    print_num("onerec_median", onerec_med, "%.4g");
    print_num("torch_median", tres.med, "%.4g");
    print_num("ratio_median", ratio_med, "%.3g");
    printf("\"threads\":%d,\"shards\":%d,\"reps\":%d,\"torch_reps\":%d,\"params\":%lld,"
           "\"torch_params\":",
           threads, shards, reps, torch ? t_reps : 0, n_params);
    if (tres.params >= 0) printf("%lld,", tres.params);
    else printf("null,");
    printf("\"loadavg\":[%.2f,%.2f,%.2f]}\n", load0, load_mid, load1);
  } else {
    printf("train_step_b%d   onerec %8.3f  torch %8.3f  samples/s  (onerec %.2fx; medians %.3f / "
           "%.3f, %.2fx; load %.2f %.2f %.2f)\n",
           B, onerec_best, tres.best, ratio, onerec_med, tres.med, ratio_med, load0, load_mid,
           load1);
  }
  free(codes);
  bench_users_free(&bu);
  return 0;
}
