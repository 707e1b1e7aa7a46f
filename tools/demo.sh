#!/bin/sh
# The main job (`make demo`): runs the pipeline end to end on the built-in default, the Amazon
# Beauty data in ../shared/data (or, where it is absent, a synthetic data set in its format from
# `onerec data synth`): data, popularity baseline, features, item alignment, tokenizer +
# catalogue, training, evaluation, recommendation. Usage: demo.sh BUILD_DIR [DATA_DIR]
set -eu
build=$1
data=${2:-${ONEREC_DATA_DIR:-../shared/data}}
cli="$build/bin/onerec"
work="$build/demo"
mkdir -p "$work"
step() { printf '\n== %s\n' "$*" >&2; }

step "library and backends"
"$cli" info --json

if [ -f "$data/amazon/Beauty.txt" ]; then
  beauty="$data/amazon"
  name="Amazon Beauty"
else
  echo "demo: $data/amazon/Beauty.txt not found (set ONEREC_DATA_DIR); using the built-in synthetic data set" >&2
  step "data: synthetic, Beauty format (onerec data synth)"
  "$cli" data synth --out "$work/synth"
  beauty="$work/synth"
  name="synthetic"
fi

step "data: $name, leave-one-out"
"$cli" data stats --data "$beauty" --dataset beauty --json
step "evaluation baseline: popularity, full ranking, test split"
"$cli" data baseline --data "$beauty" --dataset beauty --json

step "item features: title TF-IDF + Swing over the training part"
"$cli" features beauty "$beauty" --out "$work/features.h5" --json
step "item alignment: QFormer + InfoNCE over collaborative and content pairs (${DEMO_ALIGN_EPOCHS:-2} epochs)"
"$cli" align --features "$work/features.h5" --data "$beauty" --dataset beauty \
  --out "$work/aligned.h5" --epochs "${DEMO_ALIGN_EPOCHS:-2}" --attribute-pairs 5 --seed 1 --json
step "tokenizer: RQ-Kmeans 3 x 256 on the aligned vectors, one-to-one catalogue"
"$cli" tokenizer fit --features "$work/aligned.h5" --levels 3 --codes 256 --seed 1 \
  --out "$work/tokenizer.h5" --catalog "$work/catalog.h5" --json

# 2 + 2 layers with 2 data-parallel shards, one user token shared by all users (--uid-buckets 1:
# no per-user memory), dropout 0.2 and a moving average of the weights (--ema) are the best
# measured model (bench/RESULTS.md: test Recall@10 0.0704 after 30 minutes); lr 2e-3, a cosine
# over DEMO_STEPS updates, cut to DEMO_MINUTES
step "training (${DEMO_MINUTES:-2} minutes) on the catalogue's semantic IDs"
"$cli" train --data "$beauty" --dataset beauty --preset 0.015B --layers 2 --shards 2 \
  --catalog "$work/catalog.h5" --minutes "${DEMO_MINUTES:-2}" --steps "${DEMO_STEPS:-3500}" \
  --lr 2e-3 --dropout 0.2 --ema 0.9999 --positive-len 0 --uid-buckets 1 --seed 1 \
  --out "$work/run"
model="$work/run/model.h5"

step "evaluation: constrained beam search (beam 20), full ranking, test split, ${DEMO_EVAL_USERS:-2000} random users"
"$cli" eval --model "$model" --catalog "$work/catalog.h5" --data "$beauty" --dataset beauty \
  --split test --beam 20 --users "${DEMO_EVAL_USERS:-2000}" --json

history=$(awk 'NR == 1 { for (i = 2; i < NF - 1; i++) printf "%s%s", (i > 2 ? " " : ""), $i }' "$beauty/Beauty.txt")
step "recommend for user 1 (history: $history)"
"$cli" recommend --model "$model" --catalog "$work/catalog.h5" --history "$history" \
  -k 10 --beam 32 --json
