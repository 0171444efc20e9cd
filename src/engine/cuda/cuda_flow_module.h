// A flow's generated CUDA kernels (flow/codegen), compiled with NVRTC for the current GPU and
// loaded for launching: summarize once per batch of filled pages, score as its sequence of
// per-page and per-row kernels. Loading goes through the CUDA runtime's library API (no libcuda
// at link time), and launches are plain cudaLaunchKernel calls, so they can be captured in CUDA
// graphs.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "flow/codegen/cuda_codegen.h"
#include "flow/codegen/cuda_flow_abi.h"
#include "flow/ir.h"

namespace vortex {

// The NVRTC target of the current device: "sm_90a" for compute capability 9.0 (the
// architecture-specific variant from 9.0 up), "sm_80" for 8.0.
std::string current_cuda_arch();

class CudaFlowModule {
 public:
  // Generates, compiles (or takes from the disk cache) and loads the flow's kernels for the
  // geometry and the current device. cache_dir as in flow::NvrtcOptions ("" = the default);
  // options null: the defaults (RunnerOptions::flow_score_lanes sets them for the runner).
  // Throws vortex::Error naming the flow for generation, compilation and load failures.
  static CudaFlowModule make(const flow::FlowProgram& program, const flow::FlowGeometry& geometry,
                             const std::string& cache_dir = "",
                             const flow::CudaCodegenOptions* options = nullptr);

  CudaFlowModule(CudaFlowModule&& other) noexcept;
  CudaFlowModule& operator=(CudaFlowModule&& other) noexcept;
  CudaFlowModule(const CudaFlowModule&) = delete;
  CudaFlowModule& operator=(const CudaFlowModule&) = delete;
  ~CudaFlowModule();

  // summarize over grid (max_items, args.num_kv_heads, args.num_layers); blocks past
  // *args.num_items return at once. No launch when the flow stores no fields or max_items is 0.
  void launch_summarize(const flow::CudaSummarizeArgs& args, int max_items,
                        cudaStream_t stream) const;
  // Every score kernel in order: per-page kernels on per_page_grid blocks (the worklist is
  // grid-strided), per-row kernels on args.num_rows blocks.
  void launch_score(const flow::CudaScoreArgs& args, int per_page_grid, cudaStream_t stream) const;
  // The fused score-and-select kernel on args.num_rows blocks (cuda_flow_abi.h); only when
  // has_score_select().
  void launch_score_select(const flow::CudaScoreArgs& args, cudaStream_t stream) const;

  bool has_score_select() const { return score_select_ != nullptr; }

  int32_t field_floats() const { return source_.field_floats; }
  int32_t field_stride() const { return source_.field_stride; }
  int32_t state_floats() const { return source_.state_floats; }
  int32_t state_stride() const { return source_.state_stride; }
  int32_t page_scratch_floats() const { return source_.page_scratch_floats; }
  int32_t row_scratch_floats() const { return source_.row_scratch_floats; }
  const flow::CudaFlowSource& source() const { return source_; }
  const std::string& arch() const { return arch_; }
  bool from_cache() const { return from_cache_; }  // the CUBIN came from the disk cache

 private:
  CudaFlowModule() = default;

  flow::CudaFlowSource source_;
  std::string arch_;
  bool from_cache_ = false;
  cudaLibrary_t library_ = nullptr;
  cudaKernel_t summarize_ = nullptr;
  std::vector<std::pair<cudaKernel_t, flow::CudaKernelKind>> score_;
  cudaKernel_t score_select_ = nullptr;
};

}  // namespace vortex
