#include "error.h"

#include <stdarg.h>
#include <stdio.h>

#include "onerec/version.h"

/* One message per thread, as sqlite/libgit2 do: the status decides, the text explains. */
static _Thread_local char tls_message[1024];

static void vset(const char *fmt, va_list ap) {
  vsnprintf(tls_message, sizeof tls_message, fmt, ap);
}

onerec_status orx_fail(onerec_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vset(fmt, ap);
  va_end(ap);
  return status;
}

void orx_set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vset(fmt, ap);
  va_end(ap);
}

ONEREC_API const char *onerec_last_error(void) { return tls_message; }

ONEREC_API void onerec_clear_error(void) { tls_message[0] = '\0'; }

ONEREC_API const char *onerec_status_str(onerec_status status) {
  switch (status) {
#define ORX_STATUS_CASE_(name, value, text) \
  case ONEREC_##name:                       \
    return text;
    ONEREC_STATUS_MAP(ORX_STATUS_CASE_)
#undef ORX_STATUS_CASE_
    default:
      return "unknown status";
  }
}

ONEREC_API const char *onerec_version(void) { return ONEREC_VERSION_STRING; }

ONEREC_API unsigned onerec_version_number(void) { return ONEREC_VERSION_NUMBER; }
