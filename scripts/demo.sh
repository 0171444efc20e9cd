#!/usr/bin/env bash
# `make demo`: the engine end to end on the bundled test models, on the CPU.
set -euo pipefail
VORTEX=${1:-build/vortex}
cd "$(dirname "$0")/.."
MODEL=tests/data/models/tiny-qwen3
echo "== Vortex demo (CPU) =="
echo "Model: $MODEL, a 2-layer Qwen3 with random weights made by Hugging Face transformers."
echo "Its text is gibberish by design: what matters is that its numbers equal transformers' own."
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
"$VORTEX" generate --model "$MODEL" "${args[@]}" --max-tokens 48 --ignore-eos | tail -n 2
echo
echo "-- a sparse-attention flow, checked for the Qwen3-1.7B geometry --"
"$VORTEX" check flows/quest.py --model qwen3-1.7b
echo
echo "-- full attention vs flows: 4 requests of 2000 tokens, 32 generated, budget 1/8 --"
"$VORTEX" bench --model "$MODEL" --batch 4 --input-len 2000 --output-len 32 --compare-full \
  --flow flows/block_topk.py --flow flows/quest.py --flow flows/streaming.py \
  --topk-ratio 0.125 --record-recall 2>/dev/null
echo "(KV read: share of the KV pages decode attention read, layer 0 of 2 staying dense; recall:"
echo " share of the full softmax mass on the pages read. A random model's attention is diffuse, so"
echo " recall is low here; the trained needle model of the accuracy work is where it means much.)"
echo
echo "-- a real architecture preset with random weights (Qwen3-0.6B geometry) --"
"$VORTEX" generate --model qwen3-0.6b --random-weights --prompt-ids 1,2,3,4 --max-tokens 4 \
  --kv-memory-gb 0.1
