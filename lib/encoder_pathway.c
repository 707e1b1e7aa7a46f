/* Pathway token MLPs (SPEC §2): a token's features are embedded (item by id or by its semantic
 * IDs, categorical features, each with its own width) and concatenated with its numeric features;
 * Dense -> LeakyReLU -> Dense turns that into one d_model token. The concatenation is never
 * built: the first Dense is a sum of per-block products with the matching rows of W1, which is
 * the same linear map. Also the host-side staging of a pathway's inputs: choosing the most
 * recent interactions, padding, validation of ids. */
#include <stdio.h>
#include <string.h>

#include "model_impl.h"

int orx_seq_features(const onerec_model *m, orx_feature *f) {
  const onerec_model_config *c = &m->cfg;
  int n = 0;
  f[n++] = (orx_feature){m->item_emb, m->dims.item_rows, c->item_dim, m->dims.item_ids};
  for (int i = 0; i < c->seq_cat_count; i++)
    f[n++] = (orx_feature){m->seq_cat_emb[i], c->seq_cat_vocab[i], c->seq_cat_dim[i], 1};
  return n;
}

int orx_static_features(const onerec_model *m, orx_feature *f) {
  const onerec_model_config *c = &m->cfg;
  int n = 0;
  for (int i = 0; i < c->static_cat_count; i++)
    f[n++] = (orx_feature){m->static_emb[i], c->static_cat_vocab[i], c->static_emb_dim, 1};
  return n;
}

onerec_status orx_path_forward(orx_backend *be, const onerec_model *m, const orx_path_w *w,
                               const orx_path_act *a, const orx_feature *feat, int nf,
                               int64_t num_count, int64_t n, float *out, int64_t out_batch,
                               int64_t out_m, int64_t out_ld, int64_t out_sb) {
  const int64_t hid = w->hidden;
  onerec_status s = ONEREC_OK;
  orx_matmul_args g = {0};
  g.batch = 1;
  g.m = n;
  g.n = hid;
  g.ldb = hid;
  g.c = a->pre;
  g.ldc = hid;
  g.alpha = 1.0f;
  g.dtype = ONEREC_F32;
  int64_t id_off = 0, row = 0;
  for (int f = 0; !s && f <= nf; f++) {
    int64_t width = f < nf ? feat[f].dim * feat[f].ids_per_row : num_count;
    if (width == 0) continue;
    if (f < nf) {
      s = ORX_OP(be, embedding_fwd, a->block[f], feat[f].table, a->ids + id_off,
                 n * feat[f].ids_per_row, feat[f].dim, feat[f].vocab);
      id_off += n * feat[f].ids_per_row;
      if (s) break;
    }
    g.k = width;
    g.a = a->block[f];
    g.lda = width;
    g.b = w->w1 + row * hid;
    g.beta = row == 0 ? 0.0f : 1.0f;
    s = ORX_OP(be, matmul, &g);
    row += width;
  }
  if (!s) s = ORX_OP(be, add_bias, a->pre, w->b1, n, hid);
  if (!s) s = ORX_OP(be, leaky_relu_fwd, a->h, a->pre, n * hid, m->cfg.leaky_slope);
  if (s) return s;
  orx_matmul_args o = {0};
  o.batch = out_batch;
  o.m = out_m;
  o.n = m->dims.d;
  o.k = hid;
  o.a = a->h;
  o.lda = hid;
  o.stride_a = out_m * hid;
  o.b = w->w2;
  o.ldb = m->dims.d;
  o.stride_b = 0;
  o.c = out;
  o.ldc = out_ld;
  o.stride_c = out_sb;
  o.alpha = 1.0f;
  o.beta = 0.0f;
  o.dtype = ONEREC_F32;
  return ORX_OP(be, matmul, &o);
}

onerec_status orx_stage_item(const onerec_model *m, const char *what, const int32_t *items,
                                int64_t user, int64_t row, int32_t *dst) {
  const onerec_model_config *c = &m->cfg;
  if (c->item_input == ONEREC_ITEM_BY_ID) {
    int32_t id = items ? items[row] : -1;
    if (id < -1 || id >= c->item_vocab)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "onerec_session_encode: %s: user %lld, row %lld: item id %d outside "
                      "[-1, item_vocab = %lld)",
                      what, (long long)user, (long long)row, id, (long long)c->item_vocab);
    dst[0] = id;
    return ONEREC_OK;
  }
  for (int l = 0; l < c->levels; l++) {
    int32_t code = items ? items[row * c->levels + l] : -1;
    if (code < -1 || code >= c->codebook)
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "onerec_session_encode: %s: user %lld, row %lld: semantic ID %d of level %d "
                      "outside [-1, codebook = %d)",
                      what, (long long)user, (long long)row, code, l, c->codebook);
    dst[l] = code < 0 ? -1 : l * c->codebook + code;
  }
  return ONEREC_OK;
}

onerec_status orx_stage_row(const onerec_model *m, const char *what, const onerec_seq_input *in,
                            int64_t user, int64_t row, int64_t n, int64_t t, int32_t *ids,
                            float *num) {
  const onerec_model_config *c = &m->cfg;
  const int64_t ipr = m->dims.item_ids;
  onerec_status s = ONEREC_OK;
  if (row < 0) {
    for (int64_t l = 0; l < ipr; l++) ids[t * ipr + l] = -1;
  } else if ((s = orx_stage_item(m, what, in->items, user, row, ids + t * ipr))) {
    return s;
  }
  int32_t *cat = ids + n * ipr;
  for (int f = 0; f < c->seq_cat_count; f++) {
    int32_t v = row >= 0 && in->cat ? in->cat[row * c->seq_cat_count + f] : -1;
    if (v < -1 || v >= c->seq_cat_vocab[f])
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                      "onerec_session_encode: %s: user %lld, row %lld: feature %d = %d outside "
                      "[-1, seq_cat_vocab[%d] = %lld)",
                      what, (long long)user, (long long)row, f, v, f,
                      (long long)c->seq_cat_vocab[f]);
    cat[f * n + t] = v;
  }
  for (int f = 0; num && f < c->seq_num_count; f++)
    num[t * c->seq_num_count + f] = row >= 0 && in->num ? in->num[row * c->seq_num_count + f] : 0.0f;
  return ONEREC_OK;
}

onerec_status orx_seq_span(const char *what, const onerec_seq_input *in, int64_t user,
                           int64_t *lo, int64_t *hi) {
  *lo = *hi = 0;
  if (!in->offsets) return ONEREC_OK;
  *lo = in->offsets[user];
  *hi = in->offsets[user + 1];
  if (*lo < 0 || *hi < *lo)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_session_encode: %s: offsets[%lld] = %lld, offsets[%lld] = %lld "
                    "(expected 0 <= a non-decreasing sequence)",
                    what, (long long)user, (long long)*lo, (long long)user + 1, (long long)*hi);
  if (*hi > *lo && !in->items)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "onerec_session_encode: %s: user %lld has interactions but items is NULL",
                    what, (long long)user);
  return ONEREC_OK;
}

onerec_status orx_stage_seq(const onerec_model *m, const char *what, const onerec_seq_input *in,
                            int64_t u0, int64_t nu, int64_t len, const orx_path_host *h,
                            uint8_t *mask, int64_t mask_pitch) {
  const int64_t n = nu * len;
  for (int64_t b = 0; b < nu; b++) {
    int64_t lo, hi;
    onerec_status s = orx_seq_span(what, in, u0 + b, &lo, &hi);
    if (s) return s;
    int64_t take = hi - lo < len ? hi - lo : len, start = hi - take;
    for (int64_t i = 0; i < len; i++) {
      int64_t row = i < take ? start + i : -1;
      if ((s = orx_stage_row(m, what, in, u0 + b, row, n, b * len + i, h->ids, h->num))) return s;
      mask[b * mask_pitch + i] = i < take;
    }
  }
  return ONEREC_OK;
}

onerec_status orx_stage_static(const onerec_model *m, const onerec_user_batch *u,
                               const orx_path_host *h, uint8_t *mask, int64_t mask_pitch) {
  const onerec_model_config *c = &m->cfg;
  const int64_t B = u->batch;
  for (int64_t b = 0; b < B; b++) {
    for (int f = 0; f < c->static_cat_count; f++) {
      int32_t v = u->static_cat ? u->static_cat[b * c->static_cat_count + f] : -1;
      if (v < -1 || v >= c->static_cat_vocab[f])
        return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                        "onerec_session_encode: static: user %lld: feature %d = %d outside "
                        "[-1, static_cat_vocab[%d] = %lld)",
                        (long long)b, f, v, f, (long long)c->static_cat_vocab[f]);
      h->ids[f * B + b] = v;
    }
    for (int f = 0; f < c->static_num_count; f++)
      h->num[b * c->static_num_count + f] =
          u->static_num ? u->static_num[b * c->static_num_count + f] : 0.0f;
    mask[b * mask_pitch] = u->static_cat || u->static_num;
  }
  return ONEREC_OK;
}

onerec_status orx_path_upload(orx_backend *be, const orx_path_act *a, const orx_path_host *h,
                              int nf, int64_t ids, int64_t nums) {
  onerec_status s = ORX_OP(be, copy, a->ids, h->ids, (size_t)ids * sizeof(int32_t), ORX_COPY_H2D);
  if (!s && nums)
    s = ORX_OP(be, copy, a->block[nf], h->num, (size_t)nums * sizeof(float), ORX_COPY_H2D);
  return s;
}

onerec_status orx_validate_users(const onerec_model *m, const onerec_user_batch *u,
                                 int64_t max_lifelong) {
  const onerec_model_config *c = &m->cfg;
  for (int64_t b = 0; c->use_static && u->static_cat && b < u->batch; b++)
    for (int f = 0; f < c->static_cat_count; f++) {
      int32_t v = u->static_cat[b * c->static_cat_count + f];
      if (v < -1 || v >= c->static_cat_vocab[f])
        return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                        "onerec_session_encode: static: user %lld: feature %d = %d outside "
                        "[-1, static_cat_vocab[%d] = %lld)",
                        (long long)b, f, v, f, (long long)c->static_cat_vocab[f]);
    }
  const struct {
    int use;
    const char *name;
    const onerec_seq_input *in;
    int64_t len;
  } p[3] = {{c->use_short, "short_term", &u->short_term, c->short_len},
            {c->use_positive, "positive", &u->positive, c->positive_len},
            {c->use_lifelong, "lifelong", &u->lifelong, max_lifelong}};
  int32_t ids[8 + ONEREC_MAX_FEATURES];
  for (int k = 0; k < 3; k++) {
    if (!p[k].use) continue;
    for (int64_t b = 0; b < u->batch; b++) {
      int64_t lo, hi;
      onerec_status s = orx_seq_span(p[k].name, p[k].in, b, &lo, &hi);
      if (s) return s;
      int64_t take = hi - lo < p[k].len ? hi - lo : p[k].len;
      for (int64_t row = hi - take; row < hi; row++)
        if ((s = orx_stage_row(m, p[k].name, p[k].in, b, row, 1, 0, ids, NULL))) return s;
    }
  }
  return ONEREC_OK;
}

onerec_status orx_path_backward(orx_backend *be, const onerec_model *m, const orx_path_w *w,
                                const orx_path_act *a, const orx_bwd *b, const orx_feature *feat,
                                int nf, int64_t num_count, int64_t n, const float *dout,
                                int64_t out_batch, int64_t out_m, int64_t out_ld, int64_t out_sb) {
  const int64_t hid = w->hidden, d = m->dims.d;
  if (n == 0) return ONEREC_OK;
  /* out_b = h_b w2 for each output batch b */
  orx_matmul_args o = {0};
  o.trans_b = 1;
  o.batch = out_batch;
  o.m = out_m;
  o.n = hid;
  o.k = d;
  o.a = dout;
  o.lda = out_ld;
  o.stride_a = out_sb;
  o.b = w->w2;
  o.ldb = d;
  o.c = b->dph;
  o.ldc = hid;
  o.stride_c = out_m * hid;
  o.alpha = 1.0f;
  o.dtype = ONEREC_F32;
  onerec_status s = ORX_OP(be, matmul, &o);
  float *gw2 = orx_g(b, w->w2), *gw1 = orx_g(b, w->w1);
  for (int64_t i = 0; !s && i < out_batch; i++)
    s = orx_mm(be, 1, 0, hid, d, out_m, a->h + i * out_m * hid, hid, dout + i * out_sb, out_ld,
               gw2, d, 1.0f);
  if (!s) s = ORX_OP(be, memset0, b->dpre, (size_t)(n * hid) * sizeof(float));
  if (!s) s = ORX_OP(be, leaky_relu_bwd, b->dpre, b->dph, a->pre, n * hid, m->cfg.leaky_slope);
  if (!s) s = ORX_OP(be, bias_bwd, orx_g(b, w->b1), b->dpre, n, hid);
  int64_t id_off = 0, row = 0;
  for (int f = 0; !s && f <= nf; f++) {
    int64_t width = f < nf ? feat[f].dim * feat[f].ids_per_row : num_count;
    if (width == 0) continue;
    s = orx_mm(be, 1, 0, width, hid, n, a->block[f], width, b->dpre, hid, gw1 + row * hid, hid,
               1.0f);
    if (!s && f < nf) {
      s = orx_mm(be, 0, 1, n, width, hid, b->dpre, hid, w->w1 + row * hid, hid, b->dblock, width,
                 0.0f);
      if (!s)
        s = ORX_OP(be, embedding_bwd, orx_g(b, feat[f].table), b->dblock, a->ids + id_off,
                   n * feat[f].ids_per_row, feat[f].dim, feat[f].vocab);
      id_off += n * feat[f].ids_per_row;
    }
    row += width;
  }
  return s;
}
