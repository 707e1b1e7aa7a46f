/* onerec_session_recommend and onerec_sessions_recommend (an ensemble; the former is its
 * one-model case): argument checks, the encoder passes, host scratch, and the decoder step both
 * searches share. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "generate_impl.h"

onerec_status orx_gen_step(orx_gen *g, int64_t rows, int64_t p, int reorder, int64_t rows_before,
                           const float **logits) {
  onerec_session *s = g->s;
  orx_backend *be = s->be;
  const int64_t K = g->K;
  onerec_status st = orx_gen_forward_cached(g, rows, p, reorder, rows_before);
  if (st) return st;
  /* log-sum-exp through the backend's cross-entropy (target 0: loss = lse - logit_0), so the
   * normaliser is computed exactly as onerec_session_score computes it, on the device */
  memset(s->h_targets, 0, (size_t)rows * sizeof(int32_t));
  st = ORX_OP(be, copy, s->targets, s->h_targets, (size_t)rows * sizeof(int32_t), ORX_COPY_H2D);
  if (!st) st = ORX_OP(be, cross_entropy, s->loss, NULL, s->logits, s->targets, rows, K, -1, 1.0f, 0.0f);
  if (!st) st = ORX_OP(be, copy, s->h_loss, s->loss, (size_t)rows * sizeof(float), ORX_COPY_D2H);
  if (st) return st;
  const float *lg = s->logits;
  if (g->h_logits) {
    st = ORX_OP(be, copy, g->h_logits, s->logits, (size_t)(rows * K) * sizeof(float),
                ORX_COPY_D2H);
    if (st) return st;
    lg = g->h_logits;
  }
  for (int64_t r = 0; r < rows; r++) g->lse[r] = s->h_loss[r] + lg[r * K];
  *logits = lg;
  return ONEREC_OK;
}

static onerec_status check_opts(const onerec_recommend_opts *o, const onerec_session *s,
                                const char *fn) {
  if (o->mode != ONEREC_GEN_BEAM && o->mode != ONEREC_GEN_SAMPLE)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: mode = %d (0 beam, 1 sample)", fn, o->mode);
  if (o->mode == ONEREC_GEN_BEAM) {
    if (o->beam < 1 || o->beam > ONEREC_MAX_BEAM)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: beam = %d (1..%d)", fn, o->beam,
                      ONEREC_MAX_BEAM);
    if (o->k < 1 || o->k > o->beam)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: k = %d (1..beam = %d)", fn, o->k,
                      o->beam);
    if (o->beam > s->max_targets)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "%s: beam = %d exceeds the session's max_targets = %lld (create the "
                      "session with max_targets >= beam)",
                      fn, o->beam, (long long)s->max_targets);
    return ONEREC_OK;
  }
  if (o->k < 1 || o->k > 4096)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: k = %d samples (1..4096)", fn, o->k);
  if (o->k > s->max_targets)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: k = %d samples exceeds the session's max_targets = %lld", fn, o->k,
                    (long long)s->max_targets);
  if (o->top_k < 0)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: top_k = %d (>= 0)", fn, o->top_k);
  if (!(o->top_p > 0.0f && o->top_p <= 1.0f))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: top_p = %g (in (0, 1])", fn,
                    (double)o->top_p);
  if (!(o->temperature > 0.0f) || !isfinite(o->temperature))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: temperature = %g (> 0)", fn,
                    (double)o->temperature);
  return ONEREC_OK;
}

static void free_gen(orx_gen *g, const onerec_context *ctx) {
  orx_host_free(ctx, g->block);
}

/* All host scratch in one block. */
static onerec_status alloc_gen(orx_gen *g, const onerec_context *ctx, int host_logits,
                               const char *fn) {
  const size_t R = (size_t)g->R, L = (size_t)g->L, K = (size_t)g->K;
  const size_t B = (size_t)g->s->max_batch;
  size_t bytes = 2 * R * L * sizeof(int32_t) + 3 * R * sizeof(int32_t) + 2 * R * sizeof(double) +
                 (B + 1) * sizeof(int64_t) + R * sizeof(float) +
                 (host_logits ? R * K * sizeof(float) : 0) + R * sizeof(uint64_t) +
                 K * 2 * sizeof(float) + 16 * 64;
  char *p = orx_host_alloc(ctx, bytes);
  if (!p) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: cannot allocate %zu bytes", fn, bytes);
  g->block = p;
  orx_arena a = {p, 0};
  for (int i = 0; i < 2; i++) {
    g->codes[i] = orx_take(&a, R * L * sizeof(int32_t));
    g->node[i] = orx_take(&a, R * sizeof(int32_t));
    g->logp[i] = orx_take(&a, R * sizeof(double));
  }
  g->parent = orx_take(&a, R * sizeof(int32_t));
  g->off = orx_take(&a, (B + 1) * sizeof(int64_t));
  g->lse = orx_take(&a, R * sizeof(float));
  g->h_logits = host_logits ? orx_take(&a, R * K * sizeof(float)) : NULL;
  g->rng = orx_take(&a, R * sizeof(uint64_t));
  g->pairs = orx_take(&a, K * 2 * sizeof(float));
  return ONEREC_OK;
}

/* Generation state of session s: host scratch and decoder cache, on the catalogue snapshot t. */
static onerec_status gen_open(orx_gen *g, onerec_session *s, const orx_catalog_snap *t,
                              const char *fn) {
  memset(g, 0, sizeof *g);
  g->s = s;
  g->t = t;
  g->L = s->m->dims.levels;
  g->K = s->m->dims.codebook;
  g->R = s->max_targets;
  /* on the CPU backend device memory is host memory: the logits are read where they are */
  int host_logits = strcmp(s->be->ops->name, "cpu") != 0;
  onerec_status st = alloc_gen(g, s->ctx, host_logits, fn);
  if (st) return st;
  if (orx_gen_cache_alloc(g)) {
    free_gen(g, s->ctx);
    g->block = NULL;
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: cannot allocate the decoder cache", fn);
  }
  return ONEREC_OK;
}

static void gen_close(orx_gen *g) {
  if (!g->block) return;
  orx_gen_cache_free(g);
  free_gen(g, g->s->ctx);
  g->block = NULL;
}

/* Checks of one session of a (possibly one-model) ensemble against the catalogue. */
static onerec_status session_fits(onerec_session *const *ss, int n, int i,
                                  const onerec_catalog *cat, const onerec_recommend_opts *o,
                                  const char *fn) {
  const onerec_session *s = ss[i];
  if (!s) return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: sessions[%d] is NULL", fn, i);
  for (int j = 0; j < i; j++)
    if (ss[j] == s)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "%s: sessions[%d] is sessions[%d] (each model needs its own session)", fn,
                      i, j);
  onerec_status st = check_opts(o, s, fn);
  if (st) return st;
  int levels = 0, K = 0;
  if ((st = onerec_catalog_info(cat, &levels, &K, NULL))) return st;
  const onerec_model *m = s->m;
  char which[32] = ""; /* an ensemble names the session */
  if (n > 1) snprintf(which, sizeof which, " of session %d", i);
  if (levels != m->dims.levels || K != m->dims.codebook)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: the catalogue has %d levels x %d codes, the model%s %lld x %lld", fn,
                    levels, K, which, (long long)m->dims.levels, (long long)m->dims.codebook);
  return ONEREC_OK;
}

/* Both public entry points: n sessions (n = 1: one model), messages under fn. */
static onerec_status recommend(onerec_session *const *sessions, int n, const onerec_catalog *cat,
                               const onerec_user_batch *users, const onerec_recommend_opts *opts,
                               int64_t *items_out, double *logp_out, size_t out_count,
                               const char *fn) {
  ORX_CHECK_ARG(cat, fn);
  ORX_CHECK_ARG(users, fn);
  ORX_CHECK_ARG(items_out, fn);
  if (n < 1 || n > ONEREC_MAX_ENSEMBLE)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: n = %d sessions (1..%d)", fn, n,
                    ONEREC_MAX_ENSEMBLE);
  onerec_recommend_opts o;
  memset(&o, 0, sizeof o);
  o.sz = sizeof o;
  onerec_status st;
  if (opts && (st = orx_opts_read(&o, sizeof o, opts, fn))) return st;
  if (o.beam == 0) o.beam = 64;
  if (o.k == 0) o.k = o.mode == ONEREC_GEN_BEAM && o.beam < 10 ? o.beam : 10;
  if (o.top_p == 0.0f) o.top_p = 1.0f;
  if (o.temperature == 0.0f) o.temperature = 1.0f;
  if (n > 1 && o.mode != ONEREC_GEN_BEAM)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: an ensemble of %d models generates by beam search only (mode = %d)", fn,
                    n, o.mode);
  int64_t max_targets = INT64_MAX;
  for (int i = 0; i < n; i++) {
    if ((st = session_fits(sessions, n, i, cat, &o, fn))) return st;
    if (sessions[i]->max_targets < max_targets) max_targets = sessions[i]->max_targets;
  }
  /* the batch size is checked by the encoder; the output size needs it first */
  size_t sz = 0;
  memcpy(&sz, users, sizeof sz);
  if (sz < offsetof(onerec_user_batch, batch) + sizeof(int64_t))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: users->sz = %zu", fn, sz);
  const int64_t batch = users->batch;
  if (batch >= 1 && out_count < (size_t)batch * (size_t)o.k)
    return orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "%s: out_count = %zu, %lld x %d needed", fn,
                    out_count, (long long)batch, o.k);
  for (int i = 0; i < n; i++)
    if ((st = onerec_session_encode(sessions[i], users, NULL, 0, NULL))) return st;

  orx_gen gen[ONEREC_MAX_ENSEMBLE], *gens[ONEREC_MAX_ENSEMBLE];
  orx_catalog_snap *t = orx_catalog_acquire(cat);
  int opened = 0;
  for (; opened < n && !st; opened++) {
    gens[opened] = &gen[opened];
    st = gen_open(&gen[opened], sessions[opened], t, fn);
  }
  const int64_t per = o.mode == ONEREC_GEN_BEAM ? o.beam : o.k;
  const int64_t chunk = max_targets / per;
  for (int64_t u0 = 0; u0 < batch && !st; u0 += chunk) {
    int64_t u1 = u0 + chunk < batch ? u0 + chunk : batch;
    int64_t *it = items_out + u0 * o.k;
    double *lp = logp_out ? logp_out + u0 * o.k : NULL;
    st = o.mode == ONEREC_GEN_BEAM ? orx_beam_search(gens, n, u0, u1, o.beam, o.k, it, lp)
                                   : orx_sample(gens[0], u0, u1, &o, it, lp);
  }
  orx_catalog_release(t);
  for (int i = n - 1; i >= 0; i--) {
    if (i < opened) gen_close(&gen[i]);
    sessions[i]->rows = 0; /* the logits buffer no longer holds a teacher-forced decode */
  }
  return st;
}

ONEREC_API onerec_status onerec_sessions_recommend(onerec_session *const *sessions, int n,
                                                   const onerec_catalog *cat,
                                                   const onerec_user_batch *users,
                                                   const onerec_recommend_opts *opts,
                                                   int64_t *items_out, double *logp_out,
                                                   size_t out_count) {
  static const char fn[] = "onerec_sessions_recommend";
  ORX_CHECK_ARG(sessions, fn);
  return recommend(sessions, n, cat, users, opts, items_out, logp_out, out_count, fn);
}

ONEREC_API onerec_status onerec_session_recommend(onerec_session *s, const onerec_catalog *cat,
                                                  const onerec_user_batch *users,
                                                  const onerec_recommend_opts *opts,
                                                  int64_t *items_out, double *logp_out,
                                                  size_t out_count) {
  static const char fn[] = "onerec_session_recommend";
  ORX_CHECK_ARG(s, fn);
  return recommend(&s, 1, cat, users, opts, items_out, logp_out, out_count, fn);
}
