/* Inference benchmark (issue 4): the model at a SPEC preset (0.015B by default), batch 64,
 * encoder input 1 + 20 + 256 + 128 tokens (static, short-term, positive, lifelong queries; 256
 * lifelong interactions per user, under the compression threshold), decoder 3 positions (BOS and
 * two codes; the third code is the target), 8192 codes per level, a catalogue of 1M items:
 *   forward_b64      encode + decode + exact log p of one target per user (samples/s)
 *   beamN_latency    constrained beam search, one request (one user), k = 10 (ms/request)
 * side by side with the PyTorch peer bench/infer_torch.py (run in the same process tree with
 * torch.set_num_threads = our threads, on the same catalogue file).
 *
 *   build/bench/infer [--json] [--threads N] [--quick] [--no-torch] [--items N]   (repo root)
 *                     [--reps N] [--only NAME]     (--only beam512 etc.: for perf record)
 *
 * One line per measurement on stdout (JSON with --json: name, onerec, torch, ratio, unit; ratio
 * = how many times better onerec is); progress on stderr. Times are the best of N runs after a
 * warm-up; the machine is shared, so treat them as noisy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "onerec/onerec.h"

static const char *const bench_name = "infer";
#include "bench_common.h"


typedef struct meas {
  char name[32];
  double onerec, torch;
  const char *unit;
  int higher_better;
} meas;

/* Runs the PyTorch peer and fills the torch column of the measurements it reports. */
static void run_torch(meas *m, int n, int threads, const char *cat_path, int quick) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 bench/infer_torch.py --threads %d --catalog %s --reps %d", threads,
           cat_path, quick ? 1 : 3);
  fprintf(stderr, "infer: running %s\n", cmd);
  FILE *p = popen(cmd, "r");
  if (!p) return;
  char line[512];
  while (fgets(line, sizeof line, p)) {
    char name[64];
    double v;
    const char *q = strstr(line, "\"name\": \"");
    const char *t = strstr(line, "\"torch\": ");
    if (!q || !t || sscanf(q + 9, "%63[^\"]", name) != 1 || sscanf(t + 9, "%lf", &v) != 1)
      continue;
    for (int i = 0; i < n; i++)
      if (!strcmp(m[i].name, name)) m[i].torch = v;
  }
  pclose(p);
}

int main(int argc, char **argv) {
  int json = 0, threads = 2, quick = 0, torch = 1;
  int64_t n_items = 1000000;
  int reps_opt = 0;
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) json = 1;
    else if (!strcmp(argv[i], "--quick")) quick = 1;
    else if (!strcmp(argv[i], "--no-torch")) torch = 0;
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--items") && i + 1 < argc) n_items = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps_opt = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else {
      fprintf(stderr, "usage: infer [--json] [--threads N] [--quick] [--no-torch] [--items N] "
                      "[--reps N] [--only forward|beam32|beam128|beam512]\n");
      return 2;
    }
  }
  const int reps = reps_opt > 0 ? reps_opt : quick ? 1 : 3;
  if (only) torch = 0;
  onerec_status st;
  onerec_context *ctx = NULL;
  ONEREC_OPTS(onerec_model_config, c);
  onerec_model *m = bench_model(threads, &ctx, &c);

  /* catalogue: n_items distinct semantic IDs (i x odd mod K^3 is a bijection when K^3 is a
   * power of two) */
  const int64_t K = c.codebook, K3 = K * K * K;
  ONEREC_OPTS(onerec_catalog_opts, cato, .levels = c.levels, .codes_per_level = (int)K);
  onerec_catalog *cat = NULL;
  if ((st = onerec_catalog_create(ctx, &cato, &cat))) die("catalog", st);
  int64_t *ids = malloc((size_t)n_items * sizeof *ids);
  int32_t *codes = malloc((size_t)n_items * 3 * sizeof *codes);
  if (!ids || !codes) die("catalog", ONEREC_ERR_OUT_OF_MEMORY);
  for (int64_t i = 0; i < n_items; i++) {
    int64_t v = (int64_t)(((uint64_t)i * 0x9E3779B97F4A7C15ull) & (uint64_t)(K3 - 1));
    ids[i] = i;
    codes[3 * i] = (int32_t)(v / (K * K));
    codes[3 * i + 1] = (int32_t)(v / K % K);
    codes[3 * i + 2] = (int32_t)(v % K);
  }
  if ((st = onerec_catalog_add(cat, (size_t)n_items, ids, codes))) die("catalog add", st);
  if ((st = onerec_catalog_commit(cat))) die("catalog commit", st);
  char cat_path[64];
  snprintf(cat_path, sizeof cat_path, "/tmp/onerec_infer_cat_%d.h5", (int)getpid());
  if (torch && (st = onerec_catalog_save(cat, cat_path))) die("catalog save", st);

  /* users */
  bench_users bu;
  bench_users_make(&bu, &c);
  const onerec_user_batch u = bu.u;

  meas ms[4];
  int nm = 0;
  memset(ms, 0, sizeof ms);

  /* forward: encode, decode, exact log p of one target per user */
  if (!only || !strcmp(only, "forward")) {
    ONEREC_OPTS(onerec_session_opts, so, .max_batch = B, .max_targets = B, .max_lifelong = NLIFE);
    onerec_session *s = NULL;
    if ((st = onerec_session_create(m, NULL, &so, &s))) die("session", st);
    int32_t *tg = malloc((size_t)B * 3 * sizeof *tg);
    for (int64_t i = 0; i < B; i++) memcpy(tg + 3 * i, codes + 3 * (i * 7919 % n_items), 12);
    double lp[B], best = INFINITY;
    for (int r = 0; r <= reps; r++) {
      double t0 = now_s();
      if ((st = onerec_session_score(s, &u, NULL, tg, lp, B))) die("score", st);
      double t = now_s() - t0;
      if (r > 0 && t < best) best = t;
    }
    snprintf(ms[nm].name, sizeof ms[nm].name, "forward_b%d", B);
    ms[nm].onerec = B / best;
    ms[nm].unit = "samples/s";
    ms[nm++].higher_better = 1;
    free(tg);
    onerec_session_free(s);
  }

  /* beam search: one request = one user */
  {
    ONEREC_OPTS(onerec_session_opts, so, .max_batch = 1, .max_targets = ONEREC_MAX_BEAM,
                .max_lifelong = NLIFE);
    onerec_session *s = NULL;
    if ((st = onerec_session_create(m, NULL, &so, &s))) die("session", st);
    onerec_user_batch one = u; /* the first user alone */
    one.batch = 1;
    static const int beams[] = {32, 128, 512};
    for (int bi = 0; bi < 3; bi++) {
      char nm_[16];
      snprintf(nm_, sizeof nm_, "beam%d", beams[bi]);
      if (only && strcmp(only, nm_)) continue;
      ONEREC_OPTS(onerec_recommend_opts, ro, .beam = beams[bi], .k = 10);
      int64_t out[10];
      double lp[10], best = INFINITY;
      for (int r = 0; r <= reps; r++) {
        double t0 = now_s();
        if ((st = onerec_session_recommend(s, cat, &one, &ro, out, lp, 10))) die("recommend", st);
        double t = now_s() - t0;
        if (r > 0 && t < best) best = t;
      }
      snprintf(ms[nm].name, sizeof ms[nm].name, "beam%d_latency", beams[bi]);
      ms[nm].onerec = 1e3 * best;
      ms[nm].unit = "ms/request";
      ms[nm++].higher_better = 0;
      fprintf(stderr, "infer: beam %d: %.2f ms\n", beams[bi], 1e3 * best);
    }
    onerec_session_free(s);
  }
  for (int i = 0; i < nm; i++) ms[i].torch = NAN;
  if (torch) {
    run_torch(ms, nm, threads, cat_path, quick);
    remove(cat_path);
  }
  for (int i = 0; i < nm; i++) {
    double ratio = ms[i].higher_better ? ms[i].onerec / ms[i].torch : ms[i].torch / ms[i].onerec;
    if (json) {
      printf("{\"name\":\"%s\",\"onerec\":%.4g,", ms[i].name, ms[i].onerec);
      if (isnan(ms[i].torch)) printf("\"torch\":null,\"ratio\":null,");
      else printf("\"torch\":%.4g,\"ratio\":%.3g,", ms[i].torch, ratio);
      printf("\"unit\":\"%s\",\"threads\":%d}\n", ms[i].unit, threads);
    } else {
      printf("%-16s onerec %10.3f  torch %10.3f  %s  (onerec %.2fx better)\n", ms[i].name,
             ms[i].onerec, ms[i].torch, ms[i].unit, ratio);
    }
  }
  bench_users_free(&bu);
  free(ids);
  free(codes);
  onerec_catalog_free(cat);
  onerec_model_free(m);
  onerec_context_free(ctx);
  return 0;
}
