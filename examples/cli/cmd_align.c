/* `onerec align`: item representation alignment (onerec/align.h). Reads a features file, cuts
 * each item's vector into tokens at --split (default 256,128: the text and collaborative
 * blocks of `onerec features beauty`, zero-padded to the widest; an all-zero block is a missing
 * token), mines the collaborative pairs from the data set's training part (Swing pairs and
 * user pairs, onerec/collab.h, leave-one-out holdout), trains the QFormer with InfoNCE on 99%
 * of them (1% held out for the validation loss), and writes the aligned vectors as a features
 * file that `onerec tokenizer fit --features` reads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void align_usage(FILE *f) {
  fprintf(f,
          "usage: onerec align --features F.h5 --data DIR --dataset beauty|ml-100k|h5\n"
          "                    --out ALIGNED.h5 [--split 256,128] [--epochs 2] [--minutes M]\n"
          "                    [--batch 256] [--lr 1e-3] [--temperature 0.07] [--d-model 64]\n"
          "                    [--queries 4] [--layers 4] [--heads 4] [--seed 1]\n"
          "                    [--model-out ALIGNER.h5] [--threads T] [--json]\n"
          "                    [--attribute-pairs K] [--attribute-max-items D]\n"
          "  trains the item QFormer with InfoNCE over collaborative pairs and writes the\n"
          "  aligned item vectors (queries x d-model floats each, unit norm); progress on\n"
          "  stderr, a JSON summary on stdout with --json. Stops after --epochs passes over\n"
          "  the pairs or --minutes, whichever comes first. --attribute-pairs K (beauty\n"
          "  only) adds content pairs: each item with up to K items that share an attribute\n"
          "  of Beauty_items.tsv carried by at most D items (default 200), brand-like ids.\n");
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct id_row {
  int64_t id, row;
} id_row;

static int cmp_id_row(const void *a, const void *b) {
  int64_t x = ((const id_row *)a)->id, y = ((const id_row *)b)->id;
  return (x > y) - (x < y);
}

static int64_t row_of(const id_row *t, int64_t n, int64_t id) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (t[mid].id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && t[lo].id == id ? t[lo].row : -1;
}

/* Fisher-Yates over the pairs (a[k], b[k]), k < n, moving both halves together. */
static void shuffle_pairs(int64_t *a, int64_t *b, int64_t n, uint64_t *rs) {
  for (int64_t k = n - 1; k > 0; k--) {
    int64_t j = (int64_t)(cli_splitmix64(rs) % (uint64_t)(k + 1)), ta = a[k], tb = b[k];
    a[k] = a[j];
    b[k] = b[j];
    a[j] = ta;
    b[j] = tb;
  }
}

/* Parses "256,128" into widths; returns the count (0 on a bad list). */
static int parse_split(const char *s, int64_t *w, int max) {
  int n = 0;
  while (*s && n < max) {
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 1 || v > 1 << 20) return 0;
    w[n++] = v;
    s = end;
    if (*s == ',') s++;
    else if (*s) return 0;
  }
  return *s ? 0 : n;
}

int cmd_align(int argc, char **argv) {
  const char *features = NULL, *data = NULL, *dataset = NULL, *out = NULL, *model_out = NULL;
  const char *split = "256,128";
  double epochs = 2.0, minutes = 0.0, lr = 1e-3, temperature = 0.07;
  long long batch = 256, d_model = 64, queries = 4, layers = 4, heads = 4, seed = 1, threads = 0;
  long long attr_pairs = 0, attr_max_items = 200;
  int json = 0;
  const cli_opt opts[] = {
      CLI_FLAG("--json", &json),
      CLI_STR("--features", &features),
      CLI_STR("--data", &data),
      CLI_STR("--dataset", &dataset),
      CLI_STR("--out", &out),
      CLI_STR("--model-out", &model_out),
      CLI_STR("--split", &split),
      CLI_REAL("--epochs", &epochs, 0.0, INFINITY, CLI_OPEN_LO),
      CLI_REAL("--minutes", &minutes, 0.0, INFINITY, 0),
      CLI_REAL("--lr", &lr, -INFINITY, INFINITY, 0),
      CLI_REAL("--temperature", &temperature, -INFINITY, INFINITY, 0),
      CLI_INT("--batch", &batch, 2, 65536),
      CLI_INT("--d-model", &d_model, 1, 8192),
      CLI_INT("--queries", &queries, 1, 1024),
      CLI_INT("--layers", &layers, 1, 64),
      CLI_INT("--heads", &heads, 1, 256),
      CLI_INT("--seed", &seed, CLI_INT_MIN, CLI_INT_MAX),
      CLI_INT("--threads", &threads, 0, 1024),
      CLI_INT("--attribute-pairs", &attr_pairs, 0, 1000),
      CLI_INT("--attribute-max-items", &attr_max_items, 2, 1 << 20),
  };
  int rc = cli_parse("align", argc, argv, opts, CLI_COUNT(opts), align_usage, NULL, 0);
  if (rc != CLI_PARSED) return rc;
  if (!features || !data || !dataset || !out) {
    fprintf(stderr, "onerec align: --features, --data, --dataset and --out are required\n");
    align_usage(stderr);
    return 2;
  }
  int64_t widths[64];
  if (attr_pairs > 0 && strcmp(dataset, "beauty") != 0) {
    fprintf(stderr, "onerec align: --attribute-pairs needs --dataset beauty (Beauty_items.tsv)\n");
    return 2;
  }
  int nt = parse_split(split, widths, 64);
  if (nt < 1) {
    fprintf(stderr, "onerec align: --split takes widths like 256,128\n");
    return 2;
  }
  int64_t n = 0, dim = 0, width = 0, sum = 0;
  int has_ids = 0;
  onerec_status s = onerec_features_file_info(features, &n, &dim, &has_ids);
  if (s) return cli_fail(features, s);
  for (int t = 0; t < nt; t++) {
    sum += widths[t];
    if (widths[t] > width) width = widths[t];
  }
  if (sum != dim) {
    fprintf(stderr, "onerec align: --split %s covers %lld columns, %s has %lld\n", split,
            (long long)sum, features, (long long)dim);
    return 2;
  }
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = (int)threads,
              .seed = (uint64_t)seed);
  onerec_context *ctx = NULL;
  if ((s = onerec_context_create(&co, &ctx))) return cli_fail("context", s);
  rc = 1;
  float *x = NULL, *tok = NULL, *z = NULL;
  int64_t *ids = NULL, *offs = NULL, *seq = NULL, *pf = NULL, *ps = NULL, *af = NULL, *as = NULL;
  uint8_t *mask = NULL;
  id_row *map = NULL;
  onerec_dataset *ds = NULL;
  onerec_collab *col = NULL;
  onerec_aligner *al = NULL;
  char buf[4200];
  x = malloc((size_t)(n * dim) * sizeof *x);
  ids = malloc((size_t)n * sizeof *ids);
  tok = calloc((size_t)(n * nt * width), sizeof *tok);
  mask = malloc((size_t)(n * nt));
  map = malloc((size_t)n * sizeof *map);
  if (!x || !ids || !tok || !mask || !map) {
    fprintf(stderr, "onerec align: out of memory for %lld items\n", (long long)n);
    goto done;
  }
  if ((s = onerec_features_file_read(features, x, (size_t)(n * dim), ids, (size_t)n))) {
    cli_fail(features, s);
    goto done;
  }
  if (!has_ids) {
    /* rows would be matched to the data set's item ids by position: refuse to guess */
    fprintf(stderr, "onerec align: %s has no item_ids dataset\n", features);
    goto done;
  }
  /* tokens: the blocks of each vector, zero-padded; an all-zero block is absent */
  for (int64_t i = 0; i < n; i++) {
    int64_t col0 = 0;
    for (int t = 0; t < nt; t++) {
      float *dst = tok + (i * nt + t) * width;
      int any = 0;
      for (int64_t k = 0; k < widths[t]; k++) {
        dst[k] = x[i * dim + col0 + k];
        any |= dst[k] != 0.0f;
      }
      mask[i * nt + t] = (uint8_t)any;
      col0 += widths[t];
    }
    map[i].id = ids[i];
    map[i].row = i;
  }
  qsort(map, (size_t)n, sizeof *map, cmp_id_row);
  /* pairs from the training part of the data (leave-one-out holdout inside the data set) */
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
  offs = malloc((size_t)(info.users + 1) * sizeof *offs);
  seq = malloc((size_t)(info.train_interactions > 0 ? info.train_interactions : 1) * sizeof *seq);
  if (!offs || !seq) {
    fprintf(stderr, "onerec align: out of memory\n");
    goto done;
  }
  if ((s = onerec_dataset_train_csr(ds, offs, (size_t)info.users + 1, seq,
                                    (size_t)info.train_interactions))) {
    cli_fail("training sequences", s);
    goto done;
  }
  /* onerec_dataset_train_csr already leaves the validation and test items out */
  ONEREC_OPTS(onerec_collab_opts, cop, .holdout_last = 0, .threads = (int)threads);
  if ((s = onerec_collab_mine(ctx, (size_t)info.users, offs, seq, &cop, &col))) {
    cli_fail("collaborative pairs", s);
    goto done;
  }
  int64_t np = 0;
  const int64_t *pa = NULL, *pb = NULL;
  if ((s = onerec_collab_pairs(col, &np, &pa, &pb, NULL, NULL))) {
    cli_fail("pairs", s);
    goto done;
  }
  int64_t n_attr = 0;
  if (attr_pairs > 0) {
    char tsv[4200];
    snprintf(tsv, sizeof tsv, "%s/Beauty_items.tsv", data);
    ONEREC_OPTS(onerec_attribute_pairs_opts, apo, .per_item = (int)attr_pairs,
                .max_items = (int)attr_max_items, .seed = (uint64_t)seed);
    s = onerec_attribute_pairs(ctx, tsv, &apo, NULL, NULL, 0, &n_attr);
    if (s == ONEREC_ERR_BUFFER_TOO_SMALL) { /* the first call only counts */
      af = malloc((size_t)(n_attr > 0 ? n_attr : 1) * sizeof *af);
      as = malloc((size_t)(n_attr > 0 ? n_attr : 1) * sizeof *as);
      if (!af || !as) {
        fprintf(stderr, "onerec align: out of memory for %lld attribute pairs\n",
                (long long)n_attr);
        goto done;
      }
      s = onerec_attribute_pairs(ctx, tsv, &apo, af, as, (size_t)n_attr, &n_attr);
    }
    if (s) {
      cli_fail("attribute pairs", s);
      goto done;
    }
  }
  pf = malloc((size_t)(np + n_attr > 0 ? np + n_attr : 1) * sizeof *pf);
  ps = malloc((size_t)(np + n_attr > 0 ? np + n_attr : 1) * sizeof *ps);
  if (!pf || !ps) {
    fprintf(stderr, "onerec align: out of memory for %lld pairs\n", (long long)np);
    goto done;
  }
  int64_t kept = 0;
  for (int64_t k = 0; k < np + n_attr; k++) {
    int64_t ra = k < np ? row_of(map, n, pa[k]) : row_of(map, n, af[k - np]);
    int64_t rb = k < np ? row_of(map, n, pb[k]) : row_of(map, n, as[k - np]);
    if (ra < 0 || rb < 0 || ra == rb) continue; /* an item the features file lacks */
    pf[kept] = ra;
    ps[kept] = rb;
    kept++;
  }
  if (kept < 2 * batch) {
    fprintf(stderr, "onerec align: only %lld usable pairs (need at least 2 x --batch)\n",
            (long long)kept);
    goto done;
  }
  /* shuffle once; the last 1% (at least one batch) is the validation set */
  uint64_t rs = (uint64_t)seed * 0x2545F4914F6CDD1Dull + 1;
  shuffle_pairs(pf, ps, kept, &rs);
  int64_t n_val = kept / 100 > batch ? kept / 100 : batch, n_train = kept - n_val;
  ONEREC_OPTS(onerec_aligner_config, ac, .in_dim = (int32_t)width, .tokens = nt,
              .queries = (int32_t)queries, .layers = (int32_t)layers, .d_model = (int32_t)d_model,
              .heads = (int32_t)heads, .temperature = (float)temperature, .max_batch = batch,
              .lr = (float)lr);
  if ((s = onerec_aligner_create(ctx, &ac, (uint64_t)seed, &al))) {
    cli_fail("aligner", s);
    goto done;
  }
  const int64_t per_epoch = n_train / batch, total = (int64_t)ceil(epochs * (double)per_epoch);
  fprintf(stderr,
          "onerec align: %lld items, %d tokens of %lld, %lld pairs (%lld attribute; %lld train, "
          "%lld held out), %lld steps\n",
          (long long)n, nt, (long long)width, (long long)kept, (long long)n_attr,
          (long long)n_train,
          (long long)n_val, (long long)total);
  const double t0 = now_s(), budget = minutes > 0 ? minutes * 60.0 : INFINITY;
  double last = t0, ema = 0.0;
  int64_t step = 0;
  for (; step < total && now_s() - t0 < budget; step++) {
    int64_t pos = step % per_epoch;
    if (pos == 0 && step > 0) shuffle_pairs(pf, ps, n_train, &rs); /* each epoch anew */
    float loss = 0.0f;
    if ((s = onerec_aligner_step(al, tok, mask, n, pf + pos * batch, ps + pos * batch, batch,
                                 &loss))) {
      cli_fail("step", s);
      goto done;
    }
    ema = step == 0 ? loss : 0.98 * ema + 0.02 * loss;
    double tn = now_s();
    if (tn - last >= 5.0 || step + 1 == total) {
      fprintf(stderr, "step %lld/%lld  epoch %.2f  loss %.4f  %.0f pairs/s\n",
              (long long)(step + 1), (long long)total, (double)(step + 1) / (double)per_epoch,
              ema, (double)((step + 1) * batch) / (tn - t0));
      last = tn;
    }
  }
  double vloss = 0.0;
  int64_t vb = 0;
  for (int64_t k = n_train; k + batch <= kept; k += batch, vb++) {
    float l = 0.0f;
    if ((s = onerec_aligner_loss(al, tok, mask, n, pf + k, ps + k, batch, &l))) {
      cli_fail("validation loss", s);
      goto done;
    }
    vloss += l;
  }
  vloss /= (double)(vb > 0 ? vb : 1);
  const int64_t D = onerec_aligner_dim(al);
  z = malloc((size_t)(n * D) * sizeof *z);
  if (!z) {
    fprintf(stderr, "onerec align: out of memory\n");
    goto done;
  }
  if ((s = onerec_aligner_embed(al, tok, mask, n, z, (size_t)(n * D)))) {
    cli_fail("embed", s);
    goto done;
  }
  if ((s = onerec_features_file_write(out, z, n, D, ids, "onerec align"))) {
    cli_fail(out, s);
    goto done;
  }
  if (model_out && (s = onerec_aligner_save(al, model_out))) {
    cli_fail(model_out, s);
    goto done;
  }
  const double secs = now_s() - t0;
  fprintf(stderr, "onerec align: %lld steps in %.1f s, held-out loss %.4f (chance %.4f), wrote %s\n",
          (long long)step, secs, vloss, log((double)batch), out);
  if (json) {
    printf("{\"items\":%lld,\"dim\":%lld,\"pairs\":%lld,\"attribute_pairs\":%lld,"
           "\"steps\":%lld,\"seconds\":%.2f,"
           "\"train_loss\":%.5f,\"heldout_loss\":%.5f,\"chance_loss\":%.5f,\"out\":",
           (long long)n, (long long)D, (long long)kept, (long long)n_attr, (long long)step, secs,
           ema, vloss,
           log((double)batch));
    cli_json_string(stdout, out);
    printf("}\n");
  }
  rc = 0;
done:
  onerec_aligner_free(al);
  onerec_collab_free(col);
  onerec_dataset_free(ds);
  onerec_context_free(ctx);
  free(x);
  free(ids);
  free(tok);
  free(mask);
  free(map);
  free(offs);
  free(seq);
  free(pf);
  free(ps);
  free(af);
  free(as);
  free(z);
  return rc;
}
