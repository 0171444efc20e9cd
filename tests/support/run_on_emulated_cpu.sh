#!/usr/bin/env bash
# Runs a binary on an emulated CPU (qemu-user), to show that the default build works on CPUs
# older than the build machine's: `Haswell` has AVX2 but no AVX-512, `qemu64` only SSE2. Any
# instruction the emulated CPU lacks kills the process (SIGILL). First checks that Vortex picks
# the expected CPU path there. Exits 77 (CTest: skipped) without qemu-x86_64 (Debian qemu-user).
#   run_on_emulated_cpu.sh QEMU_CPU EXPECTED_PATH VORTEX_BINARY TEST_BINARY [ARGS...]
set -uo pipefail
cpu=$1 expected=$2 vortex=$3
shift 3
if ! command -v qemu-x86_64 >/dev/null; then
  echo "qemu-x86_64 not installed (apt-get install qemu-user): skipped"
  exit 77
fi
# TCG prints a warning per CPUID feature it cannot emulate; they are noise here.
quiet() { grep -v "TCG doesn't support requested feature" || true; }
info=$(qemu-x86_64 -cpu "$cpu" "$vortex" info --json 2>&1 | quiet)
if ! grep -q "\"cpu_path\":\"$expected\"" <<<"$info"; then
  echo "on an emulated $cpu CPU, vortex info reports: $info (expected cpu_path $expected)"
  exit 1
fi
qemu-x86_64 -cpu "$cpu" "$@" 2>&1 | quiet
exit "${PIPESTATUS[0]}"
