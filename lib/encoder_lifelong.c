/* The lifelong pathway (SPEC §2): up to lifelong_max_items interactions per user are compressed
 * in two stages, then read by a QFormer.
 *
 * Stage 1, behaviour compression (deterministic): hierarchical k-means over the items'
 * embedding vectors. A set D of more than M items is split by k-means into floor(|D|^(1/5))
 * clusters (at least 2), recursively, until every cluster has at most M items. The item nearest
 * a cluster's mean represents it: discrete features come from it, numeric features are averaged
 * over the cluster. When more than lifelong_tokens clusters result, the largest are kept. A user
 * with at most lifelong_tokens interactions is not compressed at all (one token each): the
 * compression exists to fit the memory, and clustering a short history would only lose detail.
 *
 * k-means details (the PyTorch reference in tests/reference mirrors them): initial centres are
 * the items at positions floor(j |D| / k) of D (D in chronological order); at most
 * ORX_KMEANS_ITERS rounds of assign (nearest centre, ties to the lower centre) then update (the
 * mean, summed in double; an empty cluster keeps its centre), stopping early when no
 * assignment changes. Assign and update are the backend's k-means ops (the tokenizer's), on the
 * split's rows gathered on the device, so 100,000-item histories take a fraction of a second.
 * A split that leaves everything in one cluster (identical vectors) falls back to k
 * chronological chunks, so the recursion always ends. Children keep chronological order, so
 * ties of the representative (chosen on the host, in double) go to the earliest item. Clusters
 * are emitted in chronological order of their representatives.
 *
 * Stage 2: the cluster tokens go through the lifelong token MLP (memory), and N_q learned
 * queries attend to it in N_l pre-RMSNorm layers (cross-attention + SwiGLU FFN), giving the N_q
 * lifelong tokens of the encoder. A user with no lifelong interaction has those tokens masked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model_impl.h"
#include "util.h"

int64_t orx_fifth_root(int64_t n) {
  int64_t k = (int64_t)floor(pow((double)n, 0.2));
  while (k > 0 && k * k * k * k * k > n) k--;
  while ((k + 1) * (k + 1) * (k + 1) * (k + 1) * (k + 1) <= n) k++;
  return k;
}

static double dist2(const float *x, const double *c, int64_t dim) {
  double s = 0.0;
  for (int64_t i = 0; i < dim; i++) {
    double t = (double)x[i] - c[i];
    s += t * t;
  }
  return s;
}

/* k-means over the items order[0..len) (rows of the device copy of vec); leaves assignments
 * in s->assign. */
static onerec_status kmeans(orx_backend *be, const int64_t *order, int64_t len, int64_t dim,
                            int64_t k, int64_t n, const orx_lifelong_scratch *s) {
  int32_t *as = s->assign, *h = s->h_idx;
  for (int64_t i = 0; i < len; i++) h[i] = (int32_t)order[i];
  onerec_status st = ORX_OP(be, copy, s->d_ids, h, (size_t)len * sizeof(int32_t), ORX_COPY_H2D);
  if (!st) st = ORX_OP(be, embedding_fwd, s->d_x, s->d_vec, s->d_ids, len, dim, n);
  for (int64_t j = 0; j < k; j++) h[j] = (int32_t)(j * len / k);
  if (!st) st = ORX_OP(be, copy, s->d_ids, h, (size_t)k * sizeof(int32_t), ORX_COPY_H2D);
  if (!st) st = ORX_OP(be, embedding_fwd, s->d_c, s->d_x, s->d_ids, k, dim, len);
  if (st) return st;
  for (int64_t i = 0; i < len; i++) as[i] = -1;
  orx_kmeans_assign_args a = {0};
  a.x = s->d_x;
  a.ldx = a.dim = dim;
  a.rows = len;
  a.c = s->d_c;
  a.cnorm = s->d_cnorm;
  a.k = k;
  a.idx = s->d_idx;
  for (int it = 0; it < ORX_KMEANS_ITERS; it++) {
    st = ORX_OP(be, row_sq_norms, s->d_cnorm, s->d_c, dim, k, dim);
    if (!st) st = ORX_OP(be, kmeans_assign, &a);
    if (!st) st = ORX_OP(be, copy, h, s->d_idx, (size_t)len * sizeof(int32_t), ORX_COPY_D2H);
    if (st) return st;
    int changed = 0;
    for (int64_t i = 0; i < len; i++) {
      changed |= as[i] != h[i];
      as[i] = h[i];
    }
    if (!changed) break;
    if ((st = ORX_OP(be, kmeans_update, s->d_c, s->d_counts, s->d_x, dim, s->d_idx, len, dim, k)))
      return st;
  }
  return ONEREC_OK;
}

onerec_status orx_lifelong_compress(orx_backend *be, const float *vec, int64_t n, int64_t dim,
                                    int64_t max_cluster, int64_t cap,
                                    const orx_lifelong_scratch *s, int64_t *kept_out) {
  int64_t *order = s->order, *tmp = s->tmp, *stack = s->stack;
  int64_t nc = 0, sp = 0;
  for (int64_t i = 0; i < n; i++) order[i] = i;
  if (n > 0) {
    stack[sp++] = 0;
    stack[sp++] = n;
  }
  while (sp > 0) {
    int64_t len = stack[--sp], st = stack[--sp];
    if (len <= max_cluster) {
      s->cl_start[nc] = st;
      s->cl_len[nc] = len;
      nc++;
      continue;
    }
    int64_t k = orx_fifth_root(len);
    if (k < 2) k = 2;
    onerec_status e = kmeans(be, order + st, len, dim, k, n, s);
    if (e) return e;
    int64_t *cnt = s->count;
    memset(cnt, 0, (size_t)k * sizeof *cnt);
    for (int64_t i = 0; i < len; i++) cnt[s->assign[i]]++;
    int64_t nonempty = 0;
    for (int64_t j = 0; j < k; j++) nonempty += cnt[j] > 0;
    if (nonempty < 2) {
      memset(cnt, 0, (size_t)k * sizeof *cnt);
      for (int64_t i = 0; i < len; i++) {
        s->assign[i] = (int32_t)(i * k / len);
        cnt[s->assign[i]]++;
      }
    }
    /* stable regroup of order[st..st+len) by cluster; children pushed in cluster order */
    int64_t pos = 0;
    for (int64_t j = 0; j < k; j++) {
      int64_t c0 = pos;
      for (int64_t i = 0; i < len; i++)
        if (s->assign[i] == j) tmp[pos++] = order[st + i];
      if (pos > c0) {
        stack[sp++] = st + c0;
        stack[sp++] = pos - c0;
      }
    }
    memcpy(order + st, tmp, (size_t)len * sizeof *order);
  }
  /* representatives: the member nearest the cluster mean (first in time on ties) */
  double *mean = s->sum;
  for (int64_t c = 0; c < nc; c++) {
    const int64_t *mem = order + s->cl_start[c];
    int64_t len = s->cl_len[c];
    memset(mean, 0, (size_t)dim * sizeof *mean);
    for (int64_t i = 0; i < len; i++)
      for (int64_t j = 0; j < dim; j++) mean[j] += vec[mem[i] * dim + j];
    for (int64_t j = 0; j < dim; j++) mean[j] /= (double)len;
    int64_t best = mem[0];
    double bd = dist2(vec + mem[0] * dim, mean, dim);
    for (int64_t i = 1; i < len; i++) {
      double dd = dist2(vec + mem[i] * dim, mean, dim);
      if (dd < bd) {
        bd = dd;
        best = mem[i];
      }
    }
    s->cl_rep[c] = best;
  }
  /* keep the `cap` largest (ties: earlier representative), then order by time. Keys are unique
   * because representatives are distinct items. */
  int64_t *key = tmp;
  if (nc > cap) {
    for (int64_t c = 0; c < nc; c++) key[c] = (n - s->cl_len[c]) * n + s->cl_rep[c];
    qsort(key, (size_t)nc, sizeof *key, orx_cmp_i64);
    for (int64_t c = 0; c < cap; c++) key[c] %= n; /* back to representatives */
  } else {
    for (int64_t c = 0; c < nc; c++) key[c] = s->cl_rep[c];
  }
  int64_t kept = nc > cap ? cap : nc;
  qsort(key, (size_t)kept, sizeof *key, orx_cmp_i64);
  /* map representative -> cluster through pick[] (indexed by item) */
  for (int64_t c = 0; c < nc; c++) s->pick[s->cl_rep[c]] = c;
  for (int64_t c = 0; c < kept; c++) key[c] = s->pick[key[c]];
  for (int64_t c = 0; c < kept; c++) s->pick[c] = key[c];
  *kept_out = kept;
  return ONEREC_OK;
}

onerec_status orx_lifelong_forward(onerec_session *s, const onerec_user_batch *u, float *x0,
                                   uint8_t *h_mask) {
  const onerec_model *m = s->m;
  const onerec_model_config *c = &m->cfg;
  const orx_dims *dm = &m->dims;
  orx_backend *be = s->be;
  const onerec_seq_input *in = &u->lifelong;
  const int64_t B = u->batch, T = dm->enc_len, d = dm->d, Ll = c->lifelong_tokens;
  const int64_t Nq = c->lifelong_queries, ipr = dm->item_ids, iw = dm->item_width;
  const int64_t nnum = c->seq_num_count;
  const float eps = c->norm_eps;
  orx_feature feat[ONEREC_MAX_FEATURES + 1];
  int nf = orx_seq_features(m, feat);
  int64_t ids_per_tok = ipr + c->seq_cat_count;
  const orx_path_host *h = &s->h_life;
  onerec_status st = ONEREC_OK;

  for (int64_t u0 = 0, nu = 0; u0 < B; u0 += nu) {
    /* Users are taken while their memory fits the session's rows; a chunk's memory is as wide
     * as its longest (capped) history, not lifelong_tokens, so short histories cost little. */
    int64_t W = 1;
    for (nu = 0; u0 + nu < B; nu++) {
      int64_t lo, hi;
      if ((st = orx_seq_span("lifelong", in, u0 + nu, &lo, &hi))) return st;
      int64_t w = hi - lo < s->max_lifelong ? hi - lo : s->max_lifelong;
      w = w > W ? (w < Ll ? w : Ll) : W;
      if (nu > 0 && (nu + 1) * w > s->life_rows) break;
      W = w;
    }
    const int64_t n = nu * W;
    for (int64_t b = 0; b < nu; b++) {
      const int64_t user = u0 + b;
      int64_t lo, hi;
      if ((st = orx_seq_span("lifelong", in, user, &lo, &hi))) return st;
      int64_t cnt = hi - lo < s->max_lifelong ? hi - lo : s->max_lifelong, start = hi - cnt;
      int64_t ncl = cnt;
      const orx_lifelong_scratch *k = &s->lk;
      if (cnt > Ll) {
        /* the items' embedding vectors, gathered on the device and brought to the host */
        for (int64_t i = 0; i < cnt; i++)
          if ((st = orx_stage_item(m, "lifelong", in->items, user, start + i,
                                   s->h_life_ids + i * ipr)))
            return st;
        st = ORX_OP(be, copy, s->life_gather_ids, s->h_life_ids,
                    (size_t)(cnt * ipr) * sizeof(int32_t), ORX_COPY_H2D);
        if (!st)
          st = ORX_OP(be, embedding_fwd, s->life_gather, m->item_emb, s->life_gather_ids,
                      cnt * ipr, c->item_dim, dm->item_rows);
        if (!st)
          st = ORX_OP(be, copy, k->vec, s->life_gather, (size_t)(cnt * iw) * sizeof(float),
                      ORX_COPY_D2H);
        if (st) return st;
        if ((st = orx_lifelong_compress(be, k->vec, cnt, iw, c->lifelong_cluster_max, Ll, k,
                                        &ncl)))
          return st;
      }
      for (int64_t t = 0; t < W; t++) {
        int64_t row = -1, first = 0, len = 0;
        if (t < ncl) {
          if (cnt > Ll) {
            int64_t cl = k->pick[t];
            row = start + k->cl_rep[cl];
            first = k->cl_start[cl];
            len = k->cl_len[cl];
          } else {
            row = start + t;
          }
        }
        if ((st = orx_stage_row(m, "lifelong", in, user, row, n, b * W + t, h->ids, h->num)))
          return st;
        if (cnt > Ll && t < ncl && in->num) {
          /* numeric features: the cluster's mean */
          for (int64_t f = 0; f < nnum; f++) {
            double acc = 0.0;
            for (int64_t i = 0; i < len; i++)
              acc += in->num[(start + k->order[first + i]) * nnum + f];
            h->num[(b * W + t) * nnum + f] = (float)(acc / (double)len);
          }
        }
        s->h_life_mask[b * W + t] = t < ncl;
      }
      for (int64_t q = 0; q < Nq; q++) h_mask[user * T + dm->tok_life + q] = ncl > 0;
    }
    st = orx_path_upload(be, &s->p_life, h, nf, n * ids_per_tok, n * nnum);
    if (!st)
      st = ORX_OP(be, copy, s->life_mask, s->h_life_mask, (size_t)n, ORX_COPY_H2D);
    if (!st)
      st = orx_path_forward(be, m, &m->path_life, &s->p_life, feat, nf, nnum, n, s->life_mem, 1,
                            n, d, 0);
    /* QFormer */
    float *x = s->qf_x[0];
    if (!st) st = ORX_OP(be, memset0, x, (size_t)(nu * Nq * d) * sizeof(float));
    if (!st) st = ORX_OP(be, add_bias, x, m->qf_query, nu, Nq * d);
    orx_groups g = {nu, NULL, 1};
    for (int l = 0; !st && l < c->qformer_layers; l++) {
      int a = s->train ? l : 0;
      float *xa = s->train ? s->qf_x[2 * l + 1] : x, *xb = s->train ? s->qf_x[2 * l + 2] : x;
      st = orx_cross_kv_forward(be, &m->qf[l].cross, s->qf_kv[a], s->life_mem, n, d);
      if (!st)
        st = orx_cross_attn_forward(be, &m->qf[l].cross, &s->qf_cross[a], x, xa, nu, Nq, d,
                                    dm->heads, s->qf_kv[a], W, s->life_mask, &g, eps);
      if (!st) st = orx_ffn_forward(be, &m->qf[l].ffn, &s->qf_ffn[a], xa, xb, nu * Nq, d, eps);
      x = xb;
    }
    for (int64_t b = 0; !st && b < nu; b++)
      st = ORX_OP(be, copy, x0 + ((u0 + b) * T + dm->tok_life) * d, x + b * Nq * d,
                  (size_t)(Nq * d) * sizeof(float), ORX_COPY_D2D);
    if (st) return st;
  }
  return ONEREC_OK;
}

/* Training sessions hold the whole batch's memory (life_rows = B lifelong_tokens), so the
 * forward ran as one chunk of width W = the longest capped history; recomputed here. */
onerec_status orx_lifelong_backward(onerec_session *s, const orx_bwd *b,
                                    const onerec_user_batch *u) {
  const onerec_model *m = s->m;
  const onerec_model_config *c = &m->cfg;
  const orx_dims *dm = &m->dims;
  orx_backend *be = s->be;
  const int64_t B = u->batch, d = dm->d, Ll = c->lifelong_tokens, Nq = c->lifelong_queries;
  onerec_status st = ONEREC_OK;
  int64_t W = 1;
  for (int64_t i = 0; i < B; i++) {
    int64_t lo, hi;
    if ((st = orx_seq_span("lifelong", &u->lifelong, i, &lo, &hi))) return st;
    int64_t w = hi - lo < s->max_lifelong ? hi - lo : s->max_lifelong;
    w = w < Ll ? w : Ll;
    if (w > W) W = w;
  }
  if (B * W > s->life_rows)
    return orx_fail(ONEREC_ERR_INTERNAL, "lifelong backward: %lld memory rows, session has %lld",
                    (long long)(B * W), (long long)s->life_rows);
  const int64_t n = B * W;
  float *dx = b->dq_life;
  orx_groups g = {B, NULL, 1};
  st = ORX_OP(be, memset0, b->dmem, (size_t)(n * d) * sizeof(float));
  for (int l = c->qformer_layers - 1; !st && l >= 0; l--) {
    const float *x = s->qf_x[2 * l], *xa = s->qf_x[2 * l + 1];
    st = orx_ffn_backward(be, &m->qf[l].ffn, &s->qf_ffn[l], b, xa, dx, B * Nq, d);
    if (!st) st = ORX_OP(be, memset0, b->dkv, (size_t)(n * 2 * d) * sizeof(float));
    if (!st)
      st = orx_cross_attn_backward(be, &m->qf[l].cross, &s->qf_cross[l], b, x, dx, B, Nq, d,
                                   dm->heads, s->qf_kv[l], W, s->life_mask, &g, b->dkv);
    if (!st)
      st = orx_cross_kv_backward(be, &m->qf[l].cross, b, s->life_mem, b->dkv, b->dmem, n, d);
  }
  if (!st) st = ORX_OP(be, bias_bwd, orx_g(b, m->qf_query), dx, B, Nq * d);
  if (st) return st;
  orx_feature feat[ONEREC_MAX_FEATURES + 1];
  int nf = orx_seq_features(m, feat);
  return orx_path_backward(be, m, &m->path_life, &s->p_life, b, feat, nf, c->seq_num_count, n,
                           b->dmem, 1, n, d, 0);
}
