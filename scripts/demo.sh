#!/usr/bin/env bash
# `make demo`: the engine end to end on the CPU. The main part runs the shipped retrieval model
# (models/needle) on long-context tasks with full attention and with every shipped flow at one
# KV budget, and prints accuracy and decode speed side by side.
set -euo pipefail
VORTEX=${1:-build/vortex}
cd "$(dirname "$0")/.."
CONTEXT=${DEMO_CONTEXT:-2048}
SAMPLES=${DEMO_SAMPLES:-4}
RATIO=${DEMO_RATIO:-0.125}
echo "== Vortex demo (CPU) =="
echo
echo "-- tokenize with the real Qwen3 tokenizer --"
# Its tokenizer.json is committed packed; the build unpacks the folder beside the binary.
QWEN3_TOKENIZER=$(dirname "$VORTEX")/tests/data/tokenizers/qwen3
"$VORTEX" tokenize --model "$QWEN3_TOKENIZER" --text "Hello world! 你好，世界 👋" --json
echo
echo "-- a sparse-attention flow, checked for the Qwen3-1.7B geometry --"
"$VORTEX" check flows/quest.py --model qwen3-1.7b
echo
echo "-- full attention vs every shipped flow on models/needle --"
echo "models/needle is a 5.2M-parameter Qwen3 trained to answer RULER-style retrieval tasks"
echo "(models/needle/README.md). Each configuration answers the same $SAMPLES samples per task at"
echo "$CONTEXT tokens, all of them as one continuous batch; the flows read $RATIO of the pages"
echo "(plus their sink and recent pages) in every layer but the first. Greedy decoding, exact-match"
echo "scoring (vt: share of the variables)."
flows=()
for f in flows/*.py; do flows+=(--flow "$f"); done
start=$(date +%s)
"$VORTEX" eval --model models/needle --tasks niah_single,niah_multikey,niah_multivalue,vt \
  --context "$CONTEXT" --samples "$SAMPLES" --compare-full "${flows[@]}" --topk-ratio "$RATIO" \
  2>/dev/null
echo "($(( $(date +%s) - start )) s. More samples and budgets: scripts/accuracy_table.py;"
echo " measured tables in docs/accuracy.md. Decode tok/s here is a 5M-parameter model on the CPU;"
echo " the GPU throughput of the flows on a 1.7B geometry is in docs/performance.md.)"
