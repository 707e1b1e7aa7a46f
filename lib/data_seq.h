/* Interaction sequences in the text format of the S3-Rec/TIGER Amazon files (Beauty.txt): one
 * user per line, `user_id item_1 item_2 ...`, whitespace-separated, oldest item first.
 * Blank lines are skipped. Ids are non-negative decimal integers that fit int64.
 *
 * The leave-one-out split that published tables use: for each user the last item is the test
 * target, the one before it the validation target, the rest is training. A user with one item
 * has only a test target; with two, a validation and a test target and no training part. */
#ifndef ORX_DATA_SEQ_H
#define ORX_DATA_SEQ_H

#include "context_impl.h"

typedef struct orx_seq_data {
  int64_t n_users;
  int64_t n_items_total; /* interactions, = offsets[n_users] */
  int64_t max_item_id;   /* largest item id seen (-1 if none) */
  int64_t *user_ids;     /* [n_users], in file order */
  int64_t *offsets;      /* [n_users + 1]: user u's items are items[offsets[u] .. offsets[u+1]) */
  int64_t *items;        /* [n_items_total] */
  const onerec_context *ctx;
} orx_seq_data;

/* Reads a sequence file. Errors: ONEREC_ERR_IO (cannot open/read), ONEREC_ERR_FORMAT with
 * "path:line: ..." for a token that is not a non-negative integer, an integer out of range, a
 * user without items, or a user id seen on an earlier line; ONEREC_ERR_OUT_OF_MEMORY.
 * On failure *out is left empty (safe to free). */
onerec_status orx_seq_read(const onerec_context *ctx, const char *path, orx_seq_data *out);

/* The same from an in-memory text (name is used in messages). */
onerec_status orx_seq_parse(const onerec_context *ctx, const char *name, const char *text,
                            size_t len, orx_seq_data *out);

void orx_seq_free(orx_seq_data *d);

/* Reads a whole file into memory allocated through ctx (NUL-terminated; free with
 * orx_host_free). Errors: ONEREC_ERR_IO, ONEREC_ERR_OUT_OF_MEMORY. */
onerec_status orx_read_whole_file(const onerec_context *ctx, const char *path, char **buf,
                                  size_t *len);

/* Leave-one-out views of user u. */
static inline int64_t orx_seq_len(const orx_seq_data *d, int64_t u) {
  return d->offsets[u + 1] - d->offsets[u];
}
/* Length of the training part (the sequence minus its last two items, at least 0). */
static inline int64_t orx_seq_train_len(const orx_seq_data *d, int64_t u) {
  int64_t n = orx_seq_len(d, u) - 2;
  return n > 0 ? n : 0;
}
/* Validation target, or -1 if the user has fewer than two items. */
static inline int64_t orx_seq_valid_target(const orx_seq_data *d, int64_t u) {
  return orx_seq_len(d, u) >= 2 ? d->items[d->offsets[u + 1] - 2] : -1;
}
/* Test target (every user has one). */
static inline int64_t orx_seq_test_target(const orx_seq_data *d, int64_t u) {
  return d->items[d->offsets[u + 1] - 1];
}

/* Copies the training parts into a new CSR (offsets [n_users + 1], items), allocated through
 * ctx; free both with orx_host_free. */
onerec_status orx_seq_train_csr(const orx_seq_data *d, int64_t **offsets, int64_t **items);

#endif
