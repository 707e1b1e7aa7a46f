#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void tokenizer_usage(FILE *f) {
  fprintf(f,
          "usage: onerec tokenizer fit --features F.h5 --out TOK.h5 [--levels L] [--codes K]\n"
          "                            [--iterations N] [--seed S] [--init kmeans++|random]\n"
          "                            [--balanced] [--tolerance T] [--max-train N]\n"
          "                            [--catalog CAT.h5] [--threads T] [--json]\n"
          "       onerec tokenizer stats TOK.h5 [--features F.h5] [--threads T] [--json]\n"
          "  fit    RQ-Kmeans on the features (HDF5: float dataset features [n, d], optional\n"
          "         int64 item_ids [n]); saves the tokenizer, encodes every item and reports\n"
          "         reconstruction loss, utilisation and entropy per level (bits) and\n"
          "         collisions, before and after making item <-> semantic ID one-to-one.\n"
          "         --catalog also saves the one-to-one item <-> semantic ID catalogue.\n"
          "  stats  the tokenizer's configuration and codebooks; with --features the metrics.\n"
          "  defaults: 3 levels x 256 codes, 25 iterations, seed 0, k-means++, fit on at most\n"
          "  256 x codes points (--max-train -1: all).\n");
}

static void log_stderr(void *user, onerec_log_level level, const char *message) {
  (void)user;
  (void)level;
  fprintf(stderr, "onerec: %s\n", message);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* JSON has no NaN: null stands for "not measured". */
static void json_num(double v) {
  if (isfinite(v))
    printf("%.9g", v);
  else
    printf("null");
}

static void json_array(const double *v, int n) {
  putchar('[');
  for (int i = 0; i < n; i++) {
    if (i) putchar(',');
    json_num(v[i]);
  }
  putchar(']');
}

/* The features file's vectors and ids, in memory. */
typedef struct features {
  float *x;
  int64_t *ids;
  int64_t n, dim;
} features;

static int load_features(const char *path, features *f) {
  memset(f, 0, sizeof *f);
  onerec_status s = onerec_features_file_info(path, &f->n, &f->dim, NULL);
  if (s) return cli_fail("reading the features", s);
  f->x = malloc((size_t)(f->n * f->dim) * sizeof(float));
  f->ids = malloc((size_t)f->n * sizeof(int64_t));
  if (!f->x || !f->ids) {
    fprintf(stderr, "onerec: out of memory for %lld x %lld features\n", (long long)f->n,
            (long long)f->dim);
    return 1;
  }
  s = onerec_features_file_read(path, f->x, (size_t)(f->n * f->dim), f->ids, (size_t)f->n);
  if (s) return cli_fail("reading the features", s);
  fprintf(stderr, "onerec: %s: %lld items x %lld dims\n", path, (long long)f->n,
          (long long)f->dim);
  return 0;
}

static void free_features(features *f) {
  free(f->x);
  free(f->ids);
}

static void print_metrics(const onerec_tokenizer_metrics *m) {
  double ent[ONEREC_TOKENIZER_MAX_LEVELS], nats[ONEREC_TOKENIZER_MAX_LEVELS],
      util[ONEREC_TOKENIZER_MAX_LEVELS];
  for (int l = 0; l < m->levels; l++) {
    ent[l] = m->entropy_bits[l];
    nats[l] = m->entropy_nats[l];
    util[l] = m->utilization[l];
  }
  printf("\"reconstruction_loss\":");
  json_num(m->reconstruction_loss);
  printf(",\"utilization\":");
  json_array(util, m->levels);
  printf(",\"entropy\":");
  json_array(ent, m->levels);
  printf(",\"entropy_unit\":\"bits\",\"entropy_nats\":");
  json_array(nats, m->levels);
  printf(",\"collision_rate\":");
  json_num(m->collision_rate);
  printf(",\"colliding_items\":%lld,\"largest_collision_group\":%lld,\"distinct_ids\":%lld",
         (long long)m->colliding_items, (long long)m->largest_collision_group,
         (long long)m->distinct_ids);
}

static void print_metrics_text(const char *what, const onerec_tokenizer_metrics *m) {
  printf("%s: reconstruction loss %.6f, collisions %.4f (largest group %lld)\n", what,
         m->reconstruction_loss, m->collision_rate, (long long)m->largest_collision_group);
  for (int l = 0; l < m->levels; l++)
    printf("  level %d: utilisation %.4f, entropy %.4f bits (%.4f nats)\n", l + 1,
           m->utilization[l], m->entropy_bits[l], m->entropy_nats[l]);
}

/* Whether n items can have distinct semantic IDs: n <= codes^levels. */
static int fits_one_to_one(int64_t n, int levels, int codes) {
  double ids = pow((double)codes, (double)levels);
  return (double)n <= ids;
}

/* Plain and one-to-one encodings of the features with their metrics; codes keeps the
 * one-to-one codes. *resolved = 0 (and the plain codes kept) when there are more items than
 * semantic IDs. */
static int evaluate(onerec_tokenizer *tok, const features *f, int32_t *codes,
                    onerec_tokenizer_metrics *plain, onerec_tokenizer_unique_report *rep,
                    onerec_tokenizer_metrics *uniq, int *resolved) {
  onerec_status s = onerec_tokenizer_encode(tok, f->x, f->n, codes);
  if (!s) s = onerec_tokenizer_metrics_get(tok, f->x, codes, f->n, plain);
  if (s) return cli_fail("encoding", s);
  ONEREC_OPTS(onerec_tokenizer_info, in);
  onerec_tokenizer_info_get(tok, &in);
  *resolved = fits_one_to_one(f->n, in.levels, in.codes_per_level);
  if (!*resolved) {
    fprintf(stderr,
            "onerec: %lld items but only %d^%d semantic IDs: no one-to-one resolution\n",
            (long long)f->n, in.codes_per_level, in.levels);
    return 0;
  }
  s = onerec_tokenizer_encode_unique(tok, f->x, f->n, codes, rep);
  if (!s) s = onerec_tokenizer_metrics_get(tok, NULL, codes, f->n, uniq);
  if (s) return cli_fail("resolving collisions", s);
  uniq->reconstruction_loss = rep->loss_after;
  return 0;
}

static void print_unique(const onerec_tokenizer_unique_report *rep,
                         const onerec_tokenizer_metrics *u, int resolved) {
  if (!resolved) {
    printf("\"unique\":null");
    return;
  }
  printf("\"unique\":{\"reassigned\":%lld,\"reassigned_upper\":%lld,\"reconstruction_loss\":",
         (long long)rep->reassigned, (long long)rep->reassigned_upper);
  json_num(rep->loss_after);
  printf(",\"collision_rate\":");
  json_num(u->collision_rate);
  double ent[ONEREC_TOKENIZER_MAX_LEVELS], util[ONEREC_TOKENIZER_MAX_LEVELS];
  for (int l = 0; l < u->levels; l++) {
    ent[l] = u->entropy_bits[l];
    util[l] = u->utilization[l];
  }
  printf(",\"utilization\":");
  json_array(util, u->levels);
  printf(",\"entropy\":");
  json_array(ent, u->levels);
  printf("}");
}

static onerec_context *make_context(long long threads) {
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = (int)threads,
              .log_fn = log_stderr, .log_level = ONEREC_LOG_INFO);
  onerec_context *ctx = NULL;
  onerec_status s = onerec_context_create(&co, &ctx);
  if (s) {
    cli_fail("creating the context", s);
    return NULL;
  }
  return ctx;
}

static int save_catalog(onerec_context *ctx, const char *path, const features *f, int levels,
                        int codes, const int32_t *ids) {
  ONEREC_OPTS(onerec_catalog_opts, o, .levels = levels, .codes_per_level = codes);
  onerec_catalog *cat = NULL;
  onerec_status s = onerec_catalog_create(ctx, &o, &cat);
  if (!s) s = onerec_catalog_add(cat, (size_t)f->n, f->ids, ids);
  if (!s) s = onerec_catalog_commit(cat);
  if (!s) s = onerec_catalog_save(cat, path);
  onerec_catalog_free(cat);
  if (s) return cli_fail("saving the catalogue", s);
  fprintf(stderr, "onerec: wrote %s (%lld items)\n", path, (long long)f->n);
  return 0;
}

static int cmd_fit(int argc, char **argv) {
  const char *feat = NULL, *out = NULL, *catalog = NULL;
  long long levels = 3, codes = 256, iters = 25, seed = 0, threads = 0, max_train = 0;
  double tol = 0;
  const char *init_name = "kmeans++";
  int json = 0, balanced = 0;
  const cli_opt opts[] = {
      CLI_FLAG("--json", &json),
      CLI_FLAG("--balanced", &balanced),
      CLI_STR("--features", &feat),
      CLI_STR("--out", &out),
      CLI_STR("--catalog", &catalog),
      CLI_INT("--levels", &levels, 1, ONEREC_TOKENIZER_MAX_LEVELS),
      CLI_INT("--codes", &codes, 1, 1 << 24),
      CLI_INT("--iterations", &iters, 1, 1000000),
      CLI_INT("--seed", &seed, 0, CLI_INT_MAX),
      CLI_INT("--threads", &threads, 0, 1024),
      CLI_INT("--max-train", &max_train, -1, CLI_INT_MAX),
      CLI_REAL("--tolerance", &tol, 0.0, INFINITY, 0),
      CLI_STR("--init", &init_name),
  };
  int rc = cli_parse("tokenizer fit", argc - 1, argv + 1, opts, CLI_COUNT(opts),
                     tokenizer_usage, NULL, 0);
  if (rc != CLI_PARSED) return rc;
  onerec_kmeans_init init = ONEREC_KMEANS_PLUSPLUS;
  if (!strcmp(init_name, "random"))
    init = ONEREC_KMEANS_RANDOM;
  else if (strcmp(init_name, "kmeans++")) {
    fprintf(stderr, "onerec tokenizer fit: --init is kmeans++ or random, not '%s'\n", init_name);
    return 2;
  }
  if (!feat || !out) {
    fprintf(stderr, "onerec tokenizer fit: --features and --out are required\n");
    tokenizer_usage(stderr);
    return 2;
  }
  double t0 = now_s();
  features f;
  rc = load_features(feat, &f);
  if (rc) {
    free_features(&f);
    return rc;
  }
  onerec_context *ctx = make_context(threads);
  if (!ctx) {
    free_features(&f);
    return 1;
  }
  ONEREC_OPTS(onerec_tokenizer_opts, o, .levels = (int)levels, .codes_per_level = (int)codes,
              .iterations = (int)iters, .seed = (uint64_t)seed, .init = init,
              .balanced = balanced, .tolerance = tol, .max_train = max_train);
  onerec_tokenizer *tok = NULL;
  int32_t *ids = malloc((size_t)(f.n * levels) * sizeof(int32_t));
  onerec_status s = ids ? onerec_tokenizer_fit(ctx, f.x, f.n, f.dim, &o, &tok)
                        : ONEREC_ERR_OUT_OF_MEMORY;
  if (s) {
    rc = cli_fail("fitting the tokenizer", s);
    goto done;
  }
  s = onerec_tokenizer_save(tok, out);
  if (s) {
    rc = cli_fail("saving the tokenizer", s);
    goto done;
  }
  fprintf(stderr, "onerec: wrote %s\n", out);
  ONEREC_OPTS(onerec_tokenizer_metrics, plain);
  ONEREC_OPTS(onerec_tokenizer_metrics, uniq);
  ONEREC_OPTS(onerec_tokenizer_unique_report, rep);
  int resolved = 0;
  rc = evaluate(tok, &f, ids, &plain, &rep, &uniq, &resolved);
  if (!rc && catalog && !resolved) {
    fprintf(stderr, "onerec: no catalogue: it needs one semantic ID per item\n");
    rc = 1;
  }
  if (!rc && catalog) rc = save_catalog(ctx, catalog, &f, (int)levels, (int)codes, ids);
  if (rc) goto done;
  ONEREC_OPTS(onerec_tokenizer_info, info);
  onerec_tokenizer_info_get(tok, &info);
  double secs = now_s() - t0;
  if (json) {
    printf("{\"out\":");
    cli_json_string(stdout, out);
    printf(",\"items\":%lld,\"dim\":%lld,\"levels\":%d,\"codes_per_level\":%d,"
           "\"train_points\":%lld,\"iterations\":%d,\"iterations_run\":[",
           (long long)f.n, (long long)f.dim, info.levels, info.codes_per_level,
           (long long)info.train_points, info.iterations);
    for (int l = 0; l < info.levels; l++) printf("%s%d", l ? "," : "", info.iterations_run[l]);
    printf("],\"seed\":%llu,\"init\":\"%s\",\"balanced\":%s,", (unsigned long long)info.seed,
           info.init == ONEREC_KMEANS_RANDOM ? "random" : "kmeans++",
           info.balanced ? "true" : "false");
    print_metrics(&plain);
    putchar(',');
    print_unique(&rep, &uniq, resolved);
    printf(",\"fit_seconds\":%.3f,\"seconds\":%.3f}\n", info.fit_seconds, secs);
  } else {
    printf("fitted %d x %d codes on %lld of %lld items (%lld dims) in %.2f s; wrote %s\n",
           info.levels, info.codes_per_level, (long long)info.train_points, (long long)f.n,
           (long long)f.dim, info.fit_seconds, out);
    print_metrics_text("plain", &plain);
    if (resolved)
      printf("one-to-one: %lld items moved (%lld above the last level), reconstruction loss "
             "%.6f\n",
             (long long)rep.reassigned, (long long)rep.reassigned_upper, rep.loss_after);
  }
done:
  onerec_tokenizer_free(tok);
  onerec_context_free(ctx);
  free(ids);
  free_features(&f);
  return rc;
}

static int cmd_stats(int argc, char **argv) {
  const char *path = NULL, *feat = NULL;
  long long threads = 0;
  int json = 0;
  const cli_opt opts[] = {
      CLI_FLAG("--json", &json),
      CLI_STR("--features", &feat),
      CLI_INT("--threads", &threads, 0, 1024),
  };
  int rc = cli_parse("tokenizer stats", argc - 1, argv + 1, opts, CLI_COUNT(opts),
                     tokenizer_usage, &path, 1);
  if (rc != CLI_PARSED) return rc;
  if (!path) {
    fprintf(stderr, "onerec tokenizer stats: TOK.h5 is required\n");
    tokenizer_usage(stderr);
    return 2;
  }
  onerec_context *ctx = make_context(threads);
  if (!ctx) return 1;
  onerec_tokenizer *tok = NULL;
  features f = {0};
  int32_t *ids = NULL;
  float *cb = NULL;
  rc = 0;
  onerec_status s = onerec_tokenizer_load(ctx, path, &tok);
  if (s) {
    rc = cli_fail("loading the tokenizer", s);
    goto done;
  }
  ONEREC_OPTS(onerec_tokenizer_info, in);
  onerec_tokenizer_info_get(tok, &in);
  /* codebook statistics: centroid norms, and centroids that coincide with another */
  size_t per = (size_t)in.codes_per_level * (size_t)in.dim;
  cb = malloc(per * sizeof(float));
  if (!cb) {
    rc = cli_fail("codebook statistics", ONEREC_ERR_OUT_OF_MEMORY);
    goto done;
  }
  double nmin[ONEREC_TOKENIZER_MAX_LEVELS], nmean[ONEREC_TOKENIZER_MAX_LEVELS],
      nmax[ONEREC_TOKENIZER_MAX_LEVELS], dups[ONEREC_TOKENIZER_MAX_LEVELS];
  for (int l = 0; l < in.levels; l++) {
    onerec_tokenizer_codebook(tok, l, cb, per);
    nmin[l] = INFINITY;
    nmax[l] = nmean[l] = 0;
    for (int k = 0; k < in.codes_per_level; k++) {
      double s2 = 0;
      for (int64_t e = 0; e < in.dim; e++) s2 += (double)cb[k * in.dim + e] * cb[k * in.dim + e];
      double nr = sqrt(s2);
      nmin[l] = nr < nmin[l] ? nr : nmin[l];
      nmax[l] = nr > nmax[l] ? nr : nmax[l];
      nmean[l] += nr / in.codes_per_level;
    }
    dups[l] = 0;
    if (in.codes_per_level <= 4096) /* quadratic: only where it stays quick */
      for (int a = 0; a < in.codes_per_level; a++)
        for (int b = 0; b < a; b++)
          if (!memcmp(cb + (size_t)a * in.dim, cb + (size_t)b * in.dim,
                      (size_t)in.dim * sizeof(float))) {
            dups[l]++;
            break;
          }
  }
  ONEREC_OPTS(onerec_tokenizer_metrics, plain);
  ONEREC_OPTS(onerec_tokenizer_metrics, uniq);
  ONEREC_OPTS(onerec_tokenizer_unique_report, rep);
  int resolved = 0;
  if (feat) {
    rc = load_features(feat, &f);
    if (!rc && f.dim != in.dim) {
      fprintf(stderr, "onerec: %s has %lld dims, the tokenizer %lld\n", feat, (long long)f.dim,
              (long long)in.dim);
      rc = 1;
    }
    if (!rc) {
      ids = malloc((size_t)(f.n * in.levels) * sizeof(int32_t));
      rc = ids ? evaluate(tok, &f, ids, &plain, &rep, &uniq, &resolved)
               : cli_fail("encoding", ONEREC_ERR_OUT_OF_MEMORY);
    }
    if (rc) goto done;
  }
  if (json) {
    printf("{\"tokenizer\":");
    cli_json_string(stdout, path);
    printf(",\"levels\":%d,\"codes_per_level\":%d,\"dim\":%lld,\"iterations\":%d,"
           "\"seed\":%llu,\"init\":\"%s\",\"balanced\":%s,\"tolerance\":%g,\"max_train\":%lld,"
           "\"train_points\":%lld,\"fit_seconds\":%.3f,\"iterations_run\":[",
           in.levels, in.codes_per_level, (long long)in.dim, in.iterations,
           (unsigned long long)in.seed, in.init == ONEREC_KMEANS_RANDOM ? "random" : "kmeans++",
           in.balanced ? "true" : "false", in.tolerance, (long long)in.max_train,
           (long long)in.train_points, in.fit_seconds);
    for (int l = 0; l < in.levels; l++) printf("%s%d", l ? "," : "", in.iterations_run[l]);
    printf("],\"train_loss\":");
    json_array(in.train_loss, in.levels);
    printf(",\"centroid_norm_min\":");
    json_array(nmin, in.levels);
    printf(",\"centroid_norm_mean\":");
    json_array(nmean, in.levels);
    printf(",\"centroid_norm_max\":");
    json_array(nmax, in.levels);
    printf(",\"duplicate_centroids\":");
    if (in.codes_per_level <= 4096)
      json_array(dups, in.levels);
    else
      printf("null");
    if (feat) {
      printf(",\"items\":%lld,", (long long)f.n);
      print_metrics(&plain);
      putchar(',');
      print_unique(&rep, &uniq, resolved);
    }
    printf("}\n");
  } else {
    printf("%s: RQ-Kmeans, %d levels x %d codes, %lld dims, fitted on %lld points (%s init, "
           "%d iterations, seed %llu%s)\n",
           path, in.levels, in.codes_per_level, (long long)in.dim, (long long)in.train_points,
           in.init == ONEREC_KMEANS_RANDOM ? "random" : "k-means++", in.iterations,
           (unsigned long long)in.seed, in.balanced ? ", balanced" : "");
    for (int l = 0; l < in.levels; l++)
      printf("  level %d: training loss %.6f, centroid norms %.4g..%.4g (mean %.4g)\n", l + 1,
             in.train_loss[l], nmin[l], nmax[l], nmean[l]);
    if (feat) {
      print_metrics_text("plain", &plain);
      if (resolved)
        printf("one-to-one: %lld items moved, reconstruction loss %.6f\n",
               (long long)rep.reassigned, rep.loss_after);
    }
  }
done:
  free(cb);
  free(ids);
  free_features(&f);
  onerec_tokenizer_free(tok);
  onerec_context_free(ctx);
  return rc;
}

int cmd_tokenizer(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "fit")) return cmd_fit(argc, argv);
  if (argc >= 2 && !strcmp(argv[1], "stats")) return cmd_stats(argc, argv);
  if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
    tokenizer_usage(stdout);
    return 0;
  }
  tokenizer_usage(stderr);
  return 2;
}
