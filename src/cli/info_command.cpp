// `vortex info`: what this binary is and what it will run on: version, build, the CPU and the
// kernel path chosen for it (and the paths it could force with VORTEX_CPU_ISA), threads, and
// whether the CUDA backend is built and finds a GPU.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/version.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_isa.h"

#ifdef VORTEX_WITH_CUDA
#include "core/cuda/cuda_util.h"
#endif

namespace vortex::cli {
namespace {

// The GPU the CUDA backend would use, or why there is none.
std::string gpu_summary(bool* usable) {
  *usable = false;
#ifdef VORTEX_WITH_CUDA
  try {
    std::string name = require_cuda_device();
    *usable = true;
    return name;
  } catch (const Error& e) {
    return e.what();
  }
#else
  return "CUDA backend not built (configure where nvcc is found)";
#endif
}

}  // namespace

Action add_info_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "info", "Show the build, the CPU kernel path chosen for this CPU, threads and GPU");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "one JSON object instead of text");
  return [json]() {
    const cpu::CpuIsa active = cpu::active_cpu_isa();
    std::string supported;
    nlohmann::json paths = nlohmann::json::array();
    for (cpu::CpuIsa isa : cpu::supported_cpu_isas()) {
      paths.push_back(std::string(cpu::cpu_isa_name(isa)));
      supported += (supported.empty() ? "" : ", ") + std::string(cpu::cpu_isa_name(isa));
    }
    bool gpu_ok = false;
    const std::string gpu = gpu_summary(&gpu_ok);
    const int threads = ThreadPool::global().num_threads();
    if (*json) {
      nlohmann::json j = {{"version", kVersion},
                          {"build", build_summary()},
                          {"cpu", cpu_model_name()},
                          {"cpu_path", std::string(cpu::cpu_isa_name(active))},
                          {"cpu_path_forced", cpu::cpu_isa_forced()},
                          {"cpu_paths_supported", paths},
                          {"threads", threads},
                          {"cuda_built", kCudaBuilt},
                          {"gpu_usable", gpu_ok},
                          {"gpu", gpu}};
      std::printf("%s\n", j.dump().c_str());
      return 0;
    }
    std::printf("vortex %s\n", kVersion);
    std::printf("build:        %s\n", build_summary().c_str());
    std::printf("cpu:          %s\n", cpu_model_name().c_str());
    std::printf("cpu kernels:  %s%s\n", std::string(cpu::cpu_isa_description(active)).c_str(),
                cpu::cpu_isa_forced() ? ", forced by VORTEX_CPU_ISA" : "");
    std::printf("cpu paths:    %s (VORTEX_CPU_ISA=baseline|avx2|avx512 forces one)\n",
                supported.c_str());
    std::printf("threads:      %d (VORTEX_THREADS sets them)\n", threads);
    std::printf("gpu:          %s\n", gpu.c_str());
    return 0;
  };
}

}  // namespace vortex::cli
