#!/usr/bin/env bash
# `make demo`: the engine end to end on the bundled test models, on the CPU.
set -euo pipefail
VORTEX=${1:-build/vortex}
cd "$(dirname "$0")/.."
MODEL=tests/data/models/tiny-qwen3
echo "== Vortex demo (CPU) =="
echo "Model: $MODEL, a 2-layer Qwen3 with random weights made by Hugging Face transformers."
echo "Its text is gibberish by design: the point is that the numbers equal transformers' own."
echo
echo "-- tokenize with the real Qwen3 tokenizer --"
"$VORTEX" tokenize --model tests/data/tokenizers/qwen3 --text "Hello world! 你好，世界 👋" --json
echo
echo "-- chat, streamed --"
"$VORTEX" generate --model "$MODEL" --chat "Write a haiku about paged attention." --max-tokens 24
echo
echo "-- 16 requests at once, continuous batching, greedy --"
args=()
for i in $(seq 1 16); do args+=(--prompt "Request number $i: def f(x):"); done
"$VORTEX" generate --model "$MODEL" "${args[@]}" --max-tokens 48 --ignore-eos | tail -n 4
echo
echo "-- a real architecture preset with random weights (Qwen3-0.6B geometry) --"
"$VORTEX" generate --model qwen3-0.6b --random-weights --prompt-ids 1,2,3,4 --max-tokens 4 \
  --kv-memory-gb 0.1
