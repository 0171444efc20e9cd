// The decoder ops of model/decoder_backend.h on one CUDA GPU: bf16 weights (q|k|v and gate|up
// fused), f32 residual stream, cuBLASLt GEMMs and the kernels of kernels/cuda, each op enqueued
// on the runner's stream, so that a call of the architecture's forward pass is what a CUDA
// graph captures. Biases ride on the next kernel (q/k/v's on qkv_rope_append, o's on the next
// add_rms_norm); the flows' hooks run their generated kernels (cuda_sparse_flows.h), with a
// profiled step's parts marked on its timeline.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "engine/cuda/cuda_sparse_flows.h"
#include "engine/cuda/device_weights.h"
#include "engine/cuda/gemm.h"
#include "engine/cuda/step_plan.h"
#include "engine/cuda/step_timeline.h"
#include "engine/runner_options.h"
#include "kv/cuda/cuda_kv_cache.h"
#include "model/decoder_backend.h"
#include "model/model_config.h"
#include "model/model_weights.h"

namespace vortex {

class CudaBackend final : public DecoderBackend {
 public:
  // Uploads the weights. Keeps references to the config and the cache.
  CudaBackend(const ModelConfig& config, const ModelWeights& weights, const CudaKvCache& cache,
              cudaStream_t stream, const RunnerOptions& options);

  // Grows the activation buffers for steps of up to T tokens, S sampling rows and `workspace`
  // bytes of attention workspace; true when any buffer moved (graphs must be dropped first:
  // call with the stream idle).
  bool ensure_capacity(int64_t T, int64_t S, size_t workspace);
  int64_t token_capacity() const { return t_cap_; }
  int64_t sample_capacity() const { return s_cap_; }
  size_t workspace_capacity() const { return ws_cap_; }
  cuda::DecodeKernel decode_kernel() const { return decode_kernel_; }

  // Binds the next forward pass: its shape, its uploaded arrays, the flows (null: dense) and the
  // timeline of a profiled step (null: none).
  void bind(const StepShape& shape, const StepMetadata& meta, CudaSparseFlows* sparse,
            StepTimeline* timeline);

  // embed() also enqueues the flows' step plan; logits() first summarizes the pages of flows
  // that defer it to the end of the step (CudaFlowSelector::defers_summarize).
  void embed() override;
  void add_rms_norm(int32_t layer, LayerTensor norm) override;
  void linear(int32_t layer, Projection projection) override;
  void qkv_rope_append(int32_t layer, bool qk_norm) override;
  void flow_summarize(int32_t layer) override;
  void attention(int32_t layer) override;
  void swiglu() override;
  void logits() override;
  void sample() override;

  const DeviceWeights& weights() const { return w_; }
  // The sampled tokens of the last step on the device, [S] (cuda::SampleResult).
  const DeviceBuffer& results() const { return results_; }
  // Row i of the last step's logits [S, vocab] (f32).
  const float* logits_row(int64_t i) const;

 private:
  void begin(StepPart part);
  void end();
  const DeviceLayerWeights& layer(int32_t l) const { return w_.layers[static_cast<size_t>(l)]; }

  const ModelConfig& cfg_;
  const CudaKvCache& cache_;
  cudaStream_t stream_;
  cuda::DecodeKernel decode_kernel_;
  std::unique_ptr<Gemm> gemm_;
  DeviceWeights w_;
  DeviceBuffer inv_freq_;

  int64_t t_cap_ = 0, s_cap_ = 0;
  size_t ws_cap_ = 0;
  DeviceBuffer x_, h_, qkv_, q_, attn_, delta_, gate_up_, act_, hs_, logits_, sample_scratch_,
      results_, workspace_;

  // The bound step.
  StepShape shape_;
  const StepMetadata* meta_ = nullptr;
  CudaSparseFlows* sparse_ = nullptr;
  StepTimeline* timeline_ = nullptr;
  SparseStepMeta sparse_meta_;
  // What the next add_rms_norm adds to x: delta (pending) and its bias (o's), if any.
  bool delta_pending_ = false;
  const cuda::bf16_t* delta_bias_ = nullptr;
};

}  // namespace vortex
