/* Interaction data: readers for the reference data sets, the leave-one-out split, training
 * samples from history prefixes, a chunked HDF5 interaction format for data larger than memory,
 * batches in the model's input layout, and full-ranking metrics.
 *
 * A data set (onerec_dataset) holds users' interaction sequences, oldest first, as one flat
 * table of rows: user u's interactions are rows offsets[u] .. offsets[u+1]-1, each with an item
 * (a dense index 0..items-1), a timestamp and a label (the rating, or 1 for implicit feedback).
 * Items keep their original 64-bit ids both ways: dense index -> id through an ascending table,
 * id -> dense index by lookup. Users keep their ids too.
 *
 * Leave-one-out (the protocol of the published Beauty tables, S3-Rec / P5 / TIGER): for each
 * user the last interaction is the test target, the one before it the validation target, the
 * rest is training. A user with one interaction has only a test target; with two, a validation
 * and a test target and an empty training part.
 *
 * Samples (onerec_samples) are (user, target row) pairs; the history of a sample is the rows of
 * the same user before the target row (the most recent max_history of them):
 *   train: every training position t >= 1 of a user's training part: history = the training
 *          items before t, target = the item at t;
 *   valid: history = the training part, target = the validation item;
 *   test:  history = training part + validation item, target = the test item.
 * No sample's history or target ever includes a later split's item.
 *
 * Thread-safety: a data set is immutable once loaded; any number of threads may read it at
 * once. A sample list may be read (count, get, batch fill) by several threads at once, but
 * shuffle and filter need exclusive access. A batch, a sequence-file reader or writer and a
 * metrics accumulator are used by one thread at a time (give each thread its own accumulator
 * and merge them). Data sets, readers and writers keep a pointer to their context, sample
 * lists and batches to their data set: those must outlive them. */
#ifndef ONEREC_DATA_H
#define ONEREC_DATA_H

#include "onerec/context.h"
#include "onerec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct onerec_dataset onerec_dataset;
typedef struct onerec_samples onerec_samples;
typedef struct onerec_batch onerec_batch;
typedef struct onerec_seqfile_reader onerec_seqfile_reader;
typedef struct onerec_seqfile_writer onerec_seqfile_writer;
typedef struct onerec_metrics onerec_metrics;

/* ---- loading ---- */

typedef struct onerec_dataset_opts {
  size_t sz;          /* sizeof(onerec_dataset_opts); set by ONEREC_OPTS */
  const char *format; /* "beauty", "ml-100k", "recbole", "h5" or NULL / "auto" (default) */
  const char *name;   /* RecBole atomic-file prefix (default: the last component of the
                       * folder, e.g. "ml-100k" reads ml-100k.inter/.user/.item) */
} onerec_dataset_opts;

/* Loads a data set from `path`:
 *   "beauty"  path is a folder holding Beauty.txt (or that file itself): one user per line,
 *             `user_id item_id ...`, oldest first; no timestamps, labels 1; users in file order.
 *   "recbole" / "ml-100k"  path is a folder of RecBole atomic files NAME.inter (required;
 *             columns user_id:token, item_id:token, optional rating:float and
 *             timestamp:float, any order; another column is an error), NAME.user and NAME.item
 *             (optional). Users in ascending id order, each user's rows sorted by timestamp,
 *             stable on ties (file order); the rating is the label (1 without one).
 *             NAME.user: user_id:token, then any columns: `age` gives the numeric feature
 *             "age" (years) and the categorical "age_bucket" (<18, 18-24, 25-34, 35-44, 45-49,
 *             50-55, 56+); `zip_code` gives "zip_region" (its first character); any other
 *             :token column becomes a categorical feature (values numbered in order of first
 *             appearance), a :float column a numeric one. Users without a row get -1 (missing)
 *             and 0. NAME.item: item_id:token and a :token_seq column `class` or `genre`
 *             whose words are the item's tags; other columns are ignored.
 *   "h5"      path is a sequence file written by onerec_dataset_save or a seqfile writer.
 *   "auto"    a file ending in .h5 -> h5; a folder with Beauty.txt -> beauty; a folder with
 *             NAME.inter -> recbole.
 * Item and user ids must be non-negative integers. opts may be NULL.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL, bad options, unknown format), ONEREC_ERR_IO
 * (missing or unreadable file), ONEREC_ERR_FORMAT with "file:line: ..." for a malformed line,
 * a wrong field count, an unknown or mistyped column, a bad id or number, a user without
 * interactions, a repeated user line; for HDF5 files with the chunk and user at fault
 * (offsets, items out of range, timestamps going back in time, ...); ONEREC_ERR_VERSION (a
 * newer file), ONEREC_ERR_OUT_OF_MEMORY. Thread-safety: uses ctx (one thread at a time). */
ONEREC_API onerec_status onerec_dataset_load(onerec_context *ctx, const char *path,
                                             const onerec_dataset_opts *opts,
                                             onerec_dataset **out);

/* Frees a data set. NULL is a no-op. Its sample lists and batches must be freed first. */
ONEREC_API void onerec_dataset_free(onerec_dataset *ds);

/* Counts of a data set. The caller sets sz (ONEREC_OPTS); the library fills the fields sz
 * covers. Sample counts are those of onerec_samples_create without filtering or min_history. */
typedef struct onerec_dataset_info {
  size_t sz;
  int64_t users, items, interactions;
  int64_t train_interactions; /* rows in training parts */
  int64_t train_samples, valid_samples, test_samples;
  int32_t has_timestamps, has_labels; /* 1 if the source had them */
  int32_t static_cat_count, static_num_count;
  int32_t tags; /* distinct item tags (0: none) */
  double label_min, label_max;
  const char *format; /* "beauty", "recbole", "h5" (static string) */
} onerec_dataset_info;

ONEREC_API onerec_status onerec_dataset_get_info(const onerec_dataset *ds,
                                                 onerec_dataset_info *info);

/* The interaction table (see the file comment): offsets [users + 1], items [interactions]
 * (dense indices), timestamps (0 without), labels. Any out pointer may be NULL. The arrays
 * belong to ds. Thread-safe. */
ONEREC_API onerec_status onerec_dataset_interactions(const onerec_dataset *ds, int64_t *users,
                                                     const int64_t **offsets,
                                                     const int32_t **items,
                                                     const double **timestamps,
                                                     const float **labels);

/* User u's split: the training part is rows offsets[u] .. offsets[u]+*train_len-1; *valid_row
 * and *test_row are the rows of the targets (-1 where there is none). Any out pointer may be
 * NULL. Errors: ONEREC_ERR_INVALID_ARGUMENT (u out of range). Thread-safe. */
ONEREC_API onerec_status onerec_dataset_split(const onerec_dataset *ds, int64_t u,
                                              int64_t *train_len, int64_t *valid_row,
                                              int64_t *test_row);

/* Training parts as CSR with ORIGINAL item ids, the input of onerec_collab_mine: offsets
 * [users + 1] and items, written to caller arrays: offsets must hold users + 1 entries, items
 * train_interactions (onerec_dataset_get_info). Errors: ONEREC_ERR_INVALID_ARGUMENT,
 * ONEREC_ERR_BUFFER_TOO_SMALL. Thread-safe. */
ONEREC_API onerec_status onerec_dataset_train_csr(const onerec_dataset *ds, int64_t *offsets,
                                                  size_t offsets_count, int64_t *items,
                                                  size_t items_count);

/* Dense index -> original id: ids[0 .. *n), ascending. The array belongs to ds. Thread-safe. */
ONEREC_API onerec_status onerec_dataset_item_ids(const onerec_dataset *ds, const int64_t **ids,
                                                 int64_t *n);

/* Original id -> dense index. ONEREC_ERR_NOT_FOUND for an id not in the data. Thread-safe. */
ONEREC_API onerec_status onerec_dataset_item_index(const onerec_dataset *ds, int64_t id,
                                                   int32_t *index);

/* User ids in user order (ids[u] of user u), and the reverse lookup (ONEREC_ERR_NOT_FOUND).
 * Thread-safe. */
ONEREC_API onerec_status onerec_dataset_user_ids(const onerec_dataset *ds, const int64_t **ids,
                                                 int64_t *n);
ONEREC_API onerec_status onerec_dataset_user_index(const onerec_dataset *ds, int64_t id,
                                                   int64_t *index);

/* User static features: cat [users, static_cat_count] (int32, -1 = missing; feature f takes
 * values 0..vocab[f]-1) and num [users, static_num_count]; names of feature f through
 * onerec_dataset_feature_name. Any out pointer may be NULL; arrays belong to ds. Thread-safe. */
ONEREC_API onerec_status onerec_dataset_static(const onerec_dataset *ds, int32_t *cat_count,
                                               const int32_t **cat, const int64_t **cat_vocab,
                                               int32_t *num_count, const float **num);

/* Name of static feature `index`: numeric != 0 picks the numeric features. NULL if out of
 * range. The string belongs to ds. Thread-safe. */
ONEREC_API const char *onerec_dataset_feature_name(const onerec_dataset *ds, int numeric,
                                                   int32_t index);

/* Item tags (e.g. ml-100k genres): item i's tags are tags[offsets[i] .. offsets[i+1]), each in
 * 0..*n_tags-1, in file order. Items without tags (or a data set without) have none. Any out
 * pointer may be NULL; arrays belong to ds. Thread-safe. */
ONEREC_API onerec_status onerec_dataset_item_tags(const onerec_dataset *ds, int32_t *n_tags,
                                                  const int64_t **offsets, const int32_t **tags);

/* Name of tag t, or NULL if out of range. Thread-safe. */
ONEREC_API const char *onerec_dataset_tag_name(const onerec_dataset *ds, int32_t t);

/* ---- samples ---- */

/* Values pinned. */
typedef enum onerec_split {
  ONEREC_SPLIT_TRAIN = 0,
  ONEREC_SPLIT_VALID = 1,
  ONEREC_SPLIT_TEST = 2
} onerec_split;

typedef struct onerec_samples_opts {
  size_t sz;           /* sizeof(onerec_samples_opts); set by ONEREC_OPTS */
  int32_t max_history; /* most recent history rows a sample keeps (default 50; 1..2^30) */
  int32_t min_history; /* samples with a shorter (full) history are left out (default 0) */
} onerec_samples_opts;

/* Makes the samples of one split, in canonical order (users in order, then targets oldest
 * first). opts may be NULL. Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_samples_create(const onerec_dataset *ds, onerec_split split,
                                               const onerec_samples_opts *opts,
                                               onerec_samples **out);

/* Frees a sample list. NULL is a no-op. */
ONEREC_API void onerec_samples_free(onerec_samples *s);

/* Number of samples, or -1 for NULL. */
ONEREC_API int64_t onerec_samples_count(const onerec_samples *s);

/* Sample i (in the current order): its user, its history rows [*hist_begin, *hist_end) (at
 * most max_history, the most recent), and its target row (= *hist_end) and item. Any out
 * pointer may be NULL. Errors: ONEREC_ERR_INVALID_ARGUMENT (i out of range). */
ONEREC_API onerec_status onerec_samples_get(const onerec_samples *s, int64_t i, int64_t *user,
                                            int64_t *hist_begin, int64_t *hist_end,
                                            int32_t *target);

/* Puts the samples in a pseudo-random order that depends only on the seed and on the sample
 * set (not on earlier shuffles): a Fisher-Yates shuffle of the canonical order driven by
 * splitmix64(seed). Shuffle with seed + epoch for a new order every epoch, reproducibly. */
ONEREC_API onerec_status onerec_samples_shuffle(onerec_samples *s, uint64_t seed);

/* Restores the canonical order. */
ONEREC_API onerec_status onerec_samples_unshuffle(onerec_samples *s);

/* What RSFT-style filtering ranks samples by. Values pinned. */
typedef enum onerec_signal {
  ONEREC_SIGNAL_LABEL = 0,        /* the target's label (rating; play time in other data) */
  ONEREC_SIGNAL_HISTORY_LEN = 1,  /* rows before the target (full, not cut to max_history) */
  ONEREC_SIGNAL_HISTORY_LABEL = 2, /* mean label of the kept history (0 for none) */
  ONEREC_SIGNAL_CUSTOM = 3        /* values given by the caller, one per sample */
} onerec_signal;

/* Drops the floor(drop_fraction x count) samples with the lowest signal. Ties are broken by
 * canonical order: among equal signals the earlier sample (earlier user, then older target)
 * is dropped first, so the result does not depend on the current order or the seed. The kept
 * samples keep their current relative order. custom (ONEREC_SIGNAL_CUSTOM only) holds one
 * finite value per sample, in the current order. drop_fraction in [0, 1].
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (bad signal, fraction, NULL or non-finite custom
 * values), ONEREC_ERR_OUT_OF_MEMORY (the list is unchanged). */
ONEREC_API onerec_status onerec_samples_filter(onerec_samples *s, onerec_signal signal,
                                               const double *custom, size_t custom_count,
                                               double drop_fraction);

/* ---- batches in the model's input layout (onerec/model.h) ---- */

/* Per-interaction columns of a batch's sequence inputs (onerec_seq_input). Values pinned. */
enum {
  ONEREC_DATA_CAT_AUTHOR = 0, /* -1: the reference data have no authors */
  ONEREC_DATA_CAT_TAG = 1,    /* the item's first tag, -1 if none */
  ONEREC_DATA_CAT_LABEL = 2,  /* the label rounded to an integer, clamped to 0..15 */
  ONEREC_DATA_CAT_COUNT = 3,
  ONEREC_DATA_NUM_AGE = 0,    /* years from the interaction to the newest one of the
                                 history (>= 0; 0 without timestamps) */
  ONEREC_DATA_NUM_PLAYTIME = 1, /* 0 (not in the reference data) */
  ONEREC_DATA_NUM_DURATION = 2, /* 0 */
  ONEREC_DATA_NUM_COUNT = 3
};

typedef struct onerec_batch_opts {
  size_t sz;                /* sizeof(onerec_batch_opts); set by ONEREC_OPTS */
  int64_t max_batch;        /* samples per batch (default 64) */
  int32_t short_len;        /* short-term rows: the most recent of the history (default 20;
                               -1 = no short-term pathway data) */
  int32_t positive_len;     /* positive rows: the most recent with label >= positive_label
                               (default 256; -1 = no positive pathway data) */
  float positive_label;     /* default 0: every interaction counts as positive */
  int32_t lifelong_len;     /* lifelong rows: the most recent (default 0 = none) */
  int32_t uid_buckets;      /* > 0: static column 0 is the user index modulo this (the model's
                               hashed uid), before the data set's static features */
  int32_t levels;           /* with item_codes: semantic IDs per item */
  const int32_t *item_codes; /* [items, levels] semantic IDs by dense index, or NULL: items
                                enter by dense index. Borrowed: must outlive the batch */
} onerec_batch_opts;

/* Creates a batch buffer for a data set. Errors: ONEREC_ERR_INVALID_ARGUMENT,
 * ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_batch_create(const onerec_dataset *ds,
                                             const onerec_batch_opts *opts, onerec_batch **out);

ONEREC_API void onerec_batch_free(onerec_batch *b);

/* Fills the batch with samples first .. first+count-1 of s (count <= max_batch; s must belong
 * to the batch's data set; histories are cut to the sample list's max_history first), then
 * points *users at the batch's arrays (valid until the next fill or free): static features,
 * short_term, positive and lifelong inputs as onerec_session_encode reads them, with
 * ONEREC_DATA_CAT_COUNT categorical and ONEREC_DATA_NUM_COUNT numeric columns per row.
 * targets (may be NULL) receives the `count` target items (dense indices); with item_codes,
 * target_codes (may be NULL) points at [count, levels] codes. users->sz must be set.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (range, a foreign sample list), ONEREC_ERR_BUFFER_TOO_SMALL
 * (targets_count < count). */
ONEREC_API onerec_status onerec_batch_fill(onerec_batch *b, const onerec_samples *s,
                                           int64_t first, int64_t count,
                                           onerec_user_batch *users, int32_t *targets,
                                           size_t targets_count, const int32_t **target_codes);

/* ---- sequence files: chunked HDF5 for data larger than memory ----
 * Users are stored in chunks of chunk_users users: per chunk, user ids, local row offsets and
 * the columns item (dense index, int32), timestamp (f64), label (f32) and, when the data set
 * has them, static features; at the root the item id table, tags and chunk index. A reader
 * holds one window of users in memory at a time. Written atomically (temporary file, fsync,
 * rename), read with every offset, index, time order and count validated. */

typedef struct onerec_seqfile_opts {
  size_t sz;           /* sizeof(onerec_seqfile_opts); set by ONEREC_OPTS */
  int64_t chunk_users; /* users per chunk (default 4096) */
} onerec_seqfile_opts;

/* Writes ds as a sequence file. opts may be NULL. Errors: ONEREC_ERR_INVALID_ARGUMENT,
 * ONEREC_ERR_IO (the old file, if any, is kept), ONEREC_ERR_OUT_OF_MEMORY. Thread-safe with
 * other readers of ds. */
ONEREC_API onerec_status onerec_dataset_save(const onerec_dataset *ds, const char *path,
                                             const onerec_seqfile_opts *opts);

/* A streaming writer: users are appended one at a time, oldest interaction first, and written
 * chunk by chunk, so memory stays at one chunk. The item table (n_items ascending distinct
 * ids) is given up front; items are dense indices into it. Nothing is visible at path before
 * commit. */
ONEREC_API onerec_status onerec_seqfile_writer_create(onerec_context *ctx, const char *path,
                                                      int64_t n_items, const int64_t *item_ids,
                                                      const onerec_seqfile_opts *opts,
                                                      onerec_seqfile_writer **out);

/* Appends one user: n >= 1 rows of items (0..n_items-1), timestamps (non-decreasing; NULL =
 * none, written as 0) and labels (finite; NULL = 1). The user id must not repeat (checked at
 * load). Errors: ONEREC_ERR_INVALID_ARGUMENT (the writer is then unusable: abort it),
 * ONEREC_ERR_IO, ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_seqfile_writer_add(onerec_seqfile_writer *w, int64_t user_id,
                                                   int64_t n, const int32_t *items,
                                                   const double *timestamps,
                                                   const float *labels);

/* Writes the last chunk and the index, then publishes the file; frees the writer either way. */
ONEREC_API onerec_status onerec_seqfile_writer_commit(onerec_seqfile_writer *w);

/* Discards everything written; frees the writer. NULL is a no-op. */
ONEREC_API void onerec_seqfile_writer_abort(onerec_seqfile_writer *w);

/* Opens a sequence file for windowed reading: checks the stamp, version and index; reads no
 * interaction. Errors as onerec_dataset_load for files. */
ONEREC_API onerec_status onerec_seqfile_open(onerec_context *ctx, const char *path,
                                             onerec_seqfile_reader **out);

ONEREC_API void onerec_seqfile_close(onerec_seqfile_reader *r);

/* Totals of the file: any out pointer may be NULL. */
ONEREC_API onerec_status onerec_seqfile_info(const onerec_seqfile_reader *r, int64_t *users,
                                             int64_t *interactions, int64_t *items,
                                             int64_t *chunk_users);

/* A window of users read by onerec_seqfile_read. The caller sets sz; the library fills the
 * fields sz covers; the arrays belong to the reader and stay valid until its next read. */
typedef struct onerec_seqfile_window {
  size_t sz;
  int64_t first_user, users, rows;
  const int64_t *user_ids; /* [users] */
  const int64_t *offsets;  /* [users + 1], from 0 */
  const int32_t *items;    /* [rows] dense indices */
  const double *timestamps;
  const float *labels;
  int32_t static_cat_count, static_num_count;
  const int32_t *static_cat; /* [users, static_cat_count] or NULL */
  const float *static_num;   /* [users, static_num_count] or NULL */
} onerec_seqfile_window;

/* Reads users first .. first+count-1 (reading only the chunks that hold them) and validates
 * them. Errors: ONEREC_ERR_INVALID_ARGUMENT (range), ONEREC_ERR_FORMAT (with chunk and user),
 * ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_seqfile_read(onerec_seqfile_reader *r, int64_t first,
                                             int64_t count, onerec_seqfile_window *win);

/* ---- full-ranking metrics ----
 * One target per user (leave-one-out), so Recall@K = HR@K: 1 if the target is among the first
 * K items of the user's ranking; NDCG@K = 1 / log2(rank + 2) for a hit at 0-based rank, else
 * 0. Both are averaged over the users added. */

/* An accumulator for up to 16 cut-offs ks[0 .. n_ks) (each 1..2^30). Errors:
 * ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_metrics_create(const int32_t *ks, int32_t n_ks,
                                               onerec_metrics **out);
ONEREC_API void onerec_metrics_free(onerec_metrics *m);

/* Adds one user: `ranked` lists item ids best first (the first occurrence of the target
 * counts; a list may be shorter than the largest K). */
ONEREC_API onerec_status onerec_metrics_add_ranked(onerec_metrics *m, const int64_t *ranked,
                                                   int64_t n, int64_t target);

/* Adds n_users users from full scores over ALL n_items items: row u of scores [n_users,
 * n_items] scores user u's items, targets[u] is its target (0..n_items-1). The target's rank is
 * the number of items scored higher plus those scored equal with a smaller index (a stable
 * sort, best first). exclude_offsets / exclude_items (both NULL or both given): CSR of items
 * per user taken out of the ranking (e.g. the history; the target itself is never excluded).
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL, a target or excluded item out of range, a NaN
 * score). */
ONEREC_API onerec_status onerec_metrics_add_scores(onerec_metrics *m, const float *scores,
                                                   int64_t n_users, int64_t n_items,
                                                   const int64_t *targets,
                                                   const int64_t *exclude_offsets,
                                                   const int64_t *exclude_items);

/* Adds src's users to dst (same cut-offs), for accumulators filled by several threads. */
ONEREC_API onerec_status onerec_metrics_merge(onerec_metrics *dst, const onerec_metrics *src);

/* Recall@k and NDCG@k (k one of the cut-offs) averaged over the users added (0 without any);
 * users may be NULL. Errors: ONEREC_ERR_INVALID_ARGUMENT, ONEREC_ERR_NOT_FOUND (k not a
 * cut-off). */
ONEREC_API onerec_status onerec_metrics_get(const onerec_metrics *m, int32_t k, double *recall,
                                            double *ndcg, int64_t *users);

/* Forgets every user added. */
ONEREC_API onerec_status onerec_metrics_reset(onerec_metrics *m);

#ifdef __cplusplus
}
#endif

#endif
