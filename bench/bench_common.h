/* What bench/infer.c and bench/train.c share: the clock, failing loudly, the inputs of the
 * issue's benchmark shapes (B users, random sequences drawn from a fixed xorshift stream, so
 * both benchmarks and runs see the same data), and small statistics. Each benchmark defines
 * bench_name before including this. */
#ifndef ONEREC_BENCH_COMMON_H
#define ONEREC_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "onerec/onerec.h"

#define B 64
#define NLIFE 256 /* lifelong interactions per user: under the compression threshold */

static inline double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline void die(const char *what, onerec_status s) {
  fprintf(stderr, "%s: %s: %s: %s\n", bench_name, what, onerec_status_str(s), onerec_last_error());
  exit(1);
}

static uint64_t rng = 88172645463325252ull;
static inline uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

typedef struct seq {
  int64_t off[B + 1];
  int32_t *items, *cat;
  float *num;
} seq;

static inline void seq_make(seq *s, int64_t per, const onerec_model_config *c) {
  const int64_t n = per * B;
  for (int64_t b = 0; b <= B; b++) s->off[b] = b * per;
  s->items = malloc((size_t)(n * c->levels) * sizeof(int32_t));
  s->cat = malloc((size_t)(n * c->seq_cat_count) * sizeof(int32_t));
  s->num = malloc((size_t)(n * c->seq_num_count) * sizeof(float));
  if (!s->items || !s->cat || !s->num) die("inputs", ONEREC_ERR_OUT_OF_MEMORY);
  for (int64_t i = 0; i < n * c->levels; i++) s->items[i] = (int32_t)(next() % (uint64_t)c->codebook);
  for (int64_t i = 0; i < n; i++)
    for (int f = 0; f < c->seq_cat_count; f++)
      s->cat[i * c->seq_cat_count + f] = (int32_t)(next() % (uint64_t)c->seq_cat_vocab[f]);
  for (int64_t i = 0; i < n * c->seq_num_count; i++) s->num[i] = (float)(next() % 1000) / 1e3f;
}

static inline void seq_free(seq *s) {
  free(s->items);
  free(s->cat);
  free(s->num);
}

static inline onerec_seq_input seq_in(const seq *s) {
  return (onerec_seq_input){s->off, s->items, s->cat, s->num};
}

static inline int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static inline double median(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp_dbl);
  return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* 1-minute load average, or -1 where /proc/loadavg cannot be read. */
static inline double loadavg(void) {
  double l = -1.0;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &l) != 1) l = -1.0;
    fclose(f);
  }
  return l;
}

/* The benchmark model: the 0.015B preset with random weights (seed 1) on a CPU context. */
static inline onerec_model *bench_model(int threads, onerec_context **ctx,
                                        onerec_model_config *c) {
  onerec_status st;
  ONEREC_OPTS(onerec_context_opts, co, .backend = "cpu", .threads = threads, .seed = 1);
  if ((st = onerec_context_create(&co, ctx))) die("context", st);
  c->sz = sizeof *c;
  if ((st = onerec_model_config_preset("0.015B", c))) die("preset", st);
  onerec_model *m = NULL;
  if ((st = onerec_model_create(*ctx, c, 1, &m))) die("model", st);
  return m;
}

/* B users of the shapes: static features, short-term, positive (their preset lengths)
 * and NLIFE lifelong interactions each. */
typedef struct bench_users {
  int32_t *scat;
  seq sh, po, li;
  onerec_user_batch u;
} bench_users;

static inline void bench_users_make(bench_users *b, const onerec_model_config *c) {
  b->scat = malloc((size_t)B * (size_t)c->static_cat_count * sizeof *b->scat);
  if (!b->scat) die("inputs", ONEREC_ERR_OUT_OF_MEMORY);
  for (int64_t i = 0; i < B * c->static_cat_count; i++)
    b->scat[i] = (int32_t)(next() % (uint64_t)c->static_cat_vocab[i % c->static_cat_count]);
  seq_make(&b->sh, c->short_len, c);
  seq_make(&b->po, c->positive_len, c);
  seq_make(&b->li, NLIFE, c);
  ONEREC_OPTS(onerec_user_batch, u, .batch = B, .static_cat = b->scat);
  u.short_term = seq_in(&b->sh);
  u.positive = seq_in(&b->po);
  u.lifelong = seq_in(&b->li);
  b->u = u;
}

static inline void bench_users_free(bench_users *b) {
  free(b->scat);
  seq_free(&b->sh);
  seq_free(&b->po);
  seq_free(&b->li);
}

#endif
