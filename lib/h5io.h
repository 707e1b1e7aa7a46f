/* HDF5 helpers shared by every file format of libonerec (tokenizer, catalogue, model,
 * checkpoints): atomic writes, shape-checked reads with clear messages, attributes.
 *
 * HDF5 (Debian's serial build) is not thread-safe and prints its error stack by default, so
 * every helper here takes one process-wide lock and silences the stack while it runs: callers in
 * lib/ use these helpers and never call H5* directly. Each returns an onerec_status and sets the
 * last-error message, prefixed by the file name. */
#ifndef ORX_H5IO_H
#define ORX_H5IO_H

#include <hdf5.h>

#include "error.h"

typedef struct orx_h5 {
  hid_t file;
  char path[4096];     /* the file's final name */
  char tmp_path[4096]; /* writers: the temporary file renamed over path on commit */
  int writing;
} orx_h5;

/* Writers: create path's temporary sibling; commit flushes, fsyncs and renames it over path
 * (so a reader sees the old file or the new one, never a torn one); abort removes it. */
onerec_status orx_h5_create(orx_h5 *h, const char *path);
onerec_status orx_h5_commit(orx_h5 *h);
void orx_h5_abort(orx_h5 *h);

/* Readers: open read-only; a missing file is ONEREC_ERR_IO, a non-HDF5 file ONEREC_ERR_FORMAT. */
onerec_status orx_h5_open(orx_h5 *h, const char *path);
void orx_h5_close(orx_h5 *h);

/* Groups: create (writer) or open (reader) "/a/b" style paths; close with orx_h5_group_close. */
onerec_status orx_h5_group_create(orx_h5 *h, const char *group, hid_t *out);
onerec_status orx_h5_group_open(orx_h5 *h, const char *group, hid_t *out);
void orx_h5_group_close(hid_t g);

/* Element types of datasets and attributes. */
typedef enum orx_h5_type { ORX_H5_F32, ORX_H5_F64, ORX_H5_I32, ORX_H5_I64, ORX_H5_U8 } orx_h5_type;

/* Writes dataset `name` under loc (a file or group id) with `rank` (1..4) dims. */
onerec_status orx_h5_write(orx_h5 *h, hid_t loc, const char *name, orx_h5_type type, int rank,
                           const int64_t *dims, const void *data);

/* Reads dataset `name`, which must have exactly rank and dims (each dims[i] >= 0; -1 means
 * "any", and is replaced by the file's extent) and a type convertible to `type` without loss of
 * class (float <-> float, integer <-> integer). buf must hold the whole dataset: buf_bytes is
 * checked. With buf == NULL only the shape is checked/filled in. */
onerec_status orx_h5_read(orx_h5 *h, hid_t loc, const char *name, orx_h5_type type, int rank,
                          int64_t *dims, void *buf, size_t buf_bytes);

/* 1 if loc has a link `name`, else 0. */
int orx_h5_exists(orx_h5 *h, hid_t loc, const char *name);

/* Scalar attributes on loc. */
onerec_status orx_h5_attr_write_i64(orx_h5 *h, hid_t loc, const char *name, int64_t v);
onerec_status orx_h5_attr_write_f64(orx_h5 *h, hid_t loc, const char *name, double v);
onerec_status orx_h5_attr_write_str(orx_h5 *h, hid_t loc, const char *name, const char *v);
onerec_status orx_h5_attr_read_i64(orx_h5 *h, hid_t loc, const char *name, int64_t *v);
onerec_status orx_h5_attr_read_f64(orx_h5 *h, hid_t loc, const char *name, double *v);
/* Copies at most len-1 bytes and a NUL. */
onerec_status orx_h5_attr_read_str(orx_h5 *h, hid_t loc, const char *name, char *v, size_t len);

/* Stamps the file's root with its kind ("tokenizer", "catalog", "model", ...) and format
 * version; check verifies both on load, naming what was found. */
onerec_status orx_h5_stamp(orx_h5 *h, const char *kind, int64_t version);
onerec_status orx_h5_check_stamp(orx_h5 *h, const char *kind, int64_t max_version,
                                 int64_t *version);

#endif
