#!/usr/bin/env bash
# One training call of the natural model on a GPU machine (models/natural; scripts/train_natural).
#
#   CONFIG=scripts/train_natural/runs/1_pretrain.json [INIT=DIR] [MINUTES=6.5] \
#     [VORTEX=.carry/gpu/bin/vortex] OUT=DIR scripts/gpu-train-natural.sh
#
# PYTHON names the interpreter (default python3). TRAIN_ARGS passes more flags to train.py
# (e.g. "--tokenizer models/needle --max-docs-per-source 150" for a CPU check of this script
# with runs/smoke_cpu.json). INIT is an earlier call's results unpacked: its parts and the
# model/*.json of its natural.tar.xz in one directory.
#
# Builds the corpus from the machine's own files (corpus.py), trains for MINUTES (from INIT's
# weights when given, else from scratch with a new tokenizer), runs the final vortex eval, and
# leaves under $OUT what a later call or the repository needs, in few files (a GPU machine
# returns at most 8 files of 16 MiB): the weights in parts of 15 MB (model.safetensors.part-*;
# `cat` them back together), and natural.tar.xz with the rest of the model directory, the
# training log, the corpus summary and manifest, and held-out text per source.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CONFIG:?CONFIG=scripts/train_natural/runs/<run>.json}"
OUT=${OUT:-$PWD/natural-results}
VORTEX=${VORTEX:-.carry/gpu/bin/vortex}
MINUTES=${MINUTES:-6.5}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/.carry/gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONUNBUFFERED=1
work=/tmp/natural_work
rm -rf "$work" && mkdir -p "$work"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$work/device.txt" || true
"$PY" scripts/train_natural/corpus.py --out "$work/corpus" --heldout-text-kb 600 \
  2>&1 | tee "$work/corpus.log"
init=()
if [ -n "${INIT:-}" ]; then
  # An earlier call's output: its weights come back in parts.
  if ls "$INIT"/model.safetensors.part-* >/dev/null 2>&1; then
    mkdir -p "$work/init" && cp "$INIT"/*.json "$work/init/"
    cat "$INIT"/model.safetensors.part-* >"$work/init/model.safetensors"
    init=(--init-from "$work/init")
  else
    init=(--init-from "$INIT")
  fi
fi
status=0
"$PY" scripts/train_natural/train.py --vortex "$VORTEX" --corpus "$work/corpus" \
  --config "$CONFIG" --out "$work/model" --time-limit-min "$MINUTES" "${init[@]}" ${TRAIN_ARGS:-} \
  2>&1 | tee "$work/train.log" || status=$?
if [ -f "$work/model/model.safetensors" ]; then
  split -b 15000000 -d "$work/model/model.safetensors" "$OUT/model.safetensors.part-"
fi
mkdir -p "$work/pack/model" "$work/pack/corpus"
cp "$work"/model/*.json "$work"/model/README.md "$work/pack/model/" 2>/dev/null || true
cp "$work"/corpus/summary.json "$work"/corpus/manifest.tsv "$work/pack/corpus/" 2>/dev/null || true
cp -r "$work"/corpus/heldout_text "$work/pack/corpus/" 2>/dev/null || true
cp "$work"/*.log "$work/device.txt" "$work/pack/"
tar -C "$work/pack" -cJf "$OUT/natural.tar.xz" .
ls -la "$OUT"
exit "$status"
