/* RecBole atomic files (https://recbole.io/docs/user_guide/data/atomic_files.html): tab-separated
 * text with a typed header `name:type` (token, token_seq, float, float_seq). NAME.inter gives
 * the interactions, NAME.user the users' static features, NAME.item the items' tags. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data_seq.h"
#include "dataset_impl.h"
#include "util.h"

#define MAX_COLS 64

typedef enum col_type { T_TOKEN, T_TOKEN_SEQ, T_FLOAT, T_FLOAT_SEQ } col_type;

typedef struct field {
  const char *p;
  size_t n;
} field;

typedef struct header {
  int n;
  field name[MAX_COLS];
  col_type type[MAX_COLS];
} header;

/* A cursor over the lines of a text, counting them from 1; a trailing \r is dropped. */
typedef struct lines {
  const char *text;
  size_t len, pos;
  int64_t no;
} lines;

static int next_line(lines *l, const char **p, size_t *n) {
  if (l->pos >= l->len) return 0;
  const char *s = l->text + l->pos;
  const char *e = memchr(s, '\n', l->len - l->pos);
  size_t m = e ? (size_t)(e - s) : l->len - l->pos;
  l->pos += m + (e != NULL);
  l->no++;
  if (m && s[m - 1] == '\r') m--;
  *p = s;
  *n = m;
  return 1;
}

/* Splits a line at tabs into at most max fields; returns the count (max + 1 if there are
 * more). */
static int split_tabs(const char *p, size_t n, field *f, int max) {
  int k = 0;
  size_t b = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || p[i] == '\t') {
      if (k == max) return max + 1;
      f[k].p = p + b;
      f[k].n = i - b;
      k++;
      b = i + 1;
    }
  }
  return k;
}

static int is_blank(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != ' ' && p[i] != '\t') return 0;
  return 1;
}

static int field_is(field f, const char *s) { return f.n == strlen(s) && !memcmp(f.p, s, f.n); }

/* A field shown in a message: at most 32 printable characters. */
static void show(field f, char *buf) {
  size_t m = f.n > 32 ? 32 : f.n;
  for (size_t i = 0; i < m; i++) {
    unsigned char c = (unsigned char)f.p[i];
    buf[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  strcpy(buf + m, f.n > 32 ? "..." : "");
}

static onerec_status read_header(lines *l, const char *name, header *h) {
  const char *p;
  size_t n;
  do {
    if (!next_line(l, &p, &n))
      return orx_fail(ONEREC_ERR_FORMAT, "%s: empty file (expected a header `name:type\\t...`)",
                      name);
  } while (is_blank(p, n));
  field f[MAX_COLS + 1];
  int k = split_tabs(p, n, f, MAX_COLS);
  if (k > MAX_COLS)
    return orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: more than %d columns", name, (long long)l->no,
                    MAX_COLS);
  h->n = k;
  static const char *types[] = {"token", "token_seq", "float", "float_seq"};
  for (int i = 0; i < k; i++) {
    char shown[40];
    show(f[i], shown);
    const char *colon = memchr(f[i].p, ':', f[i].n);
    if (!colon || colon == f[i].p)
      return orx_fail(ONEREC_ERR_FORMAT,
                      "%s:%lld: header column %d '%s' is not `name:type` (type token, "
                      "token_seq, float or float_seq)",
                      name, (long long)l->no, i + 1, shown);
    h->name[i] = (field){f[i].p, (size_t)(colon - f[i].p)};
    field t = {colon + 1, f[i].n - (size_t)(colon - f[i].p) - 1};
    int found = -1;
    for (int j = 0; j < 4; j++)
      if (field_is(t, types[j])) found = j;
    if (found < 0)
      return orx_fail(ONEREC_ERR_FORMAT,
                      "%s:%lld: header column '%s' has an unknown type (expected token, "
                      "token_seq, float or float_seq)",
                      name, (long long)l->no, shown);
    h->type[i] = (col_type)found;
    for (int j = 0; j < i; j++)
      if (h->name[j].n == h->name[i].n && !memcmp(h->name[j].p, h->name[i].p, h->name[i].n))
        return orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: column '%s' appears twice", name,
                        (long long)l->no, shown);
  }
  return ONEREC_OK;
}

static int find_col(const header *h, const char *col) {
  for (int i = 0; i < h->n; i++)
    if (field_is(h->name[i], col)) return i;
  return -1;
}

static const char *type_name(col_type t) {
  return t == T_TOKEN ? "token" : t == T_TOKEN_SEQ ? "token_seq" : t == T_FLOAT ? "float"
                                                                                : "float_seq";
}

/* Splits a data line; fails unless it has exactly h->n fields. */
static onerec_status data_fields(const lines *l, const char *name, const header *h, const char *p,
                                 size_t n, field *f) {
  int k = split_tabs(p, n, f, h->n);
  if (k != h->n)
    return orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: %s%d fields, the header has %d", name,
                    (long long)l->no, k > h->n ? "more than " : "", k > h->n ? h->n : k, h->n);
  return ONEREC_OK;
}

static onerec_status parse_id(const lines *l, const char *name, const char *col, field f,
                              int64_t *v) {
  int64_t x = 0;
  int ok = f.n > 0;
  for (size_t i = 0; ok && i < f.n; i++) {
    int d = f.p[i] - '0';
    if (d < 0 || d > 9 || x > (INT64_MAX - d) / 10)
      ok = 0;
    else
      x = x * 10 + d;
  }
  if (!ok) {
    char shown[40];
    show(f, shown);
    return orx_fail(ONEREC_ERR_FORMAT,
                    "%s:%lld: %s '%s' is not a non-negative integer within int64 (libonerec "
                    "needs integer ids)",
                    name, (long long)l->no, col, shown);
  }
  *v = x;
  return ONEREC_OK;
}

static onerec_status parse_num(const lines *l, const char *name, field col, field f, double *v) {
  char buf[64], shown[40], cname[40];
  char *end = NULL;
  if (f.n > 0 && f.n < sizeof buf) {
    memcpy(buf, f.p, f.n);
    buf[f.n] = '\0';
    errno = 0;
    *v = strtod(buf, &end);
  }
  if (f.n == 0 || f.n >= sizeof buf || *end != '\0' || end == buf || !isfinite(*v) ||
      buf[0] == ' ') {
    show(f, shown);
    show(col, cname);
    return orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: %s '%s' is not a finite number", name,
                    (long long)l->no, cname, shown);
  }
  return ONEREC_OK;
}

/* ---- .inter ---- */

typedef struct inter_row {
  int64_t user, item, idx;
  double ts;
  float rating;
} inter_row;

static int cmp_inter(const void *a, const void *b) {
  const inter_row *x = a, *y = b;
  if (x->user != y->user) return x->user < y->user ? -1 : 1;
  if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}



static void *alloc_n(const onerec_context *ctx, int64_t n, size_t size) {
  if (n < 0 || (uint64_t)n > SIZE_MAX / 2 / size) return NULL;
  return orx_host_alloc(ctx, (size_t)(n ? n : 1) * size);
}

static onerec_status parse_inter(onerec_dataset *ds, const char *name, const char *text,
                                 size_t len) {
  lines l = {text, len, 0, 0};
  header h;
  onerec_status s = read_header(&l, name, &h);
  if (s) return s;
  static const char *known[] = {"user_id", "item_id", "rating", "timestamp"};
  static const col_type want[] = {T_TOKEN, T_TOKEN, T_FLOAT, T_FLOAT};
  int col[4];
  for (int k = 0; k < 4; k++) col[k] = find_col(&h, known[k]);
  for (int i = 0; i < h.n; i++) {
    char shown[40];
    show(h.name[i], shown);
    int k = 0;
    while (k < 4 && !field_is(h.name[i], known[k])) k++;
    if (k == 4)
      return orx_fail(ONEREC_ERR_FORMAT,
                      "%s:%lld: unknown column '%s' (known: user_id, item_id, rating, timestamp)",
                      name, (long long)l.no, shown);
    if (h.type[i] != want[k])
      return orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: column %s has type %s, expected %s", name,
                      (long long)l.no, known[k], type_name(h.type[i]), type_name(want[k]));
  }
  if (col[0] < 0 || col[1] < 0)
    return orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: the header lacks %s", name, (long long)l.no,
                    col[0] < 0 ? "user_id:token" : "item_id:token");
  /* every remaining line but blank ones is a row: count them for one allocation */
  size_t cap = 1;
  for (size_t i = l.pos; i < len; i++) cap += text[i] == '\n';
  inter_row *rows = malloc(cap * sizeof *rows);
  if (!rows) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
  int64_t n = 0;
  const char *p;
  size_t m;
  field f[MAX_COLS + 1];
  while (next_line(&l, &p, &m)) {
    if (is_blank(p, m)) continue;
    s = data_fields(&l, name, &h, p, m, f);
    inter_row r = {0, 0, n, 0, 1.0f};
    if (!s) s = parse_id(&l, name, "user_id", f[col[0]], &r.user);
    if (!s) s = parse_id(&l, name, "item_id", f[col[1]], &r.item);
    double v = 0;
    if (!s && col[2] >= 0) {
      s = parse_num(&l, name, h.name[col[2]], f[col[2]], &v);
      if (!s && fabs(v) > 3e38) {
        s = orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: rating %g out of float range", name,
                     (long long)l.no, v);
      }
      r.rating = (float)v;
    }
    if (!s && col[3] >= 0) s = parse_num(&l, name, h.name[col[3]], f[col[3]], &r.ts);
    if (s) {
      free(rows);
      return s;
    }
    rows[n++] = r;
  }
  qsort(rows, (size_t)n, sizeof *rows, cmp_inter);
  int64_t nu = 0;
  for (int64_t i = 0; i < n; i++) nu += i == 0 || rows[i].user != rows[i - 1].user;
  const onerec_context *ctx = ds->ctx;
  ds->n_users = nu;
  ds->n_rows = n;
  ds->user_ids = alloc_n(ctx, nu, sizeof(int64_t));
  ds->offsets = alloc_n(ctx, nu + 1, sizeof(int64_t));
  ds->items = alloc_n(ctx, n, sizeof(int32_t));
  ds->ts = alloc_n(ctx, n, sizeof(double));
  ds->labels = alloc_n(ctx, n, sizeof(float));
  ds->item_ids = alloc_n(ctx, n, sizeof(int64_t));
  if (!ds->user_ids || !ds->offsets || !ds->items || !ds->ts || !ds->labels || !ds->item_ids) {
    free(rows);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld rows", name,
                    (long long)n);
  }
  for (int64_t i = 0; i < n; i++) ds->item_ids[i] = rows[i].item;
  qsort(ds->item_ids, (size_t)n, sizeof(int64_t), orx_cmp_i64);
  int64_t ni = 0;
  for (int64_t i = 0; i < n; i++)
    if (ni == 0 || ds->item_ids[i] != ds->item_ids[ni - 1]) ds->item_ids[ni++] = ds->item_ids[i];
  ds->n_items = ni;
  int64_t u = -1;
  for (int64_t i = 0; i < n; i++) {
    if (i == 0 || rows[i].user != rows[i - 1].user) {
      ds->user_ids[++u] = rows[i].user;
      ds->offsets[u] = i;
    }
    ds->items[i] = (int32_t)orx_find_sorted_i64(ds->item_ids, ni, rows[i].item);
    ds->ts[i] = rows[i].ts;
    ds->labels[i] = rows[i].rating;
  }
  ds->offsets[nu] = n;
  free(rows);
  ds->has_ts = col[3] >= 0;
  ds->has_labels = col[2] >= 0;
  if (ni > INT32_MAX)
    return orx_fail(ONEREC_ERR_FORMAT, "%s: %lld distinct items; at most 2^31-1 supported", name,
                    (long long)ni);
  return orx_ds_finish(ds, name);
}

/* ---- a string -> dense id map (values of a categorical feature, tags) ---- */

typedef struct str_map {
  field *keys;
  int32_t *vals;
  size_t cap, n;
} str_map;

static uint64_t hash_str(field f) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < f.n; i++) h = (h ^ (unsigned char)f.p[i]) * 1099511628211ull;
  return h;
}

static void map_free(str_map *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

/* The id of key, adding it with the next id if new; -1 when out of memory. The key's bytes
 * must outlive the map (they point into the file text). */
static int32_t map_id(str_map *m, field key) {
  if (2 * (m->n + 1) > m->cap) {
    size_t nc = m->cap ? 2 * m->cap : 64;
    field *nk = calloc(nc, sizeof *nk);
    int32_t *nv = malloc(nc * sizeof *nv);
    if (!nk || !nv) {
      free(nk);
      free(nv);
      return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
      if (!m->keys[i].p) continue;
      size_t j = hash_str(m->keys[i]) & (nc - 1);
      while (nk[j].p) j = (j + 1) & (nc - 1);
      nk[j] = m->keys[i];
      nv[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = nk;
    m->vals = nv;
    m->cap = nc;
  }
  size_t j = hash_str(key) & (m->cap - 1);
  while (m->keys[j].p) {
    if (m->keys[j].n == key.n && !memcmp(m->keys[j].p, key.p, key.n)) return m->vals[j];
    j = (j + 1) & (m->cap - 1);
  }
  m->keys[j] = key;
  m->vals[j] = (int32_t)m->n;
  return (int32_t)m->n++;
}

/* ---- .user ---- */

/* MovieLens' age groups: under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56 and over. */
static int32_t age_bucket(double age) {
  static const double lo[] = {18, 25, 35, 45, 50, 56};
  int32_t b = 0;
  while (b < 6 && age >= lo[b]) b++;
  return b;
}

typedef enum ucol_kind { U_SKIP, U_CAT, U_NUM, U_AGE, U_ZIP } ucol_kind;

static onerec_status parse_user(onerec_dataset *ds, const char *name, const char *text,
                                size_t len) {
  lines l = {text, len, 0, 0};
  header h;
  onerec_status s = read_header(&l, name, &h);
  if (s) return s;
  const int uid = find_col(&h, "user_id");
  if (uid < 0 || h.type[uid] != T_TOKEN)
    return orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: the header lacks user_id:token", name,
                    (long long)l.no);
  ucol_kind kind[MAX_COLS];
  int cat_of[MAX_COLS], num_of[MAX_COLS];
  int32_t nc = 0, nn = 0;
  for (int i = 0; i < h.n; i++) {
    char shown[40];
    show(h.name[i], shown);
    kind[i] = U_SKIP;
    cat_of[i] = num_of[i] = -1;
    if (i == uid) continue;
    if (h.type[i] == T_TOKEN_SEQ || h.type[i] == T_FLOAT_SEQ)
      return orx_fail(ONEREC_ERR_FORMAT,
                      "%s:%lld: column '%s': sequence columns are not user features (expected "
                      "token or float)",
                      name, (long long)l.no, shown);
    if (field_is(h.name[i], "age"))
      kind[i] = U_AGE;
    else if (field_is(h.name[i], "zip_code"))
      kind[i] = U_ZIP;
    else
      kind[i] = h.type[i] == T_TOKEN ? U_CAT : U_NUM;
    int want_cat = kind[i] != U_NUM, want_num = kind[i] == U_NUM || kind[i] == U_AGE;
    if (nc + want_cat > ONEREC_MAX_FEATURES || nn + want_num > ONEREC_MAX_FEATURES)
      return orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: more than %d categorical or numeric features",
                      name, (long long)l.no, ONEREC_MAX_FEATURES);
    if (h.name[i].n + 12 >= ORX_DS_NAME_LEN)
      return orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: column name '%s' too long", name,
                      (long long)l.no, shown);
    if (want_cat) {
      cat_of[i] = nc;
      if (kind[i] == U_AGE)
        snprintf(ds->cat_names[nc++], ORX_DS_NAME_LEN, "age_bucket");
      else if (kind[i] == U_ZIP)
        snprintf(ds->cat_names[nc++], ORX_DS_NAME_LEN, "zip_region");
      else
        snprintf(ds->cat_names[nc++], ORX_DS_NAME_LEN, "%.*s", (int)h.name[i].n, h.name[i].p);
    }
    if (want_num) {
      num_of[i] = nn;
      snprintf(ds->num_names[nn++], ORX_DS_NAME_LEN, "%.*s", (int)h.name[i].n, h.name[i].p);
    }
  }
  const int64_t nu = ds->n_users;
  ds->n_cat = nc;
  ds->n_num = nn;
  ds->static_cat = alloc_n(ds->ctx, nu * nc, sizeof(int32_t));
  ds->static_num = alloc_n(ds->ctx, nu * nn, sizeof(float));
  uint8_t *seen = calloc((size_t)(nu ? nu : 1), 1);
  int64_t *seen_line = malloc((size_t)(nu ? nu : 1) * sizeof(int64_t));
  str_map maps[MAX_COLS];
  memset(maps, 0, sizeof maps);
  if (!ds->static_cat || !ds->static_num || !seen || !seen_line) {
    s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    goto done;
  }
  for (int64_t k = 0; k < nu * nc; k++) ds->static_cat[k] = -1;
  for (int64_t k = 0; k < nu * nn; k++) ds->static_num[k] = 0;
  for (int32_t c = 0; c < nc; c++) ds->cat_vocab[c] = 0;
  const char *p;
  size_t m;
  field f[MAX_COLS + 1];
  while (next_line(&l, &p, &m)) {
    if (is_blank(p, m)) continue;
    s = data_fields(&l, name, &h, p, m, f);
    int64_t id = 0, u = -1;
    if (!s) s = parse_id(&l, name, "user_id", f[uid], &id);
    if (s) goto done;
    /* users without interactions are not users of the data set */
    if (onerec_dataset_user_index(ds, id, &u) != ONEREC_OK) continue;
    if (seen[u]) {
      s = orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: user %lld already has a line (line %lld)", name,
                   (long long)l.no, (long long)id, (long long)seen_line[u]);
      goto done;
    }
    seen[u] = 1;
    seen_line[u] = l.no;
    for (int i = 0; i < h.n; i++) {
      if (kind[i] == U_SKIP || f[i].n == 0) continue; /* empty: missing */
      double v = 0;
      int32_t id32 = -2;
      if (kind[i] == U_NUM || kind[i] == U_AGE) {
        s = parse_num(&l, name, h.name[i], f[i], &v);
        if (s) goto done;
        if (fabs(v) > 3e38) {
          s = orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: value %g out of float range", name,
                       (long long)l.no, v);
          goto done;
        }
        ds->static_num[u * nn + num_of[i]] = (float)v;
      }
      if (kind[i] == U_AGE) {
        id32 = age_bucket(v);
        ds->cat_vocab[cat_of[i]] = 7;
      } else if (kind[i] == U_ZIP) {
        id32 = map_id(&maps[i], (field){f[i].p, 1});
      } else if (kind[i] == U_CAT) {
        id32 = map_id(&maps[i], f[i]);
      }
      if (id32 == -1) {
        s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
        goto done;
      }
      if (id32 >= 0) ds->static_cat[u * nc + cat_of[i]] = id32;
    }
  }
  for (int i = 0; i < h.n; i++) {
    if (kind[i] == U_CAT || kind[i] == U_ZIP) ds->cat_vocab[cat_of[i]] = (int64_t)maps[i].n;
    if (kind[i] == U_AGE) ds->cat_vocab[cat_of[i]] = 7;
  }
done:
  for (int i = 0; i < MAX_COLS; i++) map_free(&maps[i]);
  free(seen);
  free(seen_line);
  return s;
}

/* ---- .item ---- */

/* Doubles two parallel arrays; on failure both keep their old contents. */
static int grow2(int32_t **a, int32_t **b, size_t *cap) {
  int32_t *na = realloc(*a, 2 * *cap * sizeof **a);
  if (!na) return -1;
  *a = na;
  int32_t *nb = realloc(*b, 2 * *cap * sizeof **b);
  if (!nb) return -1;
  *b = nb;
  *cap *= 2;
  return 0;
}

static onerec_status parse_item(onerec_dataset *ds, const char *name, const char *text,
                                size_t len) {
  lines l = {text, len, 0, 0};
  header h;
  onerec_status s = read_header(&l, name, &h);
  if (s) return s;
  const int iid = find_col(&h, "item_id");
  if (iid < 0 || h.type[iid] != T_TOKEN)
    return orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: the header lacks item_id:token", name,
                    (long long)l.no);
  int tc = find_col(&h, "class");
  if (tc < 0) tc = find_col(&h, "genre");
  if (tc >= 0 && h.type[tc] != T_TOKEN_SEQ)
    return orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: column %.*s has type %s, expected token_seq",
                    name, (long long)l.no, (int)h.name[tc].n, h.name[tc].p,
                    type_name(h.type[tc]));
  const int64_t ni = ds->n_items;
  size_t cap = 16;
  int32_t *pi = malloc(cap * sizeof *pi), *pt = malloc(cap * sizeof *pt);
  uint8_t *seen = calloc((size_t)(ni ? ni : 1), 1);
  size_t np = 0, pool_len = 0;
  str_map tags;
  memset(&tags, 0, sizeof tags);
  char *pool = NULL;
  if (!pi || !pt || !seen) {
    s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    goto done;
  }
  const char *p;
  size_t m;
  field f[MAX_COLS + 1];
  while (next_line(&l, &p, &m)) {
    if (is_blank(p, m)) continue;
    s = data_fields(&l, name, &h, p, m, f);
    int64_t id = 0;
    if (!s) s = parse_id(&l, name, "item_id", f[iid], &id);
    if (s) goto done;
    int64_t it = orx_find_sorted_i64(ds->item_ids, ni, id);
    if (it < 0) continue; /* never interacted with: not an item of the data set */
    if (seen[it]) {
      s = orx_fail(ONEREC_ERR_FORMAT, "%s:%lld: item %lld already has a line", name,
                   (long long)l.no, (long long)id);
      goto done;
    }
    seen[it] = 1;
    if (tc < 0) continue;
    const field v = f[tc];
    size_t i = 0;
    while (i < v.n) {
      while (i < v.n && v.p[i] == ' ') i++;
      size_t b = i;
      while (i < v.n && v.p[i] != ' ') i++;
      if (i == b) break;
      int32_t t = map_id(&tags, (field){v.p + b, i - b});
      if (t < 0 || (np == cap && grow2(&pi, &pt, &cap) != 0)) {
        s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
        goto done;
      }
      pi[np] = (int32_t)it;
      pt[np++] = t;
    }
  }
  if (tc < 0) goto done;
  if (tags.n > INT32_MAX / 2) {
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: too many tags", name);
    goto done;
  }
  /* names in id order, NUL-separated */
  for (size_t j = 0; j < tags.cap; j++)
    if (tags.keys[j].p) pool_len += tags.keys[j].n + 1;
  pool = malloc(pool_len ? pool_len : 1);
  field *by_id = malloc((tags.n ? tags.n : 1) * sizeof *by_id);
  ds->tag_offsets = alloc_n(ds->ctx, ni + 1, sizeof(int64_t));
  ds->tags = alloc_n(ds->ctx, (int64_t)np, sizeof(int32_t));
  if (!pool || !by_id || !ds->tag_offsets || !ds->tags) {
    free(by_id);
    s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    goto done;
  }
  for (size_t j = 0; j < tags.cap; j++)
    if (tags.keys[j].p) by_id[tags.vals[j]] = tags.keys[j];
  size_t o = 0;
  for (size_t t = 0; t < tags.n; t++) {
    memcpy(pool + o, by_id[t].p, by_id[t].n);
    o += by_id[t].n;
    pool[o++] = '\0';
  }
  free(by_id);
  /* CSR by item, file order within an item (a counting sort is stable) */
  for (int64_t i = 0; i <= ni; i++) ds->tag_offsets[i] = 0;
  for (size_t k = 0; k < np; k++) ds->tag_offsets[pi[k] + 1]++;
  for (int64_t i = 0; i < ni; i++) ds->tag_offsets[i + 1] += ds->tag_offsets[i];
  int64_t *fill = malloc((size_t)(ni ? ni : 1) * sizeof *fill);
  if (!fill) {
    s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    goto done;
  }
  memcpy(fill, ds->tag_offsets, (size_t)ni * sizeof *fill);
  for (size_t k = 0; k < np; k++) ds->tags[fill[pi[k]]++] = pt[k];
  free(fill);
  s = orx_ds_set_tag_names(ds, pool, pool_len, (int32_t)tags.n);
done:
  free(pi);
  free(pt);
  free(seen);
  free(pool);
  map_free(&tags);
  return s;
}

onerec_status orx_recbole_parse(onerec_dataset *ds, int kind, const char *name, const char *text,
                                size_t len) {
  if (kind == 0) return parse_inter(ds, name, text, len);
  if (kind == 1) return parse_user(ds, name, text, len);
  return parse_item(ds, name, text, len);
}

onerec_status orx_ds_read_recbole(onerec_dataset *ds, const char *dir, const char *name) {
  static const char *ext[] = {"inter", "user", "item"};
  for (int k = 0; k < 3; k++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext[k]);
    if (k > 0 && access(path, F_OK) != 0) continue; /* features are optional */
    char *buf = NULL;
    size_t len = 0;
    onerec_status s = orx_read_whole_file(ds->ctx, path, &buf, &len);
    if (!s) s = orx_recbole_parse(ds, k, path, buf, len);
    orx_host_free(ds->ctx, buf);
    if (s) return s;
  }
  return ONEREC_OK;
}
