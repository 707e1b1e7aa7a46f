/* Content pairs for item alignment (onerec_attribute_pairs in onerec/collab.h): items that share
 * a rare, brand-like attribute of the items TSV are paired, so the InfoNCE loss pulls them
 * together as it does collaborative neighbours. Why: an item seen a few times in training has
 * almost no collaborative pairs, so alignment alone leaves it where its noisy text vector put
 * it; yet on Beauty rare test targets share a rare attribute with one of the last five history
 * items a quarter of the time, against ~3% for a random item (bench/RESULTS.md, seventh run). */
#include <stdlib.h>
#include <string.h>

#include "context_impl.h"
#include "features_beauty.h"
#include "onerec/collab.h"
#include "util.h"

typedef struct attr_item {
  int64_t attr, item;
} attr_item;

static int cmp_attr_item(const void *a, const void *b) {
  const attr_item *x = a, *y = b;
  if (x->attr != y->attr) return (x->attr > y->attr) - (x->attr < y->attr);
  return (x->item > y->item) - (x->item < y->item);
}

static int64_t partners(int64_t df, int per_item) { return df - 1 < per_item ? df - 1 : per_item; }

onerec_status onerec_attribute_pairs(onerec_context *ctx, const char *items_tsv,
                                     const onerec_attribute_pairs_opts *opts, int64_t *first,
                                     int64_t *second, size_t cap, int64_t *n) {
  static const char fn[] = "onerec_attribute_pairs";
  if (!ctx || !items_tsv || !n)
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: NULL context, path or n", fn);
  *n = 0;
  if (cap > 0 && (!first || !second))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT, "%s: cap = %zu but first or second is NULL", fn,
                    cap);
  onerec_attribute_pairs_opts o;
  memset(&o, 0, sizeof o);
  if (opts) {
    onerec_status s = orx_opts_read(&o, sizeof o, opts, fn);
    if (s) return s;
  }
  const int per_item = o.per_item ? o.per_item : 5;
  const int max_items = o.max_items ? o.max_items : 200;
  if (per_item < 1 || per_item > (1 << 20) || max_items < 2 || max_items > (1 << 20))
    return orx_fail(ONEREC_ERR_INVALID_ARGUMENT,
                    "%s: per_item = %d, max_items = %d (expected 1..2^20 and 2..2^20)", fn,
                    o.per_item, o.max_items);

  orx_item_text t;
  onerec_status s = orx_items_tsv_read(ctx, items_tsv, &t);
  if (s) return s;
  /* (attribute, item) memberships sorted by attribute, an attribute repeated within an item
   * counted once */
  const int64_t nm0 = t.attr_off[t.n];
  const int64_t most = max_items < t.n ? max_items : t.n > 0 ? t.n : 1; /* items per attribute */
  attr_item *m = orx_host_alloc(ctx, (size_t)(nm0 > 0 ? nm0 : 1) * sizeof *m);
  int64_t *pool = orx_host_alloc(ctx, (size_t)most * sizeof *pool);
  int64_t *swap = orx_host_alloc(ctx, (size_t)most * sizeof *swap);
  if (!m || !pool || !swap) {
    s = orx_fail(ONEREC_ERR_OUT_OF_MEMORY, "%s: out of memory for %lld memberships", fn,
                 (long long)nm0);
    goto done;
  }
  for (int64_t i = 0; i < t.n; i++)
    for (int64_t k = t.attr_off[i]; k < t.attr_off[i + 1]; k++)
      m[k] = (attr_item){t.attr[k], t.ids[i]};
  qsort(m, (size_t)nm0, sizeof *m, cmp_attr_item);
  int64_t nm = 0;
  for (int64_t k = 0; k < nm0; k++)
    if (nm == 0 || m[nm - 1].attr != m[k].attr || m[nm - 1].item != m[k].item) m[nm++] = m[k];

  /* count first: the caller learns the size it needs before any draw */
  int64_t total = 0;
  for (int64_t a = 0, b; a < nm; a = b) {
    for (b = a; b < nm && m[b].attr == m[a].attr;) b++;
    if (b - a >= 2 && b - a <= max_items) total += (b - a) * partners(b - a, per_item);
  }
  *n = total;
  if ((size_t)total > cap) {
    s = orx_fail(ONEREC_ERR_BUFFER_TOO_SMALL, "%s: %lld pairs, room for %zu", fn,
                 (long long)total, cap);
    goto done;
  }
  /* Per item i of an attribute, a partial Fisher-Yates draw of its partners from the pool of
   * the attribute's other items in order (all of them when fewer than per_item), so the result
   * depends only on the file, the options and the seed. The draw's swaps are undone after
   * each item, and item i's pool becomes item i + 1's by one store (i takes i + 1's place), so
   * an attribute costs its pairs, not the square of its items. */
  uint64_t rs = o.seed * 0x9E3779B97F4A7C15ull + 0x5851F42D4C957F2Dull;
  int64_t np = 0;
  for (int64_t a = 0, b; a < nm; a = b) {
    for (b = a; b < nm && m[b].attr == m[a].attr;) b++;
    const int64_t others = b - a - 1;
    if (others < 1 || others >= max_items) continue;
    const int64_t take = partners(b - a, per_item);
    for (int64_t j = 0; j < others; j++) pool[j] = m[a + 1 + j].item;
    for (int64_t i = a; i < b; i++) {
      for (int64_t r = 0; r < take; r++) {
        const int64_t x = r + (int64_t)(orx_splitmix64(&rs) % (uint64_t)(others - r));
        const int64_t v = pool[x];
        swap[r] = x;
        pool[x] = pool[r];
        pool[r] = v;
        first[np] = m[i].item;
        second[np] = v;
        np++;
      }
      for (int64_t r = take - 1; r >= 0; r--) {
        const int64_t v = pool[swap[r]];
        pool[swap[r]] = pool[r];
        pool[r] = v;
      }
      if (i + 1 < b) pool[i - a] = m[i].item;
    }
  }
done:
  orx_host_free(ctx, swap);
  orx_host_free(ctx, pool);
  orx_host_free(ctx, m);
  orx_item_text_free(&t);
  return s;
}
