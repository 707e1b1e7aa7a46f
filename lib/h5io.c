#include "h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t g_h5_lock = PTHREAD_MUTEX_INITIALIZER;

/* Every HDF5 call runs between these: one caller at a time, error stack printing off (and the
 * caller's own handler restored afterwards). */
typedef struct h5_guard {
  H5E_auto2_t func;
  void *data;
} h5_guard;

static h5_guard enter(void) {
  h5_guard g;
  pthread_mutex_lock(&g_h5_lock);
  H5Eget_auto2(H5E_DEFAULT, &g.func, &g.data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  return g;
}

static void leave(h5_guard g) {
  H5Eset_auto2(H5E_DEFAULT, g.func, g.data);
  pthread_mutex_unlock(&g_h5_lock);
}

static hid_t native(orx_h5_type t) {
  switch (t) {
    case ORX_H5_F32: return H5T_NATIVE_FLOAT;
    case ORX_H5_F64: return H5T_NATIVE_DOUBLE;
    case ORX_H5_I32: return H5T_NATIVE_INT32;
    case ORX_H5_I64: return H5T_NATIVE_INT64;
    case ORX_H5_U8: return H5T_NATIVE_UINT8;
  }
  return H5T_NATIVE_FLOAT;
}

static size_t type_size(orx_h5_type t) {
  return t == ORX_H5_F64 || t == ORX_H5_I64 ? 8 : t == ORX_H5_U8 ? 1 : 4;
}

static int is_float(orx_h5_type t) { return t == ORX_H5_F32 || t == ORX_H5_F64; }

onerec_status orx_h5_create(orx_h5 *h, const char *path) {
  static atomic_uint counter;
  memset(h, 0, sizeof *h);
  h->file = H5I_INVALID_HID;
  if (!path || !*path) return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "file path is empty");
  if (strlen(path) > sizeof h->path - 32)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "file path too long");
  snprintf(h->path, sizeof h->path, "%s", path);
  snprintf(h->tmp_path, sizeof h->tmp_path, "%s.tmp.%ld.%u", path, (long)getpid(),
           atomic_fetch_add(&counter, 1));
  h5_guard g = enter();
  h->file = H5Fcreate(h->tmp_path, H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
  leave(g);
  if (h->file < 0)
    return orx_fail(ONEREC_ERR_IO, "%s: cannot create %s (%s)", path, h->tmp_path,
                    strerror(errno ? errno : EIO));
  h->writing = 1;
  return ONEREC_OK;
}

static onerec_status fsync_path(const char *path, int flags) {
  int fd = open(path, flags);
  if (fd < 0) return ONEREC_ERR_IO;
  int rc = fsync(fd);
  close(fd);
  return rc == 0 ? ONEREC_OK : ONEREC_ERR_IO;
}

onerec_status orx_h5_commit(orx_h5 *h) {
  h5_guard g = enter();
  herr_t rc = H5Fflush(h->file, H5F_SCOPE_GLOBAL);
  herr_t rc2 = H5Fclose(h->file);
  leave(g);
  h->file = H5I_INVALID_HID;
  if (rc < 0 || rc2 < 0) {
    remove(h->tmp_path);
    return orx_fail(ONEREC_ERR_IO, "%s: writing failed (disk full?); the old file is kept",
                    h->path);
  }
  if (fsync_path(h->tmp_path, O_RDONLY) != ONEREC_OK || rename(h->tmp_path, h->path) != 0) {
    int e = errno;
    remove(h->tmp_path);
    return orx_fail(ONEREC_ERR_IO, "%s: cannot replace the file (%s); the old file is kept",
                    h->path, strerror(e));
  }
  /* make the rename itself durable */
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", h->path);
  char *slash = strrchr(dir, '/');
  if (slash)
    *(slash == dir ? slash + 1 : slash) = '\0';
  else
    snprintf(dir, sizeof dir, ".");
  fsync_path(dir, O_RDONLY | O_DIRECTORY);
  h->writing = 0;
  return ONEREC_OK;
}

void orx_h5_abort(orx_h5 *h) {
  if (h->file >= 0) {
    h5_guard g = enter();
    H5Fclose(h->file);
    leave(g);
  }
  h->file = H5I_INVALID_HID;
  if (h->writing) remove(h->tmp_path);
  h->writing = 0;
}

onerec_status orx_h5_open(orx_h5 *h, const char *path) {
  memset(h, 0, sizeof *h);
  h->file = H5I_INVALID_HID;
  if (!path || !*path) return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "file path is empty");
  snprintf(h->path, sizeof h->path, "%s", path);
  if (access(path, R_OK) != 0)
    return orx_fail(ONEREC_ERR_IO, "%s: cannot read (%s)", path, strerror(errno));
  h5_guard g = enter();
  htri_t is = H5Fis_hdf5(path);
  if (is > 0) {
    /* strong close: closing the file closes whatever a reader left open on it, so a damaged
     * file that failed half-way through a read leaves no HDF5 object behind */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0) H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    h->file = H5Fopen(path, H5F_ACC_RDONLY, fapl >= 0 ? fapl : H5P_DEFAULT);
    if (fapl >= 0) H5Pclose(fapl);
  }
  leave(g);
  if (is <= 0 || h->file < 0)
    return orx_fail(ONEREC_ERR_FORMAT, "%s: not a readable HDF5 file (truncated or corrupt?)",
                    path);
  return ONEREC_OK;
}

void orx_h5_close(orx_h5 *h) {
  if (h->file >= 0) {
    h5_guard g = enter();
    H5Fclose(h->file);
    leave(g);
  }
  h->file = H5I_INVALID_HID;
}

onerec_status orx_h5_group_create(orx_h5 *h, const char *group, hid_t *out) {
  h5_guard g = enter();
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  *out = H5Gcreate2(h->file, group, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Pclose(lcpl);
  leave(g);
  if (*out < 0) return orx_fail(ONEREC_ERR_IO, "%s: cannot create group %s", h->path, group);
  return ONEREC_OK;
}

onerec_status orx_h5_group_open(orx_h5 *h, const char *group, hid_t *out) {
  h5_guard g = enter();
  htri_t ok = H5Lexists(h->file, group, H5P_DEFAULT);
  *out = ok > 0 ? H5Gopen2(h->file, group, H5P_DEFAULT) : H5I_INVALID_HID;
  leave(g);
  if (*out < 0) return orx_fail(ONEREC_ERR_FORMAT, "%s: group %s missing", h->path, group);
  return ONEREC_OK;
}

void orx_h5_group_close(hid_t grp) {
  if (grp < 0) return;
  h5_guard g = enter();
  H5Gclose(grp);
  leave(g);
}

onerec_status orx_h5_write(orx_h5 *h, hid_t loc, const char *name, orx_h5_type type, int rank,
                           const int64_t *dims, const void *data) {
  if (rank < 1 || rank > 4)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: dataset %s: rank %d", h->path, name, rank);
  hsize_t d[4];
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 0)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: dataset %s: negative extent", h->path,
                      name);
    d[i] = (hsize_t)dims[i];
  }
  h5_guard g = enter();
  herr_t rc = -1;
  hid_t space = H5Screate_simple(rank, d, NULL);
  hid_t ds = space >= 0 ? H5Dcreate2(loc, name, native(type), space, H5P_DEFAULT, H5P_DEFAULT,
                                     H5P_DEFAULT)
                        : H5I_INVALID_HID;
  if (ds >= 0) rc = H5Dwrite(ds, native(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  if (ds >= 0) H5Dclose(ds);
  if (space >= 0) H5Sclose(space);
  leave(g);
  if (rc < 0) return orx_fail(ONEREC_ERR_IO, "%s: cannot write dataset %s", h->path, name);
  return ONEREC_OK;
}

int orx_h5_exists(orx_h5 *h, hid_t loc, const char *name) {
  (void)h;
  h5_guard g = enter();
  htri_t ok = H5Lexists(loc, name, H5P_DEFAULT);
  leave(g);
  return ok > 0;
}

static void fmt_dims(char *buf, size_t len, int rank, const int64_t *d) {
  size_t o = (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < rank && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? "," : "", (long long)d[i]);
  if (o < len) snprintf(buf + o, len - o, "]");
}

onerec_status orx_h5_read(orx_h5 *h, hid_t loc, const char *name, orx_h5_type type, int rank,
                          int64_t *dims, void *buf, size_t buf_bytes) {
  h5_guard g = enter();
  onerec_status s = ONEREC_OK;
  hid_t ds = H5I_INVALID_HID, space = H5I_INVALID_HID, ftype = H5I_INVALID_HID;
  if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) {
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: dataset %s missing", h->path, name);
    goto out;
  }
  ds = H5Dopen2(loc, name, H5P_DEFAULT);
  space = ds >= 0 ? H5Dget_space(ds) : H5I_INVALID_HID;
  ftype = ds >= 0 ? H5Dget_type(ds) : H5I_INVALID_HID;
  if (space < 0 || ftype < 0) {
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: dataset %s unreadable", h->path, name);
    goto out;
  }
  H5T_class_t cls = H5Tget_class(ftype);
  int want_float = is_float(type);
  if ((want_float && cls != H5T_FLOAT) || (!want_float && cls != H5T_INTEGER)) {
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: dataset %s has the wrong type (expected %s)", h->path,
                 name, want_float ? "float" : "integer");
    goto out;
  }
  int frank = H5Sget_simple_extent_ndims(space);
  hsize_t fd[H5S_MAX_RANK];
  int64_t fdi[4] = {0, 0, 0, 0};
  if (frank >= 1 && frank <= 4) {
    H5Sget_simple_extent_dims(space, fd, NULL);
    for (int i = 0; i < frank; i++) fdi[i] = (int64_t)fd[i];
  }
  int match = frank == rank;
  for (int i = 0; match && i < rank; i++)
    if (dims[i] >= 0 && dims[i] != fdi[i]) match = 0;
  if (!match) {
    char want[128], have[128];
    fmt_dims(want, sizeof want, rank, dims);
    fmt_dims(have, sizeof have, frank > 4 ? 4 : (frank < 0 ? 0 : frank), fdi);
    s = orx_fail(ONEREC_ERR_SHAPE, "%s: dataset %s: expected %s, file has %s", h->path, name,
                 want, have);
    goto out;
  }
  size_t n = 1;
  for (int i = 0; i < rank; i++) {
    dims[i] = fdi[i];
    n *= (size_t)fdi[i];
  }
  if (buf) {
    if (buf_bytes < n * type_size(type)) {
      s = orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "%s: dataset %s needs %zu bytes, %zu given",
                   h->path, name, n * type_size(type), buf_bytes);
      goto out;
    }
    if (n && H5Dread(ds, native(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
      s = orx_fail(ONEREC_ERR_FORMAT, "%s: dataset %s: read failed (truncated file?)", h->path,
                   name);
  }
out:
  if (ftype >= 0) H5Tclose(ftype);
  if (space >= 0) H5Sclose(space);
  if (ds >= 0) H5Dclose(ds);
  leave(g);
  return s;
}

static onerec_status attr_write(orx_h5 *h, hid_t loc, const char *name, hid_t type,
                                const void *v) {
  h5_guard g = enter();
  if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a >= 0 ? H5Awrite(a, type, v) : -1;
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  leave(g);
  if (rc < 0) return orx_fail(ONEREC_ERR_IO, "%s: cannot write attribute %s", h->path, name);
  return ONEREC_OK;
}

static onerec_status attr_read(orx_h5 *h, hid_t loc, const char *name, hid_t type, void *v,
                               H5T_class_t want) {
  h5_guard g = enter();
  onerec_status s = ONEREC_OK;
  if (H5Aexists(loc, name) <= 0) {
    leave(g);
    return orx_fail(ONEREC_ERR_FORMAT, "%s: attribute %s missing", h->path, name);
  }
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  hid_t ft = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
  hid_t sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
  if (ft < 0 || H5Tget_class(ft) != want || H5Sget_simple_extent_npoints(sp) != 1)
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: attribute %s has the wrong type", h->path, name);
  else if (H5Aread(a, type, v) < 0)
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: attribute %s unreadable", h->path, name);
  if (sp >= 0) H5Sclose(sp);
  if (ft >= 0) H5Tclose(ft);
  if (a >= 0) H5Aclose(a);
  leave(g);
  return s;
}

onerec_status orx_h5_attr_write_i64(orx_h5 *h, hid_t loc, const char *name, int64_t v) {
  return attr_write(h, loc, name, H5T_NATIVE_INT64, &v);
}

onerec_status orx_h5_attr_write_f64(orx_h5 *h, hid_t loc, const char *name, double v) {
  return attr_write(h, loc, name, H5T_NATIVE_DOUBLE, &v);
}

onerec_status orx_h5_attr_read_i64(orx_h5 *h, hid_t loc, const char *name, int64_t *v) {
  return attr_read(h, loc, name, H5T_NATIVE_INT64, v, H5T_INTEGER);
}

onerec_status orx_h5_attr_read_f64(orx_h5 *h, hid_t loc, const char *name, double *v) {
  return attr_read(h, loc, name, H5T_NATIVE_DOUBLE, v, H5T_FLOAT);
}

onerec_status orx_h5_attr_write_str(orx_h5 *h, hid_t loc, const char *name, const char *v) {
  h5_guard g = enter();
  if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(v) + 1);
  H5Tset_strpad(t, H5T_STR_NULLTERM);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a >= 0 ? H5Awrite(a, t, v) : -1;
  if (a >= 0) H5Aclose(a);
  H5Sclose(space);
  H5Tclose(t);
  leave(g);
  if (rc < 0) return orx_fail(ONEREC_ERR_IO, "%s: cannot write attribute %s", h->path, name);
  return ONEREC_OK;
}

onerec_status orx_h5_attr_read_str(orx_h5 *h, hid_t loc, const char *name, char *v, size_t len) {
  h5_guard g = enter();
  onerec_status s = ONEREC_OK;
  if (H5Aexists(loc, name) <= 0) {
    leave(g);
    return orx_fail(ONEREC_ERR_FORMAT, "%s: attribute %s missing", h->path, name);
  }
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  hid_t ft = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
  if (ft < 0 || H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) > 0) {
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: attribute %s is not a fixed-length string", h->path,
                 name);
  } else {
    size_t n = H5Tget_size(ft);
    char tmp[4096];
    if (n >= sizeof tmp || H5Aread(a, ft, tmp) < 0) {
      s = orx_fail(ONEREC_ERR_FORMAT, "%s: attribute %s unreadable", h->path, name);
    } else {
      tmp[n] = '\0';
      snprintf(v, len, "%s", tmp);
    }
  }
  if (ft >= 0) H5Tclose(ft);
  if (a >= 0) H5Aclose(a);
  leave(g);
  return s;
}

onerec_status orx_h5_stamp(orx_h5 *h, const char *kind, int64_t version) {
  onerec_status s = orx_h5_attr_write_str(h, h->file, "onerec_kind", kind);
  if (!s) s = orx_h5_attr_write_i64(h, h->file, "format_version", version);
  if (!s) s = orx_h5_attr_write_str(h, h->file, "library_version", onerec_version());
  return s;
}

onerec_status orx_h5_check_stamp(orx_h5 *h, const char *kind, int64_t max_version,
                                 int64_t *version) {
  char found[64];
  if (orx_h5_attr_read_str(h, h->file, "onerec_kind", found, sizeof found) != ONEREC_OK)
    return orx_fail(ONEREC_ERR_FORMAT, "%s: not a libonerec %s file (no onerec_kind attribute)",
                    h->path, kind);
  if (strcmp(found, kind) != 0)
    return orx_fail(ONEREC_ERR_FORMAT, "%s: is a libonerec %s file, expected a %s file", h->path,
                    found, kind);
  int64_t v = 0;
  onerec_status s = orx_h5_attr_read_i64(h, h->file, "format_version", &v);
  if (s) return s;
  if (v < 1 || v > max_version)
    return orx_fail(ONEREC_ERR_VERSION,
                    "%s: %s format version %lld; this libonerec reads versions 1..%lld", h->path,
                    kind, (long long)v, (long long)max_version);
  if (version) *version = v;
  return ONEREC_OK;
}
