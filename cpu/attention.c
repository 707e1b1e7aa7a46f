/* Fused scaled-dot-product attention (forward and backward) on OpenBLAS sgemm, with AVX-512
 * kernels for the softmax rows and for tiles too small for sgemm.
 *
 * Forward: work items are (batch, head, query block). Each item walks the visible key tiles,
 * computes the score tile S = scale * Q_blk K_tile^T with sgemm into scratch, turns it into
 * probabilities with an online softmax (running max m and sum l per row, earlier output rescaled
 * when m grows) and accumulates P V_tile with sgemm. Only a query-block x key-tile scratch exists,
 * never the tq x tk matrix. Sequences up to one tile long (the encoder's 405 tokens) take a single
 * pass with no rescaling at all.
 *
 * Backward (flash-attention-2 style): P is recomputed per tile from q, k and the forward's lse,
 * D_i = rowsum(dout_i * out_i), dP = dout V^T, dS = P * (dP - D), then dv += P^T dout,
 * dq += scale dS K, dk += scale dS^T Q, accumulated by sgemm (beta = 1) straight into the
 * caller's gradients. Items are whole (batch, head) pairs, so no two tasks touch the same dk/dv
 * rows and every sum runs in one fixed order.
 *
 * Threads: the pool runs one task per scratch slot; each task pulls items from a shared counter.
 * An item's result depends only on the item (never on the slot or thread that ran it), so
 * outputs are bit-identical for any thread count, and scratch is allocated once per call. */
#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "cpu_impl.h"

/* Query rows per block and keys per tile: a 128 x 512 float score tile (256 KiB) stays in L2,
 * and 512 covers the encoder sequence (1 + 20 + 256 + 128 = 405) in one tile. */
enum { ATT_QBLOCK = 128, ATT_KTILE = 512 };

typedef struct att_plan {
  int64_t qblk, nqb; /* rows per query block, blocks per (batch, head) */
  int64_t ktile;     /* keys per tile */
  int64_t lds;       /* row pitch of the score scratch */
  int64_t ldq, ldk, ldv, ldo, lddo; /* sgemm row pitches (a single row may have any stride) */
  int64_t off;                      /* causal: query i sees key j iff j <= i + off */
} att_plan;

/* Splits n into count equal-as-possible chunks of at most max. */
static void split_even(int64_t n, int64_t max, int64_t *size, int64_t *count) {
  *count = (n + max - 1) / max;
  *size = (n + *count - 1) / *count;
}

static att_plan make_plan(const orx_attn_args *a) {
  att_plan p;
  split_even(a->tq, ATT_QBLOCK, &p.qblk, &p.nqb);
  int64_t nkt;
  split_even(a->tk, ATT_KTILE, &p.ktile, &nkt);
  p.lds = (p.ktile + 15) & ~(int64_t)15; /* whole 64-byte lines per row */
  p.ldq = a->tq > 1 ? a->q_st : a->head_dim;
  p.ldo = a->tq > 1 ? a->o_st : a->head_dim;
  p.ldk = a->tk > 1 ? a->k_st : a->head_dim;
  p.ldv = a->tk > 1 ? a->v_st : a->head_dim;
  p.lddo = p.ldo;
  p.off = a->tk - a->tq;
  return p;
}

/* Keys [0, end) that some row of the block [q0, q0 + nq) can see. */
static int64_t visible_end(const orx_attn_args *a, const att_plan *p, int64_t q0, int64_t nq) {
  if (!a->causal) return a->tk;
  int64_t e = q0 + nq + p->off;
  return e < 0 ? 0 : e > a->tk ? a->tk : e;
}

/* Columns [0, n) of tile row i that are not hidden by causality; the rest are later zeroed. */
static int64_t row_visible(const orx_attn_args *a, const att_plan *p, int64_t i, int64_t j0,
                           int64_t nk) {
  if (!a->causal) return nk;
  int64_t n = i + p->off + 1 - j0;
  return n < 0 ? 0 : n > nk ? nk : n;
}

/* ---- kernels ----
 * The score rows are where the time goes besides sgemm (about as many operations per score as
 * the two sgemms at head_dim 32; cpu/simd's reductions run in sequential order and do not
 * vectorise), so they get their own AVX-512 versions; the portable versions serve every other
 * CPU and ONEREC_CPU_ISA below avx512. Each sum runs in a fixed order, so results never depend
 * on the thread that computes a row. */

typedef struct att_kern {
  /* max of s[c] over c < n with mask[c] != 0 (mask may be NULL); -inf if there is none, NaN if
   * one of them is NaN (a bad input must not turn into a quiet zero row) */
  float (*max)(const float *s, int64_t n, const uint8_t *mask);
  /* s[c] = exp(s[c] - m) for c < n (exactly 0 where masked), s[c] = 0 for n <= c < nk;
   * returns the sum */
  float (*exp)(float *s, int64_t n, int64_t nk, float m, const uint8_t *mask);
  /* dp[c] = p[c] * (dp[c] - d): the softmax backward for one row */
  void (*dsoftmax)(float *dp, const float *p, int64_t n, float d);
  /* Small products for tiles too small for sgemm (see mm_small): C (m x n) = alpha A B^T;
   * C += alpha A B; C += alpha A^T B. Row pitches as sgemm's. */
  void (*abt)(float *C, int64_t ldc, const float *A, int64_t lda, const float *B, int64_t ldb,
              int64_t m, int64_t n, int64_t k, float alpha);
  void (*ab)(float *C, int64_t ldc, const float *A, int64_t lda, const float *B, int64_t ldb,
             int64_t m, int64_t n, int64_t k, float alpha);
  void (*atb)(float *C, int64_t ldc, const float *A, int64_t lda, const float *B, int64_t ldb,
              int64_t m, int64_t n, int64_t k, float alpha);
} att_kern;

static float max_c(const float *s, int64_t n, const uint8_t *mask) {
  float m = -INFINITY;
  for (int64_t c = 0; c < n; c++) {
    if (mask && !mask[c]) continue;
    if (isnan(s[c])) return s[c];
    if (s[c] > m) m = s[c];
  }
  return m;
}

static float exp_c(float *s, int64_t n, int64_t nk, float m, const uint8_t *mask) {
  float sum = 0.0f;
  for (int64_t c = 0; c < n; c++) {
    float e = !mask || mask[c] ? expf(s[c] - m) : 0.0f;
    s[c] = e;
    sum += e;
  }
  if (n < nk) memset(s + n, 0, (size_t)(nk - n) * sizeof *s);
  return sum;
}

static void dsoftmax_c(float *dp, const float *p, int64_t n, float d) {
  for (int64_t c = 0; c < n; c++) dp[c] = p[c] * (dp[c] - d);
}

static void abt_c(float *C, int64_t ldc, const float *A, int64_t lda, const float *B, int64_t ldb,
                  int64_t m, int64_t n, int64_t k, float alpha) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      float s = 0.0f;
      for (int64_t p = 0; p < k; p++) s += A[i * lda + p] * B[j * ldb + p];
      C[i * ldc + j] = alpha * s;
    }
}

static void ab_c(float *C, int64_t ldc, const float *A, int64_t lda, const float *B, int64_t ldb,
                 int64_t m, int64_t n, int64_t k, float alpha) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t p = 0; p < k; p++) {
      float a = alpha * A[i * lda + p];
      for (int64_t j = 0; j < n; j++) C[i * ldc + j] += a * B[p * ldb + j];
    }
}

static void atb_c(float *C, int64_t ldc, const float *A, int64_t lda, const float *B, int64_t ldb,
                  int64_t m, int64_t n, int64_t k, float alpha) {
  for (int64_t i = 0; i < m; i++)
    for (int64_t p = 0; p < k; p++) {
      float a = alpha * A[p * lda + i];
      for (int64_t j = 0; j < n; j++) C[i * ldc + j] += a * B[p * ldb + j];
    }
}

static const att_kern k_kern_c = {max_c, exp_c, dsoftmax_c, abt_c, ab_c, atb_c};

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ATT_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

/* Lanes [c, min(c + 16, n)) that are in range and, with a mask, not padding. */
ATT_AVX512 static inline __mmask16 lanes512(int64_t c, int64_t n, const uint8_t *mask) {
  int64_t rem = n - c;
  __mmask16 k = rem >= 16 ? (__mmask16)0xFFFF : rem <= 0 ? 0 : (__mmask16)((1u << rem) - 1u);
  if (mask) {
    __m128i mb = _mm_maskz_loadu_epi8(k, mask + c);
    k = _mm_test_epi8_mask(mb, mb);
  }
  return k;
}

/* exp(x), relative error about 1e-7: 2^n p(r) with n = round(x / ln 2), r = x - n ln 2 split in
 * two parts, p the degree-6 Taylor polynomial (|r| <= ln2 / 2). Inputs below -87 (-inf too) give
 * exactly 0, so no denormal reaches sgemm; NaN stays NaN, so bad inputs show in the output. */
ATT_AVX512 static inline __m512 exp512(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.0f);
  __mmask16 live = _mm512_cmp_ps_mask(x, lo, _CMP_NLT_UQ);
  __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  __m512 x0 = x;
  x = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(88.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_mask_mov_ps(_mm512_maskz_scalef_ps(live, p, n), nan, x0);
}

ATT_AVX512 static float max_avx512(const float *s, int64_t n, const uint8_t *mask) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  __m512 a0 = ninf, a1 = ninf;
  __mmask16 nan = 0; /* max_ps drops NaN depending on operand order: track it apart */
  int64_t c = 0;
  if (!mask)
    for (; c + 32 <= n; c += 32) {
      __m512 x0 = _mm512_loadu_ps(s + c), x1 = _mm512_loadu_ps(s + c + 16);
      nan |= _mm512_cmp_ps_mask(x0, x1, _CMP_UNORD_Q);
      a0 = _mm512_max_ps(a0, x0);
      a1 = _mm512_max_ps(a1, x1);
    }
  for (; c < n; c += 16) {
    __m512 x = _mm512_mask_loadu_ps(ninf, lanes512(c, n, mask), s + c);
    nan |= _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    a0 = _mm512_max_ps(a0, x);
  }
  if (nan) return NAN;
  return _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
}

ATT_AVX512 static float exp_avx512(float *s, int64_t n, int64_t nk, float m,
                                   const uint8_t *mask) {
  const __m512 vm = _mm512_set1_ps(m);
  __m512 acc = _mm512_setzero_ps();
  int64_t c = 0;
  if (!mask)
    for (; c + 16 <= n; c += 16) {
      __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(s + c), vm));
      _mm512_storeu_ps(s + c, e);
      acc = _mm512_add_ps(acc, e);
    }
  for (; c < n; c += 16) {
    int64_t rem = n - c;
    __mmask16 in = rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u);
    __mmask16 k = lanes512(c, n, mask);
    __m512 e = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + c), vm)));
    _mm512_mask_storeu_ps(s + c, in, e);
    acc = _mm512_add_ps(acc, e);
  }
  if (n < nk) memset(s + n, 0, (size_t)(nk - n) * sizeof *s);
  return _mm512_reduce_add_ps(acc);
}

ATT_AVX512 static void dsoftmax_avx512(float *dp, const float *p, int64_t n, float d) {
  const __m512 vd = _mm512_set1_ps(d);
  for (int64_t c = 0; c < n; c += 16) {
    __mmask16 k = lanes512(c, n, NULL);
    __m512 x = _mm512_maskz_loadu_ps(k, dp + c);
    _mm512_mask_storeu_ps(dp + c, k,
                          _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + c), _mm512_sub_ps(x, vd)));
  }
}

/* Sums of each of four vectors, in lanes 0..3 (a fixed order: results do not depend on timing). */
ATT_AVX512 static inline __m128 reduce4_512(__m512 a, __m512 b, __m512 c, __m512 d) {
  __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  __m512 s = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, 0x44), _mm512_shuffle_ps(ab, cd, 0xEE));
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

ATT_AVX512 static void abt_avx512(float *C, int64_t ldc, const float *A, int64_t lda,
                                   const float *B, int64_t ldb, int64_t m, int64_t n, int64_t k,
                                   float alpha) {
  const __m128 va = _mm_set1_ps(alpha);
  for (int64_t i = 0; i < m; i++) {
    const float *a = A + i * lda;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) { /* four dot products share the loads of a and one reduction */
      const float *b0 = B + j * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
      __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
      for (int64_t p = 0; p < k; p += 16) {
        __mmask16 in = lanes512(p, k, NULL);
        __m512 x = _mm512_maskz_loadu_ps(in, a + p);
        s0 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(in, b0 + p), s0);
        s1 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(in, b1 + p), s1);
        s2 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(in, b2 + p), s2);
        s3 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(in, b3 + p), s3);
      }
      _mm_storeu_ps(C + i * ldc + j, _mm_mul_ps(va, reduce4_512(s0, s1, s2, s3)));
    }
    for (; j < n; j++) {
      __m512 acc = _mm512_setzero_ps();
      for (int64_t p = 0; p < k; p += 16) {
        __mmask16 in = lanes512(p, k, NULL);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(in, A + i * lda + p),
                              _mm512_maskz_loadu_ps(in, B + j * ldb + p), acc);
      }
      C[i * ldc + j] = alpha * _mm512_reduce_add_ps(acc);
    }
  }
}

/* C[i, :] += sum_p a(i, p) B[p, :], 64 columns of C at a time held in registers */
ATT_AVX512 static inline void axpy_rows512(float *c, const float *A, int64_t astep,
                                           const float *B, int64_t ldb, int64_t n, int64_t k,
                                           float alpha) {
  for (int64_t j = 0; j < n; j += 64) {
    __mmask16 k0 = lanes512(j, n, NULL), k1 = lanes512(j + 16, n, NULL),
              k2 = lanes512(j + 32, n, NULL), k3 = lanes512(j + 48, n, NULL);
    __m512 c0 = _mm512_maskz_loadu_ps(k0, c + j), c1 = _mm512_maskz_loadu_ps(k1, c + j + 16),
           c2 = _mm512_maskz_loadu_ps(k2, c + j + 32), c3 = _mm512_maskz_loadu_ps(k3, c + j + 48);
    for (int64_t p = 0; p < k; p++) {
      const float *b = B + p * ldb + j;
      __m512 a = _mm512_set1_ps(alpha * A[p * astep]);
      c0 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(k0, b), c0);
      c1 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(k1, b + 16), c1);
      c2 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(k2, b + 32), c2);
      c3 = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(k3, b + 48), c3);
    }
    _mm512_mask_storeu_ps(c + j, k0, c0);
    _mm512_mask_storeu_ps(c + j + 16, k1, c1);
    _mm512_mask_storeu_ps(c + j + 32, k2, c2);
    _mm512_mask_storeu_ps(c + j + 48, k3, c3);
  }
}

ATT_AVX512 static void ab_avx512(float *C, int64_t ldc, const float *A, int64_t lda,
                                  const float *B, int64_t ldb, int64_t m, int64_t n, int64_t k,
                                  float alpha) {
  for (int64_t i = 0; i < m; i++) axpy_rows512(C + i * ldc, A + i * lda, 1, B, ldb, n, k, alpha);
}

ATT_AVX512 static void atb_avx512(float *C, int64_t ldc, const float *A, int64_t lda,
                                   const float *B, int64_t ldb, int64_t m, int64_t n, int64_t k,
                                   float alpha) {
  for (int64_t i = 0; i < m; i++) axpy_rows512(C + i * ldc, A + i, lda, B, ldb, n, k, alpha);
}

static const att_kern k_kern_avx512 = {max_avx512, exp_avx512, dsoftmax_avx512,
                                       abt_avx512, ab_avx512,  atb_avx512};
#endif

/* The CPU backend's ISA choice (ONEREC_CPU_ISA included) decides, so tests can force each. */
static const att_kern *pick_kern(const orx_simd *simd) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (strcmp(simd->isa, "avx512") == 0) return &k_kern_avx512;
#endif
  (void)simd;
  return &k_kern_c;
}

static onerec_status check_view(orx_backend *be, const char *op, const char *name,
                                const float *ptr, int64_t sb, int64_t sh, int64_t st, int64_t t,
                                int64_t dh) {
  if (!ptr) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: %s is NULL", op, name);
  if (sb < 0 || sh < 0 || st < 0 || (t > 1 && st < dh) || st > INT32_MAX)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE,
                        "%s: %s strides (%lld, %lld, %lld) invalid for head_dim %lld", op, name,
                        (long long)sb, (long long)sh, (long long)st, (long long)dh);
  return ONEREC_OK;
}

static onerec_status check_args(orx_backend *be, const orx_attn_args *a, const char *op) {
  if (!a) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: args is NULL", op);
  if (a->batch < 1 || a->heads < 1 || a->tq < 1 || a->tk < 1 || a->head_dim < 1 ||
      a->tq > INT32_MAX || a->tk > INT32_MAX || a->head_dim > INT32_MAX)
    return ORX_CPU_FAIL(be, ONEREC_ERR_SHAPE,
                        "%s: batch=%lld heads=%lld tq=%lld tk=%lld head_dim=%lld", op,
                        (long long)a->batch, (long long)a->heads, (long long)a->tq,
                        (long long)a->tk, (long long)a->head_dim);
  if (!isfinite(a->scale))
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "%s: scale %g is not finite", op,
                        (double)a->scale);
  onerec_status s;
  if ((s = check_view(be, op, "q", a->q, a->q_sb, a->q_sh, a->q_st, a->tq, a->head_dim)) ||
      (s = check_view(be, op, "k", a->k, a->k_sb, a->k_sh, a->k_st, a->tk, a->head_dim)) ||
      (s = check_view(be, op, "v", a->v, a->v_sb, a->v_sh, a->v_st, a->tk, a->head_dim)) ||
      (s = check_view(be, op, "out", a->out, a->o_sb, a->o_sh, a->o_st, a->tq, a->head_dim)))
    return s;
  return ONEREC_OK;
}

/* ---- the tile products ----
 * sgemm pays a fixed cost per call (argument checks, packing, and in OpenBLAS a lock around its
 * buffer pool that threads calling it at once fight over), which dominates tiny tiles such as
 * the decoder's 4-token attention. Tiles below ATT_SMALL multiply-adds use the kernels above. The
 * choice depends on the shapes only, never on the thread count, so results stay bit-identical
 * for any number of threads. */
enum { ATT_SMALL = 16384 };

typedef struct att_mm {
  const att_kern *k;
  int small;
} att_mm;

/* C (m x n) = alpha A B^T, A m x k, B n x k */
static void mm_abt(att_mm mm, float *C, int64_t ldc, const float *A, int64_t lda, const float *B,
                   int64_t ldb, int64_t m, int64_t n, int64_t k, float alpha) {
  if (mm.small)
    mm.k->abt(C, ldc, A, lda, B, ldb, m, n, k, alpha);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)n, (blasint)k,
                alpha, A, (blasint)lda, B, (blasint)ldb, 0.0f, C, (blasint)ldc);
}

/* C (m x n) += alpha A B, A m x k, B k x n */
static void mm_ab(att_mm mm, float *C, int64_t ldc, const float *A, int64_t lda, const float *B,
                  int64_t ldb, int64_t m, int64_t n, int64_t k, float alpha) {
  if (mm.small)
    mm.k->ab(C, ldc, A, lda, B, ldb, m, n, k, alpha);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)n, (blasint)k,
                alpha, A, (blasint)lda, B, (blasint)ldb, 1.0f, C, (blasint)ldc);
}

/* C (m x n) += alpha A^T B, A k x m, B k x n */
static void mm_atb(att_mm mm, float *C, int64_t ldc, const float *A, int64_t lda, const float *B,
                   int64_t ldb, int64_t m, int64_t n, int64_t k, float alpha) {
  if (mm.small)
    mm.k->atb(C, ldc, A, lda, B, ldb, m, n, k, alpha);
  else
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)m, (blasint)n, (blasint)k,
                alpha, A, (blasint)lda, B, (blasint)ldb, 1.0f, C, (blasint)ldc);
}

static att_mm pick_mm(const att_kern *k, const orx_attn_args *a, const att_plan *p) {
  att_mm mm = {k, p->qblk * p->ktile * a->head_dim <= ATT_SMALL};
  return mm;
}

/* Below about a million flops, waking the pool costs more than it saves (as in cpu/gemm.c). */
static int64_t pool_slots(const orx_cpu *cpu, const orx_attn_args *a, int64_t items) {
  double macs = (double)a->batch * (double)a->heads * (double)a->tq * (double)a->tk *
                (double)a->head_dim; /* in double: the product of five int64 may overflow */
  if (macs < (double)(1 << 18)) return 1;
  return items < cpu->threads ? items : cpu->threads;
}

/* ---- forward ---- */

typedef struct fwd_job {
  const orx_attn_args *a;
  const orx_simd *simd;
  const att_kern *kern;
  att_mm mm;
  att_plan p;
  float *scratch;
  size_t slot_floats;
  int64_t items;
  atomic_int_fast64_t next;
} fwd_job;

static void fwd_item(const fwd_job *j, float *ws, int64_t item) {
  const orx_attn_args *a = j->a;
  const att_plan *p = &j->p;
  const orx_simd *simd = j->simd;
  const att_kern *rk = j->kern;
  const att_mm mm = j->mm;
  const int64_t dh = a->head_dim, lds = p->lds;
  int64_t qb = item % p->nqb, bh = item / p->nqb;
  int64_t b = bh / a->heads, h = bh % a->heads;
  int64_t q0 = qb * p->qblk, nq = a->tq - q0 < p->qblk ? a->tq - q0 : p->qblk;

  const float *Q = a->q + b * a->q_sb + h * a->q_sh + q0 * a->q_st;
  const float *K = a->k + b * a->k_sb + h * a->k_sh;
  const float *V = a->v + b * a->v_sb + h * a->v_sh;
  const uint8_t *mask = a->key_mask ? a->key_mask + b * a->tk : NULL;
  float *S = ws, *O = S + p->qblk * lds, *m = O + p->qblk * dh, *l = m + p->qblk;

  memset(O, 0, (size_t)(nq * dh) * sizeof *O);
  for (int64_t r = 0; r < nq; r++) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
  }
  int64_t kend = visible_end(a, p, q0, nq);
  for (int64_t j0 = 0; j0 < kend; j0 += p->ktile) {
    int64_t nk = kend - j0 < p->ktile ? kend - j0 : p->ktile;
    mm_abt(mm, S, lds, Q, p->ldq, K + j0 * a->k_st, p->ldk, nq, nk, dh, a->scale);
    int any = 0;
    for (int64_t r = 0; r < nq; r++) {
      float *s = S + r * lds;
      int64_t nv = row_visible(a, p, q0 + r, j0, nk);
      const uint8_t *mk = mask ? mask + j0 : NULL;
      float mt = nv > 0 ? rk->max(s, nv, mk) : -INFINITY;
      if (mt == -INFINITY) { /* nothing visible in this tile: the row adds nothing */
        memset(s, 0, (size_t)nk * sizeof *s);
        continue;
      }
      any = 1;
      if (!(mt <= m[r])) { /* a new max (or NaN, which then spreads to the whole row) */
        if (m[r] != -INFINITY) { /* rescale what earlier tiles accumulated */
          float c = expf(m[r] - mt);
          l[r] *= c;
          simd->scale(O + r * dh, dh, c);
        }
        m[r] = mt;
      }
      l[r] += rk->exp(s, nv, nk, m[r], mk);
    }
    if (any)
      mm_ab(mm, O, dh, S, lds, V + j0 * a->v_st, p->ldv, nq, dh, nk, 1.0f);
  }

  float *out = a->out + b * a->o_sb + h * a->o_sh + q0 * a->o_st;
  float *lse = a->lse ? a->lse + (b * a->heads + h) * a->tq + q0 : NULL;
  for (int64_t r = 0; r < nq; r++) {
    float *o = out + r * a->o_st;
    if (m[r] != -INFINITY) {
      float inv = 1.0f / l[r];
      for (int64_t d = 0; d < dh; d++) o[d] = O[r * dh + d] * inv;
      if (lse) lse[r] = m[r] + logf(l[r]);
    } else {
      memset(o, 0, (size_t)dh * sizeof *o);
      if (lse) lse[r] = -INFINITY;
    }
  }
}

static void fwd_task(void *arg, int64_t slot) {
  fwd_job *j = arg;
  float *ws = j->scratch + (size_t)slot * j->slot_floats;
  for (;;) {
    int64_t it = atomic_fetch_add(&j->next, 1);
    if (it >= j->items) return;
    fwd_item(j, ws, it);
  }
}

onerec_status orx_cpu_attention_fwd(orx_backend *be, const orx_attn_args *a) {
  onerec_status s = check_args(be, a, "attention_fwd");
  if (s) return s;
  orx_cpu *cpu = orx_cpu_of(be);
  fwd_job j = {.a = a, .simd = cpu->simd, .kern = pick_kern(cpu->simd), .p = make_plan(a)};
  j.mm = pick_mm(j.kern, a, &j.p);
  j.items = a->batch * a->heads * j.p.nqb;
  j.slot_floats = (size_t)(j.p.qblk * (j.p.lds + a->head_dim + 2) + 16) & ~(size_t)15;
  int64_t slots = pool_slots(cpu, a, j.items);
  j.scratch = orx_cpu_alloc(be, (size_t)slots * j.slot_floats * sizeof(float));
  if (!j.scratch)
    return ORX_CPU_FAIL(be, ONEREC_ERR_OUT_OF_MEMORY, "attention_fwd: out of memory");
  atomic_init(&j.next, 0);
  orx_pool_run(cpu->pool, slots, fwd_task, &j);
  orx_cpu_free(be, j.scratch);
  return ONEREC_OK;
}

/* ---- backward ---- */

typedef struct bwd_job {
  const orx_attn_bwd_args *g;
  const orx_simd *simd;
  const att_kern *kern;
  att_mm mm;
  att_plan p;
  float *scratch;
  size_t slot_floats;
  int64_t items;
  atomic_int_fast64_t next;
} bwd_job;

static void bwd_item(const bwd_job *j, float *ws, int64_t bh) {
  const orx_attn_bwd_args *g = j->g;
  const orx_attn_args *a = &g->fwd;
  const att_plan *p = &j->p;
  const orx_simd *simd = j->simd;
  const att_kern *rk = j->kern;
  const att_mm mm = j->mm;
  const int64_t dh = a->head_dim, lds = p->lds;
  int64_t b = bh / a->heads, h = bh % a->heads;

  const float *Qh = a->q + b * a->q_sb + h * a->q_sh;
  const float *Kh = a->k + b * a->k_sb + h * a->k_sh;
  const float *Vh = a->v + b * a->v_sb + h * a->v_sh;
  const float *Oh = a->out + b * a->o_sb + h * a->o_sh;
  const float *dOh = g->dout + b * g->do_sb + h * g->do_sh;
  float *dQh = g->dq + b * a->q_sb + h * a->q_sh;
  float *dKh = g->dk + b * a->k_sb + h * a->k_sh;
  float *dVh = g->dv + b * a->v_sb + h * a->v_sh;
  const float *L = a->lse + (b * a->heads + h) * a->tq;
  const uint8_t *mask = a->key_mask ? a->key_mask + b * a->tk : NULL;
  float *P = ws, *dP = P + p->qblk * lds, *D = dP + p->qblk * lds;

  for (int64_t i = 0; i < a->tq; i++)
    D[i] = L[i] == -INFINITY ? 0.0f : simd->dot(dOh + i * g->do_st, Oh + i * a->o_st, dh);

  for (int64_t qb = 0; qb < p->nqb; qb++) {
    int64_t q0 = qb * p->qblk, nq = a->tq - q0 < p->qblk ? a->tq - q0 : p->qblk;
    const float *Q = Qh + q0 * a->q_st, *dO = dOh + q0 * g->do_st;
    float *dQ = dQh + q0 * a->q_st;
    int64_t kend = visible_end(a, p, q0, nq);
    for (int64_t j0 = 0; j0 < kend; j0 += p->ktile) {
      int64_t nk = kend - j0 < p->ktile ? kend - j0 : p->ktile;
      mm_abt(mm, P, lds, Q, p->ldq, Kh + j0 * a->k_st, p->ldk, nq, nk, dh, a->scale);
      int any = 0;
      for (int64_t r = 0; r < nq; r++) {
        float *s = P + r * lds;
        int64_t nv = row_visible(a, p, q0 + r, j0, nk);
        if (L[q0 + r] == -INFINITY) nv = 0; /* a row that saw nothing gets no gradient */
        any |= nv > 0;
        rk->exp(s, nv, nk, L[q0 + r], mask ? mask + j0 : NULL);
      }
      if (!any) continue;
      const float *Kt = Kh + j0 * a->k_st, *Vt = Vh + j0 * a->v_st;
      /* dv_tile += P^T dout_blk */
      mm_atb(mm, dVh + j0 * a->v_st, p->ldv, P, lds, dO, p->lddo, nk, dh, nq, 1.0f);
      /* dP = dout_blk V_tile^T, then dS = P (dP - D) */
      mm_abt(mm, dP, lds, dO, p->lddo, Vt, p->ldv, nq, nk, dh, 1.0f);
      for (int64_t r = 0; r < nq; r++)
        rk->dsoftmax(dP + r * lds, P + r * lds, nk, D[q0 + r]);
      /* dq_blk += scale dS K_tile;  dk_tile += scale dS^T Q_blk */
      mm_ab(mm, dQ, p->ldq, dP, lds, Kt, p->ldk, nq, dh, nk, a->scale);
      mm_atb(mm, dKh + j0 * a->k_st, p->ldk, dP, lds, Q, p->ldq, nk, dh, nq, a->scale);
    }
  }
}

static void bwd_task(void *arg, int64_t slot) {
  bwd_job *j = arg;
  float *ws = j->scratch + (size_t)slot * j->slot_floats;
  for (;;) {
    int64_t it = atomic_fetch_add(&j->next, 1);
    if (it >= j->items) return;
    bwd_item(j, ws, it);
  }
}

onerec_status orx_cpu_attention_bwd(orx_backend *be, const orx_attn_bwd_args *g) {
  if (!g) return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT, "attention_bwd: args is NULL");
  const orx_attn_args *a = &g->fwd;
  onerec_status s = check_args(be, a, "attention_bwd");
  if (s) return s;
  if (!a->lse)
    return ORX_CPU_FAIL(be, ONEREC_ERR_INVALID_ARGUMENT,
                        "attention_bwd: lse is NULL (the forward must save it)");
  /* gradients share their inputs' strides; dout has its own */
  if ((s = check_view(be, "attention_bwd", "dout", g->dout, g->do_sb, g->do_sh, g->do_st, a->tq,
                      a->head_dim)) ||
      (s = check_view(be, "attention_bwd", "dq", g->dq, 0, 0, a->q_st, 0, 0)) ||
      (s = check_view(be, "attention_bwd", "dk", g->dk, 0, 0, a->k_st, 0, 0)) ||
      (s = check_view(be, "attention_bwd", "dv", g->dv, 0, 0, a->v_st, 0, 0)))
    return s;
  orx_cpu *cpu = orx_cpu_of(be);
  bwd_job j = {.g = g, .simd = cpu->simd, .kern = pick_kern(cpu->simd), .p = make_plan(a)};
  j.mm = pick_mm(j.kern, a, &j.p);
  j.p.lddo = a->tq > 1 ? g->do_st : a->head_dim;
  j.items = a->batch * a->heads;
  j.slot_floats = (size_t)(2 * j.p.qblk * j.p.lds + a->tq + 16) & ~(size_t)15;
  int64_t slots = pool_slots(cpu, a, j.items);
  /* k and v shared across heads (multi-query attention) or batch items, likewise q: several
   * items then add into the same gradient rows, so they run one after another, in order */
  if ((a->batch > 1 && (a->q_sb == 0 || a->k_sb == 0 || a->v_sb == 0)) ||
      (a->heads > 1 && (a->q_sh == 0 || a->k_sh == 0 || a->v_sh == 0)))
    slots = 1;
  j.scratch = orx_cpu_alloc(be, (size_t)slots * j.slot_floats * sizeof(float));
  if (!j.scratch)
    return ORX_CPU_FAIL(be, ONEREC_ERR_OUT_OF_MEMORY, "attention_bwd: out of memory");
  atomic_init(&j.next, 0);
  orx_pool_run(cpu->pool, slots, bwd_task, &j);
  orx_cpu_free(be, j.scratch);
  return ONEREC_OK;
}
