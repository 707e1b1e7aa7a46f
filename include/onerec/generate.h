/* Generation (SPEC.md §4): recommending items for users with a trained model, either by beam
 * search or by sampling, always constrained to the catalogue: at every level only codes that
 * continue some committed item's semantic ID are allowed, so every result is a real item.
 *
 * Scores are the model's own probabilities: log p(item | user) = sum over levels of the log of
 * the full softmax over all `codebook` codes (as in training and in onerec_session_score), not
 * renormalised over the legal codes. A beam result's log-probability therefore equals its exact
 * score; the mass the model puts on illegal codes is simply lost.
 *
 * The encoder runs once per call for all users; each decoder layer's cross-attention keys and
 * values are computed once per user and read by all of that user's beams (or samples). Decoding
 * is incremental: each level runs the decoder on the newest position only, reusing the cached
 * self-attention keys and values of the prefix. The session's MoE expert-load counters count
 * the tokens generation routes too.
 *
 * Thread-safety: a model is immutable and may be shared; a catalogue may be read (and even
 * committed to) by any number of threads; a session is used by one thread at a time. So: share
 * one model and one catalogue, give each thread its own session. A call uses the catalogue as
 * last committed when it starts, even if a commit lands meanwhile. */
#ifndef ONEREC_GENERATE_H
#define ONEREC_GENERATE_H

#include "onerec/catalog.h"
#include "onerec/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum onerec_gen_mode {
  ONEREC_GEN_BEAM = 0,  /* beam search: the k best items found, best first */
  ONEREC_GEN_SAMPLE = 1 /* ancestral sampling: k items drawn independently (may repeat) */
} onerec_gen_mode;

/* Most beams of a beam search. */
#define ONEREC_MAX_BEAM 512
#define ONEREC_MAX_ENSEMBLE 16 /* models onerec_sessions_recommend combines at most */

/* Options of onerec_session_recommend. Declare with ONEREC_OPTS(onerec_recommend_opts, o, ...);
 * a zero field means its default. */
typedef struct onerec_recommend_opts {
  size_t sz;
  int32_t mode;      /* onerec_gen_mode (default beam) */
  int32_t beam;      /* beam width, 1..ONEREC_MAX_BEAM (default 64); beam mode only */
  int32_t k;         /* results per user (default 10): beam mode 1..beam; sample mode 1..4096 */
  int32_t top_k;     /* sampling: keep only the top_k legal codes of each step (default all) */
  float top_p;       /* sampling: keep the smallest set of the best legal codes whose
                        probability (renormalised over the legal codes) reaches top_p,
                        in (0, 1] (default 1 = off) */
  float temperature; /* sampling: logits are divided by it, > 0 (default 1) */
  uint64_t seed;     /* sampling: the same seed, model, catalogue and users give the same items */
} onerec_recommend_opts;

/* Recommends opts->k items to each user of a batch: encodes the users, then runs a constrained
 * beam search or constrained sampling over the committed items of `catalog` (whose levels and
 * codes per level must be the model's levels and codebook).
 *
 * Outputs, row b for user b, [users->batch x k]:
 *   items_out[b * k + i]  the item id;
 *   logp_out[b * k + i]   its log p(item | user) under the model (full softmax, no temperature);
 *                         logp_out may be NULL.
 * Beam mode: the k best items of the final beam, best first (ties: the earlier parent beam,
 * then the lower code). With beam >= the number of items the result is the exact top k.
 * Sample mode: k items drawn one code at a time from the legal codes (temperature, then top_k,
 * then top_p), in draw order; duplicates are kept (draws are independent). User b's draws depend
 * only on seed, b, the model and the catalogue.
 * When the catalogue holds fewer than k items (beam mode), the rest of the row is item -1 with
 * logp -INFINITY; an empty catalogue gives only such rows.
 *
 * Sizes: the session needs max_targets >= beam (sample mode: >= k); users are decoded in
 * chunks of max_targets / beam users, so max_targets >= batch x beam decodes all at once.
 * out_count is the number of slots in items_out (and logp_out), at least batch x k.
 * Errors: ONEREC_ERR_INVALID_ARGUMENT (NULL, bad options, a catalogue of another shape,
 * max_targets too small, bad user inputs as in onerec_session_encode),
 * ONEREC_ERR_BUFFER_TOO_SMALL, ONEREC_ERR_OUT_OF_MEMORY. */
ONEREC_API onerec_status onerec_session_recommend(onerec_session *session,
                                                  const onerec_catalog *catalog,
                                                  const onerec_user_batch *users,
                                                  const onerec_recommend_opts *opts,
                                                  int64_t *items_out, double *logp_out,
                                                  size_t out_count);

/* Beam search over an ensemble: sessions[0..n) (1 <= n <= ONEREC_MAX_ENSEMBLE, each its own
 * session, of models sharing the catalogue's levels and codebook, possibly different in
 * everything else, but each able to read `users` as onerec_session_encode checks) all encode
 * `users`, decode the same beams, and score every legal extension
 * by the mean of their log-probabilities, so an item's logp_out is the mean of the models'
 * log-probabilities of it. Beam mode only (opts->mode = ONEREC_GEN_SAMPLE with n > 1 is
 * refused); everything else as onerec_session_recommend, which is the case n = 1 (same
 * results). Users are decoded in chunks sized by the smallest max_targets. */
ONEREC_API onerec_status onerec_sessions_recommend(onerec_session *const *sessions, int n,
                                                   const onerec_catalog *catalog,
                                                   const onerec_user_batch *users,
                                                   const onerec_recommend_opts *opts,
                                                   int64_t *items_out, double *logp_out,
                                                   size_t out_count);

#ifdef __cplusplus
}
#endif

#endif
