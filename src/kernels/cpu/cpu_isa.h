// Which vector instruction set the CPU kernels run on. One binary carries every path; the best
// one the running CPU supports is chosen once, at first use, and VORTEX_CPU_ISA can force a
// lower one (for testing the paths an AVX-512 machine would otherwise never take).
#pragma once

#include <string_view>
#include <vector>

namespace vortex::cpu {

enum class CpuIsa {
  kBaseline,  // any x86-64 (SSE2, 4-lane vectors, no FMA)
  kAvx2,      // x86-64-v3: AVX2 + FMA + F16C, 16 ymm registers
  kAvx512,    // x86-64-v4: AVX-512 F/BW/DQ/VL, 32 zmm registers
};

// "baseline", "avx2", "avx512": the names VORTEX_CPU_ISA accepts.
std::string_view cpu_isa_name(CpuIsa isa);
// A line for `vortex info`: the name plus what it means ("avx2 (AVX2 + FMA + F16C, 256-bit)").
std::string_view cpu_isa_description(CpuIsa isa);

// The paths this CPU (and its operating system) can run, lowest first; baseline is always there.
std::vector<CpuIsa> supported_cpu_isas();
bool cpu_supports(CpuIsa isa);

// The path the kernels use: VORTEX_CPU_ISA if set (it must name a supported path; an unknown
// name or one this CPU lacks throws vortex::Error with exit code 2), else the best supported one.
// Decided once per process.
CpuIsa active_cpu_isa();
// True when VORTEX_CPU_ISA chose the path.
bool cpu_isa_forced();

}  // namespace vortex::cpu
