/* Vector kernels of cpu/kmeans.c, written once with GCC vector extensions (16 float lanes) and
 * compiled there once per instruction set under a target pragma: KM_SUFFIX names the copy.
 * Every copy does the same lane arithmetic in the same order and the sources are compiled
 * without FMA contraction (ISO C mode), so all copies give bit-identical results: the ISA
 * changes speed, never a code. No include guard: included once per ISA. */

#define KM_CAT2(a, b) a##_##b
#define KM_CAT(a, b) KM_CAT2(a, b)
#define KM_FN(name) KM_CAT(name, KM_SUFFIX)

/* First index of the smallest v[i] (i < n, n >= 1) and the value through *out; NaN never wins
 * (an all-NaN row gives index 0). Per lane the first strict minimum, then across lanes the
 * smallest value and, among equal values, the smallest index: the first minimum overall. */
static int64_t KM_FN(km_argmin)(const float *v, int64_t n, float *out) {
  km_v16f best = km_splat(INFINITY);
  km_v16i bidx = km_iota16(0), idx = km_iota16(0);
  const km_v16i step = km_spliti(16);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    km_v16f x = km_load(v + i);
    km_v16i lt = (km_v16i)(x < best);
    best = (km_v16f)(((km_v16i)x & lt) | ((km_v16i)best & ~lt));
    bidx = (idx & lt) | (bidx & ~lt);
    idx += step;
  }
  float bv = INFINITY;
  int64_t bi = -1;
  for (int l = 0; l < 16; l++) {
    if (best[l] < bv || (best[l] == bv && bidx[l] < bi)) {
      bv = best[l];
      bi = bidx[l];
    }
  }
  for (; i < n; i++)
    if (v[i] < bv) {
      bv = v[i];
      bi = i;
    }
  if (bi < 0) { /* every value +inf or NaN: the first +inf, else 0 */
    bi = 0;
    bv = v[0];
    for (int64_t j = 0; j < n; j++)
      if (v[j] == INFINITY) {
        bi = j;
        bv = v[j];
        break;
      }
  }
  *out = bv;
  return bi;
}

/* sum_i (a[i] - b[i])^2, or sum_i a[i]^2 when b is NULL: 16 lane sums, then a fixed tree. */
static float KM_FN(km_sqdist)(const float *a, const float *b, int64_t n) {
  km_v16f acc = km_splat(0.0f);
  int64_t i = 0;
  if (b) {
    for (; i + 16 <= n; i += 16) {
      km_v16f d = km_load(a + i) - km_load(b + i);
      acc += d * d;
    }
  } else {
    for (; i + 16 <= n; i += 16) {
      km_v16f d = km_load(a + i);
      acc += d * d;
    }
  }
  float tail = 0.0f;
  for (; i < n; i++) {
    float d = b ? a[i] - b[i] : a[i];
    tail += d * d;
  }
  return km_hsum(&acc) + tail;
}

/* acc[i] += x[i] (double accumulators) */
static void KM_FN(km_acc)(double *acc, const float *x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    km_v8f f;
    memcpy(&f, x + i, sizeof f);
    km_v8d d, a;
    d = __builtin_convertvector(f, km_v8d);
    memcpy(&a, acc + i, sizeof a);
    a += d;
    memcpy(acc + i, &a, sizeof a);
  }
  for (; i < n; i++) acc[i] += (double)x[i];
}

/* y[i] += alpha * x[i] */
static void KM_FN(km_axpy)(float *y, const float *x, int64_t n, float alpha) {
  const km_v16f va = km_splat(alpha);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    km_v16f vy = km_load(y + i);
    vy += va * km_load(x + i);
    memcpy(y + i, &vy, sizeof vy);
  }
  for (; i < n; i++) y[i] += alpha * x[i];
}

static const km_kernels KM_FN(km_kernels) = {
    .argmin = KM_FN(km_argmin),
    .sqdist = KM_FN(km_sqdist),
    .acc = KM_FN(km_acc),
    .axpy = KM_FN(km_axpy),
};

#undef KM_FN
#undef KM_CAT
#undef KM_CAT2
