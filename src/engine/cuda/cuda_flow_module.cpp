// Compiling, loading and launching a flow's generated kernels (see cuda_flow_module.h).
#include "engine/cuda/cuda_flow_module.h"

#include <algorithm>
#include <utility>

#include "core/cuda/cuda_util.h"
#include "core/error.h"
#include "flow/codegen/nvrtc_compiler.h"

namespace vortex {

std::string current_cuda_arch() {
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp prop{};
  check_cuda(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  std::string arch = "sm_" + std::to_string(prop.major) + std::to_string(prop.minor);
  if (prop.major >= 9) arch += "a";  // the architecture-specific target of this exact GPU
  return arch;
}

CudaFlowModule CudaFlowModule::make(const flow::FlowProgram& program,
                                    const flow::FlowGeometry& geometry,
                                    const std::string& cache_dir,
                                    const flow::CudaCodegenOptions* options) {
  CudaFlowModule m;
  m.source_ =
      flow::generate_cuda_flow(program, geometry, options ? *options : flow::CudaCodegenOptions{});
  m.arch_ = current_cuda_arch();
  flow::NvrtcOptions opt;
  opt.arch = m.arch_;
  opt.cache_dir = cache_dir;
  opt.display_name = program.filename + ".cu";
  flow::NvrtcResult compiled = flow::nvrtc_compile(m.source_.source, opt);
  m.from_cache_ = compiled.from_cache;
  cudaError_t err = cudaLibraryLoadData(&m.library_, compiled.cubin.data(), nullptr, nullptr, 0,
                                        nullptr, nullptr, 0);
  if (err != cudaSuccess) {
    cudaGetLastError();
    m.library_ = nullptr;
    fail(program.filename, ": cannot load the flow's CUDA kernels (", m.arch_,
         "): ", cudaGetErrorString(err));
  }
  auto kernel = [&](const std::string& name) {
    cudaKernel_t k = nullptr;
    cudaError_t e = cudaLibraryGetKernel(&k, m.library_, name.c_str());
    if (e != cudaSuccess) {
      cudaGetLastError();
      fail(program.filename, ": the flow's CUDA code has no kernel '", name,
           "': ", cudaGetErrorString(e));
    }
    return k;
  };
  if (!m.source_.summarize_kernel.empty()) m.summarize_ = kernel(m.source_.summarize_kernel);
  for (const flow::CudaScoreKernel& k : m.source_.score_kernels)
    m.score_.push_back({kernel(k.name), k.kind});
  if (!m.source_.select_kernel.empty()) m.score_select_ = kernel(m.source_.select_kernel);
  return m;
}

CudaFlowModule::CudaFlowModule(CudaFlowModule&& other) noexcept {
  *this = std::move(other);
}

CudaFlowModule& CudaFlowModule::operator=(CudaFlowModule&& other) noexcept {
  if (this == &other) return *this;
  if (library_) cudaLibraryUnload(library_);
  source_ = std::move(other.source_);
  arch_ = std::move(other.arch_);
  from_cache_ = other.from_cache_;
  library_ = std::exchange(other.library_, nullptr);
  summarize_ = std::exchange(other.summarize_, nullptr);
  score_ = std::move(other.score_);
  other.score_.clear();
  score_select_ = std::exchange(other.score_select_, nullptr);
  return *this;
}

CudaFlowModule::~CudaFlowModule() {
  if (library_) cudaLibraryUnload(library_);
}

void CudaFlowModule::launch_summarize(const flow::CudaSummarizeArgs& args, int max_items,
                                      cudaStream_t stream) const {
  if (!summarize_ || max_items <= 0 || args.num_kv_heads <= 0 || args.num_layers <= 0) return;
  flow::CudaSummarizeArgs a = args;
  void* params[] = {&a};
  check_cuda(cudaLaunchKernel(
                 reinterpret_cast<const void*>(summarize_),
                 dim3(static_cast<unsigned>(max_items), static_cast<unsigned>(args.num_kv_heads),
                      static_cast<unsigned>(args.num_layers)),
                 dim3(flow::kCudaSummarizeThreads), params, 0, stream),
             "flow summarize launch");
}

void CudaFlowModule::launch_score(const flow::CudaScoreArgs& args, int per_page_grid,
                                  cudaStream_t stream) const {
  if (args.num_rows <= 0) return;
  flow::CudaScoreArgs a = args;
  void* params[] = {&a};
  for (const auto& [kernel, kind] : score_) {
    const bool per_page = kind == flow::CudaKernelKind::kPerPage;
    const unsigned grid = per_page ? static_cast<unsigned>(std::max(per_page_grid, 1))
                                   : static_cast<unsigned>(args.num_rows);
    const unsigned block = per_page ? flow::kCudaScorePageThreads : flow::kCudaScoreRowThreads;
    check_cuda(cudaLaunchKernel(reinterpret_cast<const void*>(kernel), dim3(grid), dim3(block),
                                params, 0, stream),
               per_page ? "flow score (per-page) launch" : "flow score (per-row) launch");
  }
}

void CudaFlowModule::launch_score_select(const flow::CudaScoreArgs& args,
                                         cudaStream_t stream) const {
  if (args.num_rows <= 0) return;
  if (!score_select_) fail("the flow has no fused score-and-select kernel");
  flow::CudaScoreArgs a = args;
  void* params[] = {&a};
  check_cuda(cudaLaunchKernel(reinterpret_cast<const void*>(score_select_),
                              dim3(static_cast<unsigned>(args.num_rows)),
                              dim3(flow::kCudaScoreSelectThreads), params, 0, stream),
             "flow score-and-select launch");
}

}  // namespace vortex
