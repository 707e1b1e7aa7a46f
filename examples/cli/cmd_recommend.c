#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: onerec recommend --model M.h5 --catalog C.h5 --history \"ID ID ...\"\n"
          "                        [-k 10] [--beam 64] [--sample [--top-k N] [--top-p P]\n"
          "                        [--temperature T] [--seed S]] [--positive \"ID ...\"]\n"
          "                        [--uid N] [--threads T] [--json]\n"
          "Recommends k catalogue items for one user from their history (item ids, oldest\n"
          "first; it feeds the short-term and lifelong pathways, and the positive-feedback one\n"
          "unless --positive is given). Items enter the model by semantic ID (from the\n"
          "catalogue) or by id, as the model was configured. Beam search by default; --sample\n"
          "draws k items instead. Prints items with log p(item | user), best first.\n");
}

/* Space- or comma-separated item ids. */
static int64_t *parse_ids(const char *s, int64_t *n) {
  size_t cap = 16, len = 0;
  int64_t *v = malloc(cap * sizeof *v);
  while (v && *s) {
    while (*s == ' ' || *s == ',') s++;
    if (!*s) break;
    char *end = NULL;
    long long x = strtoll(s, &end, 10);
    if (end == s || (*end && *end != ' ' && *end != ',')) {
      free(v);
      return NULL;
    }
    if (len == cap) {
      int64_t *w = realloc(v, (cap *= 2) * sizeof *v);
      if (!w) {
        free(v);
        return NULL;
      }
      v = w;
    }
    v[len++] = x;
    s = end;
  }
  *n = (int64_t)len;
  return v;
}

/* Fills one pathway's items (by semantic ID or by id) for a single user. */
static int fill_seq(const onerec_catalog *cat, const onerec_model_config *c, const int64_t *ids,
                    int64_t n, int64_t *off, int32_t *items) {
  off[0] = 0;
  off[1] = n;
  for (int64_t i = 0; i < n; i++) {
    if (c->item_input == ONEREC_ITEM_BY_SID) {
      onerec_status s = onerec_catalog_codes_of(cat, ids[i], items + i * c->levels);
      if (s) {
        fprintf(stderr, "onerec recommend: history item %lld: %s\n", (long long)ids[i],
                onerec_last_error());
        return -1;
      }
    } else {
      if (ids[i] < 0 || ids[i] >= c->item_vocab) {
        fprintf(stderr, "onerec recommend: history item %lld outside the model's %lld ids\n",
                (long long)ids[i], (long long)c->item_vocab);
        return -1;
      }
      items[i] = (int32_t)ids[i];
    }
  }
  return 0;
}

int cmd_recommend(int argc, char **argv) {
  const char *model_path = NULL, *cat_path = NULL, *hist = NULL, *pos = NULL;
  long long k = 10, beam = 64, top_k = 0, threads = 0, uid = -1;
  long long seed = 0; /* any 64-bit value: negative ones wrap, as strtoull read them */
  double top_p = 1.0, temperature = 1.0;
  int json = 0, sample = 0;
  const cli_opt opts[] = {
      CLI_STR("--model", &model_path),
      CLI_STR("--catalog", &cat_path),
      CLI_STR("--history", &hist),
      CLI_STR("--positive", &pos),
      CLI_INT("-k", &k, 1, 4096),
      CLI_INT("--k", &k, 1, 4096),
      CLI_INT("--beam", &beam, 1, ONEREC_MAX_BEAM),
      CLI_INT("--top-k", &top_k, 0, 1 << 24),
      CLI_INT("--threads", &threads, 0, 1024),
      CLI_INT("--uid", &uid, 0, 1L << 30),
      CLI_REAL("--top-p", &top_p, 0.0, 1.0, CLI_OPEN_LO),
      CLI_REAL("--temperature", &temperature, 0.0, INFINITY, CLI_OPEN_LO),
      CLI_INT("--seed", &seed, CLI_INT_MIN, CLI_INT_MAX),
      CLI_FLAG("--sample", &sample),
      CLI_FLAG("--json", &json),
  };
  int rc = cli_parse("recommend", argc, argv, opts, CLI_COUNT(opts), usage, NULL, 0);
  if (rc != CLI_PARSED) return rc;
  if (!model_path || !cat_path || !hist) {
    fprintf(stderr, "onerec recommend: --model, --catalog and --history are required\n");
    usage(stderr);
    return 2;
  }
  if (!sample && k > beam) {
    fprintf(stderr, "onerec recommend: -k %lld exceeds --beam %lld\n", k, beam);
    return 2;
  }
  int64_t nh = 0, np = 0;
  int64_t *h_ids = parse_ids(hist, &nh), *p_ids = pos ? parse_ids(pos, &np) : NULL;
  if (!h_ids || (pos && !p_ids)) {
    fprintf(stderr, "onerec recommend: --history and --positive take item ids\n");
    free(h_ids);
    free(p_ids);
    return 2;
  }
  if (!pos) {
    p_ids = h_ids;
    np = nh;
  }

  rc = 1;
  onerec_context *ctx = NULL;
  onerec_model *m = NULL;
  onerec_catalog *cat = NULL;
  onerec_session *s = NULL;
  int32_t *hitems = NULL, *pitems = NULL, *scat = NULL;
  int64_t *out = NULL;
  double *lp = NULL;
  ONEREC_OPTS(onerec_context_opts, co, .threads = (int)threads);
  onerec_status st = onerec_context_create(&co, &ctx);
  if (st) {
    rc = cli_fail("context", st);
    goto done;
  }
  if ((st = onerec_model_load(ctx, model_path, &m))) {
    rc = cli_fail(model_path, st);
    goto done;
  }
  if ((st = onerec_catalog_load(ctx, cat_path, &cat))) {
    rc = cli_fail(cat_path, st);
    goto done;
  }
  ONEREC_OPTS(onerec_model_config, c);
  onerec_model_config_get(m, &c);
  const int64_t w = c.item_input == ONEREC_ITEM_BY_SID ? c.levels : 1;
  hitems = malloc((size_t)(nh + 1) * (size_t)w * sizeof *hitems);
  pitems = malloc((size_t)(np + 1) * (size_t)w * sizeof *pitems);
  scat = malloc((size_t)(c.static_cat_count + 1) * sizeof *scat);
  out = malloc((size_t)k * sizeof *out);
  lp = malloc((size_t)k * sizeof *lp);
  if (!hitems || !pitems || !scat || !out || !lp) {
    fprintf(stderr, "onerec recommend: out of memory\n");
    goto done;
  }
  int64_t hoff[2], poff[2];
  if (fill_seq(cat, &c, h_ids, nh, hoff, hitems) || fill_seq(cat, &c, p_ids, np, poff, pitems)) {
    rc = 2;
    goto done;
  }
  for (int i = 0; i < c.static_cat_count; i++) scat[i] = -1;
  /* a model trained with one user bucket (`train --uid-buckets 1`) gives every user bucket 0,
   * known or not; otherwise an unknown user reads as a missing value */
  if (c.static_cat_count > 0 && c.static_cat_vocab[0] == 1) scat[0] = 0;
  else if (uid >= 0 && c.static_cat_count > 0) scat[0] = (int32_t)(uid % c.static_cat_vocab[0]);
  ONEREC_OPTS(onerec_user_batch, u, .batch = 1, .static_cat = scat);
  u.short_term = (onerec_seq_input){hoff, hitems, NULL, NULL};
  u.lifelong = u.short_term;
  u.positive = (onerec_seq_input){poff, pitems, NULL, NULL};
  const int64_t per = sample ? k : beam;
  ONEREC_OPTS(onerec_session_opts, so, .max_batch = 1, .max_targets = per,
              .max_lifelong = nh > 0 && nh < c.lifelong_max_items ? nh : 0);
  if ((st = onerec_session_create(m, NULL, &so, &s))) {
    rc = cli_fail("session", st);
    goto done;
  }
  ONEREC_OPTS(onerec_recommend_opts, ro, .mode = sample ? ONEREC_GEN_SAMPLE : ONEREC_GEN_BEAM,
              .beam = (int32_t)beam, .k = (int32_t)k, .top_k = (int32_t)top_k,
              .top_p = (float)top_p, .temperature = (float)temperature, .seed = (uint64_t)seed);
  if ((st = onerec_session_recommend(s, cat, &u, &ro, out, lp, (size_t)k))) {
    rc = cli_fail("recommend", st);
    goto done;
  }
  if (json) {
    printf("{\"mode\":\"%s\",\"beam\":%lld,\"k\":%lld,\"items\":[",
           sample ? "sample" : "beam", sample ? 0LL : beam, k);
    int first = 1;
    for (long long i = 0; i < k; i++) {
      if (out[i] < 0) continue;
      printf("%s{\"item\":%lld,\"logp\":%.6f}", first ? "" : ",", (long long)out[i], lp[i]);
      first = 0;
    }
    printf("]}\n");
  } else {
    printf("rank  item            log p\n");
    for (long long i = 0; i < k; i++)
      if (out[i] >= 0) printf("%4lld  %-14lld  %.6f\n", i + 1, (long long)out[i], lp[i]);
  }
  rc = 0;
done:
  onerec_session_free(s);
  onerec_catalog_free(cat);
  onerec_model_free(m);
  onerec_context_free(ctx);
  if (p_ids != h_ids) free(p_ids);
  free(h_ids);
  free(hitems);
  free(pitems);
  free(scat);
  free(out);
  free(lp);
  return rc;
}
