#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: onerec <command> [options]\n"
          "commands:\n"
          "  info [--json]     version, backends available (and why not), CPU features, threads\n"
          "  features beauty DIR --out F.h5 [--dim N] [--json]\n"
          "                    item features (text TF-IDF + Swing) for the Amazon Beauty data\n"
          "  model create --preset 0.015B [--out M.h5] [--json] | model info M.h5 [--json]\n"
          "                    a model's configuration and parameter count\n"
          "  data stats|baseline|convert --data DIR --dataset beauty|ml-100k|h5 [--json]\n"
          "                    data set counts, popularity baseline, HDF5 conversion\n"
          "  align --features F.h5 --data DIR --dataset D --out ALIGNED.h5 [--json]\n"
          "                    item alignment: QFormer + InfoNCE over collaborative pairs\n"
          "  tokenizer fit --features F.h5 --out TOK.h5 [--levels 3] [--codes 256] [--json]\n"
          "  tokenizer stats TOK.h5 [--features F.h5] [--json]\n"
          "                    RQ-Kmeans semantic IDs: fit, metrics, one-to-one resolution\n"
          "  train --data DIR --dataset beauty|ml-100k|h5 [--preset P] [--minutes M]\n"
          "                    NTP pre-training with progress on stderr; writes model + checkpoint\n"
          "  eval --model M.h5 --catalog C.h5 --data DIR --dataset D [--split test] [--json]\n"
          "                    full-ranking Recall/NDCG@5,10 by constrained beam search\n"
          "  recommend --model M.h5 --catalog C.h5 --history \"12 55 901\" [-k 10] [--beam 64]\n"
          "                    top items for a user: constrained beam search (or --sample)\n"
          "  version           print the library version\n");
}

void cli_json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

int cli_mkdirs(const char *dir) {
  char p[4096];
  if (!*dir) {
    fprintf(stderr, "onerec: empty folder name\n");
    return 1;
  }
  if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
    fprintf(stderr, "onerec: folder name too long: %s\n", dir);
    return 1;
  }
  /* each parent in turn, then the folder itself; existing ones are fine */
  for (char *c = p + 1;; c++) {
    if (*c != '/' && *c != '\0') continue;
    const char keep = *c;
    *c = '\0';
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
      fprintf(stderr, "onerec: cannot create folder %s: %s\n", p, strerror(errno));
      return 1;
    }
    *c = keep;
    if (!keep) break;
  }
  struct stat st;
  if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode) || access(p, W_OK | X_OK) != 0) {
    fprintf(stderr, "onerec: %s is not a writable folder\n", p);
    return 1;
  }
  return 0;
}

FILE *cli_atomic_open(const char *path, char *tmp, size_t len) {
  snprintf(tmp, len, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) fprintf(stderr, "onerec: cannot write %s\n", tmp);
  return f;
}

int cli_atomic_commit(FILE *f, const char *tmp, const char *path) {
  int bad = ferror(f) != 0;
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path)) {
    remove(tmp);
    fprintf(stderr, "onerec: cannot write %s\n", path);
    return 1;
  }
  return 0;
}

int cli_fail(const char *what, onerec_status s) {
  fprintf(stderr, "onerec: %s: %s: %s\n", what, onerec_status_str(s), onerec_last_error());
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "info")) return cmd_info(argc - 1, argv + 1);
  if (!strcmp(argv[1], "features")) return cmd_features(argc - 1, argv + 1);
  if (!strcmp(argv[1], "model")) return cmd_model(argc - 1, argv + 1);
  if (!strcmp(argv[1], "data")) return cmd_data(argc - 1, argv + 1);
  if (!strcmp(argv[1], "align")) return cmd_align(argc - 1, argv + 1);
  if (!strcmp(argv[1], "tokenizer")) return cmd_tokenizer(argc - 1, argv + 1);
  if (!strcmp(argv[1], "recommend")) return cmd_recommend(argc - 1, argv + 1);
  if (!strcmp(argv[1], "train")) return cmd_train(argc - 1, argv + 1);
  if (!strcmp(argv[1], "eval")) return cmd_eval(argc - 1, argv + 1);
  if (!strcmp(argv[1], "version")) {
    printf("%s\n", onerec_version());
    return 0;
  }
  fprintf(stderr, "onerec: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
