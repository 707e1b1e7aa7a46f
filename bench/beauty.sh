#!/bin/sh
# The whole Amazon Beauty pipeline with the settings recorded in bench/RESULTS.md: item features,
# item alignment (QFormer + InfoNCE over collaborative and content pairs), RQ-Kmeans semantic
# IDs, NTP training of MODELS models at once (seeds 1..MODELS, the machine's cores shared among
# them) for MINUTES minutes of training time (evaluations excluded), model selection on
# validation, then the test-split full-ranking metrics of the selected ensemble.
#
#   bash bench/beauty.sh [DATA_DIR] [OUT_DIR] [MINUTES]     (from the repository root, after make)
#
# Defaults: ../shared/data/amazon, run/beauty, 60. Why several models at once: one model on
# this machine's 2 cores peaks on validation after 30-40 of its 60 minutes; two models on one
# core each reach that peak in 60 minutes, and the mean of their log-probabilities ranks better
# than either (bench/RESULTS.md, ninth run: test NDCG@10 0.0396 against 0.0370 for one model).
#
# Progress goes to stderr (model 1's training progress too; the others' goes to
# OUT/train<m>.log). stdout gets one JSON line per evaluation point k (every EVAL_EVERY
# minutes): {"curve":true,"minutes":..,"steps":[..],"valid_recall@10":..,"recall@10":..,
# "ndcg@10":..}, the metrics of the ensemble of every model's k-th snapshot (the curve of test
# Recall@10 against training minutes); then {"selected":[..],"valid_recall@10":..}: the point
# with the best validation Recall@10, widened to its next snapshots too when validation prefers
# that; then the JSON of `onerec eval --split test` for the selection.
# Environment: ONEREC (the CLI, default build/bin/onerec), MODELS (default 2), THREADS (per
# model, default 2 / MODELS or 1), ALIGN=0 (tokenize the raw features instead of the aligned
# ones), ALIGN_EPOCHS (default 60), ALIGN_ARGS (more `onerec align` options; default
# --attribute-pairs 5: content pairs of items that share a brand-like attribute), EVAL_EVERY
# (minutes between evaluations, default 10; each scores all validation users and does not
# count as training time), TRAIN_ARGS (the `onerec train` options of every model; default: the
# best run of bench/RESULTS.md, the 0.015B shape cut to 2 + 2 layers, 2 shards, dropout 0.2, a
# moving average of the weights (decay 0.9999) evaluated and saved, lr 2e-3, a cosine over
# 105,000 updates, one shared user token).
set -eu
ONEREC=${ONEREC:-build/bin/onerec}
DATA=${1:-../shared/data/amazon}
OUT=${2:-run/beauty}
MINUTES=${3:-60}
MODELS=${MODELS:-2}
case $MODELS in
  '' | *[!0-9]* | 0) echo "beauty.sh: MODELS=$MODELS (expected 1..8)" >&2; exit 2 ;;
esac
if [ "$MODELS" -gt 8 ]; then echo "beauty.sh: MODELS=$MODELS (expected 1..8)" >&2; exit 2; fi
THREADS=${THREADS:-$((2 / MODELS > 0 ? 2 / MODELS : 1))}
ALIGN=${ALIGN:-1}
ALIGN_EPOCHS=${ALIGN_EPOCHS:-60}
ALIGN_ARGS=${ALIGN_ARGS:---attribute-pairs 5}
EVAL_EVERY=${EVAL_EVERY:-10}
TRAIN_ARGS=${TRAIN_ARGS:---layers 2 --shards 2 --dropout 0.2 --ema 0.9999 --lr 2e-3 --steps 105000 --uid-buckets 1}

case $OUT in
  *,* | *'"'* | *\\*) echo "beauty.sh: OUT may not hold , \" or \\ (model lists and JSON)" >&2; exit 2 ;;
esac
if [ ! -f "$DATA/Beauty.txt" ]; then
  echo "beauty.sh: $DATA/Beauty.txt not found (the Amazon Beauty data of ../shared/data)" >&2
  exit 2
fi
mkdir -p "$OUT"
step() { echo "== beauty.sh: $*" >&2; }
# the number after "key": in a JSON line
num() { printf '%s\n' "$2" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
# eval SPLIT MODEL[,MORE,...]: the JSON of `onerec eval` for one model or an ensemble
ev() {
  first=${2%%,*}
  if [ "$first" = "$2" ]; then
    "$ONEREC" eval --model "$first" --catalog "$OUT/catalog.h5" --data "$DATA" \
      --dataset beauty --split "$1" --json
  else
    "$ONEREC" eval --model "$first" --ensemble "${2#*,}" --catalog "$OUT/catalog.h5" \
      --data "$DATA" --dataset beauty --split "$1" --json
  fi
}
# members K: every model's K-th snapshot, comma-separated
members() {
  list=""
  for m in $(seq 1 "$MODELS"); do
    s=$(sed -n 's/.*"snapshot":"\([^"]*\)".*/\1/p' "$OUT/valid$m.jsonl" | sed -n "${1}p")
    [ -n "$s" ] || return 1
    list="${list:+$list,}$s"
  done
  printf '%s\n' "$list"
}

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

step "training: $MODELS models at once (seeds 1..$MODELS, $THREADS threads each), $MINUTES minutes"
pids=""
trap 'kill $pids 2>/dev/null' INT TERM EXIT
for m in $(seq 1 "$MODELS"); do
  # shellcheck disable=SC2086  # TRAIN_ARGS is a list of options
  set -- --data "$DATA" --dataset beauty --catalog "$OUT/catalog.h5" \
    --minutes "$MINUTES" --positive-len 0 --seed "$m" --threads "$THREADS" \
    --eval-every "$EVAL_EVERY" --eval-users 0 --patience 1000 --snapshots \
    $TRAIN_ARGS --out "$OUT/train$m"
  if [ "$m" = 1 ]; then
    "$ONEREC" train "$@" >"$OUT/valid$m.jsonl" &
  else
    "$ONEREC" train "$@" >"$OUT/valid$m.jsonl" 2>"$OUT/train$m.log" &
  fi
  pids="$pids $!"
done
rc=0
for p in $pids; do wait "$p" || rc=$?; done
trap - INT TERM EXIT
if [ "$rc" != 0 ]; then echo "beauty.sh: a training failed (exit $rc)" >&2; exit "$rc"; fi

step "validation and test metrics of the ensemble at every evaluation point (the curve)"
: >"$OUT/curve.jsonl"
best_k=0 best_v=-1 k=1
while mem=$(members "$k"); do
  line=$(grep '"snapshot"' "$OUT/valid1.jsonl" | sed -n "${k}p")
  steps=""
  for m in $(seq 1 "$MODELS"); do
    steps="${steps:+$steps,}$(num step "$(grep '"snapshot"' "$OUT/valid$m.jsonl" | sed -n "${k}p")")"
  done
  v=$(ev valid "$mem")
  t=$(ev test "$mem")
  vr=$(num 'recall@10' "$v")
  printf '{"curve":true,"minutes":%s,"steps":[%s],"valid_recall@10":%s,"recall@10":%s,"ndcg@10":%s}\n' \
    "$(num minutes "$line")" "$steps" "$vr" "$(num 'recall@10' "$t")" "$(num 'ndcg@10' "$t")" |
    tee -a "$OUT/curve.jsonl"
  if awk -v a="$vr" -v b="$best_v" 'BEGIN { exit !(a > b) }'; then best_k=$k best_v=$vr; fi
  k=$((k + 1))
done
[ "$best_k" -gt 0 ] || { echo "beauty.sh: no snapshots in $OUT/valid1.jsonl" >&2; exit 1; }

# The best point's snapshots with the next point's as one ensemble (no extra training time):
# kept only when validation prefers it.
sel=$(members "$best_k")
if next=$(members $((best_k + 1))); then
  step "validation: the best point's snapshots with the next point's"
  w=$(ev valid "$sel,$next")
  wv=$(num 'recall@10' "$w")
  if awk -v a="$wv" -v b="$best_v" 'BEGIN { exit !(a > b) }'; then sel="$sel,$next" best_v=$wv; fi
fi
printf '{"selected":["%s"],"valid_recall@10":%s}\n' "$(printf '%s' "$sel" | sed 's/,/","/g')" "$best_v"

step "test metrics of the selection"
ev test "$sel"
