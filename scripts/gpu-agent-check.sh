#!/usr/bin/env bash
# The agent loop on one GPU, as docs/performance.md reports it.
#
#   scripts/gpu-agent-check.sh [consistency|explore|measure|all] (default all)
#
#   consistency  `vortex submit FLOW --device cuda` for each of $FLOWS (default block_topk and
#                quest), timed (the verdict's limit is 5 minutes), then the `vortex eval
#                --compare-full` and `vortex bench --compare-full` commands the verdict names,
#                run alone: the verdict's accuracy must equal eval's and its speed-up must be
#                within noise of bench's.
#   explore      `vortex explore --device cuda --estimate` (accuracy measured on the GPU at
#                $CONTEXT tokens with $SAMPLES samples per task, speed-up estimated from bytes)
#                for $SUBMISSIONS verdicts.
#   measure      the frontier's candidates (up to $MEASURE of them, plus the shipped flows they
#                are compared with) submitted again with the speed-up measured; the leaderboard
#                as text, JSON and SVG. Reads explore's results from $IN (default $OUT: its
#                agent.db, explore.json and candidates/), so that it can run as a later call.
#
# Environment: VORTEX (the binary; default build-gpu/vortex), OUT (default ./gpu-agent-results).
# Writes $OUT/agent.txt (the summary) and the JSON and logs beside it; exits non-zero when a
# check fails.
set -uo pipefail
cd "$(dirname "$0")/.."
V=${VORTEX:-build-gpu/vortex}
OUT=${OUT:-$PWD/gpu-agent-results}
part=${1:-all}
case "$part" in consistency | explore | measure | all) ;; *)
  echo "usage: $0 [consistency|explore|measure|all]" >&2
  exit 2
  ;;
esac
mkdir -p "$OUT"
DB=$OUT/agent.db
summary=$OUT/agent.txt
log() { echo "== $*" | tee -a "$summary"; }
status=0
log "date $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"

# Runs the command line in the verdict (its first word `vortex` replaced by $V).
run_named() { # json_file jq_path out_file
  local cmd
  cmd=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
stage = next(s for s in j["stages"] if s["stage"] == sys.argv[2])
print(stage["figures"][sys.argv[3]])' "$1" "$2" "$3") || return 1
  echo "$ $cmd" >>"$OUT/commands.txt"
  eval "\"$V\" ${cmd#vortex }" >"$4" 2>"$4.log"
}

CONTEXT=${CONTEXT:-8192}
SAMPLES=${SAMPLES:-20}
IN=${IN:-$OUT}
if [ "$IN" != "$OUT" ]; then
  cp "$IN/agent.db" "$DB" && cp "$IN/explore.json" "$OUT/" && cp -r "$IN/candidates" "$OUT/" ||
    { echo "cannot read explore's results from $IN" >&2; exit 1; }
fi

if [ "$part" = consistency ] || [ "$part" = all ]; then
  for flow in ${FLOWS:-flows/block_topk.py flows/quest.py}; do
    name=$(basename "$flow" .py)
    start=$(date +%s.%N)
    "$V" submit "$flow" --device cuda --json --db "$DB" ${SUBMIT_ARGS:-} >"$OUT/submit_$name.json" \
      2>"$OUT/submit_$name.log"
    rc=$?
    took=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" \
      "$start" "$(date +%s.%N)")
    log "submit $flow --device cuda: exit $rc in $took s"
    if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
      status=1
      tail -5 "$OUT/submit_$name.log" | tee -a "$summary"
      continue
    fi
    run_named "$OUT/submit_$name.json" accuracy command "$OUT/eval_$name.json" ||
      { status=1; log "eval for $name FAILED"; }
    run_named "$OUT/submit_$name.json" throughput command "$OUT/bench_$name.json" ||
      { status=1; log "bench for $name FAILED"; }
    python3 - "$OUT/submit_$name.json" "$OUT/eval_$name.json" "$OUT/bench_$name.json" \
      "$took" <<'PY' | tee -a "$summary" || status=1
import json, sys
sub, ev, be = (json.load(open(p)) for p in sys.argv[1:4])
took = float(sys.argv[4])
stages = {s["stage"]: s for s in sub["stages"]}
acc = stages["accuracy"]["figures"]
thr = stages["throughput"]["figures"]
full_eval, flow_eval = ev["runs"][0], ev["runs"][1]
full_bench, flow_bench = be["runs"][0], be["runs"][1]
bench_speedup = flow_bench["decode_speedup_vs_full"]
ok = True
print(f"  stages: " + ", ".join(f'{s["stage"]} {s["status"]} {s["seconds"]:.1f} s' for s in sub["stages"]))
print(f"  accuracy: verdict {acc['accuracy']:.4f} (full {acc['full_accuracy']:.4f}), "
      f"eval --compare-full {flow_eval['accuracy']:.4f} (full {full_eval['accuracy']:.4f})")
n = acc["samples"]
for a, b, what in ((acc["accuracy"], flow_eval["accuracy"], "flow"),
                   (acc["full_accuracy"], full_eval["accuracy"], "full")):
    if abs(a - b) > 1.0 / n + 1e-9:
        print(f"  MISMATCH: {what} accuracy {a} in the verdict, {b} from eval"); ok = False
print(f"  speed-up: verdict {thr['speedup']:.3f}x (measured: {not thr['estimate']}), "
      f"bench --compare-full alone {bench_speedup:.3f}x, "
      f"ratio {thr['speedup'] / bench_speedup:.3f}")
if abs(thr["speedup"] / bench_speedup - 1) > 0.05:
    print("  MISMATCH: the verdict's speed-up is more than 5% from bench's"); ok = False
if took > 300:
    print(f"  OVER THE LIMIT: the verdict took {took:.0f} s (> 300 s)"); ok = False
sys.exit(0 if ok else 1)
PY
  done
fi

if [ "$part" = explore ] || [ "$part" = all ]; then
  start=$(date +%s)
  "$V" explore --device cuda --estimate --context "$CONTEXT" --samples "$SAMPLES" \
    --max-submissions "${SUBMISSIONS:-40}" --db "$DB" --out "$OUT/candidates" --json \
    >"$OUT/explore.json" 2>"$OUT/explore.log"
  rc=$?
  log "explore --device cuda --estimate --context $CONTEXT --samples $SAMPLES --max-submissions ${SUBMISSIONS:-40}: exit $rc in $(($(date +%s) - start)) s"
  [ $rc -eq 0 ] || { status=1; tail -5 "$OUT/explore.log" | tee -a "$summary"; }
  grep -v '^\[' "$OUT/explore.log" | tail -30 >>"$summary"
fi

if [ "$part" = measure ] || [ "$part" = all ]; then
  # The frontier's candidates and the shipped flows, with the speed-up measured.
  for path in $(python3 - "$OUT/explore.json" "$OUT/candidates" "${MEASURE:-4}" <<'PY'
import json, os, sys
j = json.load(open(sys.argv[1]))
picked = [f for f in j["frontier"] if not f["shipped"]][: int(sys.argv[3])]
names = [f["name"] for f in picked] + ["block_topk", "quest"]
for n in dict.fromkeys(names):
    c = os.path.join(sys.argv[2], n + ".py")
    print(c if os.path.exists(c) else os.path.join("flows", n + ".py"))
PY
  ); do
    name=$(basename "$path" .py)
    start=$(date +%s)
    "$V" submit "$path" --device cuda --context "$CONTEXT" --samples "$SAMPLES" --json \
      --db "$DB" >"$OUT/measured_$name.json" 2>"$OUT/measured_$name.log"
    rc=$?
    verdict=$(python3 - "$OUT/measured_$name.json" 2>&1 <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print("accuracy %s (full %s), speed-up %s, failed at %s"
      % (j["accuracy"], j["full_accuracy"], j["speedup"], j["failed_stage"]))
PY
)
    log "measured $name: exit $rc in $(($(date +%s) - start)) s: $verdict"
  done
  "$V" leaderboard --db "$DB" --svg "$OUT/leaderboard.svg" >"$OUT/leaderboard.txt" 2>&1 || status=1
  "$V" leaderboard --db "$DB" --json >"$OUT/leaderboard.json" 2>&1 || status=1
  cat "$OUT/leaderboard.txt" >>"$summary"
fi
log "exit status $status"
exit $status
