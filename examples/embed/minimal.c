/* The smallest program that embeds libonerec: build it with
 *   cc minimal.c $(pkg-config --cflags --libs onerec) -o minimal */
#include <stdio.h>

#include <onerec/onerec.h>

int main(void) {
  printf("libonerec %s\n", onerec_version());
  ONEREC_OPTS(onerec_context_opts, opts, .backend = "auto", .threads = 2, .seed = 42);
  onerec_context *ctx = NULL;
  onerec_status s = onerec_context_create(&opts, &ctx);
  if (s != ONEREC_OK) {
    fprintf(stderr, "context: %s: %s\n", onerec_status_str(s), onerec_last_error());
    return 1;
  }
  float host[6] = {1, 2, 3, 4, 5, 6}, back[6];
  onerec_tensor *t = NULL;
  s = onerec_tensor_create(ctx, ONEREC_F32, 2, (const int64_t[]){2, 3}, &t);
  if (!s) s = onerec_tensor_copy_in(t, host, sizeof host);
  if (!s) s = onerec_tensor_copy_out(t, back, sizeof back);
  if (!s) printf("backend %s, tensor [2,3] round trip: %g .. %g\n", onerec_context_backend(ctx),
                 back[0], back[5]);
  onerec_tensor_free(t);
  onerec_context_free(ctx);
  return s == ONEREC_OK ? 0 : 1;
}
