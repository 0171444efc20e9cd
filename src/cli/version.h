// The version and build description shared by `vortex --version` and `vortex info`.
#pragma once

#include <string>

namespace vortex::cli {

inline constexpr const char* kVersion = "0.1.0";
#ifdef VORTEX_WITH_CUDA
inline constexpr bool kCudaBuilt = true;
#else
inline constexpr bool kCudaBuilt = false;
#endif

// "g++ 12.2.0, Release, CPU kernels for baseline/avx2/avx512, CUDA backend built".
std::string build_summary();
// The text of `vortex --version`: the version, then the CPU kernel path this CPU gets.
std::string version_text();
// The CPU's model name from /proc/cpuinfo ("unknown" where it has none).
std::string cpu_model_name();

}  // namespace vortex::cli
