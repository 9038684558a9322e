#!/usr/bin/env bash
# The bundled default model, reproduced from ../shared/data on a CPU: `make train-default`.
#
# import -> shards (geographic split) -> cells -> frozen features -> heads -> export
# (parity-checked) -> evaluation beside the baselines -> ship. About 30 minutes on 2
# cores. Every step keeps its output, so a rerun after an interruption starts at the
# first step that did not finish (delete OUT to start over).
# SHIP=1 (default) copies the browser model, cells, preprocessing and model card into the
# package. FINETUNE=1 also fine-tunes the backbone from the head (+20 minutes) and adds
# it to the evaluation: on these 6.5k photos it did not beat the frozen backbone
# (docs/default-model.md), so the shipped model is the head.
set -euo pipefail
DATA=${DATA:-../shared/data}
OUT=${OUT:-build/default}
BIN=${BIN:-.venv/bin}
SHIP=${SHIP:-1}
FINETUNE=${FINETUNE:-0}
IMG2LOC="$BIN/img2loc"
ASSETS=src/img2loc/assets/default_model
mkdir -p "$OUT"
step() { printf '\n== %s ==\n' "$*"; }
best() { ls "$1"/checkpoints/best-*.ckpt 2>/dev/null | head -1; }

step "1/8 manifests from the three Street View sets"
for s in world us-west croatia; do
  [ -f "$OUT/$s.parquet" ] ||
    "$IMG2LOC" data import csv "$DATA/streetview-$s/locations.csv" -o "$OUT/$s.parquet"
done

step "2/8 shards: split by location, dev/test places >= 25 km from every training place"
# Resumable by itself: finished shards are kept.
"$IMG2LOC" data shards "$OUT"/world.parquet "$OUT"/us-west.parquet "$OUT"/croatia.parquet \
  -o "$OUT/shards" --max-side 512 --shard-size 500 --val-frac 0.1 --test-frac 0.1 --geo-km 25

step "3/8 adaptive S2 cells from the training split, plus cells where people take photos"
# The prior (MP-16's Flickr coordinates) adds cells where the Street View set has none, so
# a guess can land there, and gives eval its best-constant baseline for everyday photos.
[ -f "$OUT/cells.json" ] ||
  "$IMG2LOC" cells build "$OUT/shards" --min-samples 5 --max-samples 30 \
    --prior "$DATA/photo-locations-mp16/coordinates_100K.csv" -o "$OUT/cells.json"

step "4/8 frozen EfficientNet-Lite0 features (ImageNet weights, with flipped views)"
"$IMG2LOC" embed "$OUT/shards" -o "$OUT/feats"  # resumable: one file per shard

step "5/8 heads on the features: the linear-probe baseline and the head to fine-tune"
[ -n "$(best "$OUT/probe")" ] ||
  "$IMG2LOC" train -c configs/lite0-head.yaml --data.features "$OUT/feats" \
    --model.cells "$OUT/cells.json" --trainer.default_root_dir "$OUT/probe"
[ -n "$(best "$OUT/head")" ] ||
  "$IMG2LOC" train -c configs/default-head.yaml --data.features "$OUT/feats" \
    --model.cells "$OUT/cells.json" --trainer.default_root_dir "$OUT/head"

step "6/8 export the head: ONNX fp32 + browser model, parity-checked on dev photos"
# The cells carry a photo prior and --data is the training shards, so the export also fits
# the in-domain score (prototypes of the training photos' features; about 80 s): photos
# unlike the street views are answered from where people take photos.
[ -f "$OUT/model/model.onnx" ] ||
  "$IMG2LOC" export "$(best "$OUT/head")" -o "$OUT/model" --data "$OUT/shards"

step "7/8 staged fine-tuning from that head (FINETUNE=1)"
compare=(--compare "$(best "$OUT/probe")")
if [ "$FINETUNE" = 1 ]; then
  if [ ! -f "$OUT/finetune/done" ]; then
    # --resume auto continues from last.ckpt when an earlier run was interrupted.
    "$IMG2LOC" train -c configs/default-finetune.yaml --data.shards "$OUT/shards" \
      --model.cells "$OUT/cells.json" --model.init_from "$(best "$OUT/head")" \
      --trainer.default_root_dir "$OUT/finetune" --resume auto
    touch "$OUT/finetune/done"
  fi
  compare+=(--compare "$OUT/finetune/checkpoints/last.ckpt")
fi

step "8/8 evaluation on the dev and test splits, beside the baselines"
for split in val test; do
  [ -f "$OUT/eval-$split/report.json" ] ||
    "$IMG2LOC" eval --model "$OUT/model" "${compare[@]}" --data "$OUT/shards" --split "$split" \
      --train-data "$OUT/shards" --group-by location_id -o "$OUT/eval-$split"
done

if [ "$SHIP" = 1 ]; then
  step "ship: browser model + cells + preprocessing + model card -> $ASSETS"
  mkdir -p "$ASSETS"
  rm -f "$ASSETS"/model.onnx
  cp "$OUT/model/model.browser.onnx" "$OUT/model/cells.json" "$OUT/model/preprocess.json" \
    "$OUT/model/README.md" "$OUT/model/export.json" "$ASSETS"/
fi
echo "done: model in $OUT/model, reports in $OUT/eval-val, $OUT/eval-test (and $OUT/eval-im2gps3k)"
