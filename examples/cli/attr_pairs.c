/* Content pairs for `onerec align --attribute-pairs K`: items that share a rare attribute of
 * Beauty_items.tsv (a brand-like id that at most max_df items carry) are paired, so that the
 * InfoNCE loss pulls them together as it does collaborative neighbours. Why: an item seen a few
 * times in training has almost no collaborative pairs, so alignment alone leaves it where its
 * noisy text vector put it; yet rare test targets share a rare attribute with one of the last
 * five history items a quarter of the time (bench/RESULTS.md), against ~3% for a random item.
 * Each item gets, per rare attribute it carries, up to K partners drawn from the attribute's
 * other items by a seeded generator (all of them when fewer), so the result depends only on
 * the file, K, max_df and the seed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct attr_item {
  int64_t attr, item;
} attr_item;

static int cmp_attr_item(const void *a, const void *b) {
  const attr_item *x = a, *y = b;
  if (x->attr != y->attr) return (x->attr > y->attr) - (x->attr < y->attr);
  return (x->item > y->item) - (x->item < y->item);
}

/* Appends (attr, item) to *v, growing it; 0 on success. */
static int push(attr_item **v, int64_t *n, int64_t *cap, int64_t attr, int64_t item) {
  if (*n == *cap) {
    int64_t c = *cap ? 2 * *cap : 4096;
    attr_item *g = realloc(*v, (size_t)c * sizeof *g);
    if (!g) return -1;
    *v = g;
    *cap = c;
  }
  (*v)[(*n)++] = (attr_item){attr, item};
  return 0;
}

/* Reads the (attribute, item) memberships of the TSV; a message and -1 on failure. */
static int read_memberships(const char *path, attr_item **out, int64_t *n_out) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "onerec align: cannot open %s\n", path);
    return -1;
  }
  attr_item *v = NULL;
  int64_t n = 0, cap = 0, line_no = 0;
  char *line = NULL;
  size_t len = 0;
  int rc = 0;
  while (getline(&line, &len, f) > 0) {
    if (++line_no == 1) continue; /* header */
    char *end = NULL;
    long long item = strtoll(line, &end, 10);
    char *tab1 = end && *end == '\t' ? end : NULL;
    char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
    if (end == line || item < 0 || !tab2) {
      fprintf(stderr, "onerec align: %s:%lld: expected item_id, asin, attributes, title\n",
              path, (long long)line_no);
      rc = -1;
      break;
    }
    for (char *p = tab2 + 1; *p && *p != '\t' && *p != '\n';) {
      long long a = strtoll(p, &end, 10);
      if (end == p || a < 0 || (*end != ',' && *end != '\t' && *end != '\n' && *end)) {
        fprintf(stderr, "onerec align: %s:%lld: bad attribute list\n", path, (long long)line_no);
        rc = -1;
        break;
      }
      if (push(&v, &n, &cap, a, item)) {
        fprintf(stderr, "onerec align: out of memory reading %s\n", path);
        rc = -1;
        break;
      }
      p = *end == ',' ? end + 1 : end;
    }
    if (rc) break;
  }
  free(line);
  fclose(f);
  if (rc) {
    free(v);
    return -1;
  }
  *out = v;
  *n_out = n;
  return 0;
}

int cli_attribute_pairs(const char *items_tsv, int per_item, int max_df, uint64_t seed,
                        int64_t **first, int64_t **second, int64_t *n_pairs) {
  attr_item *m = NULL;
  int64_t nm = 0;
  *first = *second = NULL;
  *n_pairs = 0;
  if (read_memberships(items_tsv, &m, &nm)) return -1;
  qsort(m, (size_t)nm, sizeof *m, cmp_attr_item);
  /* drop repeats of an attribute within one item */
  int64_t w = 0;
  for (int64_t k = 0; k < nm; k++)
    if (w == 0 || m[w - 1].attr != m[k].attr || m[w - 1].item != m[k].item) m[w++] = m[k];
  nm = w;
  /* count first, so one allocation holds every pair */
  int64_t total = 0;
  for (int64_t a = 0; a < nm;) {
    int64_t b = a;
    while (b < nm && m[b].attr == m[a].attr) b++;
    int64_t df = b - a;
    if (df >= 2 && df <= max_df) total += df * (df - 1 < per_item ? df - 1 : per_item);
    a = b;
  }
  int64_t *pf = malloc((size_t)(total > 0 ? total : 1) * sizeof *pf);
  int64_t *ps = malloc((size_t)(total > 0 ? total : 1) * sizeof *ps);
  int64_t *pool = malloc((size_t)(max_df > 0 ? max_df : 1) * sizeof *pool);
  if (!pf || !ps || !pool) {
    fprintf(stderr, "onerec align: out of memory for %lld attribute pairs\n", (long long)total);
    free(pf);
    free(ps);
    free(pool);
    free(m);
    return -1;
  }
  uint64_t rs = seed * 0x9E3779B97F4A7C15ull + 0x5851F42D4C957F2Dull;
  int64_t np = 0;
  for (int64_t a = 0; a < nm;) {
    int64_t b = a;
    while (b < nm && m[b].attr == m[a].attr) b++;
    int64_t df = b - a;
    if (df >= 2 && df <= max_df) {
      const int64_t take = df - 1 < per_item ? df - 1 : per_item;
      for (int64_t i = a; i < b; i++) {
        /* the attribute's other items, then a partial Fisher-Yates draw of `take` of them */
        int64_t np_pool = 0;
        for (int64_t j = a; j < b; j++)
          if (j != i) pool[np_pool++] = m[j].item;
        for (int64_t t = 0; t < take; t++) {
          int64_t r = t + (int64_t)(cli_splitmix64(&rs) % (uint64_t)(np_pool - t));
          int64_t x = pool[r];
          pool[r] = pool[t];
          pool[t] = x;
          pf[np] = m[i].item;
          ps[np] = x;
          np++;
        }
      }
    }
    a = b;
  }
  free(pool);
  free(m);
  *first = pf;
  *second = ps;
  *n_pairs = np;
  return 0;
}
