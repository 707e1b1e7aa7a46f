#include <string.h>

#include "context_impl.h"

onerec_status orx_opts_read(void *dst, size_t dst_size, const void *src, const char *what) {
  size_t sz;
  memcpy(&sz, src, sizeof sz);
  if (sz < sizeof(size_t))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: sz is %zu; declare options with ONEREC_OPTS so sz = sizeof(struct)",
                    what, sz);
  /* A caller built against a newer header may pass fields we do not know: accept them only if
   * they are zero (= "default"), so no setting is silently ignored (libbpf's rule). */
  if (sz > dst_size) {
    const unsigned char *tail = (const unsigned char *)src + dst_size;
    for (size_t i = 0; i < sz - dst_size; i++)
      if (tail[i] != 0)
        return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                        "%s: byte %zu is set but this libonerec (%s) knows only %zu bytes of "
                        "options",
                        what, dst_size + i, onerec_version(), dst_size);
  }
  size_t n = sz < dst_size ? sz : dst_size;
  memcpy((unsigned char *)dst + sizeof(size_t), (const unsigned char *)src + sizeof(size_t),
         n - sizeof(size_t));
  memcpy(dst, &sz, sizeof sz);
  return ONEREC_OK;
}
