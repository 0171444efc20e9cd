#!/usr/bin/env bash
# The CUDA backend's check on a GPU machine, in one go: build, GPU tests, headline benchmarks.
#
#   scripts/gpu-check.sh prepare [BUILD_DIR]   on the development machine (Debian, no GPU):
#       builds the CUDA targets in BUILD_DIR (default build-cuda) and puts into .carry/gpu what
#       the GPU machine lacks: the build dependencies as a relocatable prefix (nlohmann/json,
#       CLI11, GoogleTest, PCRE2 and utf8proc static libraries with their pkg-config files, a
#       pkg-config) and the prebuilt binaries with the two shared libraries they need.
#   scripts/gpu-check.sh [run]                 on the GPU machine (CUDA 13, cmake, ninja, g++;
#       none of the -dev packages): builds from source against .carry/gpu/prefix (falling back to
#       the prebuilt binaries if that fails), runs the CUDA tests and the benchmarks, and writes
#       logs and results.txt under $OUT (default ./gpu-results).
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=.carry/gpu
mode=${1:-run}
# The GPU tests (tests/cuda/*_test.cpp) and the CPU test that compiles every flow with NVRTC.
GPU_TESTS="elementwise attention sampling runner page_selection flow_kernels sparse_runner"
TARGETS="vortex vortex_cuda_bench test_flow_cuda_codegen $(for t in $GPU_TESTS; do printf 'test_cuda_%s ' "$t"; done)"

if [ "$mode" = prepare ]; then
  set -e
  build=${2:-build-cuda}
  # PREBUILT=0 carries only the dependencies (the GPU machine builds from source anyway; the
  # prebuilt binaries are its fallback).
  if [ "${PREBUILT:-1}" != 0 ]; then
    cmake -S . -B "$build" -G Ninja -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
    # shellcheck disable=SC2086
    cmake --build "$build" -j "$(nproc)" --target $TARGETS
  fi
  rm -rf "$CARRY"
  mkdir -p "$CARRY/bin" "$CARRY/lib" "$CARRY/prefix/bin" "$CARRY/prefix/include" \
    "$CARRY/prefix/share/cmake" "$CARRY/prefix/lib/x86_64-linux-gnu/pkgconfig"
  cp "$build"/vortex "$build"/vortex_cuda_bench "$build"/test_cuda_* "$build"/test_flow_cuda_codegen \
    "$CARRY/bin/" 2>/dev/null || true
  rm -f "$CARRY"/bin/*.cmake
  cp -L /usr/lib/x86_64-linux-gnu/libpcre2-8.so.0 /usr/lib/x86_64-linux-gnu/libutf8proc.so.2 "$CARRY/lib/"
  # cpp-httplib is a shared library in Debian, with OpenSSL, zlib and brotli behind it: carried
  # for the prebuilt binaries and for linking the source build (LD_LIBRARY_PATH finds them).
  for so in libcpp-httplib.so.0.11 libssl.so.3 libcrypto.so.3 libz.so.1 libbrotlidec.so.1 \
      libbrotlienc.so.1 libbrotlicommon.so.1; do
    cp -L "/usr/lib/x86_64-linux-gnu/$so" "$CARRY/lib/"
  done
  p=$CARRY/prefix
  cp -r /usr/include/nlohmann /usr/include/CLI /usr/include/gtest /usr/include/gmock \
    /usr/include/pcre2.h /usr/include/utf8proc.h /usr/include/httplib.h /usr/include/brotli \
    /usr/include/openssl /usr/include/zlib.h /usr/include/zconf.h "$p/include/"
  # httplib.h includes OpenSSL's, zlib's and brotli's headers (it is built with all three).
  cp /usr/include/x86_64-linux-gnu/openssl/* "$p/include/openssl/"
  cp -r /usr/share/cmake/nlohmann_json /usr/share/cmake/CLI11 "$p/share/cmake/"
  mkdir -p "$p/lib/x86_64-linux-gnu/cmake"
  cp -r /usr/lib/x86_64-linux-gnu/cmake/GTest "$p/lib/x86_64-linux-gnu/cmake/"
  cp /usr/lib/x86_64-linux-gnu/libgtest*.a /usr/lib/x86_64-linux-gnu/libgmock*.a \
    /usr/lib/x86_64-linux-gnu/libpcre2-8.a /usr/lib/x86_64-linux-gnu/libutf8proc.a \
    "$p/lib/x86_64-linux-gnu/"
  for pc in libpcre2-8 libutf8proc; do
    sed 's|^prefix=.*|prefix=${pcfiledir}/../../..|' \
      /usr/lib/x86_64-linux-gnu/pkgconfig/$pc.pc >"$p/lib/x86_64-linux-gnu/pkgconfig/$pc.pc"
  done
  cp -L /usr/lib/x86_64-linux-gnu/libcpp-httplib.so "$p/lib/x86_64-linux-gnu/"
  cat >"$p/lib/x86_64-linux-gnu/pkgconfig/cpp-httplib.pc" <<'PC'
prefix=${pcfiledir}/../../..
includedir=${prefix}/include
libdir=${prefix}/lib/x86_64-linux-gnu
Name: cpp-httplib
Description: cpp-httplib, carried (its OpenSSL, zlib and brotli are in .carry/gpu/lib)
Version: 0.11.4
Libs: -L${libdir} -lcpp-httplib
Cflags: -I${includedir} -DCPPHTTPLIB_OPENSSL_SUPPORT -DCPPHTTPLIB_ZLIB_SUPPORT -DCPPHTTPLIB_BROTLI_SUPPORT
PC
  cp /usr/bin/pkgconf "$p/bin/pkgconf.bin"
  cp -L /lib/x86_64-linux-gnu/libpkgconf.so.3 "$p/bin/"
  cat >"$p/bin/pkg-config" <<'WRAP'
#!/usr/bin/env bash
here=$(cd "$(dirname "$0")" && pwd)
export PKG_CONFIG_LIBDIR="$here/../lib/x86_64-linux-gnu/pkgconfig"
LD_LIBRARY_PATH="$here${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/pkgconf.bin" "$@"
WRAP
  chmod +x "$p/bin/pkg-config"
  du -sh "$CARRY"
  exit 0
fi

OUT=${OUT:-$PWD/gpu-results}
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/results.txt"; }
: >"$OUT/results.txt"
log "date $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader \
  2>&1 | tee -a "$OUT/results.txt"

# 1. Build from source against the carried prefix.
bin=""
# The carried shared libraries: for linking the source build and for running either build.
export LD_LIBRARY_PATH="$PWD/$CARRY/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -d "$CARRY/prefix" ]; then
  p=$PWD/$CARRY/prefix
  start=$(date +%s)
  if cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$p" \
      -DPKG_CONFIG_EXECUTABLE="$p/bin/pkg-config" -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
      >"$OUT/build.log" 2>&1 &&
    cmake --build build-gpu -j "$(nproc)" --target $TARGETS >>"$OUT/build.log" 2>&1; then
    bin=build-gpu
    log "source build on the GPU machine: ok in $(($(date +%s) - start)) s"
  else
    log "source build on the GPU machine FAILED (see build.log); using the prebuilt binaries"
    tail -20 "$OUT/build.log"
  fi
fi
[ -z "$bin" ] && bin=$CARRY/bin

# 2. GPU tests.
status=0
: >"$OUT/tests.log"
for t in ${ONLY_TESTS:-$(for t in $GPU_TESTS; do printf 'cuda_%s ' "$t"; done) flow_cuda_codegen}; do
  if "$bin/test_$t" >"$OUT/test.tmp" 2>&1; then
    log "test_$t: $(grep -E '^\[  PASSED  \]' "$OUT/test.tmp")"
  else
    status=1
    log "test_$t: FAILED"
    grep -E -A4 '^\[  FAILED  \]|Failure|error' "$OUT/test.tmp" | head -40 | tee -a "$OUT/results.txt"
  fi
  cat "$OUT/test.tmp" >>"$OUT/tests.log"
done
rm -f "$OUT/test.tmp"

# 2b. Serving on the GPU, with the CPU build's client tests (tiny checkpoint): the SGLang-style
# client against a flow server (greedy ids equal `vortex generate --device cuda --flow`), and the
# bounded load test against a server of two flows, their requests (one with per-request budgets)
# mixed with dense ones in the same batches.
if [ -z "${SKIP_SERVE:-}" ]; then
  serve=(python3 tests/server/with_server.py "$bin/vortex" tests/data/models/tiny-qwen3 --device cuda)
  if VORTEX_BINARY=$bin/vortex VORTEX_GENERATE_ARGS="--page-size 4 --device cuda" \
      VORTEX_GENERATE_FLOW=flows/quest.py VORTEX_GENERATE_FLOW_ARGS="--topk-ratio 0.25" \
      "${serve[@]}" --flow flows/quest.py --topk-ratio 0.25 --page-size 4 -- \
      python3 tests/server/sglang_client_test.py >"$OUT/serve_sglang.log" 2>&1; then
    log "serve (cuda): SGLang-style client with a flow: ok"
  else
    status=1
    log "serve (cuda): SGLang-style client with a flow: FAILED"
    tail -30 "$OUT/serve_sglang.log" | tee -a "$OUT/results.txt"
  fi
  if "${serve[@]}" --kv-pages 256 --max-batch 16 --max-waiting 32 --flow flows/block_topk.py \
      --flow flows/quest.py -- python3 tests/server/load_test.py >"$OUT/serve_load.log" 2>&1; then
    log "serve (cuda): load test, two flows and dense: ok ($(tail -1 "$OUT/serve_load.log"))"
  else
    status=1
    log "serve (cuda): load test, two flows and dense: FAILED"
    tail -30 "$OUT/serve_load.log" | tee -a "$OUT/results.txt"
  fi
fi

# 3. Benchmarks: kernels and the model through the runner, then `vortex bench` end to end.
"$bin/vortex_cuda_bench" ${BENCH_ARGS:-} >"$OUT/bench.log" 2>&1 || status=1
grep -v '^JSON' "$OUT/bench.log" | tee -a "$OUT/results.txt"
# Decode-attention pipeline shapes (tile tokens x stages), for tuning.
for v in ${DECODE_VARIANTS:-}; do
  echo "-- --decode-kernel $v" | tee -a "$OUT/results.txt"
  "$bin/vortex_cuda_bench" --only decode --decode-kernel "$v" 2>&1 | grep decode_attention |
    grep -v '^JSON' | tee -a "$OUT/results.txt"
done
# One profile of the decode-attention kernel (B32 x 16K), when NCU=1.
if [ -n "${NCU:-}" ] && command -v ncu >/dev/null; then
  ncu --kernel-name regex:decode_split --launch-skip 2 --launch-count 1 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
    --section WarpStateStats --section SchedulerStats --section LaunchStats \
    "$bin/vortex_cuda_bench" --only decode1 >"$OUT/ncu_decode.txt" 2>&1 || true
  grep -E "Throughput|Duration|Stall|Occupancy|Registers|Shared Memory|Warp Cycles|Eligible|Issued" \
    "$OUT/ncu_decode.txt" | head -40 | tee -a "$OUT/results.txt"
fi
if [ -z "${SKIP_E2E:-}" ]; then
  # Output long enough that most decode steps run with the whole batch.
  "$bin/vortex" bench --model qwen3-1.7b --random-weights --device cuda --batch 32 \
    --input-len 16384 --output-len 128 --max-step-tokens 16384 --json >"$OUT/e2e_decode.json" \
    2>>"$OUT/e2e.log" || status=1
  log "vortex bench decode 32 x 16K: $(head -c 1500 "$OUT/e2e_decode.json")"
  "$bin/vortex" bench --model qwen3-1.7b --random-weights --device cuda --batch 4 \
    --input-len 8192 --output-len 4 --max-step-tokens 8192 --json >"$OUT/e2e_prefill.json" \
    2>>"$OUT/e2e.log" || status=1
  log "vortex bench prefill 4 x 8K: $(head -c 1500 "$OUT/e2e_prefill.json")"
fi
if [ -z "${SKIP_SPARSE:-}" ]; then
  # Issue 6's headline: flows against full attention in one process on the same workload.
  "$bin/vortex" bench --model qwen3-1.7b --random-weights --device cuda --batch 32 \
    --input-len 16384 --output-len 256 --max-step-tokens 16384 --compare-full \
    --flow flows/block_topk.py --flow flows/quest.py --topk-ratio 0.0625 --sink-pages 1 \
    --recent-pages 2 --dense-layers 0 ${SPARSE_ARGS:-} >"$OUT/e2e_sparse.txt" 2>>"$OUT/e2e.log" || status=1
  log "vortex bench sparse 32 x 16K:"
  tee -a "$OUT/results.txt" <"$OUT/e2e_sparse.txt"
fi
if [ -n "${LONG_GEN:-}" ]; then
  # The long-generation shape (AIME-like): short prompts, LONG_GEN generated tokens.
  "$bin/vortex" bench --model qwen3-1.7b --random-weights --device cuda --batch 32 \
    --input-len 1024 --output-len "$LONG_GEN" --compare-full --flow flows/block_topk.py \
    --topk-ratio 0.0625 --sink-pages 1 --recent-pages 2 --dense-layers 0 \
    >"$OUT/e2e_long.txt" 2>>"$OUT/e2e.log" || status=1
  log "vortex bench long generation 32 x (1K + $LONG_GEN):"
  tee -a "$OUT/results.txt" <"$OUT/e2e_long.txt"
fi
log "exit status $status"
exit $status
