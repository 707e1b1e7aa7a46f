/* The data set's internals, shared by lib/dataset.c (handle, split, samples, batches),
 * lib/data_recbole.c (RecBole atomic files), lib/data_h5.c (sequence files) and
 * lib/eval_metrics.c. Never installed. */
#ifndef ORX_DATASET_IMPL_H
#define ORX_DATASET_IMPL_H

#include "context_impl.h"
#include "onerec/data.h"

#define ORX_DS_NAME_LEN 48

struct onerec_dataset {
  onerec_context *ctx;
  const char *format; /* static string */
  int64_t n_users, n_items, n_rows;
  int64_t *user_ids; /* [n_users] */
  int64_t *user_by_id; /* [n_users] user indices sorted by id (lookups) */
  int64_t *offsets;  /* [n_users + 1] */
  int32_t *items;    /* [n_rows] dense */
  double *ts;        /* [n_rows] */
  float *labels;     /* [n_rows] */
  int32_t has_ts, has_labels;
  int64_t *item_ids; /* [n_items] ascending */
  /* user static features */
  int32_t n_cat, n_num;
  char cat_names[ONEREC_MAX_FEATURES][ORX_DS_NAME_LEN];
  char num_names[ONEREC_MAX_FEATURES][ORX_DS_NAME_LEN];
  int64_t cat_vocab[ONEREC_MAX_FEATURES];
  int32_t *static_cat; /* [n_users, n_cat] or NULL */
  float *static_num;   /* [n_users, n_num] or NULL */
  /* item tags */
  int32_t n_tags;
  int64_t *tag_offsets; /* [n_items + 1] or NULL */
  int32_t *tags;
  char *tag_pool;        /* names, NUL-separated */
  const char **tag_names; /* [n_tags] into tag_pool */
};

/* An empty data set owned by ctx (every pointer NULL). */
onerec_status orx_ds_new(onerec_context *ctx, const char *format, onerec_dataset **out);

/* Finishes a data set whose user_ids, offsets, items (already dense), ts, labels, item_ids
 * are set: checks them and builds the user lookup. `what` names the source in messages. */
onerec_status orx_ds_finish(onerec_dataset *ds, const char *what);

/* Sets tag names from `count` NUL-terminated strings laid end to end in pool (pool_len bytes,
 * copied). */
onerec_status orx_ds_set_tag_names(onerec_dataset *ds, const char *pool, size_t pool_len,
                                   int32_t count);

/* Readers (they fill a fresh data set from orx_ds_new). */
onerec_status orx_ds_read_recbole(onerec_dataset *ds, const char *dir, const char *name);
onerec_status orx_ds_read_h5(onerec_dataset *ds, const char *path);

/* Parses a RecBole atomic file held in memory (name is used in messages); exposed for tests
 * of the parser on small texts. kind: 0 = .inter, 1 = .user, 2 = .item. The .user and .item
 * parts need the data set's users and items already in place. */
onerec_status orx_recbole_parse(onerec_dataset *ds, int kind, const char *name, const char *text,
                                size_t len);

#endif
