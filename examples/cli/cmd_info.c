#include <string.h>
#include <unistd.h>

#include "cli.h"

/* CPU features the kernels can use, as the compiler's run-time detection sees them. */
static const char *const k_features[] = {"sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw",
                                         "avx512vl", "avx512dq", "avx512bf16"};

static int has_feature(const char *f) {
  __builtin_cpu_init();
  if (!strcmp(f, "sse4.2")) return __builtin_cpu_supports("sse4.2");
  if (!strcmp(f, "avx")) return __builtin_cpu_supports("avx");
  if (!strcmp(f, "avx2")) return __builtin_cpu_supports("avx2");
  if (!strcmp(f, "fma")) return __builtin_cpu_supports("fma");
  if (!strcmp(f, "avx512f")) return __builtin_cpu_supports("avx512f");
  if (!strcmp(f, "avx512bw")) return __builtin_cpu_supports("avx512bw");
  if (!strcmp(f, "avx512vl")) return __builtin_cpu_supports("avx512vl");
  if (!strcmp(f, "avx512dq")) return __builtin_cpu_supports("avx512dq");
  if (!strcmp(f, "avx512bf16")) return __builtin_cpu_supports("avx512bf16");
  return 0;
}

static void info_usage(FILE *f) {
  fprintf(f,
          "usage: onerec info [--json]\n"
          "  the library version, which backends are usable here (and why not), the CPU\n"
          "  kernels in use and the thread count\n");
}

int cmd_info(int argc, char **argv) {
  int json = 0;
  const cli_opt opts[] = {CLI_FLAG("--json", &json)};
  int rc = cli_parse("info", argc, argv, opts, CLI_COUNT(opts), info_usage, NULL, 0);
  if (rc != CLI_PARSED) return rc;
  static const char *const names[] = {"cpu", "cuda"};
  char why[2][512];
  onerec_status st[2];
  for (int i = 0; i < 2; i++) st[i] = onerec_backend_probe(names[i], why[i], sizeof why[i]);

  onerec_context *ctx = NULL;
  onerec_status s = onerec_context_create(NULL, &ctx);
  if (s) return cli_fail("creating the default context", s);
  const char *chosen = onerec_context_backend(ctx);
  int threads = onerec_context_threads(ctx);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);

  if (json) {
    printf("{\"version\":\"%s\",\"backends\":[", onerec_version());
    for (int i = 0; i < 2; i++) {
      printf("%s{\"name\":\"%s\",\"available\":%s", i ? "," : "", names[i],
             st[i] == ONEREC_OK ? "true" : "false");
      if (st[i] != ONEREC_OK) {
        printf(",\"reason\":");
        cli_json_string(stdout, why[i]);
      }
      printf("}");
    }
    printf("],\"auto_backend\":\"%s\",\"cpu_isa\":\"%s\",\"cpu_features\":[", chosen,
           onerec_cpu_isa());
    int first = 1;
    for (size_t i = 0; i < sizeof k_features / sizeof *k_features; i++)
      if (has_feature(k_features[i])) {
        printf("%s\"%s\"", first ? "" : ",", k_features[i]);
        first = 0;
      }
    printf("],\"threads\":%d,\"online_cpus\":%ld}\n", threads, cpus);
  } else {
    printf("libonerec %s\n", onerec_version());
    for (int i = 0; i < 2; i++)
      printf("backend %-5s %s%s%s\n", names[i], st[i] == ONEREC_OK ? "available" : "unavailable",
             st[i] == ONEREC_OK ? "" : ": ", st[i] == ONEREC_OK ? "" : why[i]);
    printf("auto picks   %s\ncpu kernels  %s\nthreads      %d (of %ld online CPUs)\n", chosen,
           onerec_cpu_isa(), threads, cpus);
  }
  onerec_context_free(ctx);
  return 0;
}
