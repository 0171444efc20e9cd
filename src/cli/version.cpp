#include "cli/version.h"

#include <fstream>

#include "core/error.h"
#include "kernels/cpu/cpu_isa.h"

namespace vortex::cli {

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon != std::string::npos)
      return printable(line.substr(line.find_first_not_of(' ', colon + 1)));
  }
  return "unknown";
}

std::string build_summary() {
  std::string s;
#if defined(__clang__)
  s = str_cat("clang ", __clang_major__, ".", __clang_minor__, ".", __clang_patchlevel__);
#elif defined(__GNUC__)
  s = str_cat("g++ ", __GNUC__, ".", __GNUC_MINOR__, ".", __GNUC_PATCHLEVEL__);
#endif
#ifdef NDEBUG
  s += ", optimised";
#else
  s += ", debug";
#endif
  s += ", CPU kernels for baseline, avx2 and avx512";
#ifdef VORTEX_NATIVE_BUILD
  s += " (the rest built for the building machine's CPU: VORTEX_NATIVE)";
#endif
  s += kCudaBuilt ? ", CUDA backend built" : ", no CUDA backend";
  return s;
}

std::string version_text() {
  std::string text = str_cat("vortex ", kVersion, "\n");
  try {
    const cpu::CpuIsa isa = cpu::active_cpu_isa();
    text += str_cat("cpu kernels: ", cpu::cpu_isa_description(isa),
                    cpu::cpu_isa_forced() ? ", forced by VORTEX_CPU_ISA" : "");
  } catch (const Error& e) {
    text += str_cat("cpu kernels: ", e.what());
  }
  return text;
}

}  // namespace vortex::cli
