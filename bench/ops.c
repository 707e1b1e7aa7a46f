/* Op benchmark: the CPU backend's matmul and attention at the shapes of the SPEC presets,
 * measured against OpenBLAS's own multi-threaded sgemm in the same run (the peer a model step
 * is judged by). One JSON object per line on stdout; progress on stderr.
 *
 *   build/bench/ops [--json] [--quick] [--threads N]
 *
 * FLOP conventions: matmul 2 m n k per batch item; attention forward 4 b h tq tk dh (QK^T and
 * PV), backward 2.5x the forward (QK^T recomputed, dP, dV, dQ, dK); causal attention counts
 * only the (query, key) pairs that are visible. Times are the best of N runs after a warm-up. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "context_impl.h"
#include "onerec/onerec.h"

typedef struct bench_cfg {
  int quick;
  int threads;
  int reps;
  double sgemm_gflops;
} bench_cfg;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *alloc_rand(size_t n, unsigned seed) {
  float *x = malloc(n * sizeof *x);
  if (!x) {
    fprintf(stderr, "ops: out of memory (%zu floats)\n", n);
    exit(1);
  }
  unsigned s = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    x[i] = (float)(s >> 8) / (float)(1 << 24) - 0.5f;
  }
  return x;
}

static double load_avg(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = -1;
    fclose(f);
  }
  return l;
}

typedef int (*bench_fn)(void *arg);

/* Best-of-reps wall time of fn after one warm-up call; negative if fn fails. */
static double time_best(bench_fn fn, void *arg, int reps) {
  if (fn(arg)) return -1;
  double best = INFINITY;
  for (int r = 0; r < reps; r++) {
    double t = now_s();
    if (fn(arg)) return -1;
    t = now_s() - t;
    if (t < best) best = t;
  }
  return best;
}

static void emit(const bench_cfg *cfg, const char *bench, const char *preset, const char *name,
                 const char *shape, double seconds, double flops) {
  double gf = flops / seconds * 1e-9;
  printf("{\"bench\":\"%s\",\"preset\":\"%s\",\"name\":\"%s\",\"shape\":\"%s\",\"threads\":%d,"
         "\"seconds\":%.6g,\"gflops\":%.2f,\"sgemm_gflops\":%.2f,\"fraction_of_sgemm\":%.3f}\n",
         bench, preset, name, shape, cfg->threads, seconds, gf, cfg->sgemm_gflops,
         gf / cfg->sgemm_gflops);
  fflush(stdout);
}

/* ---- the peer: OpenBLAS sgemm with its own threads ---- */

typedef struct sgemm_arg {
  int n;
  float *a, *b, *c;
} sgemm_arg;

static int run_sgemm(void *p) {
  sgemm_arg *s = p;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->n, s->n, s->n, 1.0f, s->a, s->n,
              s->b, s->n, 0.0f, s->c, s->n);
  return 0;
}

/* Sets cfg->sgemm_gflops at the start; at the end (when) it only reports, showing how much the
 * machine's speed drifted during the run. */
static void bench_sgemm(bench_cfg *cfg, const char *when) {
  sgemm_arg s = {.n = 2048};
  size_t nn = (size_t)s.n * (size_t)s.n;
  s.a = alloc_rand(nn, 1);
  s.b = alloc_rand(nn, 2);
  s.c = alloc_rand(nn, 3);
  fprintf(stderr, "ops: reference sgemm %dx%dx%d, OpenBLAS %d threads\n", s.n, s.n, s.n,
          cfg->threads);
  openblas_set_num_threads(cfg->threads);
  double t = time_best(run_sgemm, &s, 5);
  /* back to what the backend expects: its own pool splits the work */
  openblas_set_num_threads(1);
  double gf = 2.0 * s.n * s.n * s.n / t * 1e-9;
  if (!strcmp(when, "start")) cfg->sgemm_gflops = gf;
  printf("{\"bench\":\"sgemm_reference\",\"when\":\"%s\",\"shape\":\"%dx%dx%d\",\"threads\":%d,"
         "\"seconds\":%.6g,\"gflops\":%.2f,\"openblas\":\"%s\",\"loadavg\":%.2f}\n",
         when, s.n, s.n, s.n, cfg->threads, t, gf, openblas_get_config(), load_avg());
  fflush(stdout);
  free(s.a);
  free(s.b);
  free(s.c);
}

/* ---- matmul through the backend ---- */

typedef struct mm_arg {
  onerec_context *ctx;
  orx_matmul_args a;
} mm_arg;

static int run_matmul(void *p) {
  mm_arg *m = p;
  onerec_status s = ORX_OP(&m->ctx->be, matmul, &m->a);
  if (s) fprintf(stderr, "ops: matmul failed: %s\n", onerec_last_error());
  return s != ONEREC_OK;
}

/* C[m, n] = X[m, k] W (W stored [n, k] as a linear layer keeps it, so op(B) = W^T), or the
 * weight gradient dW[n, k] = dY^T X when wgrad. */
static void bench_matmul(const bench_cfg *cfg, onerec_context *ctx, const char *preset,
                         const char *name, int64_t m, int64_t n, int64_t k, int wgrad) {
  mm_arg r = {.ctx = ctx};
  float *x = alloc_rand((size_t)(m * k), 4), *w = alloc_rand((size_t)(n * k), 5);
  float *c = alloc_rand((size_t)(m * n), 6); /* the output, or dY for the weight gradient */
  if (wgrad)
    r.a = (orx_matmul_args){.trans_a = 1, .batch = 1, .m = n, .n = k, .k = m, .a = c,
                            .lda = n, .b = x, .ldb = k, .c = w, .ldc = k, .alpha = 1, .beta = 1,
                            .dtype = ONEREC_F32};
  else
    r.a = (orx_matmul_args){.trans_b = 1, .batch = 1, .m = m, .n = n, .k = k, .a = x, .lda = k,
                            .b = w, .ldb = k, .c = c, .ldc = n, .alpha = 1, .beta = 0,
                            .dtype = ONEREC_F32};
  fprintf(stderr, "ops: matmul %s %s\n", preset, name);
  double t = time_best(run_matmul, &r, cfg->reps);
  char shape[96];
  snprintf(shape, sizeof shape, "%s%lldx%lldx%lld", wgrad ? "T:" : "", (long long)r.a.m,
           (long long)r.a.n, (long long)r.a.k);
  if (t > 0) emit(cfg, "gemm", preset, name, shape, t, 2.0 * (double)m * (double)n * (double)k);
  free(x);
  free(w);
  free(c);
}

/* ---- attention through the backend ---- */

typedef struct att_arg {
  onerec_context *ctx;
  orx_attn_bwd_args g;
  int bwd;
} att_arg;

static int run_attention(void *p) {
  att_arg *r = p;
  onerec_status s = r->bwd ? ORX_OP(&r->ctx->be, attention_bwd, &r->g)
                           : ORX_OP(&r->ctx->be, attention_fwd, &r->g.fwd);
  if (s) fprintf(stderr, "ops: attention failed: %s\n", onerec_last_error());
  return s != ONEREC_OK;
}

/* Self-attention reads q, k, v from the fused projection [b, t, 3, h, dh] the model writes;
 * cross-attention reads q [b, tq, h, dh] and k, v from a fused [b, tk, 2, h, dh]. */
static void bench_attention(const bench_cfg *cfg, onerec_context *ctx, const char *preset,
                            const char *name, int64_t b, int64_t h, int64_t tq, int64_t tk,
                            int64_t dh, int causal) {
  int self = tq == tk && !strstr(name, "cross");
  int64_t hd = h * dh;
  size_t nq = (size_t)(b * tq * hd), nkv = (size_t)(b * tk * 2 * hd);
  size_t nqkv = (size_t)(b * tq * 3 * hd);
  float *qkv = self ? alloc_rand(nqkv, 7) : NULL;
  float *qb = self ? NULL : alloc_rand(nq, 8), *kvb = self ? NULL : alloc_rand(nkv, 9);
  float *dqkv = self ? alloc_rand(nqkv, 10) : NULL;
  float *dqb = self ? NULL : alloc_rand(nq, 11), *dkvb = self ? NULL : alloc_rand(nkv, 12);
  float *out = alloc_rand(nq, 13), *dout = alloc_rand(nq, 14);
  float *lse = alloc_rand((size_t)(b * h * tq), 15);
  orx_attn_args a = {.batch = b, .heads = h, .tq = tq, .tk = tk, .head_dim = dh,
                     .out = out, .o_sb = tq * hd, .o_sh = dh, .o_st = hd, .lse = lse,
                     .causal = causal, .scale = 1.0f / sqrtf((float)dh)};
  orx_attn_bwd_args g = {.dout = dout, .do_sb = tq * hd, .do_sh = dh, .do_st = hd};
  if (self) {
    a.q = qkv;
    a.k = qkv + hd;
    a.v = qkv + 2 * hd;
    a.q_sb = a.k_sb = a.v_sb = tq * 3 * hd;
    a.q_sh = a.k_sh = a.v_sh = dh;
    a.q_st = a.k_st = a.v_st = 3 * hd;
    g.dq = dqkv;
    g.dk = dqkv + hd;
    g.dv = dqkv + 2 * hd;
  } else {
    a.q = qb;
    a.q_sb = tq * hd;
    a.q_sh = dh;
    a.q_st = hd;
    a.k = kvb;
    a.v = kvb + hd;
    a.k_sb = a.v_sb = tk * 2 * hd;
    a.k_sh = a.v_sh = dh;
    a.k_st = a.v_st = 2 * hd;
    g.dq = dqb;
    g.dk = dkvb;
    g.dv = dkvb + hd;
  }
  g.fwd = a;
  double pairs = 0; /* visible (query, key) pairs per (batch, head) */
  for (int64_t i = 0; i < tq; i++) {
    int64_t n = causal ? i + (tk - tq) + 1 : tk;
    pairs += (double)(n < 0 ? 0 : n > tk ? tk : n);
  }
  double fwd_flops = 4.0 * (double)b * (double)h * pairs * (double)dh;
  char shape[128];
  snprintf(shape, sizeof shape, "b%lld h%lld tq%lld tk%lld dh%lld%s", (long long)b, (long long)h,
           (long long)tq, (long long)tk, (long long)dh, causal ? " causal" : "");
  att_arg r = {.ctx = ctx, .g = g};
  fprintf(stderr, "ops: attention_fwd %s %s\n", preset, name);
  double t = time_best(run_attention, &r, cfg->reps);
  if (t > 0) emit(cfg, "attention_fwd", preset, name, shape, t, fwd_flops);
  r.bwd = 1;
  fprintf(stderr, "ops: attention_bwd %s %s\n", preset, name);
  t = time_best(run_attention, &r, cfg->reps);
  if (t > 0) emit(cfg, "attention_bwd", preset, name, shape, t, 2.5 * fwd_flops);
  free(qkv);
  free(qb);
  free(kvb);
  free(dqkv);
  free(dqb);
  free(dkvb);
  free(out);
  free(dout);
  free(lse);
}

/* One preset: d_model, FFN width, heads; the encoder sees 1 + 20 + 256 + 128 = 405 tokens,
 * the decoder 4 (BOS + 3 semantic IDs), the output head scores 8192 codes. */
static void bench_preset(const bench_cfg *cfg, onerec_context *ctx, const char *preset,
                         int64_t d, int64_t ffn, int64_t heads, int64_t batch) {
  const int64_t tenc = 405, tdec = 4, codes = 8192;
  int64_t menc = batch * tenc, mdec = batch * tdec;
  bench_matmul(cfg, ctx, preset, "qkv_proj", menc, 3 * d, d, 0);
  bench_matmul(cfg, ctx, preset, "attn_out_proj", menc, d, d, 0);
  bench_matmul(cfg, ctx, preset, "ffn_up", menc, ffn, d, 0);
  bench_matmul(cfg, ctx, preset, "ffn_down", menc, d, ffn, 0);
  bench_matmul(cfg, ctx, preset, "ffn_up_wgrad", menc, ffn, d, 1);
  bench_matmul(cfg, ctx, preset, "output_head", mdec, codes, d, 0);
  bench_attention(cfg, ctx, preset, "encoder_self", batch, heads, tenc, tenc, d / heads, 0);
  bench_attention(cfg, ctx, preset, "decoder_cross", batch, heads, tdec, tenc, d / heads, 0);
  bench_attention(cfg, ctx, preset, "decoder_self_causal", batch, heads, tdec, tdec, d / heads,
                  1);
}

int main(int argc, char **argv) {
  bench_cfg cfg = {.threads = (int)sysconf(_SC_NPROCESSORS_ONLN)};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      /* JSON lines are the only output format */
    } else if (!strcmp(argv[i], "--quick")) {
      cfg.quick = 1;
    } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      cfg.threads = atoi(argv[++i]);
    } else {
      fprintf(stderr, "usage: %s [--json] [--quick] [--threads N]\n", argv[0]);
      return 2;
    }
  }
  if (cfg.threads < 1) cfg.threads = 1;
  cfg.reps = cfg.quick ? 2 : 5;

  /* the peer first, before the backend's pool threads exist */
  bench_sgemm(&cfg, "start");
  ONEREC_OPTS(onerec_context_opts, o, .backend = "cpu", .threads = cfg.threads);
  onerec_context *ctx = NULL;
  if (onerec_context_create(&o, &ctx) != ONEREC_OK) {
    fprintf(stderr, "ops: cpu context: %s\n", onerec_last_error());
    return 1;
  }
  /* --quick keeps `make demo` short: smaller batches, the same per-sequence shapes */
  bench_preset(&cfg, ctx, "0.015B", 128, 256, 4, cfg.quick ? 16 : 64);
  bench_preset(&cfg, ctx, "0.121B", 1024, 2048, 8, cfg.quick ? 2 : 16);
  onerec_context_free(ctx);
  bench_sgemm(&cfg, "end");
  return 0;
}
