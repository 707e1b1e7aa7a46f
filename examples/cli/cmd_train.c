/* `onerec train`: NTP pre-training on a data set's leave-one-out training samples, for a time
 * or step budget, with a progress line on stderr; writes the model and a resumable checkpoint.
 * Items enter and are predicted by semantic IDs: with --catalog the tokenizer's (the catalogue
 * maps each data set item id to its codes, and sets the model's levels and codebook); without,
 * an item's IDs are the base-K digits of its dense index (K the smallest codebook with
 * K^levels >= items): unique, but without semantic sharing, kept for runs without features.
 * --eval-every evaluates on the validation split (constrained beam search, as `onerec eval`)
 * and keeps the best model by Recall@10, stopping after --patience evals without a gain. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void train_usage(FILE *f) {
  fprintf(f,
          "usage: onerec train --data DIR --dataset beauty|ml-100k|h5 [--preset 0.015B]\n"
          "                    [--minutes M] [--steps N] [--batch 64] [--lr 1e-3]\n"
          "                    [--lr-sparse 1e-2] [--warmup 100] [--levels 3] [--seed S]\n"
          "                    [--threads T] [--out DIR] [--resume DIR/checkpoint.h5]\n"
          "                    [--stop-at K] [--catalog C.h5] [--model M.h5]\n"
          "                    [--layers N] [--d-model D] [--heads H] [--ffn F]\n"
          "                    [--eval-every MIN] [--eval-users 2000] [--patience 3]\n"
          "                    [--beam 20] [--short-len 20] [--positive-len 50]\n"
          "                    [--dropout 0] [--input-dropout 0] [--weight-decay 0.01]\n"
          "                    [--label-smoothing 0] [--ema 0] [--snapshots] [--shards 1]\n"
          "                    [--uid-buckets 4096]\n"
          "  trains on the training samples (histories of up to 50 interactions) until M\n"
          "  minutes or N updates have passed; progress (step, loss, samples/s, ETA) on\n"
          "  stderr; writes DIR/model.h5 and DIR/checkpoint.h5 (default DIR: run). --resume\n"
          "  continues a run of the same options exactly where its checkpoint stopped\n"
          "  (--steps counts all updates and sets the cosine schedule's length, --minutes\n"
          "  only this run's; --stop-at K ends this run after update K, as an interruption)\n"
          "  --catalog: semantic IDs (inputs and targets) and levels/codebook from the\n"
          "  tokenizer's catalogue; --model: start from that model file (its levels and\n"
          "  codebook must be the catalogue's); --layers.. shrink the preset.\n"
          "  --short-len/--positive-len: most recent interactions each sequence pathway\n"
          "  reads (0 leaves the pathway out; Beauty's positive pathway repeats the short one)\n"
          "  --dropout P: drop probability of attention branches and FFN hidden layers in\n"
          "  training steps; --input-dropout P: of the encoder's and decoder's input tokens;\n"
          "  --weight-decay W: AdamW decay of dense matrices (0: none)\n"
          "  --label-smoothing E: train each level's codes against (1 - E) onehot + E / codebook\n"
          "  --ema D: keep a moving average of the weights (decay D, e.g. 0.9999); the\n"
          "  evaluations, snapshots and DIR/model.h5 then use the average\n"
          "  --shards S: split each batch into S slices trained at once on S threads (of\n"
          "  --threads); 2 shards of 1 thread beat 1 of 2 threads on small models\n"
          "  --uid-buckets U: the user token embeds the user index modulo U (1: one token\n"
          "  shared by all users, so the model cannot memorise users)\n"
          "  --snapshots: also save the model of every evaluation as DIR/step<N>.h5 (for\n"
          "  curves). Time spent evaluating does not count against --minutes.\n"
          "  --eval-every MIN (needs --catalog): every MIN minutes and at the end, Recall/NDCG\n"
          "  on a fixed random subset of --eval-users validation users, one JSON line each\n"
          "  on stdout; DIR/model.h5 is then the best model by Recall@10 (checkpoint.h5 the\n"
          "  latest state)\n");
}

/* DIR/best.json holds the best validation Recall@10 of the run whose model.h5 is in DIR, so a
 * resumed run only replaces that model with a better one. Written atomically (rename). */
static double best_read(const char *dir) {
  char p[4200];
  snprintf(p, sizeof p, "%s/best.json", dir);
  FILE *f = fopen(p, "r");
  double v = -1.0;
  if (f) {
    if (fscanf(f, "{\"recall@10\":%lf", &v) != 1 || !(v >= 0.0 && v <= 1.0)) v = -1.0;
    fclose(f);
  }
  return v;
}

static int best_write(const char *dir, double recall10, long long step) {
  char p[4200], t[4300];
  snprintf(p, sizeof p, "%s/best.json", dir);
  FILE *f = cli_atomic_open(p, t, sizeof t);
  if (!f) return 1;
  fprintf(f, "{\"recall@10\":%.6f,\"step\":%lld}\n", recall10, step);
  return cli_atomic_commit(f, t, p);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Exchanges the model's weights with their moving average when --ema keeps one (ema_decay > 0;
 * else nothing to do); 1 after a message on error. */
static int swap_average(onerec_trainer *t, double ema_decay) {
  if (ema_decay <= 0.0) return 0;
  onerec_status s = onerec_trainer_swap_ema(t);
  if (s) cli_fail("onerec_trainer_swap_ema", s);
  return s != ONEREC_OK;
}

int cmd_train(int argc, char **argv) {
  const char *data = NULL, *dataset = NULL, *preset = "0.015B", *out = "run", *resume = NULL;
  const char *catalog = NULL, *model_in = NULL;
  double minutes = 0.0, lr = 1e-3, lr_sparse = 1e-2, eval_every = 0.0, dropout = 0.0,
         input_dropout = 0.0, ema_decay = 0.0,
         label_smoothing = 0.0;
  double weight_decay = 0.01;
  int snapshots = 0;
  long long steps = 0, stop_at = 0, batch = 64, warmup = 100, seed = 1, threads = 0, levels = 3;
  long long layers = 0, d_model = 0, heads = 0, ffn = 0, eval_users = 2000, patience = 3;
  long long beam = 20, short_len = 20, positive_len = 50, shards = 1, uid_buckets = 4096;
  const double any = INFINITY;
  const cli_opt opts[] = {
      CLI_STR("--data", &data),
      CLI_STR("--dataset", &dataset),
      CLI_STR("--preset", &preset),
      CLI_STR("--out", &out),
      CLI_STR("--resume", &resume),
      CLI_STR("--catalog", &catalog),
      CLI_STR("--model", &model_in),
      CLI_FLAG("--snapshots", &snapshots),
      CLI_REAL("--minutes", &minutes, -any, any, 0),
      CLI_INT("--steps", &steps, CLI_INT_MIN, CLI_INT_MAX),
      CLI_INT("--stop-at", &stop_at, CLI_INT_MIN, CLI_INT_MAX),
      CLI_INT("--batch", &batch, 1, CLI_INT_MAX),
      CLI_REAL("--lr", &lr, -any, any, 0),
      CLI_REAL("--lr-sparse", &lr_sparse, -any, any, 0),
      CLI_INT("--warmup", &warmup, CLI_INT_MIN, CLI_INT_MAX),
      CLI_INT("--levels", &levels, 1, 8),
      CLI_INT("--seed", &seed, CLI_INT_MIN, CLI_INT_MAX),
      CLI_INT("--threads", &threads, 0, 1024),
      CLI_INT("--layers", &layers, 0, CLI_INT_MAX),
      CLI_INT("--d-model", &d_model, 0, CLI_INT_MAX),
      CLI_INT("--heads", &heads, 0, CLI_INT_MAX),
      CLI_INT("--ffn", &ffn, 0, CLI_INT_MAX),
      CLI_REAL("--eval-every", &eval_every, 0.0, any, 0),
      CLI_INT("--eval-users", &eval_users, 0, CLI_INT_MAX),
      CLI_INT("--patience", &patience, 1, CLI_INT_MAX),
      CLI_INT("--beam", &beam, 10, ONEREC_MAX_BEAM),
      CLI_INT("--short-len", &short_len, 0, 4096),
      CLI_INT("--positive-len", &positive_len, 0, 4096),
      CLI_REAL("--dropout", &dropout, 0.0, 1.0, CLI_OPEN_HI),
      CLI_REAL("--input-dropout", &input_dropout, 0.0, 1.0, CLI_OPEN_HI),
      CLI_REAL("--ema", &ema_decay, 0.0, 1.0, CLI_OPEN_HI),
      CLI_REAL("--label-smoothing", &label_smoothing, 0.0, 1.0, CLI_OPEN_HI),
      CLI_REAL("--weight-decay", &weight_decay, 0.0, 1.0, CLI_OPEN_HI),
      CLI_INT("--shards", &shards, 1, 64),
      CLI_INT("--uid-buckets", &uid_buckets, 1, 1 << 24),
  };
  int rc = cli_parse("train", argc, argv, opts, CLI_COUNT(opts), train_usage, NULL, 0);
  if (rc != CLI_PARSED) return rc;
  const char *why = !data || !dataset ? "--data and --dataset are required"
                    : minutes <= 0 && steps <= 0 ? "--minutes or --steps must be positive"
                    : short_len + positive_len == 0
                        ? "--short-len and --positive-len cannot both be 0"
                    : eval_every > 0 && !catalog ? "--eval-every needs --catalog"
                                                 : NULL;
  if (why) {
    fprintf(stderr, "onerec train: %s\n", why);
    train_usage(stderr);
    return 2;
  }
  if (cli_mkdirs(out)) return 1;
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = (int)threads,
              .seed = (uint64_t)seed);
  onerec_context *ctx = NULL;
  onerec_status s = onerec_context_create(&co, &ctx);
  if (s) return cli_fail("context", s);
  rc = 1;
  onerec_dataset *ds = NULL;
  onerec_samples *smp = NULL;
  onerec_batch *b = NULL;
  onerec_model *m = NULL;
  onerec_trainer *t = NULL;
  onerec_catalog *cat = NULL;
  int32_t *codes = NULL;
  char buf[4200];
  ONEREC_OPTS(onerec_dataset_opts, dso, .format = dataset);
  const char *path = cli_data_path(data, dataset, buf, sizeof buf);
  if ((s = onerec_dataset_load(ctx, path, &dso, &ds))) {
    cli_fail(path, s);
    goto done;
  }
  ONEREC_OPTS(onerec_dataset_info, info);
  if ((s = onerec_dataset_get_info(ds, &info))) {
    cli_fail("dataset info", s);
    goto done;
  }
  /* the static pathway: the hashed user id, then the data set's own user features */
  int32_t n_cat = 0, n_num = 0;
  const int64_t *cat_vocab = NULL;
  if ((s = onerec_dataset_static(ds, &n_cat, NULL, &cat_vocab, &n_num, NULL))) {
    cli_fail("static features", s);
    goto done;
  }
  if (1 + n_cat > ONEREC_MAX_FEATURES) {
    fprintf(stderr, "onerec train: %d categorical user features (at most %d)\n", (int)n_cat,
            ONEREC_MAX_FEATURES - 1);
    goto done;
  }
  int64_t K = 2;
  if (catalog) {
    int cl = 0, ck = 0;
    if ((s = onerec_catalog_load(ctx, catalog, &cat)) ||
        (s = onerec_catalog_info(cat, &cl, &ck, NULL))) {
      cli_fail(catalog, s);
      goto done;
    }
    levels = cl;
    K = ck;
    if (cli_catalog_codes(ds, cat, &codes)) goto done;
  } else {
    /* base-K digits of the dense index */
    for (;; K++) {
      double cap = pow((double)K, (double)levels);
      if (cap >= (double)info.items) break;
    }
    codes = malloc((size_t)(info.items * levels) * sizeof *codes);
    if (!codes) goto done;
    for (int64_t i = 0; i < info.items; i++) {
      int64_t x = i;
      for (int64_t l = levels - 1; l >= 0; l--) {
        codes[i * levels + l] = (int32_t)(x % K);
        x /= K;
      }
    }
  }
  ONEREC_OPTS(onerec_model_config, c);
  if ((s = onerec_model_config_preset(preset, &c))) {
    cli_fail("preset", s);
    goto done;
  }
  if (layers > 0) c.enc_layers = c.dec_layers = (int32_t)layers;
  if (d_model > 0) c.d_model = (int32_t)d_model;
  if (heads > 0) c.heads = (int32_t)heads;
  if (ffn > 0) c.ffn_dim = (int32_t)ffn;
  c.levels = (int32_t)levels;
  c.codebook = (int32_t)K;
  c.use_lifelong = 0;
  c.static_cat_count = 1 + n_cat; /* the hashed user id first */
  c.static_num_count = n_num;
  c.static_cat_vocab[0] = uid_buckets;
  for (int32_t f = 0; f < n_cat; f++) c.static_cat_vocab[1 + f] = cat_vocab[f] > 0 ? cat_vocab[f] : 1;
  c.use_short = short_len > 0;
  c.short_len = short_len > 0 ? (int32_t)short_len : c.short_len;
  c.use_positive = positive_len > 0;
  c.positive_len = positive_len > 0 ? (int32_t)positive_len : c.positive_len;
  c.item_input = ONEREC_ITEM_BY_SID;
  c.seq_cat_count = ONEREC_DATA_CAT_COUNT;
  c.seq_cat_vocab[ONEREC_DATA_CAT_AUTHOR] = 1;
  c.seq_cat_vocab[ONEREC_DATA_CAT_TAG] = info.tags > 0 ? info.tags : 1;
  c.seq_cat_vocab[ONEREC_DATA_CAT_LABEL] = 16;
  for (int i = 0; i < ONEREC_DATA_CAT_COUNT; i++) c.seq_cat_dim[i] = 16;
  c.seq_num_count = ONEREC_DATA_NUM_COUNT;
  if (model_in) {
    /* the batch layout below is training's own, so the file must share it, not just the shape */
    ONEREC_OPTS(onerec_model_config, f);
    if ((s = onerec_model_load(ctx, model_in, &m))) {
      cli_fail(model_in, s);
      goto done;
    }
    onerec_model_config_get(m, &f);
    if (cat && cli_model_fits_catalog(&f, cat, model_in)) goto done;
    if (f.levels != c.levels || f.codebook != c.codebook || f.item_input != c.item_input ||
        f.static_cat_count != c.static_cat_count || f.static_num_count != c.static_num_count ||
        f.seq_cat_count != c.seq_cat_count || f.seq_num_count != c.seq_num_count ||
        f.use_lifelong != c.use_lifelong || f.use_short != c.use_short ||
        f.use_positive != c.use_positive ||
        memcmp(f.static_cat_vocab, c.static_cat_vocab,
               (size_t)c.static_cat_count * sizeof *c.static_cat_vocab) ||
        f.seq_cat_vocab[ONEREC_DATA_CAT_TAG] != c.seq_cat_vocab[ONEREC_DATA_CAT_TAG]) {
      fprintf(stderr,
              "onerec train: %s does not have the training layout (%d x %d codes, items by SID, "
              "a hashed-uid feature of %lld buckets + the data's %d/%d user features, %d/%d "
              "sequence features, no lifelong pathway); train from --preset instead, or from a "
              "model `onerec train` wrote\n",
              model_in, (int)c.levels, (int)c.codebook, (long long)c.static_cat_vocab[0],
              (int)n_cat, (int)n_num, (int)c.seq_cat_count, (int)c.seq_num_count);
      goto done;
    }
    c = f;
  } else if ((s = onerec_model_create(ctx, &c, (uint64_t)seed, &m))) {
    cli_fail("model", s);
    goto done;
  }
  ONEREC_OPTS(onerec_samples_opts, so, .max_history = 50);
  if ((s = onerec_samples_create(ds, ONEREC_SPLIT_TRAIN, &so, &smp))) {
    cli_fail("samples", s);
    goto done;
  }
  ONEREC_OPTS(onerec_batch_opts, bo, .max_batch = batch, .short_len = cli_batch_len(&c, 0),
              .positive_len = cli_batch_len(&c, 1), .uid_buckets = (int32_t)c.static_cat_vocab[0],
              .levels = (int32_t)levels, .item_codes = codes);
  if ((s = onerec_batch_create(ds, &bo, &b))) {
    cli_fail("batch", s);
    goto done;
  }
  const int64_t n = onerec_samples_count(smp);
  const int64_t per_epoch = (n + batch - 1) / batch;
  ONEREC_OPTS(onerec_trainer_opts, to, .max_batch = batch, .lr_dense = (float)lr,
              .lr_sparse = (float)lr_sparse, .warmup_steps = warmup,
              .total_steps = steps > 0 ? steps : 0, .dropout = (float)dropout,
              .input_dropout = (float)input_dropout, .ema_decay = (float)ema_decay,
              .label_smoothing = (float)label_smoothing,
              .dropout_seed = (uint64_t)seed, .shards = (int32_t)shards,
              .weight_decay = weight_decay > 0.0 ? (float)weight_decay : -1.0f);
  if ((s = onerec_trainer_create(m, &to, &t))) {
    cli_fail("trainer", s);
    goto done;
  }
  int64_t step = 0, epoch = -1;
  double eval_secs = 0.0; /* evaluation is measurement, not training: kept out of the budget */
  if (resume) {
    uint64_t pos = 0;
    if ((s = onerec_trainer_load(t, resume, &pos))) {
      cli_fail(resume, s);
      goto done;
    }
    step = (int64_t)pos; /* updates done: the data order is a function of seed and step */
  }
  fprintf(stderr,
          "onerec train: %s, %lld samples (%lld steps an epoch), %lld parameters, codebook %lld "
          "x %lld levels\n",
          dataset, (long long)n, (long long)per_epoch, (long long)onerec_model_param_count(m),
          (long long)K, levels);
  const double t0 = now_s(), budget = minutes > 0 ? minutes * 60.0 : INFINITY;
  double last = t0, loss_avg = 0.0, next_eval = t0 + eval_every * 60.0, best = -1.0;
  long long evals_since_best = 0;
  if (catalog && cli_run_info_write(out, data, dataset, catalog)) goto done;
  if (resume && eval_every > 0) {
    best = best_read(out);
    if (best >= 0.0)
      fprintf(stderr, "onerec train: %s/model.h5 has validation Recall@10 %.4f: kept unless beaten\n",
              out, best);
  }
  const int64_t step0 = step;
  const int64_t end = stop_at > 0 && (steps <= 0 || stop_at < steps) ? stop_at : steps;
  while (end <= 0 || step < end) {
    int64_t pos = step % per_epoch;
    if (step / per_epoch != epoch) {
      epoch = step / per_epoch;
      if ((s = onerec_samples_shuffle(smp, (uint64_t)seed + (uint64_t)epoch))) {
        cli_fail("shuffle", s);
        goto done;
      }
    }
    int64_t first = pos * batch, cnt = n - first < batch ? n - first : batch;
    ONEREC_OPTS(onerec_user_batch, u);
    const int32_t *tc = NULL;
    float loss = 0.0f;
    if ((s = onerec_batch_fill(b, smp, first, cnt, &u, NULL, 0, &tc))) {
      cli_fail("batch", s);
      goto done;
    }
    if ((s = onerec_trainer_step(t, &u, tc, &loss))) {
      cli_fail("step", s);
      goto done;
    }
    step++;
    loss_avg = step == step0 + 1 ? loss : 0.98 * loss_avg + 0.02 * loss;
    double tn = now_s(), el = tn - t0 - eval_secs;
    int finished = (end > 0 && step >= end) || el >= budget;
    if (tn - last >= 5.0 || finished || step == step0 + 1) {
      ONEREC_OPTS(onerec_train_stats, st);
      onerec_trainer_stats(t, &st);
      double sps = (double)((step - step0) * batch) / (el > 0 ? el : 1e-9);
      double left = end > 0 ? (double)(end - step) * el / (double)(step - step0) : budget - el;
      if (minutes > 0 && left > budget - el) left = budget - el;
      fprintf(stderr, "step %lld  epoch %.2f  loss %.4f  lr %.2e  %.1f samples/s  ETA %.0f s\n",
              (long long)step, (double)step / (double)per_epoch, loss_avg, (double)st.lr_dense,
              sps, left > 0 ? left : 0.0);
      last = tn;
    }
    if (eval_every > 0 && (finished || tn >= next_eval)) {
      const double e0 = now_s();
      cli_eval_result r = {0};
      if (swap_average(t, ema_decay)) goto done; /* evaluate the average */
      const onerec_model *one[1] = {m};
      if (cli_eval_run(ctx, one, 1, cat, ds, codes, ONEREC_SPLIT_VALID, eval_users, (int)beam, 0,
                       NULL, &r))
        goto done;
      int better = r.recall10 > best;
      if (better) {
        best = r.recall10;
        evals_since_best = 0;
        snprintf(buf, sizeof buf, "%s/model.h5", out);
        if ((s = onerec_model_save(m, buf))) {
          cli_fail(buf, s);
          goto done;
        }
        if (best_write(out, best, (long long)step)) goto done;
      } else if (++evals_since_best >= patience) {
        fprintf(stderr, "onerec train: no validation gain in %lld evals, stopping\n", patience);
        finished = 1;
      }
      if (snapshots) {
        snprintf(buf, sizeof buf, "%s/step%lld.h5", out, (long long)step);
        if ((s = onerec_model_save(m, buf))) {
          cli_fail(buf, s);
          goto done;
        }
      }
      if (swap_average(t, ema_decay)) goto done; /* back to training */
      cli_eval_print(stdout, &r, "valid");
      printf(",\"step\":%lld,\"minutes\":%.2f,\"loss\":%.5f,\"best\":%s", (long long)step, el / 60.0,
             loss_avg, better ? "true" : "false");
      if (snapshots) {
        printf(",\"snapshot\":");
        cli_json_string(stdout, buf);
      }
      printf("}\n");
      fflush(stdout);
      eval_secs += now_s() - e0;
      next_eval = now_s() + eval_every * 60.0;
    }
    if (finished) break;
  }
  snprintf(buf, sizeof buf, "%s/model.h5", out);
  if (eval_every <= 0) {
    if (swap_average(t, ema_decay)) goto done;
    if ((s = onerec_model_save(m, buf))) {
      cli_fail(buf, s);
      goto done;
    }
    if (swap_average(t, ema_decay)) goto done;
    /* this model.h5 was never evaluated: a record of an earlier best no longer describes it */
    snprintf(buf, sizeof buf, "%s/best.json", out);
    remove(buf);
  }
  snprintf(buf, sizeof buf, "%s/checkpoint.h5", out);
  if ((s = onerec_trainer_save(t, buf, (uint64_t)step))) {
    cli_fail(buf, s);
    goto done;
  }
  fprintf(stderr, "onerec train: %lld steps, wrote %s/model.h5 and %s/checkpoint.h5\n",
          (long long)step, out, out);
  rc = 0;
done:
  onerec_trainer_free(t);
  onerec_batch_free(b);
  onerec_samples_free(smp);
  onerec_model_free(m);
  onerec_catalog_free(cat);
  onerec_dataset_free(ds);
  onerec_context_free(ctx);
  free(codes);
  return rc;
}
