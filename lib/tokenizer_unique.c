/* Collision resolution: an encoding in which no two items share a semantic ID.
 *
 * After the plain encoding, each group of items with one semantic ID keeps its item nearest to
 * the shared reconstruction; the others ("movers", in item order) take the nearest semantic ID
 * nobody holds. A map counts, for every prefix, how many distinct held IDs lie under it, so a
 * full prefix (all codes_per_level^(levels - len) IDs below it held) is seen in O(1) and the
 * greedy descent from the deepest non-full prefix always ends on a free ID. The common case (a
 * free last-level code under the mover's own prefix) ranks the last level's centroids for a
 * block of movers with one matrix multiply on the backend; movers whose prefix is full are rare
 * and are ranked on the host level by level. */
#include <math.h>
#include <string.h>

#include "tokenizer_impl.h"

/* ---- prefix map: (codes[0..len) of an item) -> number of held IDs under that prefix ---- */

typedef struct pslot {
  int32_t item; /* whose codes row holds the key; -1 = empty */
  int32_t len;
  int64_t value;
} pslot;

typedef struct pmap {
  pslot *slot;
  uint64_t mask;
  const int32_t *codes;
  int levels;
} pmap;

static uint64_t key_hash(const int32_t *key, int len) {
  uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)len;
  for (int i = 0; i < len; i++) h = (h ^ (uint32_t)key[i]) * 0x100000001b3ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

/* The slot of key (len codes), or the empty slot where it would go. */
static pslot *pm_slot(pmap *m, const int32_t *key, int len) {
  uint64_t i = key_hash(key, len) & m->mask;
  for (;; i = (i + 1) & m->mask) {
    pslot *p = &m->slot[i];
    if (p->item < 0) return p;
    if (p->len == len &&
        !memcmp(m->codes + (int64_t)p->item * m->levels, key, (size_t)len * sizeof *key))
      return p;
  }
}

static int64_t pm_get(pmap *m, const int32_t *key, int len) {
  pslot *p = pm_slot(m, key, len);
  return p->item < 0 ? 0 : p->value;
}

/* Item `item` (whose codes row is final) holds its ID: count it under every prefix. */
static void pm_hold(pmap *m, int32_t item) {
  const int32_t *key = m->codes + (int64_t)item * m->levels;
  for (int len = 1; len <= m->levels; len++) {
    pslot *p = pm_slot(m, key, len);
    if (p->item < 0) {
      p->item = item;
      p->len = len;
      p->value = 0;
    }
    p->value++;
  }
}

/* k^e, saturating at INT64_MAX */
static int64_t ipow_sat(int64_t k, int e) {
  int64_t r = 1;
  for (int i = 0; i < e; i++) {
    if (r > INT64_MAX / k) return INT64_MAX;
    r *= k;
  }
  return r;
}

/* ---- ranking and claiming ---- */

typedef struct uq {
  onerec_tokenizer *t;
  pmap map;
  int32_t *codes;
  int64_t cap[ONEREC_TOKENIZER_MAX_LEVELS + 1]; /* IDs under a prefix of each length */
  float *dist;  /* host: k */
  float *resid; /* host: dim */
  int32_t key[ONEREC_TOKENIZER_MAX_LEVELS];
} uq;

/* Whether code j at level l is acceptable below key[0..l): a free ID at the last level, a
 * non-full prefix above it. */
static int acceptable(uq *u, int l, int32_t j) {
  int L = u->t->levels;
  u->key[l] = j;
  if (l == L - 1) return pm_get(&u->map, u->key, L) == 0;
  return pm_get(&u->map, u->key, l + 1) < u->cap[l + 1];
}

/* The nearest acceptable code for ranking scores d (k of them, destroyed), ties to the lower
 * code; -1 if none (never, given the fullness invariant). */
static int32_t pick(uq *u, int l, float *d) {
  for (int tries = 0; tries < u->t->k; tries++) {
    int32_t best = -1;
    for (int32_t j = 0; j < u->t->k; j++)
      if (d[j] != INFINITY && (best < 0 || d[j] < d[best])) best = j;
    if (best < 0) return -1;
    if (acceptable(u, l, best)) return best;
    d[best] = INFINITY;
  }
  return -1;
}

/* Host path: keep codes[0..p) of the item and choose levels p..L-1 greedily. */
static onerec_status descend_host(uq *u, const float *x, int32_t *c, int p) {
  onerec_tokenizer *t = u->t;
  int64_t dim = t->dim;
  memcpy(u->resid, x, (size_t)dim * sizeof(float));
  for (int l = 0; l < t->levels; l++) {
    if (l >= p) {
      const float *cb = t->codebooks + (size_t)l * (size_t)t->k * (size_t)dim;
      for (int32_t j = 0; j < t->k; j++) {
        double s = 0;
        for (int64_t e = 0; e < dim; e++) {
          double d = (double)u->resid[e] - (double)cb[j * dim + e];
          s += d * d;
        }
        u->dist[j] = (float)s;
      }
      memcpy(u->key, c, (size_t)l * sizeof *c);
      int32_t j = pick(u, l, u->dist);
      if (j < 0)
        return orx_fail(ONEREC_ERR_INTERNAL, "onerec_tokenizer_encode_unique: no free ID found");
      c[l] = j;
    }
    const float *cl = t->codebooks + ((size_t)l * (size_t)t->k + (size_t)c[l]) * (size_t)dim;
    for (int64_t e = 0; e < dim; e++) u->resid[e] -= cl[e];
  }
  return ONEREC_OK;
}

/* Device buffers for ranking a block of movers' last level. */
typedef struct mv_block {
  float *r;     /* device: rows x dim */
  int32_t *idx; /* device: rows */
  float *dots;  /* device: rows x k */
  float *h_dots;
  int32_t *h_idx;
  int64_t rows;
} mv_block;

static void mv_free(onerec_context *ctx, mv_block *b) {
  orx_dev_free(ctx, b->r);
  orx_dev_free(ctx, b->idx);
  orx_dev_free(ctx, b->dots);
  orx_host_free(ctx, b->h_dots);
  orx_host_free(ctx, b->h_idx);
}

/* dots[i, j] = r_i . c_j for the last level, r_i the residual of mover i above the last level
 * under its current codes. */
static onerec_status rank_block(uq *u, mv_block *b, const float *x, const int64_t *movers,
                                int64_t m) {
  onerec_tokenizer *t = u->t;
  onerec_context *ctx = t->ctx;
  int64_t dim = t->dim, k = t->k;
  int L = t->levels;
  onerec_status s = ONEREC_OK;
  for (int64_t i = 0; !s && i < m; i++)
    s = orx_dev_copy(ctx, b->r + i * dim, x + movers[i] * dim, (size_t)dim * sizeof(float),
                     ORX_COPY_H2D);
  for (int l = 0; !s && l < L - 1; l++) {
    for (int64_t i = 0; i < m; i++) b->h_idx[i] = u->codes[movers[i] * L + l];
    s = orx_dev_copy(ctx, b->idx, b->h_idx, (size_t)m * sizeof(int32_t), ORX_COPY_H2D);
    if (!s)
      s = ORX_OP(&ctx->be, gather_axpy, b->r, dim,
                 t->d_codebooks + (size_t)l * (size_t)k * (size_t)dim, b->idx, m, dim, k, -1.0f);
  }
  if (s) return s;
  orx_matmul_args a = {.trans_a = 0, .trans_b = 1, .batch = 1, .m = m, .n = k, .k = dim,
                       .a = b->r, .lda = dim,
                       .b = t->d_codebooks + (size_t)(L - 1) * (size_t)k * (size_t)dim,
                       .ldb = dim, .c = b->dots, .ldc = k, .alpha = 1.0f, .beta = 0.0f,
                       .dtype = ONEREC_F32};
  s = ORX_OP(&ctx->be, matmul, &a);
  if (!s)
    s = orx_dev_copy(ctx, b->h_dots, b->dots, (size_t)(m * k) * sizeof(float), ORX_COPY_D2H);
  if (s) return s;
  /* ||r||^2 is the same for every code of a row: cnorm - 2 r.c ranks them */
  const float *cb = t->codebooks + (size_t)(L - 1) * (size_t)k * (size_t)dim;
  for (int32_t j = 0; j < k; j++) {
    double cn = 0;
    for (int64_t e = 0; e < dim; e++) cn += (double)cb[j * dim + e] * (double)cb[j * dim + e];
    for (int64_t i = 0; i < m; i++) b->h_dots[i * k + j] = (float)cn - 2.0f * b->h_dots[i * k + j];
  }
  return ONEREC_OK;
}

static int64_t run_end(const int32_t *codes, const int32_t *order, int64_t n, int64_t a, int L) {
  int64_t b = a + 1;
  while (b < n && !memcmp(codes + (int64_t)order[a] * L, codes + (int64_t)order[b] * L,
                          (size_t)L * sizeof(int32_t)))
    b++;
  return b;
}

/* Marks every item but the keeper of each shared ID as a mover; returns how many. */
static int64_t find_movers(onerec_tokenizer *t, const int32_t *codes, int64_t n,
                           const float *res_rows, uint8_t *mover, int32_t *order, int32_t *tmp,
                           int64_t *count) {
  orx_tok_sort_codes(codes, n, t->levels, t->k, order, tmp, count);
  int64_t movers = 0;
  memset(mover, 0, (size_t)n);
  for (int64_t a = 0; a < n;) {
    int64_t b = run_end(codes, order, n, a, t->levels);
    if (b - a > 1) {
      int64_t keep = a; /* items of a run are in item order: the first smallest residual wins */
      for (int64_t i = a + 1; i < b; i++)
        if (res_rows[order[i]] < res_rows[order[keep]]) keep = i;
      for (int64_t i = a; i < b; i++)
        if (i != keep) mover[order[i]] = 1;
      movers += b - a - 1;
    }
    a = b;
  }
  return movers;
}

static onerec_status resolve(uq *u, const float *x, int64_t n, const uint8_t *mover,
                             int64_t n_movers, onerec_tokenizer_unique_report *rep) {
  onerec_tokenizer *t = u->t;
  onerec_context *ctx = t->ctx;
  int L = t->levels;
  int64_t k = t->k;
  int64_t *list = orx_host_alloc(ctx, (size_t)n_movers * sizeof *list);
  mv_block b = {0};
  b.rows = (int64_t)1 << 24 < 256 * k ? ((int64_t)1 << 24) / k : 256;
  if (b.rows < 1) b.rows = 1;
  if (b.rows > n_movers) b.rows = n_movers;
  b.r = orx_dev_alloc(ctx, (size_t)(b.rows * t->dim) * sizeof(float));
  b.idx = orx_dev_alloc(ctx, (size_t)b.rows * sizeof(int32_t));
  b.dots = orx_dev_alloc(ctx, (size_t)(b.rows * k) * sizeof(float));
  b.h_dots = orx_host_alloc(ctx, (size_t)(b.rows * k) * sizeof(float));
  b.h_idx = orx_host_alloc(ctx, (size_t)b.rows * sizeof(int32_t));
  onerec_status s = ONEREC_OK;
  if (!list || !b.r || !b.idx || !b.dots || !b.h_dots || !b.h_idx)
    s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "onerec_tokenizer_encode_unique: out of memory");
  int64_t m = 0;
  for (int64_t i = 0; !s && i < n; i++)
    if (mover[i]) list[m++] = i;
  for (int64_t b0 = 0; !s && b0 < n_movers; b0 += b.rows) {
    int64_t bm = n_movers - b0 < b.rows ? n_movers - b0 : b.rows;
    s = rank_block(u, &b, x, list + b0, bm);
    for (int64_t i = 0; !s && i < bm; i++) {
      int64_t item = list[b0 + i];
      int32_t *c = u->codes + item * L;
      /* deepest prefix that still has a free ID below it */
      int p = L - 1;
      while (p > 0 && pm_get(&u->map, c, p) >= u->cap[p]) p--;
      if (p == L - 1) {
        memcpy(u->key, c, (size_t)(L - 1) * sizeof *c);
        int32_t j = pick(u, L - 1, b.h_dots + i * k);
        if (j < 0)
          s = orx_fail(ONEREC_ERR_INTERNAL, "onerec_tokenizer_encode_unique: no free ID found");
        else
          c[L - 1] = j;
      } else {
        rep->reassigned_upper++;
        s = descend_host(u, x + item * t->dim, c, p);
      }
      if (!s) {
        pm_hold(&u->map, (int32_t)item);
        rep->reassigned++;
      }
    }
  }
  mv_free(ctx, &b);
  orx_host_free(ctx, list);
  return s;
}

ONEREC_API onerec_status onerec_tokenizer_encode_unique(onerec_tokenizer *t, const float *x,
                                                        int64_t n, int32_t *codes,
                                                        onerec_tokenizer_unique_report *report) {
  static const char fn[] = "onerec_tokenizer_encode_unique";
  ORX_CHECK_ARG(t, fn);
  if (n < 0 || n > INT32_MAX)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: n = %lld outside 0..%d", fn, (long long)n,
                    INT32_MAX);
  if (report) {
    size_t rsz;
    memcpy(&rsz, report, sizeof rsz);
    if (rsz < sizeof(size_t))
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "%s: report->sz is %zu; declare it with ONEREC_OPTS", fn, rsz);
  }
  onerec_tokenizer_unique_report rep;
  memset(&rep, 0, sizeof rep);
  rep.sz = sizeof rep;
  if (n == 0) return report ? orx_tok_out(report, &rep, sizeof rep, fn) : ONEREC_OK;
  ORX_CHECK_ARG(x, fn);
  ORX_CHECK_ARG(codes, fn);
  int L = t->levels;
  if (n > ipow_sat(t->k, L))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: %lld items but only %d^%d semantic IDs exist", fn, (long long)n, t->k, L);
  onerec_status s = orx_tok_check_finite(fn, x, n, t->dim);
  if (s) return s;
  onerec_context *ctx = t->ctx;
  float *res_rows = orx_host_alloc(ctx, (size_t)n * sizeof(float));
  int32_t *order = orx_host_alloc(ctx, (size_t)n * sizeof(int32_t));
  int32_t *tmp = orx_host_alloc(ctx, (size_t)n * sizeof(int32_t));
  int64_t *count = orx_host_alloc(ctx, (size_t)(t->k + 1) * sizeof(int64_t));
  uint8_t *mover = orx_host_alloc(ctx, (size_t)n);
  uint64_t cap = 16;
  while (cap < 2 * (uint64_t)n * (uint64_t)L) cap <<= 1;
  uq u = {.t = t, .codes = codes};
  u.map = (pmap){.slot = orx_host_alloc(ctx, cap * sizeof(pslot)), .mask = cap - 1,
                 .codes = codes, .levels = L};
  u.dist = orx_host_alloc(ctx, (size_t)t->k * sizeof(float));
  u.resid = orx_host_alloc(ctx, (size_t)t->dim * sizeof(float));
  if (!res_rows || !order || !tmp || !count || !mover || !u.map.slot || !u.dist || !u.resid) {
    s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld items", fn, (long long)n);
    goto done;
  }
  for (uint64_t i = 0; i < cap; i++) u.map.slot[i].item = -1;
  for (int len = 0; len <= L; len++) u.cap[len] = ipow_sat(t->k, L - len);
  double xs = 0, rs = 0;
  s = orx_tok_encode_rows(t, x, n, codes, &xs, &rs, res_rows);
  if (s) goto done;
  rep.loss_before = xs > 0 ? rs / xs : NAN;
  int64_t n_movers = find_movers(t, codes, n, res_rows, mover, order, tmp, count);
  for (int64_t i = 0; i < n; i++)
    if (!mover[i]) pm_hold(&u.map, (int32_t)i);
  if (n_movers > 0) {
    s = resolve(&u, x, n, mover, n_movers, &rep);
    if (!s) s = orx_tok_residual_sq(t, x, codes, n, &xs, &rs);
    if (s) goto done;
  }
  rep.loss_after = xs > 0 ? rs / xs : NAN;
  orx_log(ctx, ONEREC_LOG_INFO,
          "tokenizer: %lld of %lld items moved to free semantic IDs (%lld above the last "
          "level); loss %.6f -> %.6f",
          (long long)rep.reassigned, (long long)n, (long long)rep.reassigned_upper,
          rep.loss_before, rep.loss_after);
  if (report) s = orx_tok_out(report, &rep, sizeof rep, fn);
done:
  orx_host_free(ctx, res_rows);
  orx_host_free(ctx, order);
  orx_host_free(ctx, tmp);
  orx_host_free(ctx, count);
  orx_host_free(ctx, mover);
  orx_host_free(ctx, u.map.slot);
  orx_host_free(ctx, u.dist);
  orx_host_free(ctx, u.resid);
  return s;
}
