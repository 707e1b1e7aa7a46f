/* libonerec version. The Makefile reads these three lines with sed to name the shared
 * library, so keep the "#define ONEREC_VERSION_X <number>" form. Same major = same ABI. */
#ifndef ONEREC_VERSION_H
#define ONEREC_VERSION_H

#define ONEREC_VERSION_MAJOR 0
#define ONEREC_VERSION_MINOR 1
#define ONEREC_VERSION_PATCH 0

/* MAJOR*10000 + MINOR*100 + PATCH, for compile-time comparisons. */
#define ONEREC_VERSION_NUMBER \
  (ONEREC_VERSION_MAJOR * 10000 + ONEREC_VERSION_MINOR * 100 + ONEREC_VERSION_PATCH)

#define ONEREC_STR_HELPER_(x) #x
#define ONEREC_STR_(x) ONEREC_STR_HELPER_(x)
#define ONEREC_VERSION_STRING                                           \
  ONEREC_STR_(ONEREC_VERSION_MAJOR) "." ONEREC_STR_(ONEREC_VERSION_MINOR) \
  "." ONEREC_STR_(ONEREC_VERSION_PATCH)

#endif
