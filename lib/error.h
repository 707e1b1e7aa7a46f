/* Thread-local error messages and argument-check helpers used by every lib/ source file. */
#ifndef ORX_ERROR_H
#define ORX_ERROR_H

#include "onerec/common.h"

#if defined(__GNUC__)
#define ORX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ORX_PRINTF(f, a)
#endif

/* Sets the calling thread's last-error message and returns `status`, so a failure reads
 *   return orx_fail(ONEREC_ERR_SHAPE, "tensor: axis %d extent %lld < 1", i, n); */
onerec_status orx_fail(onerec_status status, const char *fmt, ...) ORX_PRINTF(2, 3);

/* The same, without a status (the backend params' set_error). */
void orx_set_error(const char *fmt, ...) ORX_PRINTF(1, 2);

/* Fails with ONEREC_ERR_INVALID_ARGUMENT if ptr is NULL; names the function and argument. */
#define ORX_CHECK_ARG(ptr, fn)                                                        \
  do {                                                                                \
    if ((ptr) == NULL)                                                                \
      return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: argument '%s' is NULL", fn, #ptr); \
  } while (0)

#endif
