/* Trainer checkpoints (HDF5 through lib/h5io.h, written atomically): kind "checkpoint";
 * groups weights, adam_m, adam_v (and ema, the weights' moving average, when the trainer keeps
 * one) with one dataset per parameter tensor (named group.name of
 * the model's layout, dots for slashes, in its shape), and root attributes for the counters,
 * the caller's data position and the layout's size. MoE routing biases are parameters, so
 * they travel with the weights. Loading reads and checks everything into host memory first and
 * only then overwrites the model and the optimiser state, so a bad file changes nothing. */
#include <stdio.h>
#include <string.h>

#include "h5io.h"
#include "trainer_impl.h"

#define CKPT_KIND "checkpoint"
#define CKPT_VERSION 1

static const char *const k_groups[4] = {"weights", "adam_m", "adam_v", "ema"};

static void ds_name(const orx_param *p, char *buf, size_t len) {
  snprintf(buf, len, "%s.%s", p->group, p->name);
  for (char *c = buf; *c; c++)
    if (*c == '/') *c = '.';
}

static float *buffer_of(const onerec_trainer *t, int which) {
  return which == 0 ? t->m->params : which == 1 ? t->adam_m : which == 2 ? t->adam_v : t->avg;
}

ONEREC_API onerec_status onerec_trainer_save(const onerec_trainer *t, const char *path,
                                             uint64_t data_pos) {
  static const char fn[] = "onerec_trainer_save";
  ORX_CHECK_ARG(t, fn);
  ORX_CHECK_ARG(path, fn);
  if (t->micro != 0)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: %lld micro-batches are accumulated; save after an update", fn,
                    (long long)t->micro);
  onerec_status s = orx_trainer_check_state(t, fn, "saving");
  if (s) return s;
  const onerec_model *m = t->m;
  const size_t bytes = m->n_params * sizeof(float);
  const int groups = t->avg ? 4 : 3;
  float *host = orx_host_alloc(t->ctx, bytes);
  if (!host) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  orx_h5 h;
  s = orx_h5_create(&h, path);
  if (s) {
    orx_host_free(t->ctx, host);
    return s;
  }
  s = orx_h5_stamp(&h, CKPT_KIND, CKPT_VERSION);
  if (!s) s = orx_h5_attr_write_i64(&h, h.file, "step", t->step);
  if (!s) s = orx_h5_attr_write_i64(&h, h.file, "samples", t->samples);
  if (!s) s = orx_h5_attr_write_i64(&h, h.file, "data_pos", (int64_t)data_pos);
  if (!s) s = orx_h5_attr_write_i64(&h, h.file, "n_params", (int64_t)m->n_params);
  if (!s) s = orx_h5_attr_write_i64(&h, h.file, "n_tensors", m->n_table);
  for (int w = 0; !s && w < groups; w++) {
    hid_t g = -1;
    s = ORX_OP(t->be, copy, host, buffer_of(t, w), bytes, ORX_COPY_D2H);
    if (!s) s = orx_h5_group_create(&h, k_groups[w], &g);
    for (int i = 0; !s && i < m->n_table; i++) {
      const orx_param *p = &m->table[i];
      char name[80];
      ds_name(p, name, sizeof name);
      s = orx_h5_write(&h, g, name, ORX_H5_F32, p->rank, p->dims, host + p->offset);
    }
    if (g >= 0) orx_h5_group_close(g);
  }
  orx_host_free(t->ctx, host);
  if (s) {
    orx_h5_abort(&h);
    return s;
  }
  return orx_h5_commit(&h);
}

ONEREC_API onerec_status onerec_trainer_load(onerec_trainer *t, const char *path,
                                             uint64_t *data_pos) {
  static const char fn[] = "onerec_trainer_load";
  ORX_CHECK_ARG(t, fn);
  ORX_CHECK_ARG(path, fn);
  const onerec_model *m = t->m;
  const size_t bytes = m->n_params * sizeof(float);
  const int groups = t->avg ? 4 : 3;
  float *host = orx_host_alloc(t->ctx, (size_t)groups * bytes);
  if (!host) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory", fn);
  memset(host, 0, (size_t)groups * bytes); /* the padding between tensors stays zero */
  orx_h5 h;
  onerec_status s = orx_h5_open(&h, path);
  if (s) {
    orx_host_free(t->ctx, host);
    return s;
  }
  int64_t step = 0, samples = 0, pos = 0, np = 0, nt = 0;
  s = orx_h5_check_stamp(&h, CKPT_KIND, CKPT_VERSION, NULL);
  if (!s) s = orx_h5_attr_read_i64(&h, h.file, "step", &step);
  if (!s) s = orx_h5_attr_read_i64(&h, h.file, "samples", &samples);
  if (!s) s = orx_h5_attr_read_i64(&h, h.file, "data_pos", &pos);
  if (!s) s = orx_h5_attr_read_i64(&h, h.file, "n_params", &np);
  if (!s) s = orx_h5_attr_read_i64(&h, h.file, "n_tensors", &nt);
  if (!s && (np != (int64_t)m->n_params || nt != m->n_table))
    s = orx_fail(ONEREC_ERR_SHAPE,
                 "%s: checkpoint of a model with %lld floats in %lld tensors, this one has %zu in "
                 "%d",
                 path, (long long)np, (long long)nt, m->n_params, m->n_table);
  if (!s && (step < 0 || samples < 0))
    s = orx_fail(ONEREC_ERR_FORMAT, "%s: step %lld, samples %lld", path, (long long)step,
                 (long long)samples);
  if (!s && t->avg && !orx_h5_exists(&h, h.file, k_groups[3]))
    s = orx_fail(ONEREC_ERR_FORMAT,
                 "%s: no moving average of the weights in this checkpoint (saved with "
                 "ema_decay = 0): resume it with ema_decay = 0",
                 path);
  for (int w = 0; !s && w < groups; w++) {
    hid_t g = -1;
    s = orx_h5_group_open(&h, k_groups[w], &g);
    for (int i = 0; !s && i < m->n_table; i++) {
      const orx_param *p = &m->table[i];
      char name[80];
      ds_name(p, name, sizeof name);
      int64_t dims[3] = {p->dims[0], p->dims[1], p->dims[2]};
      s = orx_h5_read(&h, g, name, ORX_H5_F32, p->rank, dims, host + w * m->n_params + p->offset,
                      p->count * sizeof(float));
    }
    if (g >= 0) orx_h5_group_close(g);
  }
  orx_h5_close(&h);
  int w = 0;
  for (; !s && w < groups; w++)
    s = ORX_OP(t->be, copy, buffer_of(t, w), host + w * m->n_params, bytes, ORX_COPY_H2D);
  orx_host_free(t->ctx, host);
  if (s && w > 1) t->lost = 1; /* a buffer was overwritten before the failing copy */
  if (s) return s;
  t->step = step;
  t->samples = samples;
  t->micro = 0;
  t->swapped = 0; /* the file's weights are the trained ones */
  t->lost = 0;
  orx_trainer_clear_moe_load(t);
  if (data_pos) *data_pos = (uint64_t)pos;
  return ONEREC_OK;
}
