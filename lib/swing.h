/* Internals of onerec_collab (Swing neighbours and alignment pairs, see onerec/collab.h). */
#ifndef ORX_SWING_H
#define ORX_SWING_H

#include "context_impl.h"
#include "onerec/collab.h"

struct onerec_collab {
  onerec_context *ctx;
  int64_t n_items;   /* distinct training items */
  int64_t *item_ids; /* [n_items], ascending; an item's dense index is its position here */
  int64_t *nb_off;   /* [n_items + 1] */
  int32_t *nb_idx;   /* dense indices of the neighbours, best first */
  int64_t *nb_ids;   /* the same as item ids */
  float *nb_score;
  int64_t n_pairs;
  int64_t *pair_first, *pair_second;
  float *pair_score;
  int32_t *pair_source;
  int64_t train_interactions; /* interactions after the holdout */
  int64_t users;              /* users with at least one training interaction */
};

/* Dense index of an item id, or -1 if it never occurs in training. */
int64_t orx_collab_index(const onerec_collab *c, int64_t item_id);

#endif
