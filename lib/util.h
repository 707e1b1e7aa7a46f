/* Small helpers shared across lib/: qsort comparators, binary search, strict integer parsing. */
#ifndef ORX_UTIL_H
#define ORX_UTIL_H

#include <stdint.h>

/* qsort comparators for ascending int64_t / int32_t arrays. */
int orx_cmp_i64(const void *a, const void *b);
int orx_cmp_i32(const void *a, const void *b);

/* Index of v in the ascending array a[0..n), or -1 if absent. */
int64_t orx_find_sorted_i64(const int64_t *a, int64_t n, int64_t v);

/* Parses the characters [p, e) as a non-negative decimal integer (digits only, no sign, no
 * spaces). Returns 0 on success, -1 if it is not such a number, -2 if it overflows int64_t. */
int orx_parse_u63(const char *p, const char *e, int64_t *v);

#endif
