/* Tokenizer benchmark: libonerec's RQ-Kmeans against faiss's k-means run level by level on the
 * residuals (bench/faiss_kmeans.py, Debian's python3-faiss), on the same data with the same
 * levels, codes, iterations and training-sample size, in one run. One JSON object per case on
 * stdout; progress on stderr.
 *
 *   build/<BUILD>/bench/tokenizer [--json] [--quick] [--threads N] [--iterations N]
 *                                 [--init kmeans++|random] [--case synthetic|beauty|all]
 *                                 [--data DIR] [--no-faiss] [--faiss-first]
 *
 * Cases: (a) a mixture of Gaussians, 200k x 256, 3 levels x 8192 codes (--quick: 50k x 128,
 * 3 x 1024); (b) the Amazon Beauty item features, 3 x 256, built with `onerec features beauty`
 * from DIR (default ../shared/data/amazon; the case is skipped if it is missing).
 * Loss, for both: sum of squared final residuals / sum of squared inputs, over all vectors.
 * onerec_seconds is onerec_tokenizer_fit (training and the per-level assignment of the
 * training points, which here are all points); faiss_seconds is its train + search per level.
 * Both see the data in memory; reading and writing files is not timed. *_cpu_seconds are the
 * CPU seconds (user + system, all threads) of the same spans; faiss's include starting Python
 * and reading the file. --faiss-first runs
 * faiss before libonerec (on a shared machine, to see whether the order favours either). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "onerec/onerec.h"

typedef struct bench_cfg {
  int json, quick, threads, iterations, no_faiss, faiss_first;
  onerec_kmeans_init init;
  const char *which, *data_dir, *self;
  char tmpdir[64];
} bench_cfg;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU seconds (user + system) of this process, or of its waited-for children: on a shared
 * machine a steadier measure of the work done than wall time. */
static double cpu_s(int who) {
  struct rusage u;
  getrusage(who, &u);
  return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec +
         (double)u.ru_stime.tv_sec + 1e-6 * (double)u.ru_stime.tv_usec;
}

static double load_avg(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
}

static void log_stderr(void *user, onerec_log_level level, const char *message) {
  (void)user;
  (void)level;
  fprintf(stderr, "  %s\n", message);
}

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}
static double rng_unit(uint64_t *s) {
  return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}
static double rng_gauss(uint64_t *s) {
  double u1 = rng_unit(s) + 1e-300, u2 = rng_unit(s);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* A Gaussian mixture: `comps` centres N(0, 1), component weights and spreads varying (a few
 * large, many small, as item catalogues are), points = centre + spread * N(0, 1). */
static float *mixture(int64_t n, int64_t d, int comps, uint64_t seed) {
  float *x = malloc((size_t)(n * d) * sizeof(float));
  float *c = malloc((size_t)(comps * d) * sizeof(float));
  double *cum = malloc((size_t)comps * sizeof(double));
  float *spread = malloc((size_t)comps * sizeof(float));
  if (!x || !c || !cum || !spread) {
    fprintf(stderr, "tokenizer bench: out of memory for %lld x %lld\n", (long long)n,
            (long long)d);
    exit(1);
  }
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  double total = 0;
  for (int g = 0; g < comps; g++) {
    for (int64_t e = 0; e < d; e++) c[g * d + e] = (float)rng_gauss(&s);
    total += 1.0 / pow(g + 1.0, 0.8); /* Zipf-like weights */
    cum[g] = total;
    spread[g] = (float)(0.2 + 0.5 * rng_unit(&s));
  }
  for (int64_t i = 0; i < n; i++) {
    double u = rng_unit(&s) * total;
    int lo = 0, hi = comps - 1;
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      if (cum[mid] > u)
        hi = mid;
      else
        lo = mid + 1;
    }
    for (int64_t e = 0; e < d; e++)
      x[i * d + e] = c[lo * d + e] + spread[lo] * (float)rng_gauss(&s);
  }
  free(c);
  free(cum);
  free(spread);
  return x;
}

/* Runs faiss on the same data (written raw to a temporary file); its JSON line into out. */
static int run_faiss(const bench_cfg *cfg, const float *x, int64_t n, int64_t d, int levels,
                     int k, double *seconds, double *loss, double *cpu) {
  char path[128], cmd[1024], line[4096];
  snprintf(path, sizeof path, "%s/x.f32", cfg->tmpdir);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(x, sizeof(float), (size_t)(n * d), f) != (size_t)(n * d)) {
    fprintf(stderr, "tokenizer bench: cannot write %s\n", path);
    if (f) fclose(f);
    return -1;
  }
  fclose(f);
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 bench/faiss_kmeans.py --data %s --n %lld --d %lld --levels %d "
           "--k %d --iterations %d --seed 1 --threads %d",
           path, (long long)n, (long long)d, levels, k, cfg->iterations, cfg->threads);
  fprintf(stderr, "  faiss: %s\n", cmd);
  double c0 = cpu_s(RUSAGE_CHILDREN);
  FILE *p = popen(cmd, "r");
  int ok = -1;
  if (p) {
    while (fgets(line, sizeof line, p)) {
      const char *a = strstr(line, "\"seconds\":"), *b = strstr(line, "\"loss\":");
      if (a && b && sscanf(a + 10, "%lf", seconds) == 1 && sscanf(b + 7, "%lf", loss) == 1)
        ok = 0;
    }
    if (pclose(p) != 0) ok = -1;
  }
  *cpu = cpu_s(RUSAGE_CHILDREN) - c0; /* includes reading the file and starting python */
  remove(path);
  if (ok) fprintf(stderr, "tokenizer bench: the faiss run failed (see above); faiss_* = null\n");
  return ok;
}

static void json_num(double v) {
  if (isfinite(v))
    printf("%.6g", v);
  else
    printf("null");
}

static int run_case(const bench_cfg *cfg, onerec_context *ctx, const char *name, const float *x,
                    int64_t n, int64_t d, int levels, int k) {
  fprintf(stderr, "tokenizer bench: %s: %lld x %lld, %d levels x %d codes, %d iterations, %s "
                  "init, %d threads (load average %.2f)\n",
          name, (long long)n, (long long)d, levels, k, cfg->iterations,
          cfg->init == ONEREC_KMEANS_RANDOM ? "random" : "k-means++", cfg->threads, load_avg());
  double load0 = load_avg();
  double fs = NAN, fl = NAN, fc = NAN;
  if (!cfg->no_faiss && cfg->faiss_first &&
      run_faiss(cfg, x, n, d, levels, k, &fs, &fl, &fc) == 0)
    fprintf(stderr, "  faiss: %.2f s, loss %.6f\n", fs, fl);
  ONEREC_OPTS(onerec_tokenizer_opts, o, .levels = levels, .codes_per_level = k,
              .iterations = cfg->iterations, .seed = 1, .init = cfg->init);
  onerec_tokenizer *tok = NULL;
  double t0 = now_s(), c0 = cpu_s(RUSAGE_SELF);
  onerec_status s = onerec_tokenizer_fit(ctx, x, n, d, &o, &tok);
  double fit_s = now_s() - t0, fit_cpu = cpu_s(RUSAGE_SELF) - c0;
  if (s) {
    fprintf(stderr, "tokenizer bench: fit: %s: %s\n", onerec_status_str(s), onerec_last_error());
    return 1;
  }
  int32_t *codes = malloc((size_t)(n * levels) * sizeof(int32_t));
  if (!codes) return 1;
  t0 = now_s();
  s = onerec_tokenizer_encode(tok, x, n, codes);
  double enc_s = now_s() - t0;
  ONEREC_OPTS(onerec_tokenizer_metrics, m);
  if (!s) s = onerec_tokenizer_metrics_get(tok, x, codes, n, &m);
  ONEREC_OPTS(onerec_tokenizer_info, info);
  if (!s) s = onerec_tokenizer_info_get(tok, &info);
  free(codes);
  onerec_tokenizer_free(tok);
  if (s) {
    fprintf(stderr, "tokenizer bench: %s: %s\n", onerec_status_str(s), onerec_last_error());
    return 1;
  }
  fprintf(stderr, "  onerec: fit %.2f s, loss %.6f (encode %.2f s)\n", fit_s,
          m.reconstruction_loss, enc_s);
  if (!cfg->no_faiss && !cfg->faiss_first &&
      run_faiss(cfg, x, n, d, levels, k, &fs, &fl, &fc) == 0)
    fprintf(stderr, "  faiss: %.2f s, loss %.6f\n", fs, fl);
  double load1 = load_avg();
  if (cfg->json) {
    printf("{\"case\":\"%s\",\"n\":%lld,\"d\":%lld,\"levels\":%d,\"codes\":%d,\"iterations\":%d,"
           "\"train_points\":%lld,\"init\":\"%s\",\"threads\":%d,\"onerec_seconds\":",
           name, (long long)n, (long long)d, levels, k, cfg->iterations,
           (long long)info.train_points,
           cfg->init == ONEREC_KMEANS_RANDOM ? "random" : "kmeans++", cfg->threads);
    json_num(fit_s);
    printf(",\"faiss_seconds\":");
    json_num(fs);
    printf(",\"onerec_loss\":");
    json_num(m.reconstruction_loss);
    printf(",\"faiss_loss\":");
    json_num(fl);
    printf(",\"onerec_cpu_seconds\":");
    json_num(fit_cpu);
    printf(",\"faiss_cpu_seconds\":");
    json_num(fc);
    printf(",\"onerec_encode_seconds\":");
    json_num(enc_s);
    printf(",\"onerec_utilization\":[");
    for (int l = 0; l < levels; l++) printf("%s%.4f", l ? "," : "", m.utilization[l]);
    printf("],\"onerec_entropy_bits\":[");
    for (int l = 0; l < levels; l++) printf("%s%.4f", l ? "," : "", m.entropy_bits[l]);
    printf("],\"onerec_collision_rate\":");
    json_num(m.collision_rate);
    printf(",\"load_avg_before\":%.2f,\"load_avg_after\":%.2f}\n", load0, load1);
  } else {
    printf("%-28s onerec %8.2f s loss %.6f | faiss %8.2f s loss %.6f\n", name, fit_s,
           m.reconstruction_loss, fs, fl);
  }
  fflush(stdout);
  return 0;
}

/* The Beauty features, made by the CLI next to this binary (build/X/bin/onerec). */
static float *beauty_features(const bench_cfg *cfg, int64_t *n, int64_t *d) {
  char dir[1024], cli[1200], out[128], cmd[3000], probe[1100];
  snprintf(probe, sizeof probe, "%s/Beauty_items.tsv", cfg->data_dir);
  if (access(probe, R_OK) != 0) {
    fprintf(stderr, "tokenizer bench: beauty: skipped, %s is missing (--data DIR)\n", probe);
    return NULL;
  }
  snprintf(dir, sizeof dir, "%s", cfg->self);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = '\0';
  else
    snprintf(dir, sizeof dir, ".");
  snprintf(cli, sizeof cli, "%s/../bin/onerec", dir);
  if (access(cli, X_OK) != 0) {
    fprintf(stderr, "tokenizer bench: beauty: skipped, %s is missing (make cli)\n", cli);
    return NULL;
  }
  snprintf(out, sizeof out, "%s/beauty.h5", cfg->tmpdir);
  snprintf(cmd, sizeof cmd, "%s features beauty %s --out %s >&2", cli, cfg->data_dir, out);
  fprintf(stderr, "tokenizer bench: %s\n", cmd);
  if (system(cmd) != 0) {
    fprintf(stderr, "tokenizer bench: beauty: skipped, the features command failed\n");
    return NULL;
  }
  onerec_status s = onerec_features_file_info(out, n, d, NULL);
  float *x = s ? NULL : malloc((size_t)(*n * *d) * sizeof(float));
  if (!s && x) s = onerec_features_file_read(out, x, (size_t)(*n * *d), NULL, 0);
  remove(out);
  if (s || !x) {
    fprintf(stderr, "tokenizer bench: beauty: %s\n", s ? onerec_last_error() : "out of memory");
    free(x);
    return NULL;
  }
  return x;
}

static void usage(void) {
  fprintf(stderr,
          "usage: tokenizer [--json] [--quick] [--threads N] [--iterations N]\n"
          "                 [--init kmeans++|random] [--case synthetic|beauty|all] [--data DIR]\n"
          "                 [--no-faiss] [--faiss-first]\n");
}

int main(int argc, char **argv) {
  bench_cfg cfg = {.threads = 2, .iterations = 0, .init = ONEREC_KMEANS_PLUSPLUS, .which = "all",
                   .data_dir = "../shared/data/amazon", .self = argv[0]};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has = i + 1 < argc;
    if (!strcmp(a, "--json"))
      cfg.json = 1;
    else if (!strcmp(a, "--quick"))
      cfg.quick = 1;
    else if (!strcmp(a, "--no-faiss"))
      cfg.no_faiss = 1;
    else if (!strcmp(a, "--faiss-first"))
      cfg.faiss_first = 1;
    else if (!strcmp(a, "--threads") && has)
      cfg.threads = atoi(argv[++i]);
    else if (!strcmp(a, "--iterations") && has)
      cfg.iterations = atoi(argv[++i]);
    else if (!strcmp(a, "--case") && has)
      cfg.which = argv[++i];
    else if (!strcmp(a, "--data") && has)
      cfg.data_dir = argv[++i];
    else if (!strcmp(a, "--init") && has) {
      const char *v = argv[++i];
      if (!strcmp(v, "random"))
        cfg.init = ONEREC_KMEANS_RANDOM;
      else if (!strcmp(v, "kmeans++"))
        cfg.init = ONEREC_KMEANS_PLUSPLUS;
      else {
        usage();
        return 2;
      }
    } else {
      usage();
      return 2;
    }
  }
  if (cfg.threads < 1) cfg.threads = 1;
  snprintf(cfg.tmpdir, sizeof cfg.tmpdir, "/tmp/onerec-bench-tok-XXXXXX");
  if (!mkdtemp(cfg.tmpdir)) {
    fprintf(stderr, "tokenizer bench: cannot create a temporary directory\n");
    return 1;
  }
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = cfg.threads,
              .log_fn = log_stderr, .log_level = ONEREC_LOG_INFO);
  onerec_context *ctx = NULL;
  if (onerec_context_create(&co, &ctx)) {
    fprintf(stderr, "tokenizer bench: context: %s\n", onerec_last_error());
    return 1;
  }
  int rc = 0;
  int all = !strcmp(cfg.which, "all");
  if (all || !strcmp(cfg.which, "synthetic")) {
    int64_t n = cfg.quick ? 50000 : 200000, d = cfg.quick ? 128 : 256;
    int k = cfg.quick ? 1024 : 8192;
    bench_cfg c = cfg;
    if (!c.iterations) c.iterations = 10;
    float *x = mixture(n, d, cfg.quick ? 2048 : 16384, 7);
    char name[64];
    snprintf(name, sizeof name, "synthetic-%lldx%lld-3x%d", (long long)n, (long long)d, k);
    rc |= run_case(&c, ctx, name, x, n, d, 3, k);
    free(x);
  }
  if (all || !strcmp(cfg.which, "beauty")) {
    int64_t n = 0, d = 0;
    float *x = beauty_features(&cfg, &n, &d);
    if (x) {
      bench_cfg c = cfg;
      if (!c.iterations) c.iterations = 25;
      rc |= run_case(&c, ctx, "beauty-3x256", x, n, d, 3, 256);
      free(x);
    }
  }
  onerec_context_free(ctx);
  rmdir(cfg.tmpdir);
  return rc;
}
