/* CPU attention op (forward and backward) against a naive double-precision reference that
 * materialises the softmax, plus finite differences, accumulation, determinism and bad input. */
#include "testutil.h"

#include "context_impl.h"
#include "cpu_impl.h"

/* Where a [batch, heads, t, head_dim] view sits in its storage buffer. */
typedef struct view {
  int64_t off, sb, sh, st;
} view;

typedef struct att_case {
  const char *name;
  int64_t batch, heads, tq, tk, dh;
  int causal;
  int masked; /* random key padding; batch 0 pads keys 0..2, batch 1 pads everything */
  int fused;  /* q, k, v interleaved as [batch, t, 3, heads, head_dim] (needs tq == tk) */
  float kboost; /* > 0: keys from index 400 on are scaled by it, so a later tile holds the max */
  float sharp;  /* > 0: multiplies the scale; scores up to ~100 make exp overflow any wrong max */
  int mqa;      /* k and v shared by all heads (head stride 0) */
  int spikes;   /* keys 1 and 20 become +-300 (1, ..., 1): one huge score per row, ~100 above
                 * the rest, where a wrong max (or one that sees padding) loses every other key */
} att_case;

/* One case's buffers. In the fused layout q, k and v (and their gradients) share one storage. */
typedef struct att_data {
  att_case c;
  view vq, vk, vv, vo, vdo;
  size_t nqs, nks, nvs, nos, ndos;
  float *qs, *ks, *vs, *os, *dos, *lse;
  uint8_t *mask;
  float scale;
} att_data;

static const float k_sentinel = 12345.0f;

static size_t view_span(view v, const att_case *c, int64_t t) {
  return (size_t)(v.off + (c->batch - 1) * v.sb + (c->heads - 1) * v.sh + (t - 1) * v.st + c->dh);
}

static size_t at(view v, int64_t b, int64_t h, int64_t t, int64_t d) {
  return (size_t)(v.off + b * v.sb + h * v.sh + t * v.st + d);
}

static float *alloc_filled(size_t n, uint64_t seed) {
  float *x = malloc(n * sizeof *x);
  assert_non_null(x);
  tu_fill(x, n, seed);
  return x;
}

static void data_init(att_data *d, const att_case *c, uint64_t seed) {
  memset(d, 0, sizeof *d);
  d->c = *c;
  const int64_t B = c->batch, H = c->heads, Tq = c->tq, Tk = c->tk, Dh = c->dh;
  d->scale = (c->sharp > 0 ? c->sharp : 1.0f) / sqrtf((float)Dh);
  if (c->fused) {
    assert_int_equal(Tq, Tk);
    int64_t st = 3 * H * Dh;
    d->vq = (view){0, Tq * st, Dh, st};
    d->vk = (view){H * Dh, Tq * st, Dh, st};
    d->vv = (view){2 * H * Dh, Tq * st, Dh, st};
    d->nqs = d->nks = d->nvs = (size_t)(B * Tq * st);
    d->qs = d->ks = d->vs = alloc_filled(d->nqs, seed);
  } else {
    /* q [B, Tq, H, Dh] as a projection writes it; k [B, H, Tk, Dh + 4] with padded rows;
     * v [B, H, Tk, Dh]. A single query row gets stride 0 (any stride must do). */
    int64_t qst = Tq > 1 ? H * Dh : 0;
    d->vq = (view){0, Tq * H * Dh, Dh, qst};
    d->vk = (view){0, H * Tk * (Dh + 4), Tk * (Dh + 4), Dh + 4};
    d->vv = (view){0, H * Tk * Dh, Tk * Dh, Dh};
    if (c->mqa) d->vk.sh = d->vv.sh = 0;
    d->nqs = (size_t)(B * Tq * H * Dh);
    d->nks = view_span(d->vk, c, Tk);
    d->nvs = view_span(d->vv, c, Tk);
    d->qs = alloc_filled(d->nqs, seed);
    d->ks = alloc_filled(d->nks, seed + 1);
    d->vs = alloc_filled(d->nvs, seed + 2);
  }
  if (c->spikes)
    for (int64_t b = 0; b < B; b++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t e = 0; e < Dh; e++) {
          if (Tk > 1) d->ks[at(d->vk, b, h, 1, e)] = 300.0f;
          if (Tk > 20) d->ks[at(d->vk, b, h, 20, e)] = -300.0f;
        }
  if (c->kboost > 0)
    for (int64_t b = 0; b < B; b++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t t = 400; t < Tk; t++)
          for (int64_t e = 0; e < Dh; e++) d->ks[at(d->vk, b, h, t, e)] *= c->kboost;
  /* out [B, H, Tq, Dh + 3]: padding the op must leave alone; dout [B, Tq, H, Dh] */
  d->vo = (view){0, H * Tq * (Dh + 3), Tq * (Dh + 3), Dh + 3};
  d->nos = view_span(d->vo, c, Tq);
  d->os = malloc(d->nos * sizeof *d->os);
  assert_non_null(d->os);
  for (size_t i = 0; i < d->nos; i++) d->os[i] = k_sentinel;
  d->vdo = (view){0, Tq * H * Dh, Dh, H * Dh};
  d->ndos = (size_t)(B * Tq * H * Dh);
  d->dos = alloc_filled(d->ndos, seed + 3);
  d->lse = malloc((size_t)(B * H * Tq) * sizeof *d->lse);
  assert_non_null(d->lse);
  if (c->masked) {
    d->mask = malloc((size_t)(B * Tk));
    assert_non_null(d->mask);
    uint64_t s = seed * 77 + 5;
    for (int64_t i = 0; i < B * Tk; i++) d->mask[i] = tu_rand(&s) > -0.5f; /* ~25% padding */
    for (int64_t j = 0; j < Tk && j < 3; j++) d->mask[j] = 0;
    if (B > 1)
      for (int64_t j = 0; j < Tk; j++) d->mask[Tk + j] = 0;
  }
}

static void data_free(att_data *d) {
  free(d->qs);
  if (!d->c.fused) {
    free(d->ks);
    free(d->vs);
  }
  free(d->os);
  free(d->dos);
  free(d->lse);
  free(d->mask);
}

static orx_attn_args make_args(const att_data *d, const float *qs, const float *ks,
                               const float *vs, float *os, float *lse) {
  const att_case *c = &d->c;
  orx_attn_args a = {
      .batch = c->batch, .heads = c->heads, .tq = c->tq, .tk = c->tk, .head_dim = c->dh,
      .q = qs + d->vq.off, .q_sb = d->vq.sb, .q_sh = d->vq.sh, .q_st = d->vq.st,
      .k = ks + d->vk.off, .k_sb = d->vk.sb, .k_sh = d->vk.sh, .k_st = d->vk.st,
      .v = vs + d->vv.off, .v_sb = d->vv.sb, .v_sh = d->vv.sh, .v_st = d->vv.st,
      .out = os + d->vo.off, .o_sb = d->vo.sb, .o_sh = d->vo.sh, .o_st = d->vo.st,
      .lse = lse, .key_mask = d->mask, .causal = c->causal, .scale = d->scale};
  return a;
}

/* ---- naive double-precision reference, one (batch, head) at a time ---- */

static int visible(const att_data *d, int64_t b, int64_t i, int64_t j) {
  if (d->mask && !d->mask[b * d->c.tk + j]) return 0;
  return !d->c.causal || j <= i + d->c.tk - d->c.tq;
}

/* P [tq, tk] (softmax, 0 where hidden), out [tq, dh], lse [tq] for one (b, h); the inputs are
 * double copies of the storages so finite differences can perturb them. */
static void ref_forward(const att_data *d, const double *qs, const double *ks, const double *vs,
                        int64_t b, int64_t h, double *P, double *out, double *lse) {
  const int64_t Tq = d->c.tq, Tk = d->c.tk, Dh = d->c.dh;
  for (int64_t i = 0; i < Tq; i++) {
    double mx = -INFINITY;
    for (int64_t j = 0; j < Tk; j++) {
      double s = -INFINITY;
      if (visible(d, b, i, j)) {
        s = 0;
        for (int64_t e = 0; e < Dh; e++) s += qs[at(d->vq, b, h, i, e)] * ks[at(d->vk, b, h, j, e)];
        s *= d->scale;
      }
      P[i * Tk + j] = s;
      if (s > mx) mx = s;
    }
    for (int64_t e = 0; e < Dh; e++) out[i * Dh + e] = 0;
    if (mx == -INFINITY) {
      for (int64_t j = 0; j < Tk; j++) P[i * Tk + j] = 0;
      lse[i] = -INFINITY;
      continue;
    }
    double sum = 0;
    for (int64_t j = 0; j < Tk; j++) sum += P[i * Tk + j] == -INFINITY ? 0 : exp(P[i * Tk + j] - mx);
    for (int64_t j = 0; j < Tk; j++) {
      double p = P[i * Tk + j] == -INFINITY ? 0 : exp(P[i * Tk + j] - mx) / sum;
      P[i * Tk + j] = p;
      for (int64_t e = 0; e < Dh; e++) out[i * Dh + e] += p * vs[at(d->vv, b, h, j, e)];
    }
    lse[i] = mx + log(sum);
  }
}

/* Gradients of L = sum(out * dout) for one (b, h), dense: dq [tq, dh], dk and dv [tk, dh]. */
static void ref_backward(const att_data *d, const double *qs, const double *ks, const double *vs,
                         int64_t b, int64_t h, const double *P, double *dq, double *dk,
                         double *dv) {
  const int64_t Tq = d->c.tq, Tk = d->c.tk, Dh = d->c.dh;
  memset(dq, 0, (size_t)(Tq * Dh) * sizeof *dq);
  memset(dk, 0, (size_t)(Tk * Dh) * sizeof *dk);
  memset(dv, 0, (size_t)(Tk * Dh) * sizeof *dv);
  double *dS = malloc((size_t)Tk * sizeof *dS);
  assert_non_null(dS);
  for (int64_t i = 0; i < Tq; i++) {
    const float *R = d->dos + at(d->vdo, b, h, i, 0);
    double Di = 0;
    for (int64_t j = 0; j < Tk; j++) {
      double dp = 0;
      for (int64_t e = 0; e < Dh; e++) dp += R[e] * vs[at(d->vv, b, h, j, e)];
      dS[j] = dp;
      Di += P[i * Tk + j] * dp;
    }
    for (int64_t j = 0; j < Tk; j++) {
      double p = P[i * Tk + j], ds = p * (dS[j] - Di) * d->scale;
      for (int64_t e = 0; e < Dh; e++) {
        dv[j * Dh + e] += p * R[e];
        dq[i * Dh + e] += ds * ks[at(d->vk, b, h, j, e)];
        dk[j * Dh + e] += ds * qs[at(d->vq, b, h, i, e)];
      }
    }
  }
  free(dS);
}

static double *to_double(const float *x, size_t n) {
  double *y = malloc(n * sizeof *y);
  assert_non_null(y);
  for (size_t i = 0; i < n; i++) y[i] = x[i];
  return y;
}

/* L restricted to the (b, h) an input element belongs to: the only part it changes (every head
 * of batch item b when heads share k and v). */
static double ref_loss(const att_data *d, const double *qs, const double *ks, const double *vs,
                       int64_t b, int64_t h0) {
  const int64_t Tq = d->c.tq, Tk = d->c.tk, Dh = d->c.dh;
  double *P = malloc((size_t)(Tq * Tk) * sizeof *P), *out = malloc((size_t)(Tq * Dh) * sizeof *out);
  double *lse = malloc((size_t)Tq * sizeof *lse);
  assert_true(P && out && lse);
  double L = 0;
  for (int64_t h = d->c.mqa ? 0 : h0; h < (d->c.mqa ? d->c.heads : h0 + 1); h++) {
    ref_forward(d, qs, ks, vs, b, h, P, out, lse);
    for (int64_t i = 0; i < Tq; i++)
      for (int64_t e = 0; e < Dh; e++) L += out[i * Dh + e] * d->dos[at(d->vdo, b, h, i, e)];
  }
  free(P);
  free(out);
  free(lse);
  return L;
}

/* ---- the checks ---- */

static onerec_context *g_ctx2; /* two threads, shared by the case tests */

static onerec_status run_fwd(onerec_context *ctx, const orx_attn_args *a) {
  return ORX_OP(&ctx->be, attention_fwd, a);
}

static onerec_status run_bwd(onerec_context *ctx, const orx_attn_bwd_args *g) {
  return ORX_OP(&ctx->be, attention_bwd, g);
}

static orx_attn_bwd_args make_bwd(const att_data *d, const orx_attn_args *fwd, float *gq,
                                  float *gk, float *gv) {
  orx_attn_bwd_args g = {.fwd = *fwd,
                         .dout = d->dos + d->vdo.off,
                         .do_sb = d->vdo.sb,
                         .do_sh = d->vdo.sh,
                         .do_st = d->vdo.st,
                         .dq = gq + d->vq.off,
                         .dk = gk + d->vk.off,
                         .dv = gv + d->vv.off};
  return g;
}

static void check_case(const att_case *c, uint64_t seed) {
  att_data d;
  data_init(&d, c, seed);
  const int64_t B = c->batch, H = c->heads, Tq = c->tq, Tk = c->tk, Dh = c->dh;
  char what[160];

  orx_attn_args a = make_args(&d, d.qs, d.ks, d.vs, d.os, d.lse);
  assert_ok(run_fwd(g_ctx2, &a));

  /* gradient storages start from random values: the op must add to them */
  float *gq = alloc_filled(d.nqs, seed + 10);
  float *gk = c->fused ? gq : alloc_filled(d.nks, seed + 11);
  float *gv = c->fused ? gq : alloc_filled(d.nvs, seed + 12);
  float *g0q = malloc(d.nqs * sizeof *g0q), *g0k = malloc(d.nks * sizeof *g0k),
        *g0v = malloc(d.nvs * sizeof *g0v);
  assert_true(g0q && g0k && g0v);
  /* ...except where the gradient must be exactly zero (padded keys, rows that see nothing):
   * starting there from 0 shows even a denormal leak */
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++) {
      for (int64_t j = 0; j < Tk && d.mask; j++)
        for (int64_t e = 0; e < Dh && !d.mask[b * Tk + j]; e++)
          gk[at(d.vk, b, h, j, e)] = gv[at(d.vv, b, h, j, e)] = 0.0f;
      for (int64_t i = 0; i < Tq; i++)
        for (int64_t e = 0; e < Dh && d.lse[(b * H + h) * Tq + i] == -INFINITY; e++)
          gq[at(d.vq, b, h, i, e)] = 0.0f;
    }
  memcpy(g0q, gq, d.nqs * sizeof *gq);
  memcpy(g0k, gk, d.nks * sizeof *gk);
  memcpy(g0v, gv, d.nvs * sizeof *gv);
  orx_attn_bwd_args g = make_bwd(&d, &a, gq, gk, gv);
  assert_ok(run_bwd(g_ctx2, &g));

  /* expected storages: sentinel / initial values outside the views, reference inside */
  float *eo = malloc(d.nos * sizeof *eo);
  float *eq = malloc(d.nqs * sizeof *eq), *ek = malloc(d.nks * sizeof *ek),
        *ev = malloc(d.nvs * sizeof *ev);
  assert_true(eo && eq && ek && ev);
  for (size_t i = 0; i < d.nos; i++) eo[i] = k_sentinel;
  memcpy(eq, g0q, d.nqs * sizeof *eq);
  memcpy(ek, g0k, d.nks * sizeof *ek);
  memcpy(ev, g0v, d.nvs * sizeof *ev);
  float *ekk = c->fused ? eq : ek, *evv = c->fused ? eq : ev;

  double *qd = to_double(d.qs, d.nqs), *kd = to_double(d.ks, d.nks), *vd = to_double(d.vs, d.nvs);
  double *P = malloc((size_t)(Tq * Tk) * sizeof *P), *out = malloc((size_t)(Tq * Dh) * sizeof *out);
  double *lse = malloc((size_t)Tq * sizeof *lse);
  double *rq = malloc((size_t)(Tq * Dh) * sizeof *rq), *rk = malloc((size_t)(Tk * Dh) * sizeof *rk),
         *rv = malloc((size_t)(Tk * Dh) * sizeof *rv);
  assert_true(P && out && lse && rq && rk && rv);
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++) {
      ref_forward(&d, qd, kd, vd, b, h, P, out, lse);
      ref_backward(&d, qd, kd, vd, b, h, P, rq, rk, rv);
      for (int64_t i = 0; i < Tq; i++) {
        float got = d.lse[(b * H + h) * Tq + i];
        if (lse[i] == -INFINITY) { /* a row that sees nothing: exactly zero, lse -inf */
          if (got != -INFINITY) fail_msg("%s: lse[%lld,%lld,%lld] = %g, want -inf", c->name,
                                         (long long)b, (long long)h, (long long)i, (double)got);
          for (int64_t e = 0; e < Dh; e++) assert_true(d.os[at(d.vo, b, h, i, e)] == 0.0f);
        } else if (!(fabs(got - lse[i]) <= 2e-5 * (1 + fabs(lse[i])))) {
          fail_msg("%s: lse[%lld,%lld,%lld] = %.8g, want %.8g", c->name, (long long)b,
                   (long long)h, (long long)i, (double)got, lse[i]);
        }
        for (int64_t e = 0; e < Dh; e++) {
          eo[at(d.vo, b, h, i, e)] = (float)out[i * Dh + e];
          eq[at(d.vq, b, h, i, e)] += (float)rq[i * Dh + e];
        }
      }
      for (int64_t j = 0; j < Tk; j++)
        for (int64_t e = 0; e < Dh; e++) {
          ekk[at(d.vk, b, h, j, e)] += (float)rk[j * Dh + e];
          evv[at(d.vv, b, h, j, e)] += (float)rv[j * Dh + e];
        }
    }
  /* padded keys get exactly no gradient, and a query row that sees nothing exactly none */
  if (d.mask)
    for (int64_t b = 0; b < B; b++)
      for (int64_t j = 0; j < Tk; j++)
        for (int64_t h = 0; h < H && !d.mask[b * Tk + j]; h++)
          for (int64_t e = 0; e < Dh; e++) {
            size_t ik = at(d.vk, b, h, j, e), iv = at(d.vv, b, h, j, e);
            if (gk[ik] != g0k[ik] || gv[iv] != g0v[iv])
              fail_msg("%s: padded key %lld of batch %lld got a gradient", c->name,
                       (long long)j, (long long)b);
          }
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t i = 0; i < Tq; i++)
        for (int64_t e = 0; e < Dh && d.lse[(b * H + h) * Tq + i] == -INFINITY; e++) {
          size_t iq = at(d.vq, b, h, i, e);
          if (gq[iq] != g0q[iq])
            fail_msg("%s: query row %lld that sees nothing got a gradient", c->name,
                     (long long)i);
        }
  /* scores in the hundreds carry float rounding of ~1e-4 into every exp */
  float tm = c->sharp > 0 || c->spikes ? 20.0f : 1.0f;
  snprintf(what, sizeof what, "%s: out", c->name);
  tu_assert_close(d.os, eo, d.nos, tm * 1e-4f, tm * 1e-5f, what);
  snprintf(what, sizeof what, "%s: dq", c->name);
  tu_assert_close(gq, eq, d.nqs, tm * 1e-3f, tm * 1e-4f, what);
  if (!c->fused) {
    snprintf(what, sizeof what, "%s: dk", c->name);
    tu_assert_close(gk, ek, d.nks, tm * 1e-3f, tm * 1e-4f, what);
    snprintf(what, sizeof what, "%s: dv", c->name);
    tu_assert_close(gv, ev, d.nvs, tm * 1e-3f, tm * 1e-4f, what);
  }

  /* Central differences of the double-precision loss at a few elements of q, k and v: checks
   * the op's gradient against the definition, independently of ref_backward. */
  uint64_t rs = seed * 31 + 7;
  for (int which = 0; which < 3 && !c->sharp && !c->spikes; which++) { /* a near one-hot softmax is too
                                                           * curved for differences */
    view v = which == 0 ? d.vq : which == 1 ? d.vk : d.vv;
    int64_t T = which == 0 ? Tq : Tk;
    double *x = which == 0 ? qd : which == 1 ? kd : vd;
    const float *got = which == 0 ? gq : which == 1 ? gk : gv;
    const float *init = which == 0 ? g0q : which == 1 ? g0k : g0v;
    for (int n = 0; n < 3; n++) {
      int64_t b = (int64_t)((tu_rand(&rs) + 1) * 0.5f * (float)B) % B;
      int64_t h = (int64_t)((tu_rand(&rs) + 1) * 0.5f * (float)H) % H;
      int64_t t = (int64_t)((tu_rand(&rs) + 1) * 0.5f * (float)T) % T;
      int64_t e = (int64_t)((tu_rand(&rs) + 1) * 0.5f * (float)Dh) % Dh;
      size_t idx = at(v, b, h, t, e);
      const double eps = 1e-3;
      double x0 = x[idx];
      x[idx] = x0 + eps;
      double lp = ref_loss(&d, qd, kd, vd, b, h);
      x[idx] = x0 - eps;
      double lm = ref_loss(&d, qd, kd, vd, b, h);
      x[idx] = x0;
      double fd = (lp - lm) / (2 * eps), an = (double)got[idx] - (double)init[idx];
      if (!(fabs(fd - an) <= 2e-4 + 1e-3 * fabs(fd)))
        fail_msg("%s: d%c[%lld,%lld,%lld,%lld]: op %.7g, finite difference %.7g", c->name,
                 "qkv"[which], (long long)b, (long long)h, (long long)t, (long long)e, an, fd);
    }
  }

  free(qd);
  free(kd);
  free(vd);
  free(P);
  free(out);
  free(lse);
  free(rq);
  free(rk);
  free(rv);
  free(eo);
  free(eq);
  free(ek);
  free(ev);
  free(g0q);
  free(g0k);
  free(g0v);
  free(gq);
  if (!c->fused) {
    free(gk);
    free(gv);
  }
  data_free(&d);
}

static void test_self(void **state) {
  (void)state;
  att_case c = {.name = "self", .batch = 2, .heads = 2, .tq = 37, .tk = 37, .dh = 32};
  check_case(&c, 1);
  c.name = "self causal";
  c.causal = 1;
  check_case(&c, 2);
  /* several query blocks, causal tiles skipped */
  att_case c2 = {.name = "self causal T300", .batch = 1, .heads = 2, .tq = 300, .tk = 300,
                 .dh = 16, .causal = 1};
  check_case(&c2, 3);
}

static void test_cross(void **state) {
  (void)state;
  att_case dec = {.name = "cross decoder", .batch = 2, .heads = 2, .tq = 4, .tk = 405, .dh = 32};
  check_case(&dec, 4);
  att_case lt = {.name = "cross tq<tk causal", .batch = 2, .heads = 3, .tq = 5, .tk = 40,
                 .dh = 16, .causal = 1};
  check_case(&lt, 5);
  /* rows i < tq - tk see no key at all */
  att_case gt = {.name = "cross tq>tk causal", .batch = 2, .heads = 2, .tq = 40, .tk = 9,
                 .dh = 8, .causal = 1};
  check_case(&gt, 6);
  att_case gtn = {.name = "cross tq>tk", .batch = 1, .heads = 2, .tq = 150, .tk = 9, .dh = 8};
  check_case(&gtn, 7);
}

static void test_key_mask(void **state) {
  (void)state;
  att_case c = {.name = "mask", .batch = 3, .heads = 2, .tq = 50, .tk = 50, .dh = 32,
                .masked = 1};
  check_case(&c, 8);
  c.name = "mask causal";
  c.causal = 1;
  check_case(&c, 9);
  att_case x = {.name = "mask cross", .batch = 3, .heads = 1, .tq = 4, .tk = 97, .dh = 16,
                .masked = 1};
  check_case(&x, 10);
}

/* More keys than one tile: the online softmax must rescale across tiles. */
static void test_long_keys(void **state) {
  (void)state;
  att_case c = {.name = "tk700", .batch = 2, .heads = 1, .tq = 40, .tk = 700, .dh = 32,
                .kboost = 3.0f};
  check_case(&c, 11);
  c.name = "tk700 mask";
  c.masked = 1;
  check_case(&c, 12);
  att_case s = {.name = "self T600 causal", .batch = 1, .heads = 1, .tq = 600, .tk = 600,
                .dh = 16, .causal = 1, .kboost = 2.0f};
  check_case(&s, 13);
}

static void test_odd_sizes(void **state) {
  (void)state;
  att_case one = {.name = "tq1", .batch = 3, .heads = 2, .tq = 1, .tk = 405, .dh = 64,
                  .causal = 1};
  check_case(&one, 14);
  att_case one1 = {.name = "tq1 tk1", .batch = 1, .heads = 1, .tq = 1, .tk = 1, .dh = 8};
  check_case(&one1, 15);
  att_case d8 = {.name = "dh8", .batch = 2, .heads = 3, .tq = 13, .tk = 29, .dh = 8};
  check_case(&d8, 16);
  att_case d64 = {.name = "dh64", .batch = 1, .heads = 2, .tq = 130, .tk = 130, .dh = 64,
                  .causal = 1};
  check_case(&d64, 17);
  att_case d5 = {.name = "dh5", .batch = 2, .heads = 1, .tq = 7, .tk = 3, .dh = 5};
  check_case(&d5, 18);
}

/* Multi-query attention: one k and v for all heads, so every head adds into the same dk, dv. */
static void test_shared_kv(void **state) {
  (void)state;
  att_case c = {.name = "mqa", .batch = 2, .heads = 4, .tq = 30, .tk = 41, .dh = 16,
                .mqa = 1, .masked = 1};
  check_case(&c, 24);
  att_case big = {.name = "mqa big", .batch = 1, .heads = 8, .tq = 200, .tk = 200, .dh = 32,
                  .mqa = 1};
  check_case(&big, 25);
}

static void test_fused_qkv(void **state) {
  (void)state;
  att_case c = {.name = "fused", .batch = 2, .heads = 4, .tq = 45, .tk = 45, .dh = 32,
                .fused = 1};
  check_case(&c, 19);
  c.name = "fused causal mask";
  c.causal = c.masked = 1;
  check_case(&c, 20);
}

/* The row kernels follow the backend's ISA choice: each variant this CPU runs must pass too. */
static void test_isa_variants(void **state) {
  (void)state;
  orx_cpu *cpu = orx_cpu_of(&g_ctx2->be);
  const orx_simd *saved = cpu->simd;
  static const char *const isas[] = {"avx512", "avx2", "scalar"};
  for (int i = 0; i < 3; i++) {
    const orx_simd *t = orx_simd_get(isas[i]);
    if (!t) continue;
    cpu->simd = t;
    att_case m = {.name = isas[i], .batch = 3, .heads = 2, .tq = 50, .tk = 50, .dh = 32,
                  .causal = 1, .masked = 1};
    check_case(&m, 30);
    att_case l = {.name = isas[i], .batch = 2, .heads = 1, .tq = 9, .tk = 700, .dh = 16,
                  .masked = 1, .kboost = 3.0f};
    check_case(&l, 31);
    att_case o = {.name = isas[i], .batch = 2, .heads = 2, .tq = 21, .tk = 17, .dh = 5,
                  .causal = 1};
    check_case(&o, 32);
    /* tiles small enough for the kernels that replace sgemm (dh 80: a 64-column step + 16) */
    att_case s1 = {.name = isas[i], .batch = 2, .heads = 3, .tq = 6, .tk = 40, .dh = 32,
                   .causal = 1, .masked = 1};
    check_case(&s1, 37);
    att_case s2 = {.name = isas[i], .batch = 2, .heads = 1, .tq = 3, .tk = 20, .dh = 80};
    check_case(&s2, 38);
    att_case sh = {.name = isas[i], .batch = 2, .heads = 2, .tq = 33, .tk = 80, .dh = 16,
                   .sharp = 100.0f};
    check_case(&sh, 33);
    sh.masked = 1;
    check_case(&sh, 34);
    att_case sp = {.name = isas[i], .batch = 2, .heads = 2, .tq = 33, .tk = 80, .dh = 16,
                   .spikes = 1};
    check_case(&sp, 35);
    sp.masked = 1;
    check_case(&sp, 36);
  }
  cpu->simd = saved;
}

/* A NaN in q poisons its own output row, a NaN in a key every row that sees it: bad values
 * must show, not turn into plausible numbers (every ISA variant). */
static void test_nan_propagates(void **state) {
  (void)state;
  orx_cpu *cpu = orx_cpu_of(&g_ctx2->be);
  const orx_simd *saved = cpu->simd;
  static const char *const isas[] = {"avx512", "avx2", "scalar"};
  for (int v = 0; v < 3; v++) {
    if (!(cpu->simd = orx_simd_get(isas[v]))) continue;
    att_case c = {.name = "nan", .batch = 1, .heads = 2, .tq = 20, .tk = 40, .dh = 16};
    att_data d;
    data_init(&d, &c, 40);
    d.qs[at(d.vq, 0, 0, 3, 2)] = NAN;
    d.ks[at(d.vk, 0, 1, 20, 0)] = NAN; /* the second half of a 32-key step */
    orx_attn_args a = make_args(&d, d.qs, d.ks, d.vs, d.os, d.lse);
    assert_ok(run_fwd(g_ctx2, &a));
    for (int64_t i = 0; i < c.tq; i++) {
      int bad0 = i == 3; /* head 0: only the poisoned query; head 1: every row sees key 20 */
      for (int64_t e = 0; e < c.dh; e++) {
        if (isnan(d.os[at(d.vo, 0, 0, i, e)]) != bad0 || !isnan(d.os[at(d.vo, 0, 1, i, e)]))
          fail_msg("%s: out row %lld: NaN where it should not be, or none where it should",
                   isas[v], (long long)i);
      }
      assert_true(isnan(d.lse[i]) == bad0);
      assert_true(isnan(d.lse[c.tq + i]));
    }
    float *gq = calloc(d.nqs, sizeof(float)), *gk = calloc(d.nks, sizeof(float)),
          *gv = calloc(d.nvs, sizeof(float));
    assert_true(gq && gk && gv);
    orx_attn_bwd_args g = make_bwd(&d, &a, gq, gk, gv);
    assert_ok(run_bwd(g_ctx2, &g));
    assert_true(isnan(gq[at(d.vq, 0, 0, 3, 0)]));
    assert_false(isnan(gq[at(d.vq, 0, 0, 4, 0)]));
    free(gq);
    free(gk);
    free(gv);
    data_free(&d);
  }
  cpu->simd = saved;
}

/* dq starting at ones ends at ones + grad (the convention of every backward op). */
static void test_bwd_accumulates(void **state) {
  (void)state;
  att_case c = {.name = "acc", .batch = 2, .heads = 2, .tq = 20, .tk = 33, .dh = 16,
                .causal = 1};
  att_data d;
  data_init(&d, &c, 21);
  orx_attn_args a = make_args(&d, d.qs, d.ks, d.vs, d.os, d.lse);
  assert_ok(run_fwd(g_ctx2, &a));
  float *z[3], *o[3];
  size_t n[3] = {d.nqs, d.nks, d.nvs};
  for (int i = 0; i < 3; i++) {
    z[i] = calloc(n[i], sizeof(float));
    o[i] = malloc(n[i] * sizeof(float));
    assert_true(z[i] && o[i]);
    for (size_t e = 0; e < n[i]; e++) o[i][e] = 1.0f;
  }
  orx_attn_bwd_args gz = make_bwd(&d, &a, z[0], z[1], z[2]);
  orx_attn_bwd_args go = make_bwd(&d, &a, o[0], o[1], o[2]);
  assert_ok(run_bwd(g_ctx2, &gz));
  assert_ok(run_bwd(g_ctx2, &go));
  for (int i = 0; i < 3; i++) {
    for (size_t e = 0; e < n[i]; e++) z[i][e] += 1.0f;
    tu_assert_close(o[i], z[i], n[i], 1e-6f, 1e-6f, "ones + grad");
    free(z[i]);
    free(o[i]);
  }
  data_free(&d);
}

/* Same inputs, 1 and 3 threads: bit-identical outputs, lse and gradients. */
static void test_deterministic(void **state) {
  (void)state;
  att_case c = {.name = "det", .batch = 3, .heads = 2, .tq = 300, .tk = 300, .dh = 32,
                .causal = 1, .masked = 1};
  att_data d;
  data_init(&d, &c, 22);
  onerec_context *ctx[2] = {tu_cpu_context(1), tu_cpu_context(3)};
  float *out[2], *lse[2], *gq[2], *gk[2], *gv[2];
  size_t nl = (size_t)(c.batch * c.heads * c.tq);
  for (int r = 0; r < 2; r++) {
    out[r] = malloc(d.nos * sizeof(float));
    lse[r] = malloc(nl * sizeof(float));
    gq[r] = calloc(d.nqs, sizeof(float));
    gk[r] = calloc(d.nks, sizeof(float));
    gv[r] = calloc(d.nvs, sizeof(float));
    assert_true(out[r] && lse[r] && gq[r] && gk[r] && gv[r]);
    memset(out[r], 0, d.nos * sizeof(float));
    orx_attn_args a = make_args(&d, d.qs, d.ks, d.vs, out[r], lse[r]);
    assert_ok(run_fwd(ctx[r], &a));
    orx_attn_bwd_args g = make_bwd(&d, &a, gq[r], gk[r], gv[r]);
    assert_ok(run_bwd(ctx[r], &g));
  }
  assert_memory_equal(out[0], out[1], d.nos * sizeof(float));
  assert_memory_equal(lse[0], lse[1], nl * sizeof(float));
  assert_memory_equal(gq[0], gq[1], d.nqs * sizeof(float));
  assert_memory_equal(gk[0], gk[1], d.nks * sizeof(float));
  assert_memory_equal(gv[0], gv[1], d.nvs * sizeof(float));
  for (int r = 0; r < 2; r++) {
    free(out[r]);
    free(lse[r]);
    free(gq[r]);
    free(gk[r]);
    free(gv[r]);
    onerec_context_free(ctx[r]);
  }
  data_free(&d);
}

static void test_bad_args(void **state) {
  (void)state;
  att_case c = {.name = "bad", .batch = 2, .heads = 2, .tq = 8, .tk = 8, .dh = 16};
  att_data d;
  data_init(&d, &c, 23);
  const orx_attn_args good = make_args(&d, d.qs, d.ks, d.vs, d.os, d.lse);
  orx_attn_args a;
  orx_backend *be = &g_ctx2->be;
#define BAD(field, value, code)                                      \
  do {                                                               \
    a = good;                                                        \
    a.field = value;                                                 \
    assert_status(ORX_OP(be, attention_fwd, &a), code);              \
  } while (0)
  BAD(batch, -1, ONEREC_ERR_SHAPE);
  BAD(heads, 0, ONEREC_ERR_SHAPE);
  BAD(tq, -3, ONEREC_ERR_SHAPE);
  BAD(tk, 0, ONEREC_ERR_SHAPE);
  BAD(head_dim, -16, ONEREC_ERR_SHAPE);
  BAD(q_st, 8, ONEREC_ERR_SHAPE); /* rows would overlap */
  BAD(k_sb, -1, ONEREC_ERR_SHAPE);
  BAD(o_st, (int64_t)1 << 40, ONEREC_ERR_SHAPE);
  BAD(q, NULL, ONEREC_ERR_INVALID_ARGUMENT);
  BAD(v, NULL, ONEREC_ERR_INVALID_ARGUMENT);
  BAD(out, NULL, ONEREC_ERR_INVALID_ARGUMENT);
  BAD(scale, NAN, ONEREC_ERR_INVALID_ARGUMENT);
#undef BAD
  assert_status(ORX_OP(be, attention_fwd, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(ORX_OP(be, attention_fwd, &good));

  float *gq = calloc(d.nqs, sizeof(float)), *gk = calloc(d.nks, sizeof(float)),
        *gv = calloc(d.nvs, sizeof(float));
  assert_true(gq && gk && gv);
  orx_attn_bwd_args g = make_bwd(&d, &good, gq, gk, gv), b;
  b = g;
  b.fwd.lse = NULL; /* the backward needs the forward's lse */
  assert_status(ORX_OP(be, attention_bwd, &b), ONEREC_ERR_INVALID_ARGUMENT);
  b = g;
  b.dk = NULL;
  assert_status(ORX_OP(be, attention_bwd, &b), ONEREC_ERR_INVALID_ARGUMENT);
  b = g;
  b.dout = NULL;
  assert_status(ORX_OP(be, attention_bwd, &b), ONEREC_ERR_INVALID_ARGUMENT);
  b = g;
  b.do_st = 3;
  assert_status(ORX_OP(be, attention_bwd, &b), ONEREC_ERR_SHAPE);
  b = g;
  b.fwd.tk = -5;
  assert_status(ORX_OP(be, attention_bwd, &b), ONEREC_ERR_SHAPE);
  assert_status(ORX_OP(be, attention_bwd, NULL), ONEREC_ERR_INVALID_ARGUMENT);
  assert_ok(ORX_OP(be, attention_bwd, &g));
  free(gq);
  free(gk);
  free(gv);
  data_free(&d);
}

static int setup(void **state) {
  (void)state;
  g_ctx2 = tu_cpu_context(2);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  onerec_context_free(g_ctx2);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_self),          cmocka_unit_test(test_cross),
      cmocka_unit_test(test_key_mask),      cmocka_unit_test(test_long_keys),
      cmocka_unit_test(test_odd_sizes),     cmocka_unit_test(test_fused_qkv),
      cmocka_unit_test(test_shared_kv),
      cmocka_unit_test(test_isa_variants),  cmocka_unit_test(test_nan_propagates),  cmocka_unit_test(test_bwd_accumulates),
      cmocka_unit_test(test_deterministic),
      cmocka_unit_test(test_bad_args),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
