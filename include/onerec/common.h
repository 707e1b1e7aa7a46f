/* Shared definitions of the public API: export macro, options-struct helper, status codes,
 * error reporting and the run-time version. Every other public header includes this one. */
#ifndef ONEREC_COMMON_H
#define ONEREC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "onerec/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ONEREC_BUILDING) && defined(__GNUC__)
#define ONEREC_API __attribute__((visibility("default")))
#else
#define ONEREC_API
#endif

/* Declares an options struct `name` of type `type`, zero-filled, with its leading `sz` field set,
 * and any designated initialisers given after the type. The library reads only the fields that
 * `sz` covers, so code compiled against an older header keeps working with a newer library.
 *   ONEREC_OPTS(onerec_context_opts, o, .backend = "cpu", .threads = 2);
 *   onerec_context_create(&o, &ctx);                                                     */
#define ONEREC_OPTS(type, name, ...) \
  type name = {.sz = sizeof(type), __VA_ARGS__}

/* Status codes. Values are pinned and only ever appended; a retired code keeps its number.
 * X(name, value, description) generates the enum and onerec_status_str(). */
#define ONEREC_STATUS_MAP(X)                                                        \
  X(OK, 0, "success")                                                               \
  X(ERR_INVALID_ARGUMENT, 1, "invalid argument")                                    \
  X(ERR_OUT_OF_MEMORY, 2, "out of memory")                                          \
  X(ERR_BACKEND_UNAVAILABLE, 3, "backend unavailable")                              \
  X(ERR_UNSUPPORTED, 4, "operation not supported by this backend or build")         \
  X(ERR_IO, 5, "input/output error")                                                \
  X(ERR_FORMAT, 6, "malformed or incompatible file")                                \
  X(ERR_SHAPE, 7, "shape mismatch")                                                 \
  X(ERR_DTYPE, 8, "data type mismatch")                                             \
  X(ERR_DEVICE, 9, "device error")                                                  \
  X(ERR_INTERNAL, 10, "internal error")                                             \
  X(ERR_VERSION, 11, "version mismatch")                                            \
  X(ERR_NOT_FOUND, 12, "not found")                                                 \
  X(ERR_BUFFER_TOO_SMALL, 13, "buffer too small")

typedef enum onerec_status {
#define ONEREC_STATUS_ENUM_(name, value, text) ONEREC_##name = value,
  ONEREC_STATUS_MAP(ONEREC_STATUS_ENUM_)
#undef ONEREC_STATUS_ENUM_
  ONEREC_STATUS_COUNT_ /* not a status; one past the last code */
} onerec_status;

/* The run-time version string "MAJOR.MINOR.PATCH" of the loaded library (may differ from
 * ONEREC_VERSION_STRING of the header the caller compiled against). Never NULL; thread-safe. */
ONEREC_API const char *onerec_version(void);

/* The run-time ONEREC_VERSION_NUMBER of the loaded library. Thread-safe. */
ONEREC_API unsigned onerec_version_number(void);

/* A short static description of a status code ("invalid argument"); "unknown status" for a value
 * that is not a code. Never NULL; thread-safe. */
ONEREC_API const char *onerec_status_str(onerec_status status);

/* The message explaining the last failure of a libonerec call on the calling thread, e.g.
 * "context: unknown backend 'tpu' (expected auto, cpu or cuda)". The return code is what
 * decides success; this only explains it. A successful call does not clear it. The pointer
 * stays valid until the next libonerec call on this thread. Never NULL ("" if none). */
ONEREC_API const char *onerec_last_error(void);

/* Clears the calling thread's last-error message. */
ONEREC_API void onerec_clear_error(void);

#ifdef __cplusplus
}
#endif

#endif
