#!/usr/bin/env bash
# Runs libFuzzer targets one after another: scripts/fuzz.sh BUILD_DIR SECONDS TARGET...
# Each starts from its committed seeds (fuzz/corpus/<target>) plus what earlier runs found
# (BUILD_DIR/corpus/<target>, kept between runs), with its dictionary (fuzz/dict/<target>.dict).
# A crash, a hang over 10 s or a run over 1 GiB is saved under BUILD_DIR/findings/<target>/;
# the script then exits 1. Every run appends a line to BUILD_DIR/fuzz-log.tsv.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: $0 BUILD_DIR SECONDS TARGET..." >&2; exit 2; }
build=$1 seconds=$2
shift 2
log=$build/fuzz-log.tsv
[ -f "$log" ] || printf 'date\ttarget\tseconds\texecutions\tfindings\n' > "$log"
status=0
for target in "$@"; do
  bin=$build/fuzz_$target
  [ -x "$bin" ] || { echo "$bin: not built (make fuzz-build)" >&2; exit 2; }
  mkdir -p "$build/corpus/$target" "$build/findings/$target"
  before=$(ls "$build/findings/$target" | wc -l)
  out=$build/findings/$target.log
  echo "== $target: $seconds s"
  start=$(date +%s)
  # One process, one worker: fuzzing shares the machine with everything else (nice).
  nice -n 10 "$bin" "$build/corpus/$target" "fuzz/corpus/$target" \
    -dict="fuzz/dict/$target.dict" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
    -max_len=16384 -artifact_prefix="$build/findings/$target/" -print_final_stats=1 \
    > "$out" 2>&1
  rc=$?
  elapsed=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
  found=$(( $(ls "$build/findings/$target" | wc -l) - before ))
  printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$target" "$elapsed" "${execs:-?}" \
    "$found" >> "$log"
  grep -E '^#[0-9]+ +DONE|cov:' "$out" | tail -1
  if [ $rc -ne 0 ] || [ "$found" -gt 0 ]; then
    status=1
    echo "$target: FOUND a problem (exit $rc); log: $out"
    grep -E 'ERROR: |SUMMARY: |Test unit written to' "$out" | head -5
    echo "  reproduce: $bin <file>; once fixed, keep the input as a regression:"
    echo "  cp <file> tests/data/fuzz_regressions/$target/"
  fi
done
exit $status
