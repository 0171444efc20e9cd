#!/usr/bin/env bash
# Online serving benchmark: `vortex serve` with full attention, then with a flow, each measured
# by `vortex bench-serve` at several request rates. One JSON per run and a summary table under
# $OUT (default ./serve-results).
#
#   scripts/serve-bench.sh VORTEX_BINARY
#
# Settings (environment): MODEL (qwen3-1.7b), DEVICE (cuda), FLOW (flows/block_topk.py),
# TOPK_RATIO (0.0625), RATES ("0.25 0.5 1"), INPUT_LEN (1024), OUTPUT_LEN (8192), PROMPTS (32),
# SPARSE_ARGS (more flags of the sparse server; default the headline's --sink-pages 1
# --recent-pages 2 --dense-layers 0), CONFIGS ("full sparse"), SERVE_ARGS (more `vortex serve` flags, e.g. --kv-memory-gb 60),
# RUN_TIMEOUT_S (per bench-serve run, 540), VOCAB (random prompt ids below it, 100000),
# LABEL (names the output files).
set -uo pipefail
vortex=${1:?usage: $0 VORTEX_BINARY}
MODEL=${MODEL:-qwen3-1.7b} DEVICE=${DEVICE:-cuda} FLOW=${FLOW:-flows/block_topk.py}
TOPK_RATIO=${TOPK_RATIO:-0.0625} RATES=${RATES:-0.25 0.5 1} INPUT_LEN=${INPUT_LEN:-1024}
OUTPUT_LEN=${OUTPUT_LEN:-8192} PROMPTS=${PROMPTS:-32} CONFIGS=${CONFIGS:-full sparse}
SPARSE_ARGS=${SPARSE_ARGS:---sink-pages 1 --recent-pages 2 --dense-layers 0}
SERVE_ARGS=${SERVE_ARGS:-} RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-540} VOCAB=${VOCAB:-100000}
LABEL=${LABEL:-in${INPUT_LEN}_out${OUTPUT_LEN}}
OUT=${OUT:-$PWD/serve-results}
mkdir -p "$OUT"

start_server() {  # $1: config name; sets pid and url
  local log=$OUT/serve_${LABEL}_$1.log flow_args=()
  # shellcheck disable=SC2206
  [ "$1" = sparse ] && flow_args=(--flow "$FLOW" --topk-ratio "$TOPK_RATIO" $SPARSE_ARGS)
  # shellcheck disable=SC2086
  "$vortex" serve --model "$MODEL" --random-weights --device "$DEVICE" --port 0 \
    --max-waiting 4096 "${flow_args[@]}" $SERVE_ARGS >"$log" 2>&1 &
  pid=$!
  url=""
  for _ in $(seq 1 600); do
    url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$log" | head -1)
    [ -n "$url" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "server ($1) did not start; its log:" >&2
  tail -20 "$log" >&2
  return 1
}

for config in $CONFIGS; do
  start_server "$config" || continue
  echo "== $config server at $url ($MODEL on $DEVICE)"
  # Each rate gets prompts of its own seed: the same prompts again would hit the prefix cache
  # and measure cached prefill. Both configs see the same prompts at a given rate.
  seed=1
  for rate in $RATES; do
    json=$OUT/bench_${LABEL}_${config}_rate${rate}.json
    timeout "$RUN_TIMEOUT_S" "$vortex" bench-serve --url "$url" --num-prompts "$PROMPTS" \
      --request-rate "$rate" --random-input-len "$INPUT_LEN" --random-output-len "$OUTPUT_LEN" \
      --random-vocab-size "$VOCAB" --ignore-eos --seed "$seed" --disable-progress --json \
      >"$json" 2>"$OUT/bench_${LABEL}_${config}_rate${rate}.err"
    echo "   rate $rate (seed $seed): exit $? -> $(basename "$json")"
    seed=$((seed + 1))
  done
  curl -s "$url/metrics" >"$OUT/metrics_${LABEL}_${config}.txt" 2>/dev/null || true
  kill -TERM "$pid"
  wait "$pid"
  echo "   server exited with $?"
done

# One table of the runs: throughput and latency percentiles.
/usr/bin/env python3 - "$OUT" "$LABEL" <<'PY'
import json, sys, pathlib
out, label = pathlib.Path(sys.argv[1]), sys.argv[2]
rows = []
for f in sorted(out.glob(f"bench_{label}_*.json")):
    try:
        r = json.loads(f.read_text())
    except Exception as e:
        rows.append(f"{f.name}: unreadable ({e})")
        continue
    g = lambda k: r.get(k, float("nan"))
    rows.append(f"{f.stem}: completed {g('completed')} failed {g('failed')} "
                f"duration {g('duration_s'):.1f} s, out tok/s {g('output_throughput'):.1f}, "
                f"TTFT p50/p95 {g('median_ttft_ms'):.1f}/{g('p95_ttft_ms'):.1f} ms, "
                f"TPOT p50/p95 {g('median_tpot_ms'):.2f}/{g('p95_tpot_ms'):.2f} ms, "
                f"peak concurrency {g('peak_concurrency')}")
text = "\n".join(rows)
print(text)
(out / f"summary_{label}.txt").write_text(text + "\n")
PY
