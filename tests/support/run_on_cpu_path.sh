#!/usr/bin/env bash
# Runs a test binary with the CPU kernels forced to one instruction-set path (VORTEX_CPU_ISA),
# so the default CTest run also covers the paths this CPU would not pick by itself. Exits 77
# (CTest: skipped) where the CPU cannot run that path.
#   run_on_cpu_path.sh ISA VORTEX_BINARY TEST_BINARY [ARGS...]
set -uo pipefail
isa=$1 vortex=$2
shift 2
if ! VORTEX_CPU_ISA="$isa" "$vortex" info >/dev/null 2>&1; then
  echo "this CPU cannot run the $isa kernels: skipped"
  exit 77
fi
VORTEX_CPU_ISA="$isa" exec "$@"
