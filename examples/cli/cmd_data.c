/* `onerec data stats|baseline|convert|synth` (synth: cmd_synth.c): counts of a data set and its leave-one-out split, a
 * popularity baseline on the test split (the sanity floor a trained model must beat), and
 * conversion to the chunked HDF5 sequence format. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void data_usage(FILE *f) {
  fprintf(f,
          "usage: onerec data stats    --data DIR --dataset beauty|ml-100k|h5 [--json]\n"
          "       onerec data baseline --data DIR --dataset beauty|ml-100k|h5 [--split test|valid]\n"
          "                            [--exclude-history] [--json]\n"
          "       onerec data convert  --data DIR --dataset beauty|ml-100k --out F.h5\n"
          "                            [--chunk-users N] [--json]\n"
          "       onerec data synth    --out DIR [--users N] [--items N] [--seed S]\n"
          "  stats     users, items, interactions and train/valid/test sample counts\n"
          "            (leave-one-out: last item test, the one before validation)\n"
          "  baseline  ranks ALL items by their count in the training parts and reports\n"
          "            full-ranking recall@5/10 and ndcg@5/10 (--exclude-history: items the\n"
          "            user already has are left out of the ranking)\n"
          "  convert   writes the data set as a chunked HDF5 sequence file\n"
          "  synth     writes a synthetic data set in the Beauty format (make demo's default\n"
          "            without the real data)\n"
          "  DIR for beauty is the folder of Beauty.txt (or its parent); for ml-100k the folder\n"
          "  of ml-100k.inter; for h5 the file.\n");
}

/* Resolves --data for Beauty: DIR, or DIR/amazon when DIR is the data root. */
static const char *beauty_dir(const char *dir, char *buf, size_t len) {
  snprintf(buf, len, "%s/Beauty.txt", dir);
  FILE *f = fopen(buf, "r");
  if (f) {
    fclose(f);
    return dir;
  }
  snprintf(buf, len, "%s/amazon", dir);
  return buf;
}

static const char *ml_dir(const char *dir, char *buf, size_t len) {
  snprintf(buf, len, "%s/ml-100k.inter", dir);
  FILE *f = fopen(buf, "r");
  if (f) {
    fclose(f);
    return dir;
  }
  snprintf(buf, len, "%s/ml-100k", dir);
  return buf;
}

static int load(onerec_context *ctx, const char *data, const char *dataset, onerec_dataset **ds) {
  char buf[4200];
  const char *path = data;
  if (!strcmp(dataset, "beauty"))
    path = beauty_dir(data, buf, sizeof buf);
  else if (!strcmp(dataset, "ml-100k"))
    path = ml_dir(data, buf, sizeof buf);
  ONEREC_OPTS(onerec_dataset_opts, o, .format = dataset);
  onerec_status s = onerec_dataset_load(ctx, path, &o, ds);
  if (s) return cli_fail(path, s);
  return 0;
}

static int stats(onerec_dataset *ds, const char *dataset, int json) {
  ONEREC_OPTS(onerec_dataset_info, in);
  onerec_status s = onerec_dataset_get_info(ds, &in);
  if (s) return cli_fail("data stats", s);
  if (json) {
    printf("{\"dataset\":");
    cli_json_string(stdout, dataset);
    printf(",\"format\":");
    cli_json_string(stdout, in.format);
    printf(",\"users\":%lld,\"items\":%lld,\"interactions\":%lld,"
           "\"train_interactions\":%lld,\"train_samples\":%lld,\"valid_samples\":%lld,"
           "\"test_samples\":%lld,\"has_timestamps\":%s,\"has_labels\":%s,"
           "\"label_min\":%g,\"label_max\":%g,\"static_cat\":%d,\"static_num\":%d,"
           "\"tags\":%d}\n",
           (long long)in.users, (long long)in.items, (long long)in.interactions,
           (long long)in.train_interactions, (long long)in.train_samples,
           (long long)in.valid_samples, (long long)in.test_samples,
           in.has_timestamps ? "true" : "false", in.has_labels ? "true" : "false", in.label_min,
           in.label_max, (int)in.static_cat_count, (int)in.static_num_count, (int)in.tags);
    return 0;
  }
  printf("dataset        %s (%s)\n", dataset, in.format);
  printf("users          %lld\nitems          %lld\ninteractions   %lld\n", (long long)in.users,
         (long long)in.items, (long long)in.interactions);
  printf("train samples  %lld (from %lld training interactions)\n", (long long)in.train_samples,
         (long long)in.train_interactions);
  printf("valid samples  %lld\ntest samples   %lld\n", (long long)in.valid_samples,
         (long long)in.test_samples);
  printf("timestamps     %s\nlabels         %s (%g..%g)\n", in.has_timestamps ? "yes" : "no",
         in.has_labels ? "yes" : "no", in.label_min, in.label_max);
  int32_t nc = 0, nn = 0;
  const int64_t *vocab = NULL;
  onerec_dataset_static(ds, &nc, NULL, &vocab, &nn, NULL);
  for (int32_t f = 0; f < nc; f++)
    printf("user feature   %s (%lld values)\n", onerec_dataset_feature_name(ds, 0, f),
           (long long)vocab[f]);
  for (int32_t f = 0; f < nn; f++)
    printf("user feature   %s (numeric)\n", onerec_dataset_feature_name(ds, 1, f));
  if (in.tags) printf("item tags      %d\n", (int)in.tags);
  return 0;
}

/* Popularity: each item's count in the training parts; every user gets the same scores. */
static int baseline(onerec_dataset *ds, const char *dataset, onerec_split split, int exclude,
                    int json) {
  int64_t n_users = 0, n_items = 0;
  const int64_t *off = NULL;
  const int32_t *items = NULL;
  onerec_dataset_interactions(ds, &n_users, &off, &items, NULL, NULL);
  onerec_dataset_item_ids(ds, NULL, &n_items);
  float *pop = calloc((size_t)n_items, sizeof *pop);
  int64_t *hist = malloc(((size_t)n_items + 1) * sizeof *hist);
  onerec_metrics *m = NULL;
  onerec_samples *smp = NULL;
  const int32_t ks[2] = {5, 10};
  onerec_status s = pop && hist ? ONEREC_OK : ONEREC_ERR_OUT_OF_MEMORY;
  if (!s) s = onerec_metrics_create(ks, 2, &m);
  for (int64_t u = 0; !s && u < n_users; u++) {
    int64_t tl = 0;
    s = onerec_dataset_split(ds, u, &tl, NULL, NULL);
    for (int64_t r = off[u]; !s && r < off[u] + tl; r++) pop[items[r]] += 1.0f;
  }
  /* the history of every sample (at most max_history = the whole prefix) */
  ONEREC_OPTS(onerec_samples_opts, so, .max_history = 1 << 30);
  if (!s) s = onerec_samples_create(ds, split, &so, &smp);
  const int64_t n = s ? 0 : onerec_samples_count(smp);
  for (int64_t i = 0; !s && i < n; i++) {
    int64_t hb = 0, he = 0;
    int32_t t = 0;
    s = onerec_samples_get(smp, i, NULL, &hb, &he, &t);
    const int64_t target = t, eo[2] = {0, exclude ? he - hb : 0};
    for (int64_t k = 0; k < eo[1]; k++) hist[k] = items[hb + k];
    if (!s) s = onerec_metrics_add_scores(m, pop, 1, n_items, &target, eo, hist);
  }
  double r5 = 0, n5 = 0, r10 = 0, n10 = 0;
  int64_t users = 0;
  if (!s) s = onerec_metrics_get(m, 5, &r5, &n5, &users);
  if (!s) s = onerec_metrics_get(m, 10, &r10, &n10, NULL);
  free(pop);
  free(hist);
  onerec_metrics_free(m);
  onerec_samples_free(smp);
  if (s) return cli_fail("data baseline", s);
  const char *sp = split == ONEREC_SPLIT_TEST ? "test" : "valid";
  if (json) {
    printf("{\"dataset\":");
    cli_json_string(stdout, dataset);
    printf(",\"baseline\":\"popularity\",\"split\":\"%s\",\"exclude_history\":%s,"
           "\"users\":%lld,\"recall@5\":%.6f,\"ndcg@5\":%.6f,\"recall@10\":%.6f,"
           "\"ndcg@10\":%.6f}\n",
           sp, exclude ? "true" : "false", (long long)users, r5, n5, r10, n10);
  } else {
    printf("popularity baseline, %s split, %lld users, full ranking over %lld items%s\n", sp,
           (long long)users, (long long)n_items, exclude ? " (history excluded)" : "");
    printf("recall@5  %.4f   ndcg@5  %.4f\nrecall@10 %.4f   ndcg@10 %.4f\n", r5, n5, r10, n10);
  }
  return 0;
}

static int convert(onerec_dataset *ds, const char *out, long long chunk_users, int json) {
  ONEREC_OPTS(onerec_seqfile_opts, o, .chunk_users = chunk_users);
  onerec_status s = onerec_dataset_save(ds, out, &o);
  if (s) return cli_fail(out, s);
  ONEREC_OPTS(onerec_dataset_info, in);
  onerec_dataset_get_info(ds, &in);
  if (json) {
    printf("{\"out\":");
    cli_json_string(stdout, out);
    printf(",\"users\":%lld,\"interactions\":%lld,\"chunk_users\":%lld}\n",
           (long long)in.users, (long long)in.interactions, chunk_users);
  } else {
    printf("wrote %s: %lld users, %lld interactions, %lld users per chunk\n", out,
           (long long)in.users, (long long)in.interactions, chunk_users);
  }
  return 0;
}

int cmd_data(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    data_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "synth")) return cmd_synth(argc - 1, argv + 1);
  if (strcmp(sub, "stats") && strcmp(sub, "baseline") && strcmp(sub, "convert")) {
    fprintf(stderr, "onerec data: unknown subcommand '%s'\n", sub);
    data_usage(stderr);
    return 2;
  }
  const char *data = NULL, *dataset = NULL, *out = NULL, *split_name = "test";
  int json = 0, exclude = 0;
  long long chunk_users = 4096;
  const cli_opt opts[] = {
      CLI_FLAG("--json", &json),
      CLI_FLAG("--exclude-history", &exclude),
      CLI_STR("--data", &data),
      CLI_STR("--dataset", &dataset),
      CLI_STR("--out", &out),
      CLI_STR("--split", &split_name),
      CLI_INT("--chunk-users", &chunk_users, 1, 1LL << 30),
  };
  char cmd[32];
  snprintf(cmd, sizeof cmd, "data %s", sub);
  int rc = cli_parse(cmd, argc - 1, argv + 1, opts, CLI_COUNT(opts), data_usage, NULL, 0);
  if (rc != CLI_PARSED) return rc;
  onerec_split split = ONEREC_SPLIT_TEST;
  if (!strcmp(split_name, "valid"))
    split = ONEREC_SPLIT_VALID;
  else if (strcmp(split_name, "test")) {
    fprintf(stderr, "onerec data: --split is test or valid, not '%s'\n", split_name);
    return 2;
  }
  if (!data || !dataset) {
    fprintf(stderr, "onerec data %s: --data and --dataset are required\n", sub);
    data_usage(stderr);
    return 2;
  }
  if (strcmp(dataset, "beauty") && strcmp(dataset, "ml-100k") && strcmp(dataset, "h5")) {
    fprintf(stderr, "onerec data: --dataset is beauty, ml-100k or h5, not '%s'\n", dataset);
    return 2;
  }
  if (!strcmp(sub, "convert") && !out) {
    fprintf(stderr, "onerec data convert: --out is required\n");
    return 2;
  }
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu");
  onerec_context *ctx = NULL;
  onerec_status s = onerec_context_create(&co, &ctx);
  if (s) return cli_fail("context", s);
  onerec_dataset *ds = NULL;
  rc = load(ctx, data, dataset, &ds);
  if (!rc) {
    if (!strcmp(sub, "stats"))
      rc = stats(ds, dataset, json);
    else if (!strcmp(sub, "baseline"))
      rc = baseline(ds, dataset, split, exclude, json);
    else
      rc = convert(ds, out, chunk_users, json);
  }
  onerec_dataset_free(ds);
  onerec_context_free(ctx);
  return rc;
}
