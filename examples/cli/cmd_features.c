#include <string.h>

#include "cli.h"

static void features_usage(FILE *f) {
  fprintf(f,
          "usage: onerec features beauty DATA_DIR --out F.h5 [--dim N] [--collab-dim M]\n"
          "                                [--seed S] [--threads T] [--json]\n"
          "  Builds item features from DATA_DIR/Beauty_items.tsv (TF-IDF of title words and\n"
          "  attribute ids) and DATA_DIR/Beauty.txt (Swing over the leave-one-out training\n"
          "  part): HDF5 datasets features (float32, items x N) and item_ids (int64).\n"
          "  --dim N         total dimensions (default 384); collab part N/3 unless --collab-dim\n"
          "  --collab-dim M  collaborative dimensions (0 = text only)\n");
}

static void log_stderr(void *user, onerec_log_level level, const char *message) {
  (void)user;
  (void)level;
  fprintf(stderr, "onerec: %s\n", message);
}

int cmd_features(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "beauty") != 0) {
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
      features_usage(stdout);
      return 0;
    }
    features_usage(stderr);
    return 2;
  }
  const char *dir = NULL, *out = NULL;
  long long dim = 384, collab_dim = -1, threads = 0, seed = 0;
  int json = 0;
  const cli_opt opts[] = {
      CLI_FLAG("--json", &json),
      CLI_STR("--out", &out),
      CLI_INT("--dim", &dim, 2, 1 << 20),
      CLI_INT("--collab-dim", &collab_dim, 0, 1 << 20),
      CLI_INT("--threads", &threads, 0, 1024),
      CLI_INT("--seed", &seed, 0, 0x7fffffffL),
  };
  int rc = cli_parse("features beauty", argc - 1, argv + 1, opts, CLI_COUNT(opts),
                     features_usage, &dir, 1);
  if (rc != CLI_PARSED) return rc;
  if (!dir || !out) {
    fprintf(stderr, "onerec features: DATA_DIR and --out are required\n");
    features_usage(stderr);
    return 2;
  }
  if (collab_dim < 0) collab_dim = dim / 3;
  if (collab_dim >= dim) {
    fprintf(stderr, "onerec features: --collab-dim %lld leaves no text dimensions of --dim %lld\n",
            collab_dim, dim);
    return 2;
  }
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = (int)threads,
              .log_fn = log_stderr, .log_level = ONEREC_LOG_INFO);
  onerec_context *ctx = NULL;
  onerec_status s = onerec_context_create(&co, &ctx);
  if (s) return cli_fail("creating the context", s);
  ONEREC_OPTS(onerec_beauty_features_opts, fo, .text_dim = (int)(dim - collab_dim),
              .collab_dim = collab_dim ? (int)collab_dim : -1, .seed = (uint64_t)seed);
  ONEREC_OPTS(onerec_features_report, rep);
  s = onerec_features_beauty(ctx, dir, out, &fo, &rep);
  onerec_context_free(ctx);
  if (s) return cli_fail("features beauty", s);
  if (json) {
    printf("{\"out\":");
    cli_json_string(stdout, out);
    printf(
        ",\"items\":%lld,\"dim\":%d,\"text_dim\":%d,\"collab_dim\":%d,\"users\":%lld,"
        "\"train_interactions\":%lld,\"vocabulary\":%lld,\"items_with_neighbors\":%lld,"
        "\"items_with_cooccurrence\":%lld,\"pairs\":%lld,\"swing_seconds\":%.3f,\"seconds\":%.3f}"
        "\n",
        (long long)rep.items, rep.dim, rep.text_dim, rep.collab_dim, (long long)rep.users,
        (long long)rep.train_interactions, (long long)rep.vocabulary,
        (long long)rep.items_with_neighbors, (long long)rep.items_with_cooccurrence,
        (long long)rep.pairs, rep.swing_seconds, rep.seconds);
  } else {
    printf("wrote %s: %lld items x %d dims (text %d, collab %d) in %.2f s\n", out,
           (long long)rep.items, rep.dim, rep.text_dim, rep.collab_dim, rep.seconds);
  }
  return 0;
}
