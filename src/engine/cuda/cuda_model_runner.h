// The forward pass on one CUDA GPU (Hopper): bf16 weights and paged KV cache, f32 accumulation,
// cuBLASLt GEMMs and the kernels of kernels/cuda; sampling on the device, so only the sampled
// tokens and their logprobs come back. Steps made only of decode tokens are replayed from CUDA
// graphs captured per padded batch size.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/model_runner.h"
#include "engine/runner_options.h"

namespace vortex {

class CudaModelRunner : public ModelRunner {
 public:
  // Uploads the weights and allocates the KV cache (num_pages pages of bf16 K and V). Throws
  // vortex::Error if no usable GPU is found, cuBLASLt cannot be loaded or memory runs out.
  CudaModelRunner(const LoadedModel& model, const KvGeometry& geometry, int32_t num_pages,
                  const RunnerOptions& options = {});
  ~CudaModelRunner() override;

  std::vector<SampledToken> step(const std::vector<ScheduledWork>& work,
                                 const std::vector<SamplingRow>& rows) override;
  Device device() const override { return Device::kCuda; }
  bool supports_forced_tokens() const override { return true; }
  // Device-to-device copy bandwidth of this GPU (bytes read + written per second).
  double measure_bandwidth() override;
  // bf16 bytes of every layer, the final norm and lm_head (the embedding table is not read
  // whole).
  size_t weight_bytes() const override;
  // Runs decode attention sparse as the flows say (a request's Request::flow picks one, or dense;
  // they share every batch: cuda_sparse_flows.h): their kernels are generated and compiled with
  // NVRTC for this GPU (cached on disk). Throws vortex::Error naming the flow on failure.
  void set_flows(std::vector<std::shared_ptr<const SparseAttentionConfig>> flows) override;
  // Each decode row's budget is uploaded with the step (the device planner reads it per row).
  bool supports_request_budgets() const override { return true; }
  // Captures the CUDA graph of every padded decode batch size up to max_batch (after one eager
  // run of each), with buffers sized for steps of up to max_step_tokens tokens, so that serving
  // never stops to capture one.
  void warm_up(int32_t max_batch, int32_t max_step_tokens) override;
  const SparseStats* sparse_stats(size_t flow = 0) const override;
  // GPU time per part of the profiled decode steps (every CudaRunnerOptions::profile_every-th).
  const SparseStepProfile* sparse_profile() const override;

  // K and V of one (layer, page, KV head) block as f32, [page_size, head_dim] each.
  void read_kv_block(int32_t layer, int32_t page, int32_t kv_head, float* k, float* v) const;

  struct Stats {
    int64_t eager_steps = 0;
    int64_t graph_steps = 0;
    int64_t graphs_captured = 0;
  };
  const Stats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vortex
