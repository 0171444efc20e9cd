#include "kernels/cpu/cpu_isa.h"

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace vortex::cpu {

std::string_view cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kBaseline:
      return "baseline";
    case CpuIsa::kAvx2:
      return "avx2";
    case CpuIsa::kAvx512:
      return "avx512";
  }
  return "?";
}

std::string_view cpu_isa_description(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kBaseline:
      return "baseline (x86-64 SSE2, 128-bit vectors, no FMA)";
    case CpuIsa::kAvx2:
      return "avx2 (x86-64-v3: AVX2 + FMA + F16C, 256-bit vectors)";
    case CpuIsa::kAvx512:
      return "avx512 (x86-64-v4: AVX-512 F/BW/DQ/VL, 512-bit vectors)";
  }
  return "?";
}

bool cpu_supports(CpuIsa isa) {
  // libgcc's checks include the OS side (XGETBV: the kernel saves the ymm/zmm state).
  __builtin_cpu_init();
  switch (isa) {
    case CpuIsa::kBaseline:
      return true;
    case CpuIsa::kAvx2:
      return __builtin_cpu_supports("x86-64-v3");
    case CpuIsa::kAvx512:
      return __builtin_cpu_supports("x86-64-v4");
  }
  return false;
}

std::vector<CpuIsa> supported_cpu_isas() {
  std::vector<CpuIsa> out;
  for (CpuIsa isa : {CpuIsa::kBaseline, CpuIsa::kAvx2, CpuIsa::kAvx512})
    if (cpu_supports(isa)) out.push_back(isa);
  return out;
}

namespace {

struct Choice {
  CpuIsa isa;
  bool forced;
};

std::string supported_list() {
  std::string out;
  for (CpuIsa isa : supported_cpu_isas()) {
    if (!out.empty()) out += ", ";
    out += cpu_isa_name(isa);
  }
  return out;
}

Choice choose() {
  const char* env = std::getenv("VORTEX_CPU_ISA");
  if (env == nullptr || *env == '\0' || std::string_view(env) == "auto")
    return {supported_cpu_isas().back(), false};
  for (CpuIsa isa : {CpuIsa::kBaseline, CpuIsa::kAvx2, CpuIsa::kAvx512}) {
    if (cpu_isa_name(isa) != env) continue;
    if (!cpu_supports(isa))
      fail_usage("VORTEX_CPU_ISA=", env, ": this CPU cannot run the ", env,
                 " kernels (supported: ", supported_list(), ")");
    return {isa, true};
  }
  fail_usage("VORTEX_CPU_ISA=", env,
             " is not a CPU path (expected auto, baseline, avx2 or avx512)");
}

const Choice& choice() {
  static const Choice c = choose();
  return c;
}

}  // namespace

CpuIsa active_cpu_isa() {
  return choice().isa;
}

bool cpu_isa_forced() {
  return choice().forced;
}

}  // namespace vortex::cpu
