/* The data set handle: loading (Beauty.txt through data_seq, RecBole and sequence files through
 * their readers), validation, lookups, the leave-one-out split, samples from history prefixes
 * with seeded shuffling and RSFT-style filtering, and batches in the model's input layout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "data_seq.h"
#include "dataset_impl.h"
#include "util.h"

/* n elements of `size` bytes (at least one, so an empty array is not NULL); NULL on overflow. */
static void *alloc_n(const onerec_context *ctx, int64_t n, size_t size) {
  if (n < 0 || (uint64_t)n > SIZE_MAX / 2 / size) return NULL;
  return orx_host_alloc(ctx, (size_t)(n ? n : 1) * size);
}

onerec_status orx_ds_new(onerec_context *ctx, const char *format, onerec_dataset **out) {
  onerec_dataset *ds = orx_host_alloc(ctx, sizeof *ds);
  if (!ds) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "data set: out of memory");
  memset(ds, 0, sizeof *ds);
  ds->ctx = ctx;
  ds->format = format;
  *out = ds;
  return ONEREC_OK;
}

void onerec_dataset_free(onerec_dataset *ds) {
  if (!ds) return;
  const onerec_context *ctx = ds->ctx;
  void *arrays[] = {ds->user_ids, ds->user_by_id, ds->offsets,     ds->items, ds->ts,
                    ds->labels,   ds->item_ids,   ds->static_cat,  ds->static_num,
                    ds->tag_offsets, ds->tags,    ds->tag_pool,    (void *)ds->tag_names};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) orx_host_free(ctx, arrays[i]);
  orx_host_free(ctx, ds);
}

/* qsort has no context argument: the ids being sorted ride along with the index. */
typedef struct id_index {
  int64_t id, index;
} id_index;

static int cmp_id_index(const void *a, const void *b) {
  const id_index *x = a, *y = b;
  if (x->id != y->id) return x->id < y->id ? -1 : 1;
  return x->index < y->index ? -1 : x->index > y->index;
}

onerec_status orx_ds_finish(onerec_dataset *ds, const char *what) {
  const int64_t nu = ds->n_users, ni = ds->n_items;
  if (ds->offsets[0] != 0 || ds->offsets[nu] != ds->n_rows)
    return orx_fail(ONEREC_ERR_FORMAT, "%s: row offsets do not span the %lld rows", what,
                    (long long)ds->n_rows);
  for (int64_t i = 0; i < ni; i++) {
    if (ds->item_ids[i] < 0)
      return orx_fail(ONEREC_ERR_FORMAT, "%s: item id %lld is negative", what,
                      (long long)ds->item_ids[i]);
    if (i && ds->item_ids[i] <= ds->item_ids[i - 1])
      return orx_fail(ONEREC_ERR_FORMAT,
                      "%s: item ids not strictly ascending at index %lld (%lld after %lld)", what,
                      (long long)i, (long long)ds->item_ids[i], (long long)ds->item_ids[i - 1]);
  }
  for (int64_t u = 0; u < nu; u++) {
    const int64_t b = ds->offsets[u], e = ds->offsets[u + 1];
    if (ds->user_ids[u] < 0)
      return orx_fail(ONEREC_ERR_FORMAT, "%s: user %lld has a negative id %lld", what,
                      (long long)u, (long long)ds->user_ids[u]);
    if (e <= b || e > ds->n_rows)
      return orx_fail(ONEREC_ERR_FORMAT, "%s: user %lld (id %lld) has no interactions", what,
                      (long long)u, (long long)ds->user_ids[u]);
    for (int64_t r = b; r < e; r++) {
      if (ds->items[r] < 0 || ds->items[r] >= ni)
        return orx_fail(ONEREC_ERR_FORMAT, "%s: user id %lld row %lld: item %d outside 0..%lld",
                        what, (long long)ds->user_ids[u], (long long)(r - b), (int)ds->items[r],
                        (long long)ni - 1);
      if (!isfinite(ds->ts[r]) || !isfinite(ds->labels[r]))
        return orx_fail(ONEREC_ERR_FORMAT, "%s: user id %lld row %lld: non-finite %s", what,
                        (long long)ds->user_ids[u], (long long)(r - b),
                        isfinite(ds->ts[r]) ? "label" : "timestamp");
      if (r > b && ds->ts[r] < ds->ts[r - 1])
        return orx_fail(ONEREC_ERR_FORMAT,
                        "%s: user id %lld row %lld: timestamp %.17g goes back in time (previous "
                        "%.17g)",
                        what, (long long)ds->user_ids[u], (long long)(r - b), ds->ts[r],
                        ds->ts[r - 1]);
    }
  }
  id_index *tmp = malloc((size_t)(nu ? nu : 1) * sizeof *tmp);
  ds->user_by_id = alloc_n(ds->ctx, nu, sizeof(int64_t));
  if (!tmp || !ds->user_by_id) {
    free(tmp);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
  }
  for (int64_t u = 0; u < nu; u++) tmp[u] = (id_index){ds->user_ids[u], u};
  qsort(tmp, (size_t)nu, sizeof *tmp, cmp_id_index);
  for (int64_t u = 0; u < nu; u++) {
    if (u && tmp[u].id == tmp[u - 1].id) {
      int64_t id = tmp[u].id, a = tmp[u - 1].index, b = tmp[u].index;
      free(tmp);
      return orx_fail(ONEREC_ERR_FORMAT, "%s: user id %lld appears twice (users %lld and %lld)",
                      what, (long long)id, (long long)a, (long long)b);
    }
    ds->user_by_id[u] = tmp[u].index;
  }
  free(tmp);
  return ONEREC_OK;
}

onerec_status orx_ds_set_tag_names(onerec_dataset *ds, const char *pool, size_t pool_len,
                                   int32_t count) {
  ds->tag_pool = orx_host_alloc(ds->ctx, pool_len ? pool_len : 1);
  ds->tag_names = alloc_n(ds->ctx, count, sizeof(char *));
  if (!ds->tag_pool || !ds->tag_names)
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "data set: out of memory for tag names");
  memcpy(ds->tag_pool, pool, pool_len);
  size_t o = 0;
  for (int32_t t = 0; t < count; t++) {
    if (o >= pool_len) return orx_fail(ONEREC_ERR_FORMAT, "data set: %d tag names expected", count);
    ds->tag_names[t] = ds->tag_pool + o;
    const char *z = memchr(ds->tag_pool + o, '\0', pool_len - o);
    if (!z) return orx_fail(ONEREC_ERR_FORMAT, "data set: tag name %d is not terminated", t);
    o = (size_t)(z - ds->tag_pool) + 1;
  }
  ds->n_tags = count;
  return ONEREC_OK;
}

/* ---- loading ---- */



static onerec_status read_beauty(onerec_dataset *ds, const char *path) {
  orx_seq_data seq;
  onerec_status s = orx_seq_read(ds->ctx, path, &seq);
  if (s) return s;
  const int64_t nu = seq.n_users, nr = seq.n_items_total;
  ds->n_users = nu;
  ds->n_rows = nr;
  ds->user_ids = alloc_n(ds->ctx, nu, sizeof(int64_t));
  ds->offsets = alloc_n(ds->ctx, nu + 1, sizeof(int64_t));
  ds->items = alloc_n(ds->ctx, nr, sizeof(int32_t));
  ds->ts = alloc_n(ds->ctx, nr, sizeof(double));
  ds->labels = alloc_n(ds->ctx, nr, sizeof(float));
  int64_t *uniq = alloc_n(ds->ctx, nr, sizeof(int64_t));
  if (!ds->user_ids || !ds->offsets || !ds->items || !ds->ts || !ds->labels || !uniq) {
    orx_host_free(ds->ctx, uniq);
    orx_seq_free(&seq);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory (%lld interactions)", path,
                    (long long)nr);
  }
  memcpy(ds->user_ids, seq.user_ids, (size_t)nu * sizeof(int64_t));
  memcpy(ds->offsets, seq.offsets, (size_t)(nu + 1) * sizeof(int64_t));
  memcpy(uniq, seq.items, (size_t)nr * sizeof(int64_t));
  qsort(uniq, (size_t)nr, sizeof(int64_t), orx_cmp_i64);
  int64_t ni = 0;
  for (int64_t r = 0; r < nr; r++)
    if (r == 0 || uniq[r] != uniq[ni - 1]) uniq[ni++] = uniq[r];
  if (ni > INT32_MAX) {
    orx_host_free(ds->ctx, uniq);
    orx_seq_free(&seq);
    return orx_fail(ONEREC_ERR_FORMAT, "%s: %lld distinct items; at most 2^31-1 supported", path,
                    (long long)ni);
  }
  for (int64_t r = 0; r < nr; r++) {
    ds->items[r] = (int32_t)orx_find_sorted_i64(uniq, ni, seq.items[r]);
    ds->ts[r] = 0;
    ds->labels[r] = 1.0f;
  }
  orx_seq_free(&seq);
  ds->item_ids = uniq;
  ds->n_items = ni;
  return orx_ds_finish(ds, path);
}

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The number of NAME.inter files in dir; with exactly one, its NAME goes to name. */
static int single_inter(const char *dir, char *name, size_t len) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int found = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n > 6 && !strcmp(e->d_name + n - 6, ".inter") && n - 6 < len) {
      if (!found) {
        memcpy(name, e->d_name, n - 6);
        name[n - 6] = '\0';
      }
      found++;
    }
  }
  closedir(d);
  return found;
}

/* The last path component of dir (without trailing slashes) into buf. */
static void base_name(const char *dir, char *buf, size_t len) {
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') n--;
  size_t b = n;
  while (b > 0 && dir[b - 1] != '/') b--;
  size_t m = n - b < len - 1 ? n - b : len - 1;
  memcpy(buf, dir + b, m);
  buf[m] = '\0';
}

onerec_status onerec_dataset_load(onerec_context *ctx, const char *path,
                                  const onerec_dataset_opts *opts, onerec_dataset **out) {
  const char *fn = "onerec_dataset_load";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(ctx, fn);
  ORX_CHECK_ARG(path, fn);
  onerec_dataset_opts o;
  memset(&o, 0, sizeof o);
  o.sz = sizeof o;
  if (opts) {
    onerec_status s = orx_opts_read(&o, sizeof o, opts, fn);
    if (s) return s;
  }
  const char *fmt = o.format && *o.format ? o.format : "auto";
  char name[256], file[4400];
  if (o.name && *o.name)
    snprintf(name, sizeof name, "%s", o.name);
  else
    base_name(path, name, sizeof name);
  if (strlen(path) > 3900) return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: path too long", fn);
  if (!strcmp(fmt, "auto")) {
    size_t n = strlen(path);
    snprintf(file, sizeof file, "%s/Beauty.txt", path);
    if (n > 3 && !strcmp(path + n - 3, ".h5"))
      fmt = "h5";
    else if (is_dir(path) && is_file(file))
      fmt = "beauty";
    else if (is_dir(path)) {
      snprintf(file, sizeof file, "%s/%s.inter", path, name);
      if (!is_file(file) && !(o.name && *o.name) && single_inter(path, name, sizeof name) == 1)
        snprintf(file, sizeof file, "%s/%s.inter", path, name);
      if (!is_file(file))
        return orx_fail(ONEREC_ERR_IO,
                        "%s: %s holds neither Beauty.txt nor %s.inter (give the format, or "
                        "the RecBole name)",
                        fn, path, name);
      fmt = "recbole";
    } else if (is_file(path)) {
      fmt = "beauty";
    } else {
      return orx_fail(ONEREC_ERR_IO, "%s: %s does not exist", fn, path);
    }
  }
  onerec_dataset *ds = NULL;
  onerec_status s;
  if (!strcmp(fmt, "beauty")) {
    s = orx_ds_new(ctx, "beauty", &ds);
    if (!s) {
      if (is_dir(path))
        snprintf(file, sizeof file, "%s/Beauty.txt", path);
      else
        snprintf(file, sizeof file, "%s", path);
      s = read_beauty(ds, file);
    }
  } else if (!strcmp(fmt, "recbole") || !strcmp(fmt, "ml-100k")) {
    /* a folder named otherwise: its one NAME.inter, or ml-100k.inter for "ml-100k" */
    snprintf(file, sizeof file, "%s/%s.inter", path, name);
    if (!(o.name && *o.name) && !is_file(file) && single_inter(path, name, sizeof name) != 1 &&
        !strcmp(fmt, "ml-100k"))
      snprintf(name, sizeof name, "ml-100k");
    s = orx_ds_new(ctx, "recbole", &ds);
    if (!s) s = orx_ds_read_recbole(ds, path, name);
  } else if (!strcmp(fmt, "h5")) {
    s = orx_ds_new(ctx, "h5", &ds);
    if (!s) s = orx_ds_read_h5(ds, path);
  } else {
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: unknown format '%s' (expected auto, beauty, ml-100k, recbole or h5)", fn,
                    fmt);
  }
  if (s) {
    onerec_dataset_free(ds);
    return s;
  }
  orx_log(ctx, ONEREC_LOG_INFO, "data set %s (%s): %lld users, %lld items, %lld interactions",
          path, ds->format, (long long)ds->n_users, (long long)ds->n_items, (long long)ds->n_rows);
  *out = ds;
  return ONEREC_OK;
}

/* ---- queries ---- */

static int64_t train_len(const onerec_dataset *ds, int64_t u) {
  int64_t n = ds->offsets[u + 1] - ds->offsets[u] - 2;
  return n > 0 ? n : 0;
}

onerec_status onerec_dataset_get_info(const onerec_dataset *ds, onerec_dataset_info *info) {
  const char *fn = "onerec_dataset_get_info";
  ORX_CHECK_ARG(ds, fn);
  ORX_CHECK_ARG(info, fn);
  if (info->sz < sizeof(size_t))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: info->sz is %zu; declare it with ONEREC_OPTS",
                    fn, info->sz);
  onerec_dataset_info r;
  memset(&r, 0, sizeof r);
  r.sz = info->sz;
  r.users = ds->n_users;
  r.items = ds->n_items;
  r.interactions = ds->n_rows;
  for (int64_t u = 0; u < ds->n_users; u++) {
    int64_t t = train_len(ds, u);
    r.train_interactions += t;
    r.train_samples += t > 1 ? t - 1 : 0;
    r.valid_samples += ds->offsets[u + 1] - ds->offsets[u] >= 2;
  }
  r.test_samples = ds->n_users;
  r.has_timestamps = ds->has_ts;
  r.has_labels = ds->has_labels;
  r.static_cat_count = ds->n_cat;
  r.static_num_count = ds->n_num;
  r.tags = ds->n_tags;
  r.label_min = ds->n_rows ? INFINITY : 0;
  r.label_max = ds->n_rows ? -INFINITY : 0;
  for (int64_t i = 0; i < ds->n_rows; i++) {
    if (ds->labels[i] < r.label_min) r.label_min = ds->labels[i];
    if (ds->labels[i] > r.label_max) r.label_max = ds->labels[i];
  }
  r.format = ds->format;
  size_t n = info->sz < sizeof r ? info->sz : sizeof r;
  memcpy(info, &r, n);
  return ONEREC_OK;
}

onerec_status onerec_dataset_interactions(const onerec_dataset *ds, int64_t *users,
                                          const int64_t **offsets, const int32_t **items,
                                          const double **timestamps, const float **labels) {
  ORX_CHECK_ARG(ds, "onerec_dataset_interactions");
  if (users) *users = ds->n_users;
  if (offsets) *offsets = ds->offsets;
  if (items) *items = ds->items;
  if (timestamps) *timestamps = ds->ts;
  if (labels) *labels = ds->labels;
  return ONEREC_OK;
}

onerec_status onerec_dataset_split(const onerec_dataset *ds, int64_t u, int64_t *tlen,
                                   int64_t *valid_row, int64_t *test_row) {
  ORX_CHECK_ARG(ds, "onerec_dataset_split");
  if (u < 0 || u >= ds->n_users)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "onerec_dataset_split: user %lld outside 0..%lld",
                    (long long)u, (long long)ds->n_users - 1);
  const int64_t e = ds->offsets[u + 1], n = e - ds->offsets[u];
  if (tlen) *tlen = train_len(ds, u);
  if (valid_row) *valid_row = n >= 2 ? e - 2 : -1;
  if (test_row) *test_row = e - 1;
  return ONEREC_OK;
}

onerec_status onerec_dataset_train_csr(const onerec_dataset *ds, int64_t *offsets,
                                       size_t offsets_count, int64_t *items, size_t items_count) {
  const char *fn = "onerec_dataset_train_csr";
  ORX_CHECK_ARG(ds, fn);
  ORX_CHECK_ARG(offsets, fn);
  int64_t total = 0;
  for (int64_t u = 0; u < ds->n_users; u++) total += train_len(ds, u);
  if (total > 0) ORX_CHECK_ARG(items, fn);
  if (offsets_count < (size_t)ds->n_users + 1 || items_count < (size_t)total)
    return orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL,
                    "%s: needs %lld offsets and %lld items, got %zu and %zu", fn,
                    (long long)ds->n_users + 1, (long long)total, offsets_count, items_count);
  offsets[0] = 0;
  for (int64_t u = 0; u < ds->n_users; u++) {
    const int64_t t = train_len(ds, u), b = ds->offsets[u];
    for (int64_t k = 0; k < t; k++) items[offsets[u] + k] = ds->item_ids[ds->items[b + k]];
    offsets[u + 1] = offsets[u] + t;
  }
  return ONEREC_OK;
}

onerec_status onerec_dataset_item_ids(const onerec_dataset *ds, const int64_t **ids, int64_t *n) {
  ORX_CHECK_ARG(ds, "onerec_dataset_item_ids");
  if (ids) *ids = ds->item_ids;
  if (n) *n = ds->n_items;
  return ONEREC_OK;
}

onerec_status onerec_dataset_item_index(const onerec_dataset *ds, int64_t id, int32_t *index) {
  ORX_CHECK_ARG(ds, "onerec_dataset_item_index");
  ORX_CHECK_ARG(index, "onerec_dataset_item_index");
  int64_t i = orx_find_sorted_i64(ds->item_ids, ds->n_items, id);
  if (i < 0) {
    *index = -1;
    return orx_fail(ONEREC_ERR_NOT_FOUND, "data set: no item with id %lld", (long long)id);
  }
  *index = (int32_t)i;
  return ONEREC_OK;
}

onerec_status onerec_dataset_user_ids(const onerec_dataset *ds, const int64_t **ids, int64_t *n) {
  ORX_CHECK_ARG(ds, "onerec_dataset_user_ids");
  if (ids) *ids = ds->user_ids;
  if (n) *n = ds->n_users;
  return ONEREC_OK;
}

onerec_status onerec_dataset_user_index(const onerec_dataset *ds, int64_t id, int64_t *index) {
  ORX_CHECK_ARG(ds, "onerec_dataset_user_index");
  ORX_CHECK_ARG(index, "onerec_dataset_user_index");
  int64_t lo = 0, hi = ds->n_users;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (ds->user_ids[ds->user_by_id[mid]] < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < ds->n_users && ds->user_ids[ds->user_by_id[lo]] == id) {
    *index = ds->user_by_id[lo];
    return ONEREC_OK;
  }
  *index = -1;
  return orx_fail(ONEREC_ERR_NOT_FOUND, "data set: no user with id %lld", (long long)id);
}

onerec_status onerec_dataset_static(const onerec_dataset *ds, int32_t *cat_count,
                                    const int32_t **cat, const int64_t **cat_vocab,
                                    int32_t *num_count, const float **num) {
  ORX_CHECK_ARG(ds, "onerec_dataset_static");
  if (cat_count) *cat_count = ds->n_cat;
  if (cat) *cat = ds->static_cat;
  if (cat_vocab) *cat_vocab = ds->cat_vocab;
  if (num_count) *num_count = ds->n_num;
  if (num) *num = ds->static_num;
  return ONEREC_OK;
}

const char *onerec_dataset_feature_name(const onerec_dataset *ds, int numeric, int32_t index) {
  if (!ds || index < 0 || index >= (numeric ? ds->n_num : ds->n_cat)) return NULL;
  return numeric ? ds->num_names[index] : ds->cat_names[index];
}

onerec_status onerec_dataset_item_tags(const onerec_dataset *ds, int32_t *n_tags,
                                       const int64_t **offsets, const int32_t **tags) {
  ORX_CHECK_ARG(ds, "onerec_dataset_item_tags");
  if (n_tags) *n_tags = ds->n_tags;
  if (offsets) *offsets = ds->tag_offsets;
  if (tags) *tags = ds->tags;
  return ONEREC_OK;
}

const char *onerec_dataset_tag_name(const onerec_dataset *ds, int32_t t) {
  if (!ds || t < 0 || t >= ds->n_tags || !ds->tag_names) return NULL;
  return ds->tag_names[t];
}

/* ---- samples ---- */

struct onerec_samples {
  const onerec_dataset *ds;
  onerec_split split;
  int32_t max_history;
  int64_t n;
  int64_t *user;  /* [n] canonical order */
  int64_t *row;   /* [n] target rows, canonical order (ascending) */
  int64_t *order; /* [n] current order: canonical indices */
};

void onerec_samples_free(onerec_samples *s) {
  if (!s) return;
  const onerec_context *ctx = s->ds->ctx;
  orx_host_free(ctx, s->user);
  orx_host_free(ctx, s->row);
  orx_host_free(ctx, s->order);
  orx_host_free(ctx, s);
}

onerec_status onerec_samples_create(const onerec_dataset *ds, onerec_split split,
                                    const onerec_samples_opts *opts, onerec_samples **out) {
  const char *fn = "onerec_samples_create";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(ds, fn);
  onerec_samples_opts o;
  memset(&o, 0, sizeof o);
  o.sz = sizeof o;
  if (opts) {
    onerec_status st = orx_opts_read(&o, sizeof o, opts, fn);
    if (st) return st;
  }
  if (split != ONEREC_SPLIT_TRAIN && split != ONEREC_SPLIT_VALID && split != ONEREC_SPLIT_TEST)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: unknown split %d", fn, (int)split);
  const int32_t max_h = o.max_history ? o.max_history : 50;
  if (max_h < 1 || max_h > (1 << 30) || o.min_history < 0)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: max_history = %d, min_history = %d (expected 1..2^30 and >= 0)", fn,
                    (int)o.max_history, (int)o.min_history);
  /* Two passes: count, then fill. */
  int64_t n = 0;
  for (int pass = 0; pass < 2; pass++) {
    onerec_samples *s = *out;
    int64_t k = 0;
    for (int64_t u = 0; u < ds->n_users; u++) {
      const int64_t b = ds->offsets[u], e = ds->offsets[u + 1], len = e - b;
      int64_t lo, hi; /* target rows lo .. hi-1 */
      if (split == ONEREC_SPLIT_TRAIN) {
        lo = b + 1;
        hi = b + train_len(ds, u);
      } else if (split == ONEREC_SPLIT_VALID) {
        lo = len >= 2 ? e - 2 : e;
        hi = len >= 2 ? e - 1 : e;
      } else {
        lo = e - 1;
        hi = e;
      }
      if (lo < b + o.min_history) lo = b + o.min_history;
      for (int64_t r = lo; r < hi; r++) {
        if (pass) {
          s->user[k] = u;
          s->row[k] = r;
          s->order[k] = k;
        }
        k++;
      }
    }
    if (pass == 0) {
      n = k;
      onerec_samples *ns = orx_host_alloc(ds->ctx, sizeof *ns);
      if (ns) {
        memset(ns, 0, sizeof *ns);
        ns->ds = ds;
        ns->user = alloc_n(ds->ctx, n, sizeof(int64_t));
        ns->row = alloc_n(ds->ctx, n, sizeof(int64_t));
        ns->order = alloc_n(ds->ctx, n, sizeof(int64_t));
      }
      if (!ns || !ns->user || !ns->row || !ns->order) {
        if (ns) onerec_samples_free(ns);
        return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld samples", fn,
                        (long long)n);
      }
      ns->split = split;
      ns->max_history = max_h;
      ns->n = n;
      *out = ns;
    }
  }
  return ONEREC_OK;
}

int64_t onerec_samples_count(const onerec_samples *s) { return s ? s->n : -1; }

static int64_t hist_begin_of(const onerec_samples *s, int64_t c) {
  const int64_t b = s->ds->offsets[s->user[c]], r = s->row[c];
  return r - b > s->max_history ? r - s->max_history : b;
}

onerec_status onerec_samples_get(const onerec_samples *s, int64_t i, int64_t *user,
                                 int64_t *hist_begin, int64_t *hist_end, int32_t *target) {
  ORX_CHECK_ARG(s, "onerec_samples_get");
  if (i < 0 || i >= s->n)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "onerec_samples_get: sample %lld outside 0..%lld",
                    (long long)i, (long long)s->n - 1);
  const int64_t c = s->order[i];
  if (user) *user = s->user[c];
  if (hist_begin) *hist_begin = hist_begin_of(s, c);
  if (hist_end) *hist_end = s->row[c];
  if (target) *target = s->ds->items[s->row[c]];
  return ONEREC_OK;
}

/* Uniform in 0..n-1 without modulo bias (rejection on the top of the range). */
static uint64_t below(uint64_t *state, uint64_t n) {
  const uint64_t lim = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = orx_splitmix64(state);
  while (x >= lim);
  return x % n;
}

onerec_status onerec_samples_unshuffle(onerec_samples *s) {
  ORX_CHECK_ARG(s, "onerec_samples_unshuffle");
  for (int64_t i = 0; i < s->n; i++) s->order[i] = i;
  return ONEREC_OK;
}

onerec_status onerec_samples_shuffle(onerec_samples *s, uint64_t seed) {
  ORX_CHECK_ARG(s, "onerec_samples_shuffle");
  onerec_samples_unshuffle(s);
  uint64_t st = seed;
  for (int64_t i = s->n - 1; i > 0; i--) {
    int64_t j = (int64_t)below(&st, (uint64_t)i + 1);
    int64_t t = s->order[i];
    s->order[i] = s->order[j];
    s->order[j] = t;
  }
  return ONEREC_OK;
}

typedef struct sig_index {
  double v;
  int64_t c; /* canonical index */
} sig_index;

static int cmp_sig(const void *a, const void *b) {
  const sig_index *x = a, *y = b;
  if (x->v != y->v) return x->v < y->v ? -1 : 1;
  return x->c < y->c ? -1 : x->c > y->c;
}

onerec_status onerec_samples_filter(onerec_samples *s, onerec_signal signal, const double *custom,
                                    size_t custom_count, double drop_fraction) {
  const char *fn = "onerec_samples_filter";
  ORX_CHECK_ARG(s, fn);
  if (!(drop_fraction >= 0 && drop_fraction <= 1))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: drop_fraction %g outside [0, 1]", fn,
                    drop_fraction);
  if (signal < ONEREC_SIGNAL_LABEL || signal > ONEREC_SIGNAL_CUSTOM)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: unknown signal %d", fn, (int)signal);
  if (signal == ONEREC_SIGNAL_CUSTOM) {
    if (!custom && s->n > 0)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: custom signal without values", fn);
    if (custom_count < (size_t)s->n)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: %zu custom values for %lld samples", fn,
                      custom_count, (long long)s->n);
    for (int64_t i = 0; i < s->n; i++)
      if (!isfinite(custom[i]))
        return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: custom value %lld is not finite", fn,
                        (long long)i);
  }
  const int64_t n = s->n, drop = (int64_t)floor(drop_fraction * (double)n);
  if (drop == 0) return ONEREC_OK;
  const onerec_dataset *ds = s->ds;
  sig_index *v = malloc((size_t)n * sizeof *v);
  int64_t *remap = malloc((size_t)n * sizeof *remap);
  if (!v || !remap) {
    free(v);
    free(remap);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld samples", fn,
                    (long long)n);
  }
  for (int64_t i = 0; i < n; i++) {
    const int64_t c = s->order[i], r = s->row[c];
    double x = 0;
    if (signal == ONEREC_SIGNAL_LABEL) {
      x = ds->labels[r];
    } else if (signal == ONEREC_SIGNAL_HISTORY_LEN) {
      x = (double)(r - ds->offsets[s->user[c]]);
    } else if (signal == ONEREC_SIGNAL_HISTORY_LABEL) {
      const int64_t hb = hist_begin_of(s, c);
      for (int64_t k = hb; k < r; k++) x += ds->labels[k];
      if (r > hb) x /= (double)(r - hb);
    } else {
      x = custom[i];
    }
    v[i] = (sig_index){x, c};
  }
  qsort(v, (size_t)n, sizeof *v, cmp_sig);
  /* remap: canonical index -> new canonical index, or -1 when dropped */
  for (int64_t i = 0; i < n; i++) remap[i] = 0;
  for (int64_t i = 0; i < drop; i++) remap[v[i].c] = -1;
  int64_t k = 0;
  for (int64_t c = 0; c < n; c++) {
    if (remap[c] < 0) continue;
    s->user[k] = s->user[c];
    s->row[k] = s->row[c];
    remap[c] = k++;
  }
  k = 0;
  for (int64_t i = 0; i < n; i++)
    if (remap[s->order[i]] >= 0) s->order[k++] = remap[s->order[i]];
  s->n = k;
  free(v);
  free(remap);
  return ONEREC_OK;
}

/* ---- batches ---- */

typedef struct pathway_buf {
  int32_t len; /* rows per user, 0 = pathway without data */
  int64_t *offsets;
  int32_t *items;
  int32_t *cat;
  float *num;
} pathway_buf;

struct onerec_batch {
  const onerec_dataset *ds;
  int64_t max_batch;
  int32_t levels, uid_buckets, static_cat_cols;
  float positive_label;
  const int32_t *codes;
  pathway_buf path[3]; /* short, positive, lifelong */
  int32_t *static_cat;
  float *static_num;
  int32_t *target_codes;
};

static void pathway_free(const onerec_context *ctx, pathway_buf *p) {
  orx_host_free(ctx, p->offsets);
  orx_host_free(ctx, p->items);
  orx_host_free(ctx, p->cat);
  orx_host_free(ctx, p->num);
}

void onerec_batch_free(onerec_batch *b) {
  if (!b) return;
  const onerec_context *ctx = b->ds->ctx;
  for (int i = 0; i < 3; i++) pathway_free(ctx, &b->path[i]);
  orx_host_free(ctx, b->static_cat);
  orx_host_free(ctx, b->static_num);
  orx_host_free(ctx, b->target_codes);
  orx_host_free(ctx, b);
}

onerec_status onerec_batch_create(const onerec_dataset *ds, const onerec_batch_opts *opts,
                                  onerec_batch **out) {
  const char *fn = "onerec_batch_create";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(ds, fn);
  onerec_batch_opts o;
  memset(&o, 0, sizeof o);
  o.sz = sizeof o;
  if (opts) {
    onerec_status st = orx_opts_read(&o, sizeof o, opts, fn);
    if (st) return st;
  }
  const int64_t mb = o.max_batch ? o.max_batch : 64;
  const int32_t lens[3] = {o.short_len == 0 ? 20 : o.short_len,
                           o.positive_len == 0 ? 256 : o.positive_len, o.lifelong_len};
  if (mb < 1 || mb > (1 << 24))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: max_batch %lld outside 1..2^24", fn,
                    (long long)o.max_batch);
  for (int i = 0; i < 3; i++)
    if (lens[i] < -1 || lens[i] > (1 << 24) || (i == 2 && lens[i] < 0))
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "%s: short_len %d, positive_len %d, lifelong_len %d (expected -1..2^24, "
                      "lifelong >= 0)",
                      fn, (int)o.short_len, (int)o.positive_len, (int)o.lifelong_len);
  if (o.uid_buckets < 0 || !isfinite(o.positive_label))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: uid_buckets %d < 0 or bad positive_label",
                    fn, (int)o.uid_buckets);
  if (o.item_codes && (o.levels < 1 || o.levels > 16))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: item_codes given with levels %d (1..16)", fn,
                    (int)o.levels);
  const onerec_context *ctx = ds->ctx;
  onerec_batch *b = orx_host_alloc(ctx, sizeof *b);
  if (!b) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  memset(b, 0, sizeof *b);
  b->ds = ds;
  b->max_batch = mb;
  b->codes = o.item_codes;
  b->levels = o.item_codes ? o.levels : 1;
  b->uid_buckets = o.uid_buckets;
  b->positive_label = o.positive_label;
  b->static_cat_cols = (o.uid_buckets > 0) + ds->n_cat;
  int ok = 1;
  for (int i = 0; i < 3; i++) {
    pathway_buf *p = &b->path[i];
    p->len = lens[i] < 0 ? 0 : lens[i];
    if (!p->len) continue;
    const int64_t rows = mb * p->len;
    p->offsets = alloc_n(ctx, mb + 1, sizeof(int64_t));
    p->items = alloc_n(ctx, rows * b->levels, sizeof(int32_t));
    p->cat = alloc_n(ctx, rows * ONEREC_DATA_CAT_COUNT, sizeof(int32_t));
    p->num = alloc_n(ctx, rows * ONEREC_DATA_NUM_COUNT, sizeof(float));
    ok = ok && p->offsets && p->items && p->cat && p->num;
  }
  if (b->static_cat_cols) {
    b->static_cat = alloc_n(ctx, mb * b->static_cat_cols, sizeof(int32_t));
    ok = ok && b->static_cat;
  }
  if (ds->n_num) {
    b->static_num = alloc_n(ctx, mb * ds->n_num, sizeof(float));
    ok = ok && b->static_num;
  }
  if (b->codes) {
    b->target_codes = alloc_n(ctx, mb * b->levels, sizeof(int32_t));
    ok = ok && b->target_codes;
  }
  if (!ok) {
    onerec_batch_free(b);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld samples", fn,
                    (long long)mb);
  }
  *out = b;
  return ONEREC_OK;
}

/* Writes row r of the data set as batch row k of pathway p; `now` is the newest history time. */
static void put_row(const onerec_batch *b, pathway_buf *p, int64_t k, int64_t r, double now) {
  const onerec_dataset *ds = b->ds;
  const int32_t it = ds->items[r];
  if (b->codes)
    memcpy(p->items + k * b->levels, b->codes + (int64_t)it * b->levels,
           (size_t)b->levels * sizeof(int32_t));
  else
    p->items[k] = it;
  int32_t *c = p->cat + k * ONEREC_DATA_CAT_COUNT;
  c[ONEREC_DATA_CAT_AUTHOR] = -1;
  c[ONEREC_DATA_CAT_TAG] = ds->tag_offsets && ds->tag_offsets[it + 1] > ds->tag_offsets[it]
                               ? ds->tags[ds->tag_offsets[it]]
                               : -1;
  double l = nearbyint((double)ds->labels[r]);
  c[ONEREC_DATA_CAT_LABEL] = l < 0 ? 0 : l > 15 ? 15 : (int32_t)l;
  float *x = p->num + k * ONEREC_DATA_NUM_COUNT;
  x[ONEREC_DATA_NUM_AGE] = (float)((now - ds->ts[r]) / (365.25 * 86400.0));
  x[ONEREC_DATA_NUM_PLAYTIME] = 0;
  x[ONEREC_DATA_NUM_DURATION] = 0;
}

onerec_status onerec_batch_fill(onerec_batch *b, const onerec_samples *s, int64_t first,
                                int64_t count, onerec_user_batch *users, int32_t *targets,
                                size_t targets_count, const int32_t **target_codes) {
  const char *fn = "onerec_batch_fill";
  ORX_CHECK_ARG(b, fn);
  ORX_CHECK_ARG(s, fn);
  ORX_CHECK_ARG(users, fn);
  if (users->sz < sizeof *users)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: users->sz is %zu; declare it with ONEREC_OPTS",
                    fn, users->sz);
  if (s->ds != b->ds)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: the samples belong to another data set", fn);
  if (count < 1 || count > b->max_batch || first < 0 || first > s->n - count)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: samples %lld..%lld: need 1..%lld samples within 0..%lld", fn,
                    (long long)first, (long long)(first + count - 1), (long long)b->max_batch,
                    (long long)s->n - 1);
  if (targets && targets_count < (size_t)count)
    return orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "%s: %zu target slots for %lld samples", fn,
                    targets_count, (long long)count);
  const onerec_dataset *ds = b->ds;
  for (int i = 0; i < 3; i++)
    if (b->path[i].len) b->path[i].offsets[0] = 0;
  for (int64_t k = 0; k < count; k++) {
    const int64_t c = s->order[first + k], u = s->user[c], he = s->row[c];
    const int64_t hb = hist_begin_of(s, c);
    const double now = he > hb ? ds->ts[he - 1] : 0;
    for (int i = 0; i < 3; i++) {
      pathway_buf *p = &b->path[i];
      if (!p->len) continue;
      int64_t o = p->offsets[k];
      if (i == 1) {
        /* positive: the newest len rows at or above the threshold, written oldest first */
        int64_t got = 0, r0 = he;
        while (r0 > hb && got < p->len)
          if (ds->labels[--r0] >= b->positive_label) got++;
        for (int64_t r = r0; r < he; r++)
          if (ds->labels[r] >= b->positive_label) put_row(b, p, o++, r, now);
      } else {
        int64_t r0 = he - hb > p->len ? he - p->len : hb;
        for (int64_t r = r0; r < he; r++) put_row(b, p, o++, r, now);
      }
      p->offsets[k + 1] = o;
    }
    if (b->static_cat_cols) {
      int32_t *sc = b->static_cat + k * b->static_cat_cols;
      if (b->uid_buckets > 0) *sc++ = (int32_t)(u % b->uid_buckets);
      if (ds->n_cat)
        memcpy(sc, ds->static_cat + u * ds->n_cat, (size_t)ds->n_cat * sizeof(int32_t));
    }
    if (ds->n_num)
      memcpy(b->static_num + k * ds->n_num, ds->static_num + u * ds->n_num,
             (size_t)ds->n_num * sizeof(float));
    const int32_t t = ds->items[he];
    if (targets) targets[k] = t;
    if (b->codes)
      memcpy(b->target_codes + k * b->levels, b->codes + (int64_t)t * b->levels,
             (size_t)b->levels * sizeof(int32_t));
  }
  users->batch = count;
  users->static_cat = b->static_cat_cols ? b->static_cat : NULL;
  users->static_num = ds->n_num ? b->static_num : NULL;
  onerec_seq_input *in[3] = {&users->short_term, &users->positive, &users->lifelong};
  for (int i = 0; i < 3; i++) {
    const pathway_buf *p = &b->path[i];
    in[i]->offsets = p->len ? p->offsets : NULL;
    in[i]->items = p->len ? p->items : NULL;
    in[i]->cat = p->len ? p->cat : NULL;
    in[i]->num = p->len ? p->num : NULL;
  }
  if (target_codes) *target_codes = b->codes ? b->target_codes : NULL;
  return ONEREC_OK;
}
