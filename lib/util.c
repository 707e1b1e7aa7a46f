#include "util.h"

#include <math.h>

int orx_cmp_i64(const void *a, const void *b) {
  const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

int orx_cmp_i32(const void *a, const void *b) {
  const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return x < y ? -1 : x > y;
}

int64_t orx_find_sorted_i64(const int64_t *a, int64_t n, int64_t v) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (a[mid] < v)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && a[lo] == v ? lo : -1;
}

int orx_parse_u63(const char *p, const char *e, int64_t *v) {
  int64_t x = 0;
  if (p == e) return -1;
  for (; p < e; p++) {
    if (*p < '0' || *p > '9') return -1;
    int d = *p - '0';
    if (x > (INT64_MAX - d) / 10) return -2;
    x = x * 10 + d;
  }
  *v = x;
  return 0;
}

static double uniform01(uint64_t *x) { /* (0, 1] */
  return ((double)(orx_splitmix64(x) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

void orx_fill_normal(float *x, size_t n, double std, uint64_t *state) {
  for (size_t i = 0; i < n; i += 2) {
    double r = sqrt(-2.0 * log(uniform01(state))), a = 6.283185307179586 * uniform01(state);
    x[i] = (float)(std * r * cos(a));
    if (i + 1 < n) x[i + 1] = (float)(std * r * sin(a));
  }
}
