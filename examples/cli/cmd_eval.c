/* `onerec eval`: full-ranking evaluation of a trained model on a data set's validation or test
 * split. Each user's history is the split's (data.h: valid = the training part, test = the
 * training part + the validation item); the ranking is a constrained beam search over the
 * catalogue, so every ranked item is real and Recall/NDCG@K count exactly what the model would
 * serve. The same routine runs inside `onerec train --eval-every`. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static double eval_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int32_t cli_batch_len(const onerec_model_config *c, int positive) {
  if (positive) return c->use_positive ? c->positive_len : -1;
  return c->use_short ? c->short_len : -1;
}

const char *cli_data_path(const char *dir, const char *dataset, char *buf, size_t len) {
  const char *file = !strcmp(dataset, "beauty") ? "Beauty.txt" : "ml-100k.inter";
  if (!strcmp(dataset, "h5")) return dir;
  snprintf(buf, len, "%s/%s", dir, file);
  FILE *f = fopen(buf, "r");
  if (f) {
    fclose(f);
    return dir;
  }
  snprintf(buf, len, "%s/%s", dir, !strcmp(dataset, "beauty") ? "amazon" : "ml-100k");
  return buf;
}

int cli_catalog_codes(const onerec_dataset *ds, const onerec_catalog *cat, int32_t **out) {
  int levels = 0;
  onerec_status s = onerec_catalog_info(cat, &levels, NULL, NULL);
  if (s) return cli_fail("catalogue", s);
  const int64_t *ids = NULL;
  int64_t n = 0;
  if ((s = onerec_dataset_item_ids(ds, &ids, &n))) return cli_fail("item ids", s);
  int32_t *codes = malloc((size_t)(n > 0 ? n : 1) * (size_t)levels * sizeof *codes);
  if (!codes) return cli_fail("codes", ONEREC_ERR_OUT_OF_MEMORY);
  for (int64_t i = 0; i < n; i++) {
    if ((s = onerec_catalog_codes_of(cat, ids[i], codes + i * levels))) {
      fprintf(stderr,
              "onerec: the catalogue has no semantic ID for item %lld of the data set (was it "
              "built from this data set's features?)\n",
              (long long)ids[i]);
      free(codes);
      return 1;
    }
  }
  *out = codes;
  return 0;
}

int cli_model_fits_catalog(const onerec_model_config *c, const onerec_catalog *cat,
                           const char *what) {
  int levels = 0, K = 0;
  if (onerec_catalog_info(cat, &levels, &K, NULL)) return 1;
  if (c->levels != levels || c->codebook != K) {
    fprintf(stderr,
            "onerec: %s has %d levels x %d codes but the catalogue %d x %d; create the model "
            "with --levels %d --codes %d\n",
            what, (int)c->levels, (int)c->codebook, levels, K, levels, K);
    return 1;
  }
  if (c->item_input != ONEREC_ITEM_BY_SID) {
    fprintf(stderr, "onerec: %s takes items by index; training and eval need items by SID\n",
            what);
    return 1;
  }
  return 0;
}

/* nonzero when model b reads another batch layout than model a (pathways, lengths, user
 * columns), so the two cannot share batches */
static int inputs_differ(const onerec_model_config *a, const onerec_model_config *b) {
  return a->use_short != b->use_short || a->use_positive != b->use_positive ||
         cli_batch_len(a, 0) != cli_batch_len(b, 0) || cli_batch_len(a, 1) != cli_batch_len(b, 1) ||
         a->static_cat_count != b->static_cat_count ||
         a->static_num_count != b->static_num_count ||
         (a->static_cat_count > 0 && a->static_cat_vocab[0] != b->static_cat_vocab[0]);
}

int cli_eval_run(onerec_context *ctx, const onerec_model *const *models, int n_models,
                 const onerec_catalog *cat, const onerec_dataset *ds, const int32_t *codes,
                 int split, int64_t max_users, int beam, int progress, FILE *ranks,
                 cli_eval_result *r) {
  enum { EB = 16 };
  const double t0 = eval_now();
  int rc = 1;
  onerec_status s;
  onerec_samples *smp = NULL;
  onerec_batch *b = NULL;
  onerec_session *ses[ONEREC_MAX_ENSEMBLE] = {NULL};
  onerec_metrics *met = NULL;
  int64_t *items = NULL;
  const int64_t *ids = NULL;
  int64_t n_ids = 0;
  ONEREC_OPTS(onerec_model_config, c);
  if (n_models < 1 || n_models > ONEREC_MAX_ENSEMBLE) {
    fprintf(stderr, "onerec: %d models to evaluate (1..%d)\n", n_models, ONEREC_MAX_ENSEMBLE);
    return 1;
  }
  if ((s = onerec_model_config_get(models[0], &c))) return cli_fail("model config", s);
  for (int i = 1; i < n_models; i++) {
    ONEREC_OPTS(onerec_model_config, ci);
    if ((s = onerec_model_config_get(models[i], &ci))) return cli_fail("model config", s);
    if (inputs_differ(&c, &ci)) {
      fprintf(stderr, "onerec: ensemble model %d reads other inputs than the first (pathways, "
                      "history lengths or user features): it cannot share their batches\n",
              i + 1);
      return 1;
    }
  }
  if ((s = onerec_dataset_item_ids(ds, &ids, &n_ids))) return cli_fail("item ids", s);
  const int64_t *uids = NULL;
  if ((s = onerec_dataset_user_ids(ds, &uids, NULL))) return cli_fail("user ids", s);
  /* the batch's static columns (hashed user id + the data's user features) must be the ones
   * the model reads, or the encoder would read them with the wrong stride */
  int32_t n_cat = 0, n_num = 0;
  if ((s = onerec_dataset_static(ds, &n_cat, NULL, NULL, &n_num, NULL)))
    return cli_fail("static features", s);
  if (c.static_cat_count != (c.static_cat_count > 0 || n_cat > 0 ? 1 + n_cat : 0) ||
      (c.static_num_count != 0 && c.static_num_count != n_num)) {
    fprintf(stderr,
            "onerec: the model reads %d categorical / %d numeric user features, the data set "
            "gives a hashed user id + %d / %d: a model trained on another data set?\n",
            (int)c.static_cat_count, (int)c.static_num_count, (int)n_cat, (int)n_num);
    return 1;
  }
  const int32_t ks[2] = {5, 10};
  ONEREC_OPTS(onerec_samples_opts, so, .max_history = 50);
  ONEREC_OPTS(onerec_batch_opts, bo, .max_batch = EB, .short_len = cli_batch_len(&c, 0),
              .positive_len = cli_batch_len(&c, 1),
              .uid_buckets = c.static_cat_count > 0 ? (int32_t)c.static_cat_vocab[0] : 0,
              .levels = c.levels, .item_codes = codes);
  ONEREC_OPTS(onerec_session_opts, sso, .max_batch = EB, .max_targets = (int64_t)EB * beam);
  ONEREC_OPTS(onerec_recommend_opts, ro, .mode = ONEREC_GEN_BEAM, .beam = beam, .k = 10);
  if ((s = onerec_samples_create(ds, (onerec_split)split, &so, &smp))) {
    cli_fail("samples", s);
    goto done;
  }
  s = onerec_batch_create(ds, &bo, &b);
  for (int i = 0; i < n_models && !s; i++) s = onerec_session_create(models[i], ctx, &sso, &ses[i]);
  if (s || (s = onerec_metrics_create(ks, 2, &met))) {
    cli_fail("eval setup", s);
    goto done;
  }
  items = malloc((size_t)EB * 10 * sizeof *items);
  if (!items) goto done;
  int64_t n = onerec_samples_count(smp);
  if (max_users > 0 && max_users < n) {
    /* users are not in random order in the files (on Beauty the last ones are far easier than
     * the first), so a subset is a fixed random draw, the same at every evaluation */
    if ((s = onerec_samples_shuffle(smp, 20261129u))) {
      cli_fail("eval subset", s);
      goto done;
    }
    n = max_users;
  }
  double last = t0;
  if (ranks) fputs("user\ttarget\trank\n", ranks);
  for (int64_t first = 0; first < n; first += EB) {
    int64_t cnt = n - first < EB ? n - first : EB;
    ONEREC_OPTS(onerec_user_batch, u);
    int32_t tgt[EB];
    if ((s = onerec_batch_fill(b, smp, first, cnt, &u, tgt, EB, NULL))) {
      cli_fail("batch", s);
      goto done;
    }
    if ((s = onerec_sessions_recommend(ses, n_models, cat, &u, &ro, items, NULL,
                                       (size_t)EB * 10))) {
      cli_fail("recommend", s);
      goto done;
    }
    for (int64_t i = 0; i < cnt; i++) {
      if ((s = onerec_metrics_add_ranked(met, items + i * 10, 10, ids[tgt[i]]))) {
        cli_fail("metrics", s);
        goto done;
      }
      if (ranks) {
        int64_t user = 0;
        int rank = -1;
        for (int j = 0; j < 10 && rank < 0; j++)
          if (items[i * 10 + j] == ids[tgt[i]]) rank = j;
        if ((s = onerec_samples_get(smp, first + i, &user, NULL, NULL, NULL))) {
          cli_fail("samples", s);
          goto done;
        }
        fprintf(ranks, "%lld\t%lld\t%d\n", (long long)uids[user], (long long)ids[tgt[i]], rank);
      }
    }
    double tn = eval_now();
    if (progress && (tn - last >= 5.0 || first + cnt == n)) {
      double r10 = 0;
      onerec_metrics_get(met, 10, &r10, NULL, NULL);
      fprintf(stderr, "eval: %lld / %lld users  recall@10 %.4f  %.1f users/s\n",
              (long long)(first + cnt), (long long)n, r10,
              (double)(first + cnt) / (tn - t0 > 0 ? tn - t0 : 1e-9));
      last = tn;
    }
  }
  onerec_metrics_get(met, 5, &r->recall5, &r->ndcg5, &r->users);
  onerec_metrics_get(met, 10, &r->recall10, &r->ndcg10, NULL);
  r->total = onerec_samples_count(smp);
  r->seconds = eval_now() - t0;
  rc = 0;
done:
  free(items);
  onerec_metrics_free(met);
  for (int i = 0; i < n_models; i++) onerec_session_free(ses[i]);
  onerec_batch_free(b);
  onerec_samples_free(smp);
  return rc;
}

void cli_eval_print(FILE *f, const cli_eval_result *r, const char *split) {
  fprintf(f,
          "{\"split\":\"%s\",\"recall@5\":%.6f,\"ndcg@5\":%.6f,\"recall@10\":%.6f,"
          "\"ndcg@10\":%.6f,\"users\":%lld,\"split_users\":%lld,\"subset\":%s,\"seconds\":%.2f",
          split, r->recall5, r->ndcg5, r->recall10, r->ndcg10, (long long)r->users,
          (long long)r->total, r->users < r->total ? "true" : "false", r->seconds);
}

static void eval_usage(FILE *f) {
  fprintf(f,
          "usage: onerec eval --model M.h5 --catalog C.h5 --data DIR --dataset beauty|ml-100k|h5\n"
          "                   [--split valid|test] [--beam 20] [--users N] [--threads T] [--json]\n"
          "                   [--ensemble M2.h5,M3.h5,...] [--ranks RANKS.tsv]\n"
          "  full-ranking Recall@5/10 and NDCG@5/10 of a constrained beam search over the\n"
          "  catalogue, one target per user (leave-one-out); --users N evaluates a fixed\n"
          "  random subset of N users of the split (the JSON says subset:true); progress\n"
          "  on stderr.\n"
          "  --ensemble: up to 15 more models (comma-separated paths, the same catalogue and\n"
          "  inputs); items are ranked by the mean of all models' log-probabilities\n"
          "  --ranks: also writes, per user, the target's 0-based rank in the top 10 (-1:\n"
          "  not there) as user<TAB>target<TAB>rank lines, for analyses by user or item\n"
          "  --catalog/--data/--dataset default to what `onerec train` recorded in run.json\n"
          "  next to the model: `onerec eval --model run/model.h5 --split test --json`\n");
}

static int has_control(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20) return 1;
  return 0;
}

int cli_run_info_write(const char *dir, const char *data, const char *dataset,
                       const char *catalog) {
  char p[4200], t[4300], ad[4096], ac[4096];
  if (!realpath(data, ad) || !realpath(catalog, ac)) {
    fprintf(stderr, "onerec: cannot resolve %s or %s\n", data, catalog);
    return 1;
  }
  snprintf(p, sizeof p, "%s/run.json", dir);
  if (has_control(ad) || has_control(ac) || has_control(dataset)) {
    /* json_str below reads back only \" and \\ escapes: such paths are not recorded */
    remove(p);
    fprintf(stderr, "onerec: paths with control characters are not recorded in %s\n", p);
    return 0;
  }
  FILE *f = cli_atomic_open(p, t, sizeof t);
  if (!f) return 1;
  fputs("{\"data\":", f);
  cli_json_string(f, ad);
  fputs(",\"dataset\":", f);
  cli_json_string(f, dataset);
  fputs(",\"catalog\":", f);
  cli_json_string(f, ac);
  fputs("}\n", f);
  return cli_atomic_commit(f, t, p);
}

/* The JSON string value of "key" in s (as cli_json_string wrote it) into out. */
static int json_str(const char *s, const char *key, char *out, size_t len) {
  char k[64];
  snprintf(k, sizeof k, "\"%s\":\"", key);
  const char *p = strstr(s, k);
  if (!p) return 1;
  p += strlen(k);
  size_t n = 0;
  for (; *p && *p != '"'; p++) {
    if (*p == '\\' && p[1]) p++;
    if (n + 1 >= len) return 1;
    out[n++] = *p;
  }
  out[n] = '\0';
  return *p == '"' ? 0 : 1;
}

int cli_run_info_read(const char *model_path, char *data, char *dataset, char *catalog,
                      size_t len) {
  char p[4200], s[16384];
  const char *slash = strrchr(model_path, '/');
  if (slash)
    snprintf(p, sizeof p, "%.*s/run.json", (int)(slash - model_path), model_path);
  else
    snprintf(p, sizeof p, "run.json");
  FILE *f = fopen(p, "r");
  if (!f) return 1;
  size_t n = fread(s, 1, sizeof s - 1, f);
  fclose(f);
  s[n] = '\0';
  return json_str(s, "data", data, len) || json_str(s, "dataset", dataset, len) ||
         json_str(s, "catalog", catalog, len);
}

int cmd_eval(int argc, char **argv) {
  const char *model = NULL, *catalog = NULL, *data = NULL, *dataset = NULL, *split = "test";
  const char *ensemble = NULL, *ranks_path = NULL;
  long long beam = 20, users = 0, threads = 0;
  int json = 0;
  const cli_opt opts[] = {
      CLI_FLAG("--json", &json),
      CLI_STR("--model", &model),
      CLI_STR("--ensemble", &ensemble),
      CLI_STR("--ranks", &ranks_path),
      CLI_STR("--catalog", &catalog),
      CLI_STR("--data", &data),
      CLI_STR("--dataset", &dataset),
      CLI_STR("--split", &split),
      CLI_INT("--beam", &beam, 10, ONEREC_MAX_BEAM), /* at least the largest K */
      CLI_INT("--users", &users, 0, CLI_INT_MAX),
      CLI_INT("--threads", &threads, 0, 1024),
  };
  int rc = cli_parse("eval", argc, argv, opts, CLI_COUNT(opts), eval_usage, NULL, 0);
  if (rc != CLI_PARSED) return rc;
  int sp = !strcmp(split, "valid") ? ONEREC_SPLIT_VALID : !strcmp(split, "test") ? ONEREC_SPLIT_TEST : -1;
  if (sp < 0) {
    fprintf(stderr, "onerec eval: --split is valid or test, not '%s'\n", split);
    return 2;
  }
  /* what the model was trained on, from the run.json `onerec train` left next to it */
  if (model && (!catalog || !data || !dataset)) {
    static char rd[4096], rs[4096], rc_[4096];
    if (!cli_run_info_read(model, rd, rs, rc_, sizeof rd)) {
      if (!data) data = rd;
      if (!dataset) dataset = rs;
      if (!catalog) catalog = rc_;
    }
  }
  if (!model || !catalog || !data || !dataset) {
    fprintf(stderr, "onerec eval: %s\n",
            !model ? "--model is required"
                   : "--catalog, --data and --dataset are required without a run.json next to "
                     "the model");
    eval_usage(stderr);
    return 2;
  }
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = (int)threads);
  onerec_context *ctx = NULL;
  onerec_status s = onerec_context_create(&co, &ctx);
  if (s) return cli_fail("context", s);
  rc = 1;
  onerec_model *m[ONEREC_MAX_ENSEMBLE] = {NULL};
  int n_models = 0;
  onerec_catalog *cat = NULL;
  onerec_dataset *ds = NULL;
  int32_t *codes = NULL;
  static char paths[ONEREC_MAX_ENSEMBLE][4096];
  char buf[4200];
  ONEREC_OPTS(onerec_dataset_opts, dso, .format = dataset);
  const char *path = cli_data_path(data, dataset, buf, sizeof buf);
  /* --model, then each comma-separated --ensemble path */
  if (strlen(model) >= sizeof paths[0]) {
    fprintf(stderr, "onerec eval: --model path longer than %zu bytes\n", sizeof paths[0] - 1);
    rc = 2;
    goto done;
  }
  snprintf(paths[n_models++], sizeof paths[0], "%s", model);
  for (const char *e = ensemble; e;) {
    const char *comma = strchr(e, ',');
    size_t len = comma ? (size_t)(comma - e) : strlen(e);
    if (len == 0 || len >= sizeof paths[0] || n_models == ONEREC_MAX_ENSEMBLE) {
      fprintf(stderr, "onerec eval: --ensemble takes 1..%d non-empty comma-separated paths\n",
              ONEREC_MAX_ENSEMBLE - 1);
      rc = 2;
      goto done;
    }
    memcpy(paths[n_models], e, len);
    paths[n_models++][len] = '\0';
    e = comma ? comma + 1 : NULL;
  }
  if ((s = onerec_catalog_load(ctx, catalog, &cat))) {
    cli_fail(catalog, s);
    goto done;
  }
  for (int i = 0; i < n_models; i++) {
    ONEREC_OPTS(onerec_model_config, c);
    if ((s = onerec_model_load(ctx, paths[i], &m[i]))) {
      cli_fail(paths[i], s);
      goto done;
    }
    onerec_model_config_get(m[i], &c);
    if (cli_model_fits_catalog(&c, cat, paths[i])) goto done;
  }
  if ((s = onerec_dataset_load(ctx, path, &dso, &ds))) {
    cli_fail(path, s);
    goto done;
  }
  if (cli_catalog_codes(ds, cat, &codes)) goto done;
  cli_eval_result r = {0};
  char ranks_tmp[4200];
  FILE *ranks = ranks_path ? cli_atomic_open(ranks_path, ranks_tmp, sizeof ranks_tmp) : NULL;
  if (ranks_path && !ranks) goto done;
  if (cli_eval_run(ctx, (const onerec_model *const *)m, n_models, cat, ds, codes, sp, users,
                   (int)beam, 1, ranks, &r)) {
    if (ranks) {
      fclose(ranks);
      remove(ranks_tmp);
    }
    goto done;
  }
  if (ranks && cli_atomic_commit(ranks, ranks_tmp, ranks_path)) goto done;
  if (json) {
    cli_eval_print(stdout, &r, split);
    printf(",\"beam\":%lld,\"models\":%d}\n", beam, n_models);
  } else {
    printf("%s: %lld of %lld users, beam %lld%s: recall@5 %.4f ndcg@5 %.4f recall@10 %.4f "
           "ndcg@10 %.4f (%.1f s)\n",
           split, (long long)r.users, (long long)r.total, beam, n_models > 1 ? ", ensemble" : "",
           r.recall5, r.ndcg5, r.recall10, r.ndcg10, r.seconds);
  }
  rc = 0;
done:
  free(codes);
  onerec_dataset_free(ds);
  onerec_catalog_free(cat);
  for (int i = 0; i < n_models; i++) onerec_model_free(m[i]);
  onerec_context_free(ctx);
  return rc;
}
