#!/usr/bin/env bash
# The accuracy tables of docs/accuracy.md for one model on a GPU machine, in one call: every
# shipped flow at budgets 1/4, 1/8 and 1/16 against full attention, on the RULER-style tasks and
# (with DATA) on perplexity of held-out text, at each context. Recall is CPU-only: run
# `vortex eval --recall-replay` separately (docs/accuracy.md shows the command).
#
#   MODEL=models/natural DATA=models/natural/heldout/python.txt,... CONTEXTS=4096,16384 \
#     [TASKS=niah_single,niah_multikey,niah_multivalue,vt] [SAMPLES=50] [DOCUMENTS=8] \
#     [SCORE_TOKENS=64] [VORTEX=.carry/gpu/bin/vortex] [DEVICE=cuda] OUT=DIR \
#     scripts/gpu-accuracy-tables.sh
#
# Writes $OUT/<model>.md (the tables), .jsonl (every task report) and the perplexity reports.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MODEL:?MODEL=models/<name>}"
OUT=${OUT:-$PWD/tables}
VORTEX=${VORTEX:-.carry/gpu/bin/vortex}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/.carry/gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
name=$(basename "$MODEL")
args=(--vortex "$VORTEX" --model "$MODEL" --contexts "${CONTEXTS:-4096,16384}" --device "${DEVICE:-cuda}"
  --tasks "${TASKS:-niah_single,niah_multikey,niah_multivalue,vt}" --samples "${SAMPLES:-50}"
  --out "$OUT/$name")
if [ -n "${DATA:-}" ]; then
  args+=(--perplexity-data "$DATA" --perplexity-documents "${DOCUMENTS:-8}"
    --perplexity-score-tokens "${SCORE_TOKENS:-64}")
fi
nvidia-smi --query-gpu=name --format=csv,noheader | tee "$OUT/device.txt" || true
date -u +%Y-%m-%dT%H:%MZ | tee -a "$OUT/device.txt"
PYTHONUNBUFFERED=1 python3 scripts/accuracy_table.py "${args[@]}" 2>&1 | tee "$OUT/$name.log"
