/* Model lifetime: allocation of the parameter buffer from the layout, initialisation from a
 * seed, queries. */
#include <math.h>
#include <string.h>

#include "model_impl.h"
#include "util.h"

void onerec_model_free(onerec_model *m);

onerec_status orx_model_alloc(onerec_context *ctx, const onerec_model_config *cfg,
                              onerec_model **out) {
  *out = NULL;
  onerec_model *m = orx_host_alloc(ctx, sizeof *m);
  if (!m) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "model: out of memory");
  memset(m, 0, sizeof *m);
  m->ctx = ctx;
  m->cfg = *cfg;
  orx_config_dims(cfg, &m->dims);
  int n = 0;
  size_t floats = 0;
  orx_model_layout(cfg, &m->dims, NULL, NULL, &n, &floats, NULL);
  size_t nq = cfg->use_lifelong ? (size_t)cfg->qformer_layers : 0;
  m->qf = orx_host_alloc(ctx, (nq ? nq : 1) * sizeof *m->qf);
  m->enc = orx_host_alloc(ctx, (size_t)cfg->enc_layers * sizeof *m->enc);
  m->dec = orx_host_alloc(ctx, (size_t)cfg->dec_layers * sizeof *m->dec);
  m->table = orx_host_alloc(ctx, (size_t)n * sizeof *m->table);
  if (!m->qf || !m->enc || !m->dec || !m->table) {
    onerec_model_free(m);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "model: out of memory");
  }
  memset(m->qf, 0, (nq ? nq : 1) * sizeof *m->qf);
  memset(m->enc, 0, (size_t)cfg->enc_layers * sizeof *m->enc);
  memset(m->dec, 0, (size_t)cfg->dec_layers * sizeof *m->dec);
  orx_model_layout(cfg, &m->dims, m, m->table, &m->n_table, &m->n_params, NULL);
  orx_backend *be = &ctx->be;
  m->params = be->ops->alloc(be, m->n_params * sizeof(float));
  if (!m->params) {
    size_t bytes = m->n_params * sizeof(float);
    onerec_model_free(m);
    return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "model: cannot allocate %zu bytes of parameters on %s",
                    bytes, be->ops->name);
  }
  for (int i = 0; i < m->n_table; i++) *m->table[i].slot = m->params + m->table[i].offset;
  *out = m;
  return ONEREC_OK;
}

/* Fills the parameters through a host staging buffer (the device may not be the host). */
static onerec_status init_params(onerec_model *m, uint64_t seed) {
  orx_backend *be = &m->ctx->be;
  enum { CHUNK = 1 << 16 };
  float *buf = orx_host_alloc(m->ctx, CHUNK * sizeof(float));
  if (!buf) return orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "model: out of memory");
  onerec_status s = ORX_OP(be, memset0, m->params, m->n_params * sizeof(float));
  const double std = m->cfg.init_std;
  for (int t = 0; !s && t < m->n_table; t++) {
    const orx_param *p = &m->table[t];
    if (p->init == ORX_INIT_ZEROS) continue;
    uint64_t st = seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(t + 1));
    for (size_t done = 0; !s && done < p->count; done += CHUNK) {
      size_t n = p->count - done < CHUNK ? p->count - done : CHUNK;
      if (p->init == ORX_INIT_ONES)
        for (size_t i = 0; i < n; i++) buf[i] = 1.0f;
      else
        orx_fill_normal(buf, n, std, &st); /* one stream per tensor: (seed, table position) */
      s = ORX_OP(be, copy, m->params + p->offset + done, buf, n * sizeof(float), ORX_COPY_H2D);
    }
  }
  orx_host_free(m->ctx, buf);
  return s;
}

ONEREC_API onerec_status onerec_model_create(onerec_context *ctx, const onerec_model_config *cfg,
                                             uint64_t seed, onerec_model **out) {
  static const char fn[] = "onerec_model_create";
  ORX_CHECK_ARG(out, fn);
  *out = NULL;
  ORX_CHECK_ARG(ctx, fn);
  ORX_CHECK_ARG(cfg, fn);
  onerec_model_config c;
  memset(&c, 0, sizeof c);
  c.sz = sizeof c;
  onerec_status s = orx_opts_read(&c, sizeof c, cfg, fn);
  if (s) return s;
  c.sz = sizeof c;
  if ((s = orx_config_check(&c))) return s;
  onerec_model *m = NULL;
  if ((s = orx_model_alloc(ctx, &c, &m))) return s;
  if ((s = init_params(m, seed))) {
    onerec_model_free(m);
    return s;
  }
  *out = m;
  return ONEREC_OK;
}

ONEREC_API void onerec_model_free(onerec_model *m) {
  if (!m) return;
  onerec_context *ctx = m->ctx;
  if (m->params) ctx->be.ops->free(&ctx->be, m->params);
  orx_host_free(ctx, m->table);
  orx_host_free(ctx, m->qf);
  orx_host_free(ctx, m->enc);
  orx_host_free(ctx, m->dec);
  orx_host_free(ctx, m);
}

ONEREC_API onerec_status onerec_model_config_get(const onerec_model *m, onerec_model_config *cfg) {
  static const char fn[] = "onerec_model_config_get";
  ORX_CHECK_ARG(m, fn);
  ORX_CHECK_ARG(cfg, fn);
  if (cfg->sz < sizeof(size_t))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: cfg->sz is %zu; declare it with ONEREC_OPTS(onerec_model_config, cfg)",
                    fn, cfg->sz);
  size_t keep = cfg->sz < sizeof m->cfg ? cfg->sz : sizeof m->cfg;
  memcpy((char *)cfg + sizeof(size_t), (const char *)&m->cfg + sizeof(size_t),
         keep - sizeof(size_t));
  return ONEREC_OK;
}

ONEREC_API int64_t onerec_model_param_count(const onerec_model *m) {
  if (!m) return -1;
  int64_t n = 0;
  for (int i = 0; i < m->n_table; i++) n += (int64_t)m->table[i].count;
  return n;
}

ONEREC_API int64_t onerec_model_encoder_len(const onerec_model *m) {
  return m ? m->dims.enc_len : -1;
}
