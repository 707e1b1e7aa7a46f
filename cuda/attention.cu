/* Scaled dot-product attention, forward and backward: simple, correct kernels, not yet fast.
 *
 * Forward: one warp per query row. Lanes split head_dim (lane + 32 t), each key's score is a
 * warp sum, and an online softmax (running max m and sum l) accumulates the output in registers,
 * so no score matrix is stored. Backward (deterministic, no atomics): D_i = dout_i . out_i, then
 * one warp per query row accumulates dq_i over its visible keys, and one warp per key row
 * accumulates dk_j and dv_j over the queries that see it (over every head, too, when heads share
 * k and v); probabilities are recomputed from q, k
 * and the forward's lse. Each gradient element is summed by one warp in key (or query) order.
 *
 * Cost: every score costs a warp reduction and the backward computes the scores twice, so this
 * is several times slower than a tiled tensor-core kernel (FlashAttention-style); it is the
 * reference the fast kernel will be tested against. head_dim up to 256. */
#include "kernel_util.h"

enum { ATT_MAX_HEAD_DIM = 256, ATT_THREADS = 128 };

struct att_row {
  int64_t b, h, i;
};

__device__ __forceinline__ att_row split_row(const orx_attn_args &a, int64_t w, int64_t t) {
  att_row r;
  r.i = w % t;
  int64_t bh = w / t;
  r.h = bh % a.heads;
  r.b = bh / a.heads;
  return r;
}

/* Keys [0, end) query i may see (before the padding mask). */
__device__ __forceinline__ int64_t key_end(const orx_attn_args &a, int64_t i) {
  if (!a.causal) return a.tk;
  int64_t e = i + (a.tk - a.tq) + 1;
  return e < 0 ? 0 : e > a.tk ? a.tk : e;
}

/* sum over d < dh of x[d] * y[d], x held in registers (T slots per lane) */
template <int T>
__device__ __forceinline__ float dot_row(const float (&x)[T], const float *y, int64_t dh,
                                         int lane) {
  float s = 0.0f;
#pragma unroll
  for (int t = 0; t < T; t++) {
    int64_t d = lane + 32 * t;
    if (d < dh) s += x[t] * y[d];
  }
  return orx_warp_sum(s);
}

template <int T>
__device__ __forceinline__ void load_row(float (&x)[T], const float *src, int64_t dh, int lane) {
#pragma unroll
  for (int t = 0; t < T; t++) {
    int64_t d = lane + 32 * t;
    x[t] = d < dh ? src[d] : 0.0f;
  }
}

template <int T>
__global__ void k_attn_fwd(orx_attn_args a) {
  const int lane = threadIdx.x & 31;
  const int64_t rows = a.batch * a.heads * a.tq, dh = a.head_dim;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t w = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; w < rows; w += warps) {
    att_row r = split_row(a, w, a.tq);
    float q[T], o[T];
    load_row(q, a.q + r.b * a.q_sb + r.h * a.q_sh + r.i * a.q_st, dh, lane);
#pragma unroll
    for (int t = 0; t < T; t++) o[t] = 0.0f;
    const float *K = a.k + r.b * a.k_sb + r.h * a.k_sh;
    const float *V = a.v + r.b * a.v_sb + r.h * a.v_sh;
    const uint8_t *mask = a.key_mask ? a.key_mask + r.b * a.tk : NULL;
    float m = -INFINITY, l = 0.0f;
    int64_t end = key_end(a, r.i);
    for (int64_t j = 0; j < end; j++) {
      if (mask && !mask[j]) continue;
      float s = dot_row(q, K + j * a.k_st, dh, lane) * a.scale;
      if (!(s <= m)) { /* a new max (or NaN, which then spreads to the whole row) */
        float c = expf(m - s);
        l *= c;
#pragma unroll
        for (int t = 0; t < T; t++) o[t] *= c;
        m = s;
      }
      float p = expf(s - m);
      l += p;
      const float *vj = V + j * a.v_st;
#pragma unroll
      for (int t = 0; t < T; t++) {
        int64_t d = lane + 32 * t;
        if (d < dh) o[t] += p * vj[d];
      }
    }
    float *out = a.out + r.b * a.o_sb + r.h * a.o_sh + r.i * a.o_st;
    int seen = m != -INFINITY;
    float inv = seen ? 1.0f / l : 0.0f;
#pragma unroll
    for (int t = 0; t < T; t++) {
      int64_t d = lane + 32 * t;
      if (d < dh) out[d] = seen ? o[t] * inv : 0.0f;
    }
    if (a.lse && lane == 0) a.lse[w] = seen ? m + logf(l) : -INFINITY;
  }
}

/* dq_i += scale sum_j p_ij (dout_i . v_j - D_i) k_j; also stores D_i for the key pass */
template <int T>
__global__ void k_attn_bwd_dq(orx_attn_bwd_args g, float *Dbuf) {
  const orx_attn_args &a = g.fwd;
  const int lane = threadIdx.x & 31;
  const int64_t rows = a.batch * a.heads * a.tq, dh = a.head_dim;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t w = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; w < rows; w += warps) {
    att_row r = split_row(a, w, a.tq);
    float L = a.lse[w];
    if (L == -INFINITY) { /* a row that saw nothing gets no gradient */
      if (lane == 0) Dbuf[w] = 0.0f;
      continue;
    }
    float q[T], dO[T], acc[T];
    load_row(q, a.q + r.b * a.q_sb + r.h * a.q_sh + r.i * a.q_st, dh, lane);
    load_row(dO, g.dout + r.b * g.do_sb + r.h * g.do_sh + r.i * g.do_st, dh, lane);
    float D = dot_row(dO, a.out + r.b * a.o_sb + r.h * a.o_sh + r.i * a.o_st, dh, lane);
    if (lane == 0) Dbuf[w] = D;
#pragma unroll
    for (int t = 0; t < T; t++) acc[t] = 0.0f;
    const float *K = a.k + r.b * a.k_sb + r.h * a.k_sh;
    const float *V = a.v + r.b * a.v_sb + r.h * a.v_sh;
    const uint8_t *mask = a.key_mask ? a.key_mask + r.b * a.tk : NULL;
    int64_t end = key_end(a, r.i);
    for (int64_t j = 0; j < end; j++) {
      if (mask && !mask[j]) continue;
      const float *kj = K + j * a.k_st;
      float p = expf(dot_row(q, kj, dh, lane) * a.scale - L);
      float ds = p * (dot_row(dO, V + j * a.v_st, dh, lane) - D);
#pragma unroll
      for (int t = 0; t < T; t++) {
        int64_t d = lane + 32 * t;
        if (d < dh) acc[t] += ds * kj[d];
      }
    }
    float *dq = g.dq + r.b * a.q_sb + r.h * a.q_sh + r.i * a.q_st;
#pragma unroll
    for (int t = 0; t < T; t++) {
      int64_t d = lane + 32 * t;
      if (d < dh) dq[d] += a.scale * acc[t];
    }
  }
}

/* dv_j += sum_i p_ij dout_i;  dk_j += scale sum_i p_ij (dout_i . v_j - D_i) q_i
 * A warp owns one key row of dk and dv. When k and v are shared by all heads (head stride 0,
 * multi-query attention) or by all batch items, that row gathers the terms of every head (batch
 * item) sharing it, so no two warps ever add into the same row. */
template <int T>
__global__ void k_attn_bwd_dkv(orx_attn_bwd_args g, const float *Dbuf, int share_b,
                               int share_h) {
  const orx_attn_args &a = g.fwd;
  const int lane = threadIdx.x & 31;
  const int64_t nb = share_b ? 1 : a.batch, nh = share_h ? 1 : a.heads, dh = a.head_dim;
  const int64_t rows = nb * nh * a.tk;
  const int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
  for (int64_t w = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; w < rows; w += warps) {
    const int64_t j = w % a.tk, bh = w / a.tk, h_own = bh % nh, b_own = bh / nh;
    float k[T], v[T], dk[T], dv[T];
    load_row(k, a.k + b_own * a.k_sb + h_own * a.k_sh + j * a.k_st, dh, lane);
    load_row(v, a.v + b_own * a.v_sb + h_own * a.v_sh + j * a.v_st, dh, lane);
#pragma unroll
    for (int t = 0; t < T; t++) dk[t] = dv[t] = 0.0f;
    /* causal: query i sees key j iff j <= i + tk - tq */
    int64_t i0 = a.causal ? j - (a.tk - a.tq) : 0;
    if (i0 < 0) i0 = 0;
    for (int64_t b = share_b ? 0 : b_own; b < (share_b ? a.batch : b_own + 1); b++) {
      if (a.key_mask && !a.key_mask[b * a.tk + j]) continue;
      for (int64_t h = share_h ? 0 : h_own; h < (share_h ? a.heads : h_own + 1); h++) {
        const float *Q = a.q + b * a.q_sb + h * a.q_sh;
        const float *dO = g.dout + b * g.do_sb + h * g.do_sh;
        const int64_t row0 = (b * a.heads + h) * a.tq;
        for (int64_t i = i0; i < a.tq; i++) {
          float L = a.lse[row0 + i];
          if (L == -INFINITY) continue;
          const float *qi = Q + i * a.q_st, *di = dO + i * g.do_st;
          float p = expf(dot_row(k, qi, dh, lane) * a.scale - L);
          float ds = p * (dot_row(v, di, dh, lane) - Dbuf[row0 + i]);
#pragma unroll
          for (int t = 0; t < T; t++) {
            int64_t d = lane + 32 * t;
            if (d < dh) {
              dv[t] += p * di[d];
              dk[t] += ds * qi[d];
            }
          }
        }
      }
    }
    float *dkj = g.dk + b_own * a.k_sb + h_own * a.k_sh + j * a.k_st;
    float *dvj = g.dv + b_own * a.v_sb + h_own * a.v_sh + j * a.v_st;
#pragma unroll
    for (int t = 0; t < T; t++) {
      int64_t d = lane + 32 * t;
      if (d < dh) {
        dkj[d] += a.scale * dk[t];
        dvj[d] += dv[t];
      }
    }
  }
}

static onerec_status check_view(orx_backend *be, const char *op, const char *name,
                                const float *ptr, int64_t sb, int64_t sh, int64_t st, int64_t t,
                                int64_t dh) {
  if (!ptr) return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, name);
  if (sb < 0 || sh < 0 || st < 0 || (t > 1 && st < dh) || st > INT32_MAX)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE,
                         "%s: %s strides (%lld, %lld, %lld) invalid for head_dim %lld", op, name,
                         (long long)sb, (long long)sh, (long long)st, (long long)dh);
  return ONEREC_OK;
}

static onerec_status check_args(orx_backend *be, const orx_attn_args *a, const char *op) {
  if (!a) return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: args is NULL", op);
  if (a->batch < 1 || a->heads < 1 || a->tq < 1 || a->tk < 1 || a->head_dim < 1 ||
      a->tq > INT32_MAX || a->tk > INT32_MAX || a->head_dim > INT32_MAX)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_SHAPE,
                         "%s: batch=%lld heads=%lld tq=%lld tk=%lld head_dim=%lld", op,
                         (long long)a->batch, (long long)a->heads, (long long)a->tq,
                         (long long)a->tk, (long long)a->head_dim);
  if (a->head_dim > ATT_MAX_HEAD_DIM)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_UNSUPPORTED,
                         "%s: head_dim %lld > %d is not supported by the cuda backend", op,
                         (long long)a->head_dim, ATT_MAX_HEAD_DIM);
  if (!isfinite(a->scale))
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: scale %g is not finite", op,
                         (double)a->scale);
  onerec_status s;
  if ((s = check_view(be, op, "q", a->q, a->q_sb, a->q_sh, a->q_st, a->tq, a->head_dim)) ||
      (s = check_view(be, op, "k", a->k, a->k_sb, a->k_sh, a->k_st, a->tk, a->head_dim)) ||
      (s = check_view(be, op, "v", a->v, a->v_sb, a->v_sh, a->v_st, a->tk, a->head_dim)) ||
      (s = check_view(be, op, "out", a->out, a->o_sb, a->o_sh, a->o_st, a->tq, a->head_dim)))
    return s;
  return ONEREC_OK;
}

/* Register slots per lane for head_dim: 1, 2, 4 or 8. */
static int slots_for(int64_t dh) { return dh <= 32 ? 1 : dh <= 64 ? 2 : dh <= 128 ? 4 : 8; }

onerec_status orx_cuda_attention_fwd(orx_backend *be, const orx_attn_args *a) {
  const char *op = "attention_fwd";
  onerec_status s = check_args(be, a, op);
  if (s || (s = orx_cuda_enter(be, op))) return s;
  cudaStream_t st = orx_cuda_of(be)->stream;
  unsigned grid = orx_cuda_blocks(a->batch * a->heads * a->tq * 32, ATT_THREADS);
  switch (slots_for(a->head_dim)) {
    case 1: k_attn_fwd<1><<<grid, ATT_THREADS, 0, st>>>(*a); break;
    case 2: k_attn_fwd<2><<<grid, ATT_THREADS, 0, st>>>(*a); break;
    case 4: k_attn_fwd<4><<<grid, ATT_THREADS, 0, st>>>(*a); break;
    default: k_attn_fwd<8><<<grid, ATT_THREADS, 0, st>>>(*a); break;
  }
  return orx_cuda_launched(be, op);
}

onerec_status orx_cuda_attention_bwd(orx_backend *be, const orx_attn_bwd_args *g) {
  const char *op = "attention_bwd";
  if (!g) return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: args is NULL", op);
  const orx_attn_args *a = &g->fwd;
  onerec_status s = check_args(be, a, op);
  if (s) return s;
  if (!a->lse)
    return ORX_CUDA_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT,
                         "%s: lse is NULL (the forward must save it)", op);
  /* gradients share their inputs' strides; dout has its own */
  if ((s = check_view(be, op, "dout", g->dout, g->do_sb, g->do_sh, g->do_st, a->tq,
                      a->head_dim)) ||
      (s = check_view(be, op, "dq", g->dq, 0, 0, a->q_st, 0, 0)) ||
      (s = check_view(be, op, "dk", g->dk, 0, 0, a->k_st, 0, 0)) ||
      (s = check_view(be, op, "dv", g->dv, 0, 0, a->v_st, 0, 0)))
    return s;
  if ((s = orx_cuda_enter(be, op))) return s;
  cudaStream_t st = orx_cuda_of(be)->stream;
  /* A zero batch or head stride shares k and v (and so dk and dv) across batch items or heads;
   * k and v must share alike, and q (so dq) must not be shared, or gradient rows would race. */
  int share_b = a->batch > 1 && a->k_sb == 0, share_h = a->heads > 1 && a->k_sh == 0;
  if (share_b != (a->batch > 1 && a->v_sb == 0) || share_h != (a->heads > 1 && a->v_sh == 0) ||
      (a->batch > 1 && a->q_sb == 0) || (a->heads > 1 && a->q_sh == 0))
    return ORX_CUDA_FAIL(be, ONEREC_ERR_UNSUPPORTED,
                         "%s: k and v must be shared alike (zero batch or head strides) and q "
                         "not at all, for the gradients to have one owner per row", op);
  int64_t qrows = a->batch * a->heads * a->tq;
  int64_t krows = (share_b ? 1 : a->batch) * (share_h ? 1 : a->heads) * a->tk;
  float *D = NULL;
  s = orx_cuda_check(be, cudaMallocAsync((void **)&D, (size_t)qrows * sizeof(float), st), op,
                     "cudaMallocAsync");
  if (s) return s;
  unsigned gq = orx_cuda_blocks(qrows * 32, ATT_THREADS);
  unsigned gk = orx_cuda_blocks(krows * 32, ATT_THREADS);
  switch (slots_for(a->head_dim)) {
    case 1:
      k_attn_bwd_dq<1><<<gq, ATT_THREADS, 0, st>>>(*g, D);
      k_attn_bwd_dkv<1><<<gk, ATT_THREADS, 0, st>>>(*g, D, share_b, share_h);
      break;
    case 2:
      k_attn_bwd_dq<2><<<gq, ATT_THREADS, 0, st>>>(*g, D);
      k_attn_bwd_dkv<2><<<gk, ATT_THREADS, 0, st>>>(*g, D, share_b, share_h);
      break;
    case 4:
      k_attn_bwd_dq<4><<<gq, ATT_THREADS, 0, st>>>(*g, D);
      k_attn_bwd_dkv<4><<<gk, ATT_THREADS, 0, st>>>(*g, D, share_b, share_h);
      break;
    default:
      k_attn_bwd_dq<8><<<gq, ATT_THREADS, 0, st>>>(*g, D);
      k_attn_bwd_dkv<8><<<gk, ATT_THREADS, 0, st>>>(*g, D, share_b, share_h);
      break;
  }
  s = orx_cuda_launched(be, op);
  onerec_status fs = orx_cuda_check(be, cudaFreeAsync(D, st), op, "cudaFreeAsync");
  return s ? s : fs;
}
