/* Sequence files: users' interaction sequences in chunked HDF5, for data sets larger than
 * memory. Layout (format version 1, root stamp onerec_kind = "interactions"):
 *
 *   /                 attributes users, rows, items, chunk_users, chunks, has_timestamps,
 *                     has_labels, static_cat_count, static_num_count, tags
 *   /item_ids         int64 [items], strictly ascending: dense index -> original id
 *   /chunk_user_start int64 [chunks + 1]: chunk c holds users chunk_user_start[c] ..
 *   /chunk_row_start  int64 [chunks + 1]: and rows chunk_row_start[c] ..
 *   /chunks/NNNNNNNN  user_ids int64 [u], offsets int64 [u + 1] (local, from 0), item int32 [r],
 *                     timestamp float64 [r], label float32 [r], static_cat int32 [u, c] and
 *                     static_num float32 [u, n] where the counts are non-zero
 *   /static           cat_vocab int64 [c]; names as attributes cat_names / num_names
 *                     (newline-separated)
 *   /tags             offsets int64 [items + 1], tags int32, names uint8 (NUL-separated)
 *
 * Each chunk is an ordinary (contiguous) HDF5 dataset group, so a reader touches only the
 * chunks of the window it asks for and any HDF5 tool can read the file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_impl.h"
#include "h5io.h"

#define SEQFILE_KIND "interactions"
#define SEQFILE_VERSION 1

static void *alloc_n(const onerec_context *ctx, int64_t n, size_t size) {
  if (n < 0 || (uint64_t)n > SIZE_MAX / 2 / size) return NULL;
  return orx_host_alloc(ctx, (size_t)(n ? n : 1) * size);
}

/* Grows *p (elements of `size` bytes, *cap of them) to hold at least n; keeps the contents. */
static int reserve(const onerec_context *ctx, void **p, int64_t *cap, int64_t n, size_t size) {
  if (n <= *cap) return 0;
  int64_t nc = *cap ? *cap : 64;
  while (nc < n) nc *= 2;
  void *q = alloc_n(ctx, nc, size);
  if (!q) return -1;
  if (*p) memcpy(q, *p, (size_t)*cap * size);
  orx_host_free(ctx, *p);
  *p = q;
  *cap = nc;
  return 0;
}

/* Grows three parallel row columns together (the old rows are kept): one capacity for all. */
static int grow_rows(const onerec_context *ctx, int32_t **items, double **ts, float **labels,
                     int64_t *cap, int64_t keep, int64_t n) {
  if (n <= *cap) return 0;
  int64_t nc = *cap ? *cap : 1024;
  while (nc < n) nc *= 2;
  int32_t *it = alloc_n(ctx, nc, sizeof *it);
  double *t = alloc_n(ctx, nc, sizeof *t);
  float *lb = alloc_n(ctx, nc, sizeof *lb);
  if (!it || !t || !lb) {
    orx_host_free(ctx, it);
    orx_host_free(ctx, t);
    orx_host_free(ctx, lb);
    return -1;
  }
  if (keep) {
    memcpy(it, *items, (size_t)keep * sizeof *it);
    memcpy(t, *ts, (size_t)keep * sizeof *t);
    memcpy(lb, *labels, (size_t)keep * sizeof *lb);
  }
  orx_host_free(ctx, *items);
  orx_host_free(ctx, *ts);
  orx_host_free(ctx, *labels);
  *items = it;
  *ts = t;
  *labels = lb;
  *cap = nc;
  return 0;
}

/* ---- writer ---- */

struct onerec_seqfile_writer {
  onerec_context *ctx;
  orx_h5 h;
  int64_t n_items, chunk_users;
  const int64_t *item_ids; /* = own_item_ids, a copy */
  int64_t *own_item_ids;
  int32_t n_cat, n_num;
  /* the chunk being filled */
  int64_t cu, cr, cap_u, cap_r;
  int64_t *uids, *offs;
  int32_t *items;
  double *ts;
  float *labels;
  int32_t *scat;
  float *snum;
  /* the index */
  int64_t chunks, cap_c, cap_c2;
  int64_t *cus, *crs;
  int64_t users, rows;
  int has_ts, has_labels, broken;
};

static void writer_free(onerec_seqfile_writer *w) {
  const onerec_context *ctx = w->ctx;
  void *arrays[] = {w->own_item_ids, w->uids, w->offs, w->items, w->ts,
                    w->labels,       w->scat, w->snum, w->cus,   w->crs};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) orx_host_free(ctx, arrays[i]);
  orx_host_free(ctx, w);
}

void onerec_seqfile_writer_abort(onerec_seqfile_writer *w) {
  if (!w) return;
  orx_h5_abort(&w->h);
  writer_free(w);
}

static onerec_status writer_new(onerec_context *ctx, const char *path, int64_t n_items,
                                const int64_t *item_ids, const onerec_seqfile_opts *opts,
                                int32_t n_cat, int32_t n_num, onerec_seqfile_writer **out) {
  const char *fn = "onerec_seqfile_writer_create";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(ctx, fn);
  ORX_CHECK_ARG(path, fn);
  if (n_items > 0) ORX_CHECK_ARG(item_ids, fn);
  onerec_seqfile_opts o;
  memset(&o, 0, sizeof o);
  o.sz = sizeof o;
  if (opts) {
    onerec_status s = orx_opts_read(&o, sizeof o, opts, fn);
    if (s) return s;
  }
  const int64_t cu = o.chunk_users ? o.chunk_users : 4096;
  if (cu < 1 || cu > (1 << 30))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: chunk_users %lld outside 1..2^30", fn,
                    (long long)o.chunk_users);
  if (n_items < 0 || n_items > INT32_MAX)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: n_items %lld outside 0..2^31-1", fn,
                    (long long)n_items);
  for (int64_t i = 0; i < n_items; i++)
    if (item_ids[i] < 0 || (i && item_ids[i] <= item_ids[i - 1]))
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "%s: item_ids[%lld] = %lld: ids must be non-negative and strictly "
                      "ascending",
                      fn, (long long)i, (long long)item_ids[i]);
  onerec_seqfile_writer *w = orx_host_alloc(ctx, sizeof *w);
  if (!w) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  memset(w, 0, sizeof *w);
  w->ctx = ctx;
  w->h.file = H5I_INVALID_HID;
  w->n_items = n_items;
  w->chunk_users = cu;
  w->n_cat = n_cat;
  w->n_num = n_num;
  w->has_ts = -1;
  w->own_item_ids = alloc_n(ctx, n_items, sizeof(int64_t));
  w->uids = alloc_n(ctx, cu, sizeof(int64_t));
  w->offs = alloc_n(ctx, cu + 1, sizeof(int64_t));
  w->scat = alloc_n(ctx, cu * n_cat, sizeof(int32_t));
  w->snum = alloc_n(ctx, cu * n_num, sizeof(float));
  if (!w->own_item_ids || !w->uids || !w->offs || !w->scat || !w->snum) {
    writer_free(w);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  }
  if (n_items) memcpy(w->own_item_ids, item_ids, (size_t)n_items * sizeof(int64_t));
  w->item_ids = w->own_item_ids;
  w->offs[0] = 0;
  onerec_status s = orx_h5_create(&w->h, path);
  if (s) {
    writer_free(w);
    return s;
  }
  *out = w;
  return ONEREC_OK;
}

onerec_status onerec_seqfile_writer_create(onerec_context *ctx, const char *path, int64_t n_items,
                                           const int64_t *item_ids,
                                           const onerec_seqfile_opts *opts,
                                           onerec_seqfile_writer **out) {
  return writer_new(ctx, path, n_items, item_ids, opts, 0, 0, out);
}

static onerec_status flush_chunk(onerec_seqfile_writer *w) {
  if (w->cu == 0) return ONEREC_OK;
  orx_h5 *h = &w->h;
  if (reserve(w->ctx, (void **)&w->cus, &w->cap_c, w->chunks + 2, sizeof(int64_t)) ||
      reserve(w->ctx, (void **)&w->crs, &w->cap_c2, w->chunks + 2, sizeof(int64_t)))
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory for the chunk index", h->path);
  char name[64];
  snprintf(name, sizeof name, "/chunks/%08lld", (long long)w->chunks);
  hid_t g;
  onerec_status s = orx_h5_group_create(h, name, &g);
  if (s) return s;
  const int64_t du = w->cu, du1 = w->cu + 1, dr = w->cr;
  s = orx_h5_write(h, g, "user_ids", ORX_H5_I64, 1, &du, w->uids);
  if (!s) s = orx_h5_write(h, g, "offsets", ORX_H5_I64, 1, &du1, w->offs);
  if (!s) s = orx_h5_write(h, g, "item", ORX_H5_I32, 1, &dr, w->items);
  if (!s) s = orx_h5_write(h, g, "timestamp", ORX_H5_F64, 1, &dr, w->ts);
  if (!s) s = orx_h5_write(h, g, "label", ORX_H5_F32, 1, &dr, w->labels);
  if (!s && w->n_cat) {
    const int64_t d[2] = {w->cu, w->n_cat};
    s = orx_h5_write(h, g, "static_cat", ORX_H5_I32, 2, d, w->scat);
  }
  if (!s && w->n_num) {
    const int64_t d[2] = {w->cu, w->n_num};
    s = orx_h5_write(h, g, "static_num", ORX_H5_F32, 2, d, w->snum);
  }
  orx_h5_group_close(g);
  if (s) return s;
  if (w->chunks == 0) w->cus[0] = w->crs[0] = 0;
  w->chunks++;
  w->cus[w->chunks] = w->users;
  w->crs[w->chunks] = w->rows;
  w->cu = w->cr = 0;
  return ONEREC_OK;
}

static onerec_status writer_add(onerec_seqfile_writer *w, int64_t user_id, int64_t n,
                                const int32_t *items, const double *ts, const float *labels,
                                const int32_t *scat, const float *snum) {
  const char *fn = "onerec_seqfile_writer_add";
  ORX_CHECK_ARG(w, fn);
  if (w->broken)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: %s: an earlier call failed; abort the writer",
                    fn, w->h.path);
  w->broken = 1;
  if (n < 1 || !items)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: %s: user %lld has no interactions", fn,
                    w->h.path, (long long)user_id);
  if (user_id < 0)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: %s: negative user id %lld", fn, w->h.path,
                    (long long)user_id);
  if (w->has_ts >= 0 && w->has_ts != (ts != NULL))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: %s: user %lld %s timestamps but earlier users %s", fn, w->h.path,
                    (long long)user_id, ts ? "has" : "lacks", w->has_ts ? "have" : "do not");
  for (int64_t k = 0; k < n; k++) {
    if (items[k] < 0 || items[k] >= w->n_items)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: %s: user %lld row %lld: item %d outside 0..%lld",
                      fn, w->h.path, (long long)user_id, (long long)k, (int)items[k],
                      (long long)w->n_items - 1);
    if (ts && (!isfinite(ts[k]) || (k && ts[k] < ts[k - 1])))
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "%s: %s: user %lld row %lld: timestamp %.17g is not finite or goes back in "
                      "time",
                      fn, w->h.path, (long long)user_id, (long long)k, ts[k]);
    if (labels && !isfinite(labels[k]))
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: %s: user %lld row %lld: label not finite",
                      fn, w->h.path, (long long)user_id, (long long)k);
  }
  if (grow_rows(w->ctx, &w->items, &w->ts, &w->labels, &w->cap_r, w->cr, w->cr + n))
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: %s: out of memory for a chunk of %lld rows", fn,
                    w->h.path, (long long)(w->cr + n));
  memcpy(w->items + w->cr, items, (size_t)n * sizeof(int32_t));
  for (int64_t k = 0; k < n; k++) {
    w->ts[w->cr + k] = ts ? ts[k] : 0;
    w->labels[w->cr + k] = labels ? labels[k] : 1.0f;
  }
  if (w->n_cat) memcpy(w->scat + w->cu * w->n_cat, scat, (size_t)w->n_cat * sizeof(int32_t));
  if (w->n_num) memcpy(w->snum + w->cu * w->n_num, snum, (size_t)w->n_num * sizeof(float));
  w->uids[w->cu] = user_id;
  w->cr += n;
  w->offs[++w->cu] = w->cr;
  w->users++;
  w->rows += n;
  w->has_ts = ts != NULL;
  w->has_labels |= labels != NULL;
  if (w->cu == w->chunk_users) {
    onerec_status s = flush_chunk(w);
    if (s) return s;
  }
  w->broken = 0;
  return ONEREC_OK;
}

onerec_status onerec_seqfile_writer_add(onerec_seqfile_writer *w, int64_t user_id, int64_t n,
                                        const int32_t *items, const double *timestamps,
                                        const float *labels) {
  if (w && (w->n_cat || w->n_num))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_seqfile_writer_add: this writer takes static features");
  return writer_add(w, user_id, n, items, timestamps, labels, NULL, NULL);
}

/* Joins names with '\n' into buf. */
static void join_names(char names[][ORX_DS_NAME_LEN], int32_t n, char *buf, size_t len) {
  size_t o = 0;
  buf[0] = '\0';
  for (int32_t i = 0; i < n && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "\n" : "", names[i]);
}

/* Writes the index, the attributes and (from a data set) static metadata and tags. */
static onerec_status write_root(onerec_seqfile_writer *w, const onerec_dataset *ds) {
  orx_h5 *h = &w->h;
  onerec_status s = flush_chunk(w);
  if (s) return s;
  if (reserve(w->ctx, (void **)&w->cus, &w->cap_c, w->chunks + 1, sizeof(int64_t)) ||
      reserve(w->ctx, (void **)&w->crs, &w->cap_c2, w->chunks + 1, sizeof(int64_t)))
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", h->path);
  w->cus[0] = w->crs[0] = 0;
  const int64_t ni = w->n_items, nc1 = w->chunks + 1;
  s = orx_h5_stamp(h, SEQFILE_KIND, SEQFILE_VERSION);
  if (!s) s = orx_h5_write(h, h->file, "item_ids", ORX_H5_I64, 1, &ni, w->item_ids);
  if (!s) s = orx_h5_write(h, h->file, "chunk_user_start", ORX_H5_I64, 1, &nc1, w->cus);
  if (!s) s = orx_h5_write(h, h->file, "chunk_row_start", ORX_H5_I64, 1, &nc1, w->crs);
  const int64_t attrs[] = {w->users, w->rows, w->n_items, w->chunk_users, w->chunks,
                           ds ? ds->has_ts : w->has_ts > 0, ds ? ds->has_labels : w->has_labels,
                           w->n_cat, w->n_num, ds ? ds->n_tags : 0};
  static const char *names[] = {"users",          "rows",       "items",
                                "chunk_users",    "chunks",     "has_timestamps",
                                "has_labels",     "static_cat_count", "static_num_count",
                                "tags"};
  for (size_t i = 0; !s && i < sizeof attrs / sizeof attrs[0]; i++)
    s = orx_h5_attr_write_i64(h, h->file, names[i], attrs[i]);
  if (!s && ds && (ds->n_cat || ds->n_num)) {
    hid_t g;
    s = orx_h5_group_create(h, "/static", &g);
    if (s) return s;
    char buf[ONEREC_MAX_FEATURES * ORX_DS_NAME_LEN + 16];
    const int64_t nc = ds->n_cat;
    if (nc) s = orx_h5_write(h, g, "cat_vocab", ORX_H5_I64, 1, &nc, ds->cat_vocab);
    join_names((char(*)[ORX_DS_NAME_LEN])ds->cat_names, ds->n_cat, buf, sizeof buf);
    if (!s) s = orx_h5_attr_write_str(h, g, "cat_names", buf);
    join_names((char(*)[ORX_DS_NAME_LEN])ds->num_names, ds->n_num, buf, sizeof buf);
    if (!s) s = orx_h5_attr_write_str(h, g, "num_names", buf);
    orx_h5_group_close(g);
  }
  if (!s && ds && ds->n_tags) {
    hid_t g;
    s = orx_h5_group_create(h, "/tags", &g);
    if (s) return s;
    const int64_t no = ds->n_items + 1, nt = ds->tag_offsets[ds->n_items];
    const char *last = ds->tag_names[ds->n_tags - 1];
    const int64_t nb = (int64_t)(last + strlen(last) + 1 - ds->tag_pool);
    s = orx_h5_write(h, g, "offsets", ORX_H5_I64, 1, &no, ds->tag_offsets);
    if (!s) s = orx_h5_write(h, g, "tags", ORX_H5_I32, 1, &nt, ds->tags);
    if (!s) s = orx_h5_write(h, g, "names", ORX_H5_U8, 1, &nb, ds->tag_pool);
    orx_h5_group_close(g);
  }
  return s;
}

onerec_status onerec_seqfile_writer_commit(onerec_seqfile_writer *w) {
  ORX_CHECK_ARG(w, "onerec_seqfile_writer_commit");
  onerec_status s = w->broken ? orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                                         "onerec_seqfile_writer_commit: %s: an earlier call "
                                         "failed; nothing written",
                                         w->h.path)
                              : write_root(w, NULL);
  if (!s) s = orx_h5_commit(&w->h);
  if (s) orx_h5_abort(&w->h);
  writer_free(w);
  return s;
}

onerec_status onerec_dataset_save(const onerec_dataset *ds, const char *path,
                                  const onerec_seqfile_opts *opts) {
  ORX_CHECK_ARG(ds, "onerec_dataset_save");
  onerec_seqfile_writer *w = NULL;
  onerec_status s = writer_new(ds->ctx, path, ds->n_items, ds->item_ids, opts, ds->n_cat,
                               ds->n_num, &w);
  if (s) return s;
  for (int64_t u = 0; !s && u < ds->n_users; u++) {
    const int64_t b = ds->offsets[u];
    s = writer_add(w, ds->user_ids[u], ds->offsets[u + 1] - b, ds->items + b,
                   ds->has_ts ? ds->ts + b : NULL, ds->labels + b,
                   ds->n_cat ? ds->static_cat + u * ds->n_cat : NULL,
                   ds->n_num ? ds->static_num + u * ds->n_num : NULL);
  }
  if (!s) s = write_root(w, ds);
  if (!s) s = orx_h5_commit(&w->h);
  if (s) orx_h5_abort(&w->h);
  writer_free(w);
  return s;
}

/* ---- reader ---- */

struct onerec_seqfile_reader {
  onerec_context *ctx;
  orx_h5 h;
  int64_t users, rows, n_items, chunk_users, chunks;
  int32_t n_cat, n_num, n_tags, has_ts, has_labels;
  int64_t *item_ids, *cus, *crs;
  /* the window handed out */
  int64_t cap_u, cap_u2, cap_r, cap_sc, cap_sn;
  int64_t *uids, *offs;
  int32_t *items;
  double *ts;
  float *labels;
  int32_t *scat;
  float *snum;
  /* one chunk as read */
  int64_t ccap_u, ccap_u2, ccap_r, ccap_sc, ccap_sn;
  int64_t *c_uids, *c_offs;
  int32_t *c_items;
  double *c_ts;
  float *c_labels;
  int32_t *c_scat;
  float *c_snum;
};

void onerec_seqfile_close(onerec_seqfile_reader *r) {
  if (!r) return;
  orx_h5_close(&r->h);
  const onerec_context *ctx = r->ctx;
  void *arrays[] = {r->item_ids, r->cus,    r->crs,     r->uids,     r->offs,   r->items,
                    r->ts,       r->labels, r->scat,    r->snum,     r->c_uids, r->c_offs,
                    r->c_items,  r->c_ts,   r->c_labels, r->c_scat, r->c_snum};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) orx_host_free(ctx, arrays[i]);
  orx_host_free(ctx, r);
}

onerec_status onerec_seqfile_open(onerec_context *ctx, const char *path,
                                  onerec_seqfile_reader **out) {
  const char *fn = "onerec_seqfile_open";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(ctx, fn);
  ORX_CHECK_ARG(path, fn);
  onerec_seqfile_reader *r = orx_host_alloc(ctx, sizeof *r);
  if (!r) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  memset(r, 0, sizeof *r);
  r->ctx = ctx;
  r->h.file = H5I_INVALID_HID;
  orx_h5 *h = &r->h;
  onerec_status s = orx_h5_open(h, path);
  if (!s) s = orx_h5_check_stamp(h, SEQFILE_KIND, SEQFILE_VERSION, NULL);
  int64_t a[10] = {0};
  static const char *names[] = {"users",          "rows",       "items",
                                "chunk_users",    "chunks",     "has_timestamps",
                                "has_labels",     "static_cat_count", "static_num_count",
                                "tags"};
  for (int i = 0; !s && i < 10; i++) s = orx_h5_attr_read_i64(h, h->file, names[i], &a[i]);
  if (s) goto fail;
  r->users = a[0];
  r->rows = a[1];
  r->n_items = a[2];
  r->chunk_users = a[3];
  r->chunks = a[4];
  r->has_ts = a[5] != 0;
  r->has_labels = a[6] != 0;
  if (a[0] < 0 || a[1] < a[0] || a[2] < 0 || a[2] > INT32_MAX || a[3] < 1 || a[4] < 0 ||
      a[4] > a[0] || (a[0] > 0 && a[4] == 0) || a[7] < 0 || a[7] > ONEREC_MAX_FEATURES ||
      a[8] < 0 || a[8] > ONEREC_MAX_FEATURES || a[9] < 0 || a[9] > INT32_MAX) {
    s = orx_fail(ONEREC_ERR_FORMAT,
                 "%s: inconsistent counts (users %lld, rows %lld, items %lld, chunk_users %lld, "
                 "chunks %lld, static features %lld/%lld, tags %lld)",
                 path, (long long)a[0], (long long)a[1], (long long)a[2], (long long)a[3],
                 (long long)a[4], (long long)a[7], (long long)a[8], (long long)a[9]);
    goto fail;
  }
  r->n_cat = (int32_t)a[7];
  r->n_num = (int32_t)a[8];
  r->n_tags = (int32_t)a[9];
  r->item_ids = alloc_n(ctx, r->n_items, sizeof(int64_t));
  r->cus = alloc_n(ctx, r->chunks + 1, sizeof(int64_t));
  r->crs = alloc_n(ctx, r->chunks + 1, sizeof(int64_t));
  if (!r->item_ids || !r->cus || !r->crs) {
    s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    goto fail;
  }
  int64_t d = r->n_items;
  s = orx_h5_read(h, h->file, "item_ids", ORX_H5_I64, 1, &d, r->item_ids,
                  (size_t)(d ? d : 1) * sizeof(int64_t));
  d = r->chunks + 1;
  if (!s)
    s = orx_h5_read(h, h->file, "chunk_user_start", ORX_H5_I64, 1, &d, r->cus,
                    (size_t)d * sizeof(int64_t));
  d = r->chunks + 1;
  if (!s)
    s = orx_h5_read(h, h->file, "chunk_row_start", ORX_H5_I64, 1, &d, r->crs,
                    (size_t)d * sizeof(int64_t));
  if (s) goto fail;
  for (int64_t i = 0; i < r->n_items; i++)
    if (r->item_ids[i] < 0 || (i && r->item_ids[i] <= r->item_ids[i - 1])) {
      s = orx_fail(ONEREC_ERR_FORMAT,
                   "%s: item_ids[%lld] = %lld: ids must be non-negative and strictly ascending",
                   path, (long long)i, (long long)r->item_ids[i]);
      goto fail;
    }
  if (r->cus[0] != 0 || r->crs[0] != 0 || r->cus[r->chunks] != r->users ||
      r->crs[r->chunks] != r->rows) {
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: the chunk index does not span %lld users and %lld rows",
                 path, (long long)r->users, (long long)r->rows);
    goto fail;
  }
  for (int64_t c = 0; c < r->chunks; c++) {
    const int64_t nu = r->cus[c + 1] - r->cus[c], nr = r->crs[c + 1] - r->crs[c];
    /* every user has a row, so a chunk has at least as many rows as users */
    if (nu < 1 || nu > r->chunk_users || nr < nu) {
      s = orx_fail(ONEREC_ERR_FORMAT, "%s: chunk %lld: %lld users, %lld rows (chunk_users %lld)",
                   path, (long long)c, (long long)nu, (long long)nr, (long long)r->chunk_users);
      goto fail;
    }
  }
  *out = r;
  return ONEREC_OK;
fail:
  onerec_seqfile_close(r);
  return s;
}

onerec_status onerec_seqfile_info(const onerec_seqfile_reader *r, int64_t *users,
                                  int64_t *interactions, int64_t *items, int64_t *chunk_users) {
  ORX_CHECK_ARG(r, "onerec_seqfile_info");
  if (users) *users = r->users;
  if (interactions) *interactions = r->rows;
  if (items) *items = r->n_items;
  if (chunk_users) *chunk_users = r->chunk_users;
  return ONEREC_OK;
}

/* Reads and validates chunk c into the reader's chunk buffers. */
static onerec_status read_chunk(onerec_seqfile_reader *r, int64_t c) {
  orx_h5 *h = &r->h;
  const onerec_context *ctx = r->ctx;
  const int64_t nu = r->cus[c + 1] - r->cus[c], nr = r->crs[c + 1] - r->crs[c];
  if (reserve(ctx, (void **)&r->c_uids, &r->ccap_u, nu + 1, sizeof(int64_t)) ||
      reserve(ctx, (void **)&r->c_offs, &r->ccap_u2, nu + 1, sizeof(int64_t)))
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", h->path);
  if (grow_rows(ctx, &r->c_items, &r->c_ts, &r->c_labels, &r->ccap_r, 0, nr))
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory for a chunk of %lld rows",
                    h->path, (long long)nr);
  if (reserve(ctx, (void **)&r->c_scat, &r->ccap_sc, nu * r->n_cat, sizeof(int32_t)) ||
      reserve(ctx, (void **)&r->c_snum, &r->ccap_sn, nu * r->n_num, sizeof(float)))
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", h->path);
  char name[64];
  snprintf(name, sizeof name, "/chunks/%08lld", (long long)c);
  hid_t g;
  onerec_status s = orx_h5_group_open(h, name, &g);
  if (s) return s;
  int64_t d[2];
  d[0] = nu;
  s = orx_h5_read(h, g, "user_ids", ORX_H5_I64, 1, d, r->c_uids, (size_t)nu * sizeof(int64_t));
  d[0] = nu + 1;
  if (!s)
    s = orx_h5_read(h, g, "offsets", ORX_H5_I64, 1, d, r->c_offs,
                    (size_t)(nu + 1) * sizeof(int64_t));
  d[0] = nr;
  if (!s) s = orx_h5_read(h, g, "item", ORX_H5_I32, 1, d, r->c_items, (size_t)nr * 4);
  d[0] = nr;
  if (!s) s = orx_h5_read(h, g, "timestamp", ORX_H5_F64, 1, d, r->c_ts, (size_t)nr * 8);
  d[0] = nr;
  if (!s) s = orx_h5_read(h, g, "label", ORX_H5_F32, 1, d, r->c_labels, (size_t)nr * 4);
  if (!s && r->n_cat) {
    d[0] = nu;
    d[1] = r->n_cat;
    s = orx_h5_read(h, g, "static_cat", ORX_H5_I32, 2, d, r->c_scat,
                    (size_t)(nu * r->n_cat) * sizeof(int32_t));
  }
  if (!s && r->n_num) {
    d[0] = nu;
    d[1] = r->n_num;
    s = orx_h5_read(h, g, "static_num", ORX_H5_F32, 2, d, r->c_snum,
                    (size_t)(nu * r->n_num) * sizeof(float));
  }
  orx_h5_group_close(g);
  if (s) return s;
  if (r->c_offs[0] != 0 || r->c_offs[nu] != nr)
    return orx_fail(ONEREC_ERR_FORMAT, "%s: chunk %lld: offsets run %lld..%lld, expected 0..%lld",
                    h->path, (long long)c, (long long)r->c_offs[0], (long long)r->c_offs[nu],
                    (long long)nr);
  for (int64_t u = 0; u < nu; u++) {
    const int64_t b = r->c_offs[u], e = r->c_offs[u + 1], id = r->c_uids[u];
    const long long gu = (long long)(r->cus[c] + u);
    if (e <= b || e > nr)
      return orx_fail(ONEREC_ERR_FORMAT, "%s: chunk %lld user %lld (id %lld): %s", h->path,
                      (long long)c, gu, (long long)id,
                      e == b ? "no interactions" : "offsets go back");
    if (id < 0)
      return orx_fail(ONEREC_ERR_FORMAT, "%s: chunk %lld user %lld: negative id %lld", h->path,
                      (long long)c, gu, (long long)id);
    for (int64_t k = b; k < e; k++) {
      if (r->c_items[k] < 0 || r->c_items[k] >= r->n_items)
        return orx_fail(ONEREC_ERR_FORMAT,
                        "%s: chunk %lld user %lld (id %lld) row %lld: item %d outside 0..%lld",
                        h->path, (long long)c, gu, (long long)id, (long long)(k - b),
                        (int)r->c_items[k], (long long)r->n_items - 1);
      if (!isfinite(r->c_ts[k]) || !isfinite(r->c_labels[k]))
        return orx_fail(ONEREC_ERR_FORMAT,
                        "%s: chunk %lld user %lld (id %lld) row %lld: non-finite %s", h->path,
                        (long long)c, gu, (long long)id, (long long)(k - b),
                        isfinite(r->c_ts[k]) ? "label" : "timestamp");
      if (k > b && r->c_ts[k] < r->c_ts[k - 1])
        return orx_fail(ONEREC_ERR_FORMAT,
                        "%s: chunk %lld user %lld (id %lld) row %lld: timestamp %.17g goes back "
                        "in time (previous %.17g)",
                        h->path, (long long)c, gu, (long long)id, (long long)(k - b),
                        r->c_ts[k], r->c_ts[k - 1]);
    }
    for (int32_t f = 0; f < r->n_cat; f++)
      if (r->c_scat[u * r->n_cat + f] < -1)
        return orx_fail(ONEREC_ERR_FORMAT,
                        "%s: chunk %lld user %lld: static feature %d is %d (< -1)", h->path,
                        (long long)c, gu, (int)f, (int)r->c_scat[u * r->n_cat + f]);
    for (int32_t f = 0; f < r->n_num; f++)
      if (!isfinite(r->c_snum[u * r->n_num + f]))
        return orx_fail(ONEREC_ERR_FORMAT,
                        "%s: chunk %lld user %lld: numeric static feature %d is not finite",
                        h->path, (long long)c, gu, (int)f);
  }
  return ONEREC_OK;
}

/* The chunk holding user u (chunk_user_start is strictly increasing). */
static int64_t chunk_of(const onerec_seqfile_reader *r, int64_t u) {
  int64_t lo = 0, hi = r->chunks - 1;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo + 1) / 2;
    if (r->cus[mid] <= u)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

onerec_status onerec_seqfile_read(onerec_seqfile_reader *r, int64_t first, int64_t count,
                                  onerec_seqfile_window *win) {
  const char *fn = "onerec_seqfile_read";
  ORX_CHECK_ARG(r, fn);
  ORX_CHECK_ARG(win, fn);
  if (win->sz < sizeof(size_t))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: win->sz is %zu; declare it with ONEREC_OPTS",
                    fn, win->sz);
  if (first < 0 || count < 0 || first > r->users - count)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: users %lld..%lld outside 0..%lld", fn,
                    (long long)first, (long long)(first + count - 1), (long long)r->users - 1);
  const onerec_context *ctx = r->ctx;
  /* rows of the window, from the chunk index, to size the buffers first; exact after reading */
  int64_t max_rows = 0;
  if (count > 0) {
    const int64_t c0 = chunk_of(r, first), c1 = chunk_of(r, first + count - 1);
    max_rows = r->crs[c1 + 1] - r->crs[c0];
  }
  if (reserve(ctx, (void **)&r->uids, &r->cap_u, count + 1, sizeof(int64_t)) ||
      reserve(ctx, (void **)&r->offs, &r->cap_u2, count + 1, sizeof(int64_t)) ||
      reserve(ctx, (void **)&r->scat, &r->cap_sc, count * r->n_cat, sizeof(int32_t)) ||
      reserve(ctx, (void **)&r->snum, &r->cap_sn, count * r->n_num, sizeof(float)))
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  if (grow_rows(ctx, &r->items, &r->ts, &r->labels, &r->cap_r, 0, max_rows))
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld rows", fn,
                    (long long)max_rows);
  int64_t got = 0, rows = 0;
  r->offs[0] = 0;
  while (got < count) {
    const int64_t u = first + got, c = chunk_of(r, u);
    onerec_status s = read_chunk(r, c);
    if (s) return s;
    const int64_t lu = u - r->cus[c];
    int64_t take = r->cus[c + 1] - u;
    if (take > count - got) take = count - got;
    const int64_t rb = r->c_offs[lu], re = r->c_offs[lu + take];
    memcpy(r->uids + got, r->c_uids + lu, (size_t)take * sizeof(int64_t));
    for (int64_t k = 1; k <= take; k++) r->offs[got + k] = rows + r->c_offs[lu + k] - rb;
    memcpy(r->items + rows, r->c_items + rb, (size_t)(re - rb) * sizeof(int32_t));
    memcpy(r->ts + rows, r->c_ts + rb, (size_t)(re - rb) * sizeof(double));
    memcpy(r->labels + rows, r->c_labels + rb, (size_t)(re - rb) * sizeof(float));
    if (r->n_cat)
      memcpy(r->scat + got * r->n_cat, r->c_scat + lu * r->n_cat,
             (size_t)(take * r->n_cat) * sizeof(int32_t));
    if (r->n_num)
      memcpy(r->snum + got * r->n_num, r->c_snum + lu * r->n_num,
             (size_t)(take * r->n_num) * sizeof(float));
    got += take;
    rows += re - rb;
  }
  onerec_seqfile_window w;
  memset(&w, 0, sizeof w);
  w.sz = win->sz;
  w.first_user = first;
  w.users = count;
  w.rows = rows;
  w.user_ids = r->uids;
  w.offsets = r->offs;
  w.items = r->items;
  w.timestamps = r->ts;
  w.labels = r->labels;
  w.static_cat_count = r->n_cat;
  w.static_num_count = r->n_num;
  w.static_cat = r->n_cat ? r->scat : NULL;
  w.static_num = r->n_num ? r->snum : NULL;
  memcpy(win, &w, win->sz < sizeof w ? win->sz : sizeof w);
  return ONEREC_OK;
}

/* ---- whole-file load into a data set ---- */

/* Splits a newline-separated name list into n fixed slots. */
static onerec_status split_names(const char *path, const char *list, int32_t n,
                                 char names[][ORX_DS_NAME_LEN]) {
  const char *p = list;
  for (int32_t i = 0; i < n; i++) {
    const char *e = strchr(p, '\n');
    size_t m = e ? (size_t)(e - p) : strlen(p);
    if (m >= ORX_DS_NAME_LEN || (!e && i + 1 < n) || (e && i + 1 == n))
      return orx_fail(ONEREC_ERR_FORMAT, "%s: static feature names do not match their count %d",
                      path, (int)n);
    memcpy(names[i], p, m);
    names[i][m] = '\0';
    p = e ? e + 1 : p + m;
  }
  return ONEREC_OK;
}

onerec_status orx_ds_read_h5(onerec_dataset *ds, const char *path) {
  onerec_seqfile_reader *r = NULL;
  onerec_status s = onerec_seqfile_open(ds->ctx, path, &r);
  if (s) return s;
  const onerec_context *ctx = ds->ctx;
  orx_h5 *h = &r->h;
  ds->n_users = r->users;
  ds->n_rows = r->rows;
  ds->n_items = r->n_items;
  ds->has_ts = r->has_ts;
  ds->has_labels = r->has_labels;
  ds->n_cat = r->n_cat;
  ds->n_num = r->n_num;
  ds->user_ids = alloc_n(ctx, r->users, sizeof(int64_t));
  ds->offsets = alloc_n(ctx, r->users + 1, sizeof(int64_t));
  ds->items = alloc_n(ctx, r->rows, sizeof(int32_t));
  ds->ts = alloc_n(ctx, r->rows, sizeof(double));
  ds->labels = alloc_n(ctx, r->rows, sizeof(float));
  ds->item_ids = alloc_n(ctx, r->n_items, sizeof(int64_t));
  ds->static_cat = r->n_cat ? alloc_n(ctx, r->users * r->n_cat, sizeof(int32_t)) : NULL;
  ds->static_num = r->n_num ? alloc_n(ctx, r->users * r->n_num, sizeof(float)) : NULL;
  if (!ds->user_ids || !ds->offsets || !ds->items || !ds->ts || !ds->labels || !ds->item_ids ||
      (r->n_cat && !ds->static_cat) || (r->n_num && !ds->static_num)) {
    s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld rows", path,
                 (long long)r->rows);
    goto done;
  }
  memcpy(ds->item_ids, r->item_ids, (size_t)r->n_items * sizeof(int64_t));
  ds->offsets[0] = 0;
  for (int64_t c = 0; c < r->chunks; c++) {
    const int64_t u0 = r->cus[c], nu = r->cus[c + 1] - u0, r0 = r->crs[c];
    ONEREC_OPTS(onerec_seqfile_window, w);
    s = onerec_seqfile_read(r, u0, nu, &w);
    if (s) goto done;
    memcpy(ds->user_ids + u0, w.user_ids, (size_t)nu * sizeof(int64_t));
    for (int64_t k = 1; k <= nu; k++) ds->offsets[u0 + k] = r0 + w.offsets[k];
    memcpy(ds->items + r0, w.items, (size_t)w.rows * sizeof(int32_t));
    memcpy(ds->ts + r0, w.timestamps, (size_t)w.rows * sizeof(double));
    memcpy(ds->labels + r0, w.labels, (size_t)w.rows * sizeof(float));
    if (r->n_cat)
      memcpy(ds->static_cat + u0 * r->n_cat, w.static_cat,
             (size_t)(nu * r->n_cat) * sizeof(int32_t));
    if (r->n_num)
      memcpy(ds->static_num + u0 * r->n_num, w.static_num,
             (size_t)(nu * r->n_num) * sizeof(float));
  }
  if (r->n_cat || r->n_num) {
    hid_t g;
    s = orx_h5_group_open(h, "/static", &g);
    if (s) goto done;
    char buf[4096];
    int64_t d = r->n_cat;
    if (r->n_cat)
      s = orx_h5_read(h, g, "cat_vocab", ORX_H5_I64, 1, &d, ds->cat_vocab,
                      sizeof ds->cat_vocab);
    if (!s) s = orx_h5_attr_read_str(h, g, "cat_names", buf, sizeof buf);
    if (!s) s = split_names(path, buf, r->n_cat, ds->cat_names);
    if (!s) s = orx_h5_attr_read_str(h, g, "num_names", buf, sizeof buf);
    if (!s) s = split_names(path, buf, r->n_num, ds->num_names);
    orx_h5_group_close(g);
    if (s) goto done;
    for (int64_t u = 0; u < r->users; u++)
      for (int32_t f = 0; f < r->n_cat; f++)
        if (ds->static_cat[u * r->n_cat + f] >= ds->cat_vocab[f]) {
          s = orx_fail(ONEREC_ERR_FORMAT, "%s: user %lld: static feature %s = %d outside 0..%lld",
                       path, (long long)u, ds->cat_names[f], (int)ds->static_cat[u * r->n_cat + f],
                       (long long)ds->cat_vocab[f] - 1);
          goto done;
        }
  }
  if (r->n_tags) {
    hid_t g;
    s = orx_h5_group_open(h, "/tags", &g);
    if (s) goto done;
    int64_t d = r->n_items + 1, nt = -1, nb = -1;
    char *pool = NULL;
    ds->tag_offsets = alloc_n(ctx, d, sizeof(int64_t));
    if (!ds->tag_offsets) s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    if (!s)
      s = orx_h5_read(h, g, "offsets", ORX_H5_I64, 1, &d, ds->tag_offsets,
                      (size_t)d * sizeof(int64_t));
    if (!s) s = orx_h5_read(h, g, "tags", ORX_H5_I32, 1, &nt, NULL, 0);
    if (!s) s = orx_h5_read(h, g, "names", ORX_H5_U8, 1, &nb, NULL, 0);
    if (!s) {
      ds->tags = alloc_n(ctx, nt, sizeof(int32_t));
      pool = malloc((size_t)(nb ? nb : 1));
      if (!ds->tags || !pool) s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    if (!s) s = orx_h5_read(h, g, "tags", ORX_H5_I32, 1, &nt, ds->tags, (size_t)nt * 4);
    if (!s) s = orx_h5_read(h, g, "names", ORX_H5_U8, 1, &nb, pool, (size_t)nb);
    orx_h5_group_close(g);
    if (!s) {
      if (ds->tag_offsets[0] != 0 || ds->tag_offsets[r->n_items] != nt)
        s = orx_fail(ONEREC_ERR_FORMAT, "%s: tag offsets do not span the %lld tags", path,
                     (long long)nt);
      for (int64_t i = 0; !s && i < r->n_items; i++)
        if (ds->tag_offsets[i + 1] < ds->tag_offsets[i])
          s = orx_fail(ONEREC_ERR_FORMAT, "%s: tag offsets go back at item %lld", path,
                       (long long)i);
      for (int64_t k = 0; !s && k < nt; k++)
        if (ds->tags[k] < 0 || ds->tags[k] >= r->n_tags)
          s = orx_fail(ONEREC_ERR_FORMAT, "%s: tag %d outside 0..%d", path, (int)ds->tags[k],
                       (int)r->n_tags - 1);
    }
    if (!s) s = orx_ds_set_tag_names(ds, pool, (size_t)nb, r->n_tags);
    free(pool);
    if (s) goto done;
  }
  s = orx_ds_finish(ds, path);
done:
  onerec_seqfile_close(r);
  return s;
}
