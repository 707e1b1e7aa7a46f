/* `onerec data synth`: a small synthetic data set in the Amazon Beauty file format (Beauty.txt,
 * Beauty_items.tsv), the built-in default of `make demo` where the real data is absent.
 *
 * It has the structure a sequential recommender should find: items belong to topics and each
 * topic orders its items in a chain; a user follows one topic (sometimes two), mostly stepping
 * to the next item of the chain, sometimes jumping inside the topic or to another one. Titles
 * name the topic and the item's place in the chain, and attributes carry the topic, so the
 * item features (and the semantic IDs built from them) see the topics too. Deterministic for a
 * seed. */
#include <stdio.h>

#include "cli.h"

static int64_t below(uint64_t *s, int64_t n) {
  return (int64_t)(cli_splitmix64(s) % (uint64_t)n);
}
static double unit(uint64_t *s) {
  return (double)(cli_splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

static const char *const WORDS[] = {"cream", "serum", "lotion", "gel", "oil", "mask", "balm",
                                    "spray", "powder", "tint", "scrub", "wash", "mist", "stick"};

static void synth_usage(FILE *f) {
  fprintf(f,
          "usage: onerec data synth --out DIR [--users 3000] [--items 1200] [--topics 24]\n"
          "                         [--seed 1]\n"
          "  writes DIR/Beauty.txt and DIR/Beauty_items.tsv: a synthetic data set in the\n"
          "  Amazon Beauty format with topic chains a sequential model can learn\n"
          "  (users 10..1e7, topics >= 2, items 4 x topics..1e7)\n");
}

int cmd_synth(int argc, char **argv) {
  const char *out = NULL;
  long long users = 3000, items = 1200, topics = 24, seed = 1;
  /* topics at most 1e7 / 4: more could never have 4 items each */
  const cli_opt opts[] = {
      CLI_STR("--out", &out),
      CLI_INT("--users", &users, 10, 10000000),
      CLI_INT("--items", &items, 1, 10000000),
      CLI_INT("--topics", &topics, 2, 2500000),
      CLI_INT("--seed", &seed, CLI_INT_MIN, CLI_INT_MAX),
  };
  int rc = cli_parse("data synth", argc, argv, opts, CLI_COUNT(opts), synth_usage, NULL, 0);
  if (rc != CLI_PARSED) return rc;
  if (!out) {
    fprintf(stderr, "onerec data synth: --out DIR is required\n");
    synth_usage(stderr);
    return 2;
  }
  if (items < 4 * topics) {
    fprintf(stderr, "onerec data synth: --items %lld is fewer than 4 x --topics %lld\n", items,
            topics);
    return 2;
  }
  if (cli_mkdirs(out)) return 1;
  char path[4200];
  snprintf(path, sizeof path, "%s/Beauty_items.tsv", out);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    return 1;
  }
  uint64_t rs = (uint64_t)seed * 0x2545F4914F6CDD1Dull;
  const int64_t per = items / topics; /* item i (1-based): topic (i-1) / per, place (i-1) % per */
  const int64_t n_items = per * topics;
  const int nw = (int)(sizeof WORDS / sizeof *WORDS);
  fprintf(f, "item_id\tasin\tattributes\ttitle\n");
  for (int64_t i = 1; i <= n_items; i++) {
    int64_t t = (i - 1) / per, place = (i - 1) % per;
    fprintf(f, "%lld\tSYN%07lld\t%lld,%lld\ttopic%lld %s %s part%lld\n", (long long)i,
            (long long)i, (long long)(1 + t), (long long)(1 + topics + place * 4 / per),
            (long long)t, WORDS[(t * 7 + place / 4) % nw], WORDS[below(&rs, nw)],
            (long long)(place / 3));
  }
  if (fclose(f)) {
    perror(path);
    return 1;
  }
  snprintf(path, sizeof path, "%s/Beauty.txt", out);
  f = fopen(path, "w");
  if (!f) {
    perror(path);
    return 1;
  }
  long long total = 0;
  for (int64_t u = 1; u <= users; u++) {
    int64_t topic = below(&rs, topics), other = below(&rs, topics);
    int64_t len = 5 + below(&rs, 12), place = below(&rs, per);
    fprintf(f, "%lld", (long long)u);
    for (int64_t k = 0; k < len; k++) {
      double r = unit(&rs);
      int64_t t = topic;
      if (r < 0.70) place = (place + 1) % per;          /* the next item of the chain */
      else if (r < 0.85) place = below(&rs, per);        /* a jump inside the topic */
      else if (r < 0.95) place = (place + 2) % per;      /* skips one */
      else t = other, place = below(&rs, per);           /* the user's second topic */
      fprintf(f, " %lld", (long long)(1 + t * per + place));
      total++;
    }
    fputc('\n', f);
  }
  if (fclose(f)) {
    perror(path);
    return 1;
  }
  fprintf(stderr, "onerec data synth: %lld users, %lld items in %lld topics, %lld interactions "
                  "in %s\n",
          users, (long long)n_items, topics, total, out);
  return 0;
}
