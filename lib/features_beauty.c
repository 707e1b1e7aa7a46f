/* Item features for the Amazon Beauty data: Beauty_items.tsv reader, TF-IDF text block, Swing
 * collaborative block, and the HDF5 features file (recipe in onerec/collab.h). */
#include "features_beauty.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data_seq.h"
#include "h5io.h"
#include "swing.h"
#include "util.h"

#define FEATURES_FORMAT_VERSION 1

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* MurmurHash3's 64-bit finaliser: spreads every input bit over the output. */
static uint64_t fmix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

/* ---- Beauty_items.tsv ---- */

void orx_item_text_free(orx_item_text *t) {
  if (!t || !t->ctx) return;
  orx_host_free(t->ctx, t->ids);
  orx_host_free(t->ctx, t->tok_off);
  orx_host_free(t->ctx, t->tok);
  orx_host_free(t->ctx, t->attr_off);
  orx_host_free(t->ctx, t->attr);
  memset(t, 0, sizeof *t);
}

/* FNV-1a over a kind byte and the token, finished with a 64-bit mixer. */
static uint64_t token_hash(char kind, const char *p, size_t n, int lower) {
  uint64_t h = 0xcbf29ce484222325ull;
  h = (h ^ (unsigned char)kind) * 0x100000001b3ull;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (lower && c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
    h = (h ^ c) * 0x100000001b3ull;
  }
  return fmix64(h);
}

static int word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}


typedef struct field {
  const char *p;
  size_t n;
} field;

/* Splits [p, e) at tabs into at most max fields; returns the count (max + 1 if more). */
static int split_tabs(const char *p, const char *e, field *f, int max) {
  int k = 0;
  const char *s = p;
  for (const char *q = p;; q++) {
    if (q == e || *q == '\t') {
      if (k < max) f[k] = (field){s, (size_t)(q - s)};
      k++;
      if (q == e) break;
      s = q + 1;
    }
  }
  return k > max ? max + 1 : k;
}

typedef struct id_line {
  int64_t id, line;
} id_line;

static int cmp_id_line(const void *a, const void *b) {
  const id_line *x = a, *y = b;
  if (x->id != y->id) return x->id < y->id ? -1 : 1;
  return (x->line > y->line) - (x->line < y->line);
}

#define TSV_MAX_FIELDS 64

onerec_status orx_items_tsv_parse(const onerec_context *ctx, const char *name, const char *text,
                                  size_t len, orx_item_text *out) {
  memset(out, 0, sizeof *out);
  out->ctx = ctx;
  const char *end = text + len;
  /* header */
  const char *eol = memchr(text, '\n', len);
  const char *h_end = eol ? eol : end;
  if (h_end > text && h_end[-1] == '\r') h_end--;
  field f[TSV_MAX_FIELDS + 1];
  int nh = split_tabs(text, h_end, f, TSV_MAX_FIELDS);
  if (nh > TSV_MAX_FIELDS)
    return orx_fail(ONEREC_ERR_FORMAT, "%s:1: more than %d columns", name, TSV_MAX_FIELDS);
  int col_id = -1, col_attr = -1, col_title = -1;
  for (int k = 0; k < nh; k++) {
    if (f[k].n == 7 && !memcmp(f[k].p, "item_id", 7)) col_id = k;
    if (f[k].n == 10 && !memcmp(f[k].p, "attributes", 10)) col_attr = k;
    if (f[k].n == 5 && !memcmp(f[k].p, "title", 5)) col_title = k;
  }
  if (col_id < 0 || col_attr < 0 || col_title < 0)
    return orx_fail(ONEREC_ERR_FORMAT,
                    "%s:1: the header must name the columns item_id, attributes and title "
                    "(tab-separated); missing %s",
                    name,
                    col_id < 0     ? "item_id"
                    : col_attr < 0 ? "attributes"
                                   : "title");
  /* upper bounds: lines, and tokens (every token needs a byte) */
  size_t lines = 0;
  for (const char *p = text; p < end; p++) lines += *p == '\n';
  lines++;
  out->ids = orx_host_alloc(ctx, lines * sizeof(int64_t));
  out->tok_off = orx_host_alloc(ctx, (lines + 1) * sizeof(int64_t));
  out->tok = orx_host_alloc(ctx, (len + 1) * sizeof(uint64_t));
  out->attr_off = orx_host_alloc(ctx, (lines + 1) * sizeof(int64_t));
  out->attr = orx_host_alloc(ctx, (len + 1) * sizeof(int64_t));
  id_line *il = malloc(lines * sizeof *il);
  onerec_status s = ONEREC_OK;
  if (!out->ids || !out->tok_off || !out->tok || !out->attr_off || !out->attr || !il) {
    s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    goto done;
  }
  int64_t n = 0, nt = 0, na = 0, line = 1;
  out->tok_off[0] = 0;
  out->attr_off[0] = 0;
  for (const char *p = eol ? eol + 1 : end; p < end;) {
    line++;
    const char *e = memchr(p, '\n', (size_t)(end - p));
    if (!e) e = end;
    const char *le = e > p && e[-1] == '\r' ? e - 1 : e;
    const char *next = e < end ? e + 1 : end;
    int blank = 1;
    for (const char *q = p; q < le; q++)
      if (*q != ' ' && *q != '\t') blank = 0;
    if (blank) {
      p = next;
      continue;
    }
    int nf = split_tabs(p, le, f, TSV_MAX_FIELDS);
    if (nf != nh) {
      s = orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: %d tab-separated fields, the header has %d", name,
                   (long long)line, nf, nh);
      goto done;
    }
    int64_t id;
    if (orx_parse_u63(f[col_id].p, f[col_id].p + f[col_id].n, &id)) {
      s = orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: item_id '%.*s' is not a non-negative integer", name,
                   (long long)line, (int)(f[col_id].n > 32 ? 32 : f[col_id].n), f[col_id].p);
      goto done;
    }
    out->ids[n] = id;
    il[n] = (id_line){id, line};
    /* attributes: comma-separated ids, possibly none */
    const char *a = f[col_attr].p, *ae = a + f[col_attr].n;
    while (a < ae) {
      const char *c = a;
      while (c < ae && *c != ',') c++;
      const char *t0 = a, *t1 = c;
      while (t0 < t1 && *t0 == ' ') t0++;
      while (t1 > t0 && t1[-1] == ' ') t1--;
      int64_t attr;
      if (t0 < t1) {
        if (orx_parse_u63(t0, t1, &attr)) {
          s = orx_fail(ONEREC_ERR_FORMAT,
                       "%s:%lld: item %lld: attribute '%.*s' is not a non-negative integer", name,
                       (long long)line, (long long)id, (int)(t1 - t0 > 32 ? 32 : t1 - t0), t0);
          goto done;
        }
        out->tok[nt++] = token_hash('a', t0, (size_t)(t1 - t0), 0);
        out->attr[na++] = attr;
      }
      a = c + 1;
    }
    /* title words */
    const char *w = f[col_title].p, *we = w + f[col_title].n;
    while (w < we) {
      while (w < we && !word_byte((unsigned char)*w)) w++;
      const char *w0 = w;
      while (w < we && word_byte((unsigned char)*w)) w++;
      if (w > w0) out->tok[nt++] = token_hash('w', w0, (size_t)(w - w0), 1);
    }
    out->tok_off[++n] = nt;
    out->attr_off[n] = na;
    p = next;
  }
  out->n = n;
  qsort(il, (size_t)n, sizeof *il, cmp_id_line);
  for (int64_t k = 1; k < n; k++)
    if (il[k].id == il[k - 1].id) {
      s = orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: item %lld already defined on line %lld", name,
                   (long long)il[k].line, (long long)il[k].id, (long long)il[k - 1].line);
      goto done;
    }
done:
  free(il);
  if (s) {
    orx_item_text_free(out);
    out->ctx = ctx;
  }
  return s;
}

onerec_status orx_items_tsv_read(const onerec_context *ctx, const char *path, orx_item_text *out) {
  memset(out, 0, sizeof *out);
  out->ctx = ctx;
  char *buf = NULL;
  size_t len = 0;
  onerec_status s = orx_read_whole_file(ctx, path, &buf, &len);
  if (s) return s;
  s = orx_items_tsv_parse(ctx, path, buf, len, out);
  orx_host_free(ctx, buf);
  return s;
}

/* ---- text block ---- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static void l2_normalise(float *x, int dim) {
  double ss = 0;
  for (int k = 0; k < dim; k++) ss += (double)x[k] * x[k];
  if (ss > 0) {
    float inv = (float)(1.0 / sqrt(ss));
    for (int k = 0; k < dim; k++) x[k] *= inv;
  }
}

onerec_status orx_text_features(const orx_item_text *t, int dim, float *out, int64_t *vocab) {
  const onerec_context *ctx = t->ctx;
  const int64_t ntok = t->tok_off[t->n];
  uint64_t *tok = orx_host_alloc(ctx, (size_t)(ntok ? ntok : 1) * sizeof *tok);
  uint64_t *uniq = orx_host_alloc(ctx, (size_t)(ntok ? ntok : 1) * sizeof *uniq);
  int64_t *df = orx_host_alloc(ctx, (size_t)(ntok ? ntok : 1) * sizeof *df);
  if (!tok || !uniq || !df) {
    orx_host_free(ctx, tok);
    orx_host_free(ctx, uniq);
    orx_host_free(ctx, df);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "text features: out of memory");
  }
  /* tokens sorted within each item, so repeats (term frequency) are runs */
  memcpy(tok, t->tok, (size_t)ntok * sizeof *tok);
  int64_t nu = 0;
  for (int64_t i = 0; i < t->n; i++) {
    uint64_t *r = tok + t->tok_off[i];
    int64_t rn = t->tok_off[i + 1] - t->tok_off[i];
    qsort(r, (size_t)rn, sizeof *r, cmp_u64);
    for (int64_t k = 0; k < rn; k++)
      if (k == 0 || r[k] != r[k - 1]) uniq[nu++] = r[k];
  }
  /* document frequency: runs of the sorted per-item-distinct tokens */
  qsort(uniq, (size_t)nu, sizeof *uniq, cmp_u64);
  int64_t nv = 0;
  for (int64_t k = 0; k < nu; k++) {
    if (nv > 0 && uniq[nv - 1] == uniq[k]) {
      df[nv - 1]++;
    } else {
      uniq[nv] = uniq[k];
      df[nv++] = 1;
    }
  }
  if (vocab) *vocab = nv;
  const double N = (double)t->n;
  for (int64_t i = 0; i < t->n; i++) {
    float *x = out + (size_t)i * (size_t)dim;
    memset(x, 0, (size_t)dim * sizeof *x);
    const uint64_t *r = tok + t->tok_off[i];
    int64_t rn = t->tok_off[i + 1] - t->tok_off[i];
    for (int64_t k = 0; k < rn;) {
      int64_t e = k + 1;
      while (e < rn && r[e] == r[k]) e++;
      /* binary search of the token's df */
      int64_t lo = 0, hi = nv;
      while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (uniq[mid] < r[k])
          lo = mid + 1;
        else
          hi = mid;
      }
      double idf = log((1.0 + N) / (1.0 + (double)df[lo])) + 1.0;
      double tf = 1.0 + log((double)(e - k));
      /* bucket and sign from bits the identity hash does not use the same way */
      uint64_t hb = fmix64(r[k] ^ 0x5bd1e9955bd1e995ull);
      int bucket = (int)((hb >> 1) % (uint64_t)dim);
      x[bucket] += (float)((hb & 1) ? -tf * idf : tf * idf);
      k = e;
    }
    l2_normalise(x, dim);
  }
  orx_host_free(ctx, tok);
  orx_host_free(ctx, uniq);
  orx_host_free(ctx, df);
  return ONEREC_OK;
}

/* ---- collaborative block ---- */

#define COOC_MAX_USERS 50
#define COOC_MAX_ITEMS 50

/* x += scale * r(item), r a fixed +-1 vector per (seed, item). */
static void add_projection(float *x, int dim, uint64_t seed, int64_t item, float scale) {
  uint64_t s = fmix64(seed ^ fmix64((uint64_t)item + 0x632BE59BD9B4E019ull));
  uint64_t bits = 0;
  for (int k = 0; k < dim; k++) {
    if ((k & 63) == 0) bits = orx_splitmix64(&s);
    x[k] += (bits >> (k & 63)) & 1 ? scale : -scale;
  }
}

onerec_status orx_collab_features(const onerec_collab *c, int64_t n_users, const int64_t *train_off,
                                  const int64_t *train_items, int64_t n, const int64_t *ids,
                                  int dim, uint64_t seed, float *out, int64_t *with_swing,
                                  int64_t *with_cooc) {
  const onerec_context *ctx = c->ctx;
  const int64_t m = c->n_items, total = train_off ? train_off[n_users] : 0;
  int64_t ws = 0, wc = 0;
  /* for the fallback: dense index of every training interaction, and each item's distinct
   * training users (CSR, ascending) */
  int64_t *iu_off = NULL, *pos = NULL;
  int32_t *iu = NULL, *tidx = NULL, *last = NULL;
  double *wt = NULL;
  if (train_off) {
    iu_off = orx_host_alloc(ctx, (size_t)(m + 1) * sizeof *iu_off);
    pos = orx_host_alloc(ctx, (size_t)(m + 1) * sizeof *pos);
    last = orx_host_alloc(ctx, (size_t)(m + 1) * sizeof *last);
    wt = orx_host_alloc(ctx, (size_t)(m + 1) * sizeof *wt);
    iu = orx_host_alloc(ctx, (size_t)(total + 1) * sizeof *iu);
    tidx = orx_host_alloc(ctx, (size_t)(total + 1) * sizeof *tidx);
    if (!iu_off || !pos || !last || !wt || !iu || !tidx) {
      orx_host_free(ctx, iu_off);
      orx_host_free(ctx, pos);
      orx_host_free(ctx, last);
      orx_host_free(ctx, wt);
      orx_host_free(ctx, iu);
      orx_host_free(ctx, tidx);
      return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "collaborative features: out of memory");
    }
    for (int64_t k = 0; k < total; k++) tidx[k] = (int32_t)orx_collab_index(c, train_items[k]);
    memset(iu_off, 0, (size_t)(m + 1) * sizeof *iu_off);
    memset(wt, 0, (size_t)(m + 1) * sizeof *wt);
    for (int64_t d = 0; d < m; d++) last[d] = -1;
    for (int64_t u = 0; u < n_users; u++)
      for (int64_t k = train_off[u]; k < train_off[u + 1]; k++)
        if (tidx[k] >= 0 && last[tidx[k]] != (int32_t)u) {
          last[tidx[k]] = (int32_t)u;
          iu_off[tidx[k] + 1]++;
        }
    for (int64_t d = 0; d < m; d++) {
      iu_off[d + 1] += iu_off[d];
      pos[d] = iu_off[d];
      last[d] = -1;
    }
    for (int64_t u = 0; u < n_users; u++)
      for (int64_t k = train_off[u]; k < train_off[u + 1]; k++)
        if (tidx[k] >= 0 && last[tidx[k]] != (int32_t)u) {
          last[tidx[k]] = (int32_t)u;
          iu[pos[tidx[k]]++] = (int32_t)u;
        }
  }
  for (int64_t i = 0; i < n; i++) {
    float *x = out + (size_t)i * (size_t)dim;
    memset(x, 0, (size_t)dim * sizeof *x);
    const int64_t d = orx_collab_index(c, ids[i]);
    if (d < 0) continue; /* never seen in training: zero block */
    if (c->nb_off[d + 1] > c->nb_off[d]) {
      ws++;
      add_projection(x, dim, seed, ids[i], 1.0f);
      const float best = c->nb_score[c->nb_off[d]];
      for (int64_t k = c->nb_off[d]; k < c->nb_off[d + 1]; k++)
        add_projection(x, dim, seed, c->nb_ids[k], c->nb_score[k] / best);
    } else if (iu) {
      add_projection(x, dim, seed, ids[i], 1.0f);
      /* pass 0 sums the co-occurrence weights, pass 1 projects and clears them; both visit
       * the same interactions in the same order */
      double best = 0;
      for (int pass = 0; pass < 2; pass++) {
        const int64_t ue =
            iu_off[d + 1] - iu_off[d] > COOC_MAX_USERS ? iu_off[d] + COOC_MAX_USERS : iu_off[d + 1];
        for (int64_t a = iu_off[d]; a < ue; a++) {
          const int64_t u = iu[a], b = train_off[u], e = train_off[u + 1];
          const int64_t lo = e - b > COOC_MAX_ITEMS ? e - COOC_MAX_ITEMS : b;
          const double w = 1.0 / sqrt((double)(e - b));
          for (int64_t k = lo; k < e; k++) {
            const int32_t j = tidx[k];
            if (j < 0 || j == d) continue;
            if (pass == 0) {
              wt[j] += w;
              if (wt[j] > best) best = wt[j];
            } else if (wt[j] > 0) {
              add_projection(x, dim, seed, c->item_ids[j], (float)(wt[j] / best));
              wt[j] = 0;
            }
          }
        }
        if (best == 0) break;
      }
      if (best > 0)
        wc++;
      else
        memset(x, 0, (size_t)dim * sizeof *x); /* nothing co-occurs: no signal, no noise */
    }
    l2_normalise(x, dim);
  }
  orx_host_free(ctx, iu_off);
  orx_host_free(ctx, pos);
  orx_host_free(ctx, last);
  orx_host_free(ctx, wt);
  orx_host_free(ctx, iu);
  orx_host_free(ctx, tidx);
  if (with_swing) *with_swing = ws;
  if (with_cooc) *with_cooc = wc;
  return ONEREC_OK;
}

/* ---- the build ---- */

void orx_features_free(orx_features *f) {
  if (!f || !f->ctx) return;
  orx_host_free(f->ctx, f->ids);
  orx_host_free(f->ctx, f->x);
  memset(f, 0, sizeof *f);
}

onerec_status orx_features_beauty_build(onerec_context *ctx, const char *data_dir,
                                        const onerec_beauty_features_opts *opts, orx_features *out,
                                        onerec_features_report *rep) {
  const double t0 = now_s();
  memset(out, 0, sizeof *out);
  out->ctx = ctx;
  onerec_beauty_features_opts o;
  memset(&o, 0, sizeof o);
  o.sz = sizeof o;
  if (opts) {
    onerec_status s = orx_opts_read(&o, sizeof o, opts, "onerec_features_beauty");
    if (s) return s;
  }
  const int text_dim = o.text_dim ? o.text_dim : 256;
  const int collab_dim = o.collab_dim == 0 ? 128 : (o.collab_dim < 0 ? 0 : o.collab_dim);
  const float cw = o.collab_weight == 0 ? 1.0f : o.collab_weight;
  if (text_dim < 1 || text_dim > (1 << 20) || collab_dim > (1 << 20) || o.collab_dim < -1)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_features_beauty: text_dim = %d, collab_dim = %d (expected 1..2^20, "
                    "and -1 or 0..2^20)",
                    o.text_dim, o.collab_dim);
  if (!(cw > 0) || !isfinite(cw))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_features_beauty: collab_weight = %g (expected > 0)", (double)cw);
  onerec_collab_opts co;
  memset(&co, 0, sizeof co);
  if (o.collab) {
    onerec_status s = orx_opts_read(&co, sizeof co, o.collab, "onerec_features_beauty (collab)");
    if (s) return s;
  }
  co.sz = sizeof co;
  co.holdout_last = 2; /* leave-one-out: validation and test targets never reach the features */

  char path[4096];
  orx_item_text text;
  orx_seq_data seq;
  memset(&text, 0, sizeof text);
  memset(&seq, 0, sizeof seq);
  onerec_collab *collab = NULL;
  float *tx = NULL, *cx = NULL;
  int64_t *train_off = NULL, *train_items = NULL;
  onerec_status s;
  snprintf(path, sizeof path, "%s/Beauty_items.tsv", data_dir);
  s = orx_items_tsv_read(ctx, path, &text);
  if (s) goto done;
  orx_log(ctx, ONEREC_LOG_INFO, "features: %lld items read from %s", (long long)text.n, path);
  snprintf(path, sizeof path, "%s/Beauty.txt", data_dir);
  s = orx_seq_read(ctx, path, &seq);
  if (s) goto done;
  orx_log(ctx, ONEREC_LOG_INFO, "features: %lld users, %lld interactions read from %s",
          (long long)seq.n_users, (long long)seq.n_items_total, path);

  const int64_t n = text.n;
  const int dim = text_dim + collab_dim;
  out->ids = orx_host_alloc(ctx, (size_t)(n ? n : 1) * sizeof(int64_t));
  out->x = orx_host_alloc(ctx, (size_t)(n ? n : 1) * (size_t)dim * sizeof(float));
  tx = orx_host_alloc(ctx, (size_t)(n ? n : 1) * (size_t)text_dim * sizeof(float));
  cx = orx_host_alloc(ctx,
                      (size_t)(n ? n : 1) * (size_t)(collab_dim ? collab_dim : 1) * sizeof(float));
  if (!out->ids || !out->x || !tx || !cx) {
    s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "onerec_features_beauty: out of memory (%lld x %d)",
                 (long long)n, dim);
    goto done;
  }
  memcpy(out->ids, text.ids, (size_t)n * sizeof(int64_t));
  int64_t vocab = 0;
  s = orx_text_features(&text, text_dim, tx, &vocab);
  if (s) goto done;
  orx_log(ctx, ONEREC_LOG_INFO, "features: text block %d dims, vocabulary %lld", text_dim,
          (long long)vocab);

  double swing_s = 0;
  int64_t with_nb = 0, with_cooc = 0;
  if (collab_dim > 0) {
    const double ts = now_s();
    s = onerec_collab_mine(ctx, (size_t)seq.n_users, seq.offsets, seq.items, &co, &collab);
    swing_s = now_s() - ts;
    if (!s) s = orx_seq_train_csr(&seq, &train_off, &train_items);
    if (!s)
      s = orx_collab_features(collab, seq.n_users, train_off, train_items, n, text.ids, collab_dim,
                              o.seed, cx, &with_nb, &with_cooc);
    if (s) goto done;
    orx_log(ctx, ONEREC_LOG_INFO,
            "features: Swing over %lld training interactions in %.2f s; %lld items have Swing "
            "neighbours, %lld more co-occurrences only, %lld neither; collab block %d dims",
            (long long)collab->train_interactions, swing_s, (long long)with_nb,
            (long long)with_cooc, (long long)(n - with_nb - with_cooc), collab_dim);
  }
  for (int64_t i = 0; i < n; i++) {
    float *x = out->x + (size_t)i * (size_t)dim;
    memcpy(x, tx + (size_t)i * (size_t)text_dim, (size_t)text_dim * sizeof(float));
    for (int k = 0; k < collab_dim; k++)
      x[text_dim + k] = cw * cx[(size_t)i * (size_t)collab_dim + (size_t)k];
    l2_normalise(x, dim);
  }
  out->n = n;
  out->dim = dim;
  out->text_dim = text_dim;
  out->collab_dim = collab_dim;
  if (rep) {
    memset(rep, 0, sizeof *rep);
    rep->sz = sizeof *rep;
    rep->items = n;
    rep->dim = dim;
    rep->text_dim = text_dim;
    rep->collab_dim = collab_dim;
    rep->users = seq.n_users;
    rep->train_interactions = collab ? collab->train_interactions : 0;
    rep->vocabulary = vocab;
    rep->items_with_neighbors = with_nb;
    rep->items_with_cooccurrence = with_cooc;
    rep->pairs = collab ? collab->n_pairs : 0;
    rep->swing_seconds = swing_s;
    rep->seconds = now_s() - t0;
  }
done:
  orx_item_text_free(&text);
  orx_seq_free(&seq);
  onerec_collab_free(collab);
  orx_host_free(ctx, train_off);
  orx_host_free(ctx, train_items);
  orx_host_free(ctx, tx);
  orx_host_free(ctx, cx);
  if (s) {
    orx_features_free(out);
    out->ctx = ctx;
  }
  return s;
}

ONEREC_API onerec_status onerec_features_beauty(onerec_context *ctx, const char *data_dir,
                                                const char *out_path,
                                                const onerec_beauty_features_opts *opts,
                                                onerec_features_report *report) {
  ORX_CHECK_ARG(ctx, "onerec_features_beauty");
  ORX_CHECK_ARG(data_dir, "onerec_features_beauty");
  ORX_CHECK_ARG(out_path, "onerec_features_beauty");
  size_t rep_sz = 0;
  if (report) {
    memcpy(&rep_sz, report, sizeof rep_sz);
    if (rep_sz < sizeof(size_t))
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "onerec_features_beauty: report.sz is %zu; declare it with ONEREC_OPTS",
                      rep_sz);
  }
  const double t0 = now_s();
  orx_features f;
  onerec_features_report rep;
  onerec_status s = orx_features_beauty_build(ctx, data_dir, opts, &f, &rep);
  if (s) return s;
  orx_h5 h;
  s = orx_h5_create(&h, out_path);
  if (!s) {
    s = orx_h5_stamp(&h, "features", FEATURES_FORMAT_VERSION);
    if (!s)
      s = orx_h5_write(&h, h.file, "features", ORX_H5_F32, 2, (const int64_t[]){f.n, f.dim}, f.x);
    if (!s) s = orx_h5_write(&h, h.file, "item_ids", ORX_H5_I64, 1, (const int64_t[]){f.n}, f.ids);
    if (!s) s = orx_h5_attr_write_i64(&h, h.file, "text_dim", f.text_dim);
    if (!s) s = orx_h5_attr_write_i64(&h, h.file, "collab_dim", f.collab_dim);
    if (!s) s = orx_h5_attr_write_str(&h, h.file, "source", "amazon-beauty");
    if (!s)
      s = orx_h5_commit(&h);
    else
      orx_h5_abort(&h);
  }
  orx_features_free(&f);
  if (s) return s;
  orx_log(ctx, ONEREC_LOG_INFO, "features: wrote %s", out_path);
  if (report) {
    rep.seconds = now_s() - t0;
    rep.sz = rep_sz;
    memcpy(report, &rep, rep_sz < sizeof rep ? rep_sz : sizeof rep);
  }
  return ONEREC_OK;
}
