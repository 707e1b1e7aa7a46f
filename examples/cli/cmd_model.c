#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: onerec model create --preset NAME [--out M.h5] [--seed N] [--json]\n"
          "                           [--levels L] [--codes K] [--layers N] [--d-model D]\n"
          "                           [--heads H] [--ffn F]\n"
          "       onerec model info M.h5 [--json]\n"
          "presets: 0.015B 0.121B 0.935B 2.633B. Without --out, create only counts the\n"
          "parameters (nothing is allocated); with it, the initialised model is saved.\n"
          "The other options override the preset (--layers sets both stacks), e.g. to match\n"
          "a tokenizer of L levels x K codes.\n");
}

static void print_config(const char *what, const onerec_model_config *c, int64_t params,
                         int64_t enc_len, const char *out, int json) {
  if (json) {
    printf("{\"%s\":", what);
    cli_json_string(stdout, out ? out : "");
    printf(",\"params\":%lld,\"enc_layers\":%d,\"dec_layers\":%d,\"d_model\":%d,\"heads\":%d,"
           "\"ffn_dim\":%d,\"experts\":%d,\"top_k\":%d,\"expert_dim\":%d,\"moe_encoder\":%s,"
           "\"moe_decoder\":%s,\"levels\":%d,\"codebook\":%d,\"encoder_len\":%lld}\n",
           (long long)params, c->enc_layers, c->dec_layers, c->d_model, c->heads, c->ffn_dim,
           c->experts, c->top_k, c->expert_dim, c->moe_encoder ? "true" : "false",
           c->moe_decoder ? "true" : "false", c->levels, c->codebook, (long long)enc_len);
    return;
  }
  printf("%s %s\nparameters   %lld\nlayers       %d encoder + %d decoder, d_model %d, %d heads\n",
         what, out ? out : "", (long long)params, c->enc_layers, c->dec_layers, c->d_model,
         c->heads);
  if (c->moe_encoder || c->moe_decoder)
    printf("ffn          MoE %d experts (top %d, hidden %d) in %s\n", c->experts, c->top_k,
           c->expert_dim,
           c->moe_encoder && c->moe_decoder ? "encoder and decoder"
                                            : c->moe_encoder ? "encoder" : "decoder");
  else
    printf("ffn          dense SwiGLU, hidden %d\n", c->ffn_dim);
  printf("semantic IDs %d levels x %d codes\nencoder len  %lld tokens\n", c->levels, c->codebook,
         (long long)enc_len);
}

static int model_create(int argc, char **argv) {
  const char *preset = NULL, *out = NULL;
  int json = 0;
  long long seed = 0; /* any 64-bit value: negative ones wrap, as strtoull read them */
  /* overrides, applied after the preset; -1 = keep the preset's value */
  long long levels = -1, codes = -1, layers = -1, d_model = -1, heads = -1, ffn = -1;
  const cli_opt opts[] = {
      CLI_STR("--preset", &preset),
      CLI_STR("--out", &out),
      CLI_INT("--seed", &seed, CLI_INT_MIN, CLI_INT_MAX),
      CLI_FLAG("--json", &json),
      CLI_INT("--levels", &levels, 1, 1 << 24),
      CLI_INT("--codes", &codes, 1, 1 << 24),
      CLI_INT("--layers", &layers, 1, 1 << 24),
      CLI_INT("--d-model", &d_model, 1, 1 << 24),
      CLI_INT("--heads", &heads, 1, 1 << 24),
      CLI_INT("--ffn", &ffn, 1, 1 << 24),
  };
  int rc = cli_parse("model create", argc, argv, opts, CLI_COUNT(opts), usage, NULL, 0);
  if (rc != CLI_PARSED) return rc;
  if (!preset) {
    fprintf(stderr, "onerec model create: --preset is required\n");
    usage(stderr);
    return 2;
  }
  ONEREC_OPTS(onerec_model_config, cfg);
  onerec_status s = onerec_model_config_preset(preset, &cfg);
  if (s) return cli_fail("preset", s);
  if (levels > 0) cfg.levels = (int32_t)levels;
  if (codes > 0) cfg.codebook = (int32_t)codes;
  if (layers > 0) cfg.enc_layers = cfg.dec_layers = (int32_t)layers;
  if (d_model > 0) cfg.d_model = (int32_t)d_model;
  if (heads > 0) cfg.heads = (int32_t)heads;
  if (ffn > 0) cfg.ffn_dim = (int32_t)ffn;
  int64_t params = 0;
  if ((s = onerec_model_config_param_count(&cfg, &params))) return cli_fail("config", s);
  int64_t enc_len = cfg.use_static + cfg.use_short * cfg.short_len +
                    cfg.use_positive * cfg.positive_len +
                    cfg.use_lifelong * cfg.lifelong_queries;
  if (out) {
    ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .seed = (uint64_t)seed);
    onerec_context *ctx = NULL;
    if ((s = onerec_context_create(&co, &ctx))) return cli_fail("context", s);
    onerec_model *m = NULL;
    s = onerec_model_create(ctx, &cfg, (uint64_t)seed, &m);
    if (!s) s = onerec_model_save(m, out);
    if (!s) enc_len = onerec_model_encoder_len(m);
    onerec_model_free(m);
    onerec_context_free(ctx);
    if (s) return cli_fail(out, s);
  }
  print_config("preset", &cfg, params, enc_len, preset, json);
  if (out && !json) printf("saved        %s\n", out);
  return 0;
}

static int model_info(int argc, char **argv) {
  const char *path = NULL;
  int json = 0;
  const cli_opt opts[] = {CLI_FLAG("--json", &json)};
  int rc = cli_parse("model info", argc, argv, opts, CLI_COUNT(opts), usage, &path, 1);
  if (rc != CLI_PARSED) return rc;
  if (!path) {
    fprintf(stderr, "onerec model info: M.h5 is required\n");
    usage(stderr);
    return 2;
  }
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu");
  onerec_context *ctx = NULL;
  onerec_status s = onerec_context_create(&co, &ctx);
  if (s) return cli_fail("context", s);
  onerec_model *m = NULL;
  if ((s = onerec_model_load(ctx, path, &m))) {
    onerec_context_free(ctx);
    return cli_fail(path, s);
  }
  ONEREC_OPTS(onerec_model_config, cfg);
  onerec_model_config_get(m, &cfg);
  print_config("model", &cfg, onerec_model_param_count(m), onerec_model_encoder_len(m), path,
               json);
  onerec_model_free(m);
  onerec_context_free(ctx);
  return 0;
}

int cmd_model(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "create")) return model_create(argc - 1, argv + 1);
  if (!strcmp(argv[1], "info")) return model_info(argc - 1, argv + 1);
  fprintf(stderr, "onerec model: unknown subcommand '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
