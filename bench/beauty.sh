#!/bin/sh
# The whole Amazon Beauty pipeline with the settings recorded in bench/RESULTS.md: item features,
# item alignment (QFormer + InfoNCE over collaborative pairs), RQ-Kmeans semantic IDs, NTP
# training for MINUTES minutes of training time (evaluations excluded) with validation-based
# model selection, then the test-split full-ranking metrics of the selected model.
#
#   bash bench/beauty.sh [DATA_DIR] [OUT_DIR] [MINUTES]     (from the repository root, after make)
#
# Defaults: ../shared/data/amazon, run/beauty, 60. Progress goes to stderr; stdout gets one JSON
# line per snapshot, {"curve":true,"minutes":..,"step":..,"valid_recall@10":..,"recall@10":..,
# "ndcg@10":..} with the test metrics of the model saved at that evaluation (the curve of test
# Recall@10 against training minutes), then {"snapshot_ensemble":[best,next],...} with the test
# JSON of the selected snapshot and the next one as an ensemble when validation prefers the pair
# (bench/RESULTS.md, eighth run), then the final JSON of `onerec eval --split test` for the
# model selected on validation. Environment: ONEREC (the CLI, default build/bin/onerec),
# ALIGN=0 (tokenize the raw features instead of the aligned ones), ALIGN_EPOCHS (default 60),
# ALIGN_ARGS (more `onerec align` options; default --attribute-pairs 5: content pairs of items
# that share a brand-like attribute, besides the collaborative ones),
# EVAL_EVERY (minutes between evaluations, default 10; each scores all validation users, ~20 s
# on 2 cores, not counted as training time), TRAIN_ARGS (the `onerec train` options of the
# model; default: the best run of bench/RESULTS.md, the 0.015B shape cut to 2 + 2 layers, with 2
# shards on 2 threads, dropout 0.2, a moving average of the weights (decay 0.9999) evaluated and
# saved, lr 2e-3, a cosine over 105,000 updates (~60 minutes here), one shared user token).
set -eu
ONEREC=${ONEREC:-build/bin/onerec}
DATA=${1:-../shared/data/amazon}
OUT=${2:-run/beauty}
MINUTES=${3:-60}
ALIGN=${ALIGN:-1}
ALIGN_EPOCHS=${ALIGN_EPOCHS:-60}
ALIGN_ARGS=${ALIGN_ARGS:---attribute-pairs 5}
EVAL_EVERY=${EVAL_EVERY:-10}
TRAIN_ARGS=${TRAIN_ARGS:---layers 2 --threads 2 --shards 2 --dropout 0.2 --ema 0.9999 --lr 2e-3 --steps 105000 --uid-buckets 1}

if [ ! -f "$DATA/Beauty.txt" ]; then
  echo "beauty.sh: $DATA/Beauty.txt not found (the Amazon Beauty data of ../shared/data)" >&2
  exit 2
fi
mkdir -p "$OUT"
step() { echo "== beauty.sh: $*" >&2; }

step "item features"
"$ONEREC" features beauty "$DATA" --out "$OUT/features.h5" --json >&2
FEATS="$OUT/features.h5"
if [ "$ALIGN" = 1 ]; then
  step "item alignment"
  # shellcheck disable=SC2086  # ALIGN_ARGS is a list of options
  "$ONEREC" align --features "$OUT/features.h5" --data "$DATA" --dataset beauty \
    --out "$OUT/aligned.h5" --epochs "$ALIGN_EPOCHS" --seed 1 $ALIGN_ARGS --json >&2
  FEATS="$OUT/aligned.h5"
fi
step "semantic IDs (3 x 256, RQ-Kmeans, collisions resolved)"
"$ONEREC" tokenizer fit --features "$FEATS" --levels 3 --codes 256 --seed 1 \
  --out "$OUT/tokenizer.h5" --catalog "$OUT/catalog.h5" --json >&2

step "training ($MINUTES minutes)"
# shellcheck disable=SC2086  # TRAIN_ARGS is a list of options
"$ONEREC" train --data "$DATA" --dataset beauty --catalog "$OUT/catalog.h5" \
  --minutes "$MINUTES" --positive-len 0 --seed 1 \
  --eval-every "$EVAL_EVERY" --eval-users 0 --patience 1000 --snapshots \
  $TRAIN_ARGS --out "$OUT/train" >"$OUT/valid.jsonl"

step "test metrics of every snapshot (the curve)"
: >"$OUT/curve.jsonl"
while IFS= read -r line; do
  snap=$(printf '%s\n' "$line" | sed -n 's/.*"snapshot":"\([^"]*\)".*/\1/p')
  [ -n "$snap" ] || continue
  mins=$(printf '%s\n' "$line" | sed -n 's/.*"minutes":\([0-9.]*\).*/\1/p')
  stp=$(printf '%s\n' "$line" | sed -n 's/.*"step":\([0-9]*\).*/\1/p')
  vr=$(printf '%s\n' "$line" | sed -n 's/.*"recall@10":\([0-9.]*\).*/\1/p')
  t=$("$ONEREC" eval --model "$snap" --catalog "$OUT/catalog.h5" --data "$DATA" \
    --dataset beauty --split test --json)
  tr=$(printf '%s\n' "$t" | sed -n 's/.*"recall@10":\([0-9.]*\).*/\1/p')
  tn=$(printf '%s\n' "$t" | sed -n 's/.*"ndcg@10":\([0-9.]*\).*/\1/p')
  printf '{"curve":true,"minutes":%s,"step":%s,"valid_recall@10":%s,"recall@10":%s,"ndcg@10":%s}\n' \
    "$mins" "$stp" "$vr" "$tr" "$tn" | tee -a "$OUT/curve.jsonl"
done <"$OUT/valid.jsonl"

# The selected snapshot with the next one as an ensemble (the mean of their log-probabilities,
# one run, so no extra training time): kept only when validation prefers it to the snapshot.
best=$(grep '"best":true' "$OUT/valid.jsonl" | tail -n 1)
bsnap=$(printf '%s\n' "$best" | sed -n 's/.*"snapshot":"\([^"]*\)".*/\1/p')
bvr=$(printf '%s\n' "$best" | sed -n 's/.*"recall@10":\([0-9.]*\).*/\1/p')
nsnap=$(awk -v b="\"snapshot\":\"$bsnap\"" 'f && /"snapshot":/ { print; exit } index($0, b) { f = 1 }' \
  "$OUT/valid.jsonl" | sed -n 's/.*"snapshot":"\([^"]*\)".*/\1/p')
if [ -n "$bsnap" ] && [ -n "$nsnap" ]; then
  step "validation: the selected snapshot + the next one as an ensemble"
  ev=$("$ONEREC" eval --model "$bsnap" --ensemble "$nsnap" --catalog "$OUT/catalog.h5" \
    --data "$DATA" --dataset beauty --split valid --json)
  evr=$(printf '%s\n' "$ev" | sed -n 's/.*"recall@10":\([0-9.]*\).*/\1/p')
  if awk -v e="$evr" -v b="$bvr" 'BEGIN { exit !(e > b) }'; then
    t=$("$ONEREC" eval --model "$bsnap" --ensemble "$nsnap" --catalog "$OUT/catalog.h5" \
      --data "$DATA" --dataset beauty --split test --json)
    printf '{"snapshot_ensemble":["%s","%s"],"valid_recall@10":%s,"test":%s}\n' \
      "$bsnap" "$nsnap" "$evr" "$t"
  else
    printf '{"snapshot_ensemble":["%s","%s"],"valid_recall@10":%s,"chosen":false}\n' \
      "$bsnap" "$nsnap" "$evr"
  fi
fi

step "test metrics of the model selected on validation"
"$ONEREC" eval --model "$OUT/train/model.h5" --catalog "$OUT/catalog.h5" --data "$DATA" \
  --dataset beauty --split test --json
