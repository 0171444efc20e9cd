#!/usr/bin/env bash
# One training call of the natural model on a GPU machine (models/natural; scripts/train_natural).
#
#   scripts/gpu-train-natural.sh prepare     on the development machine: builds the CUDA vortex
#       and the GPU tests of teacher forcing from a checkout of HEAD at /tmp/vortex-natural-src
#       (the tests read their data from the directory they were built from; a call links that
#       path to its copy of the repository) and packs what a call carries, small enough to travel with the repository and a checkpoint
#       (the GPU machine's limit is 64 MiB): .carry/natural/bin/vortex (stripped), the shared
#       libraries it needs in .carry/natural/lib, the test binaries in .carry/natural/tests.tar.xz.
#
#   CONFIG=scripts/train_natural/runs/1_pretrain.json [INIT=DIR] [MINUTES=6.5] [CHECKS=1] \
#     [VORTEX=.carry/natural/bin/vortex] OUT=DIR scripts/gpu-train-natural.sh
#
# CHECKS=1 first runs the GPU tests of teacher forcing and records the transformers perplexity
# reference (scripts/make_perplexity_reference.py) as $OUT/perplexity_reference.json.
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
TESTS="test_cuda_sampling test_cuda_sparse_runner"
SRC=/tmp/vortex-natural-src
if [ "${1:-}" = prepare ]; then
  git worktree remove --force "$SRC" 2>/dev/null || rm -rf "$SRC"
  git worktree prune && git worktree add --detach "$SRC" HEAD >/dev/null
  build=$SRC/build
  cmake -S "$SRC" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVORTEX_CUDA=ON \
    -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
  # shellcheck disable=SC2086
  cmake --build "$build" -j "$(nproc)" --target vortex $TESTS
  rm -rf .carry/natural && mkdir -p .carry/natural/bin .carry/natural/lib /tmp/natural_tests/bin
  cp "$build/vortex" .carry/natural/bin/ && strip .carry/natural/bin/vortex
  for t in $TESTS; do cp "$build/$t" /tmp/natural_tests/bin/ && strip "/tmp/natural_tests/bin/$t"; done
  tar -C /tmp/natural_tests -cJf .carry/natural/tests.tar.xz .
  rm -rf /tmp/natural_tests
  ldd "$build/vortex" | awk '{print $3}' |
    grep -E 'pcre2|utf8proc|httplib|ssl|crypto|libz|brotli|sqlite' | xargs -I{} cp -L {} .carry/natural/lib/
  du -sh .carry/natural
  exit 0
fi
: "${CONFIG:?CONFIG=scripts/train_natural/runs/<run>.json}"
OUT=${OUT:-$PWD/natural-results}
VORTEX=${VORTEX:-.carry/natural/bin/vortex}
MINUTES=${MINUTES:-6.5}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/.carry/natural/lib:$PWD/.carry/gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ "${CHECKS:-0}" = 1 ]; then
  checks=/tmp/natural_checks
  rm -rf "$checks" && mkdir -p "$checks" && tar -C "$checks" -xJf .carry/natural/tests.tar.xz
  # The test binaries read their data from the directory they were built from: link it here.
  [ -e "$SRC" ] || ln -s "$PWD" "$SRC"
  { for t in $TESTS; do echo "== $t"; "$checks/bin/$t" 2>&1 | tail -25; done; } |
    tee "$OUT/checks.log" || true
  "$PY" scripts/make_perplexity_reference.py --model tests/data/models/tiny-qwen3 \
    --text tests/data/perplexity/gpl-3.txt --out "$OUT/perplexity_reference.json" \
    --backend transformers --vortex "$VORTEX" 2>&1 | tail -20 | tee -a "$OUT/checks.log" || true
fi
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
