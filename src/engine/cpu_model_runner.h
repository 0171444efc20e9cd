// The forward pass of a decoder-only transformer (Qwen3, Llama) on the CPU, over the paged KV
// cache: one call runs one engine step, i.e. a flat batch of prefill chunks and decode tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/cpu_sparse_attention.h"
#include "engine/model_runner.h"
#include "engine/scheduler.h"
#include "kernels/cpu/linear.h"
#include "kv/kv_cache.h"
#include "model/model_config.h"
#include "model/model_weights.h"

namespace vortex {

class CpuModelRunner : public ModelRunner {
 public:
  // Keeps a reference to the model, which must outlive the runner; owns the KV cache.
  CpuModelRunner(const LoadedModel& model, const KvGeometry& geometry, int32_t num_pages);

  std::vector<SampledToken> step(const std::vector<ScheduledWork>& work,
                                 const std::vector<SamplingRow>& rows) override;
  Device device() const override { return Device::kCpu; }
  double measure_bandwidth() override;
  size_t weight_bytes() const override;
  // Any number of flows, each request's rows by its own (or dense), in the same steps.
  void set_flows(std::vector<std::shared_ptr<const SparseAttentionConfig>> flows) override;
  bool supports_request_budgets() const override { return true; }
  bool supports_forced_tokens() const override { return true; }
  const SparseStats* sparse_stats(size_t flow = 0) const override;
  bool supports_flow_changes() const override { return true; }
  void add_flow(std::shared_ptr<const SparseAttentionConfig> flow, size_t index) override;
  void remove_flow(size_t index) override;
  void release_request(int64_t request_id) override;

  // Computes the step's tokens, writes their K/V into the cache (pages must already be reserved
  // in each request's block table), and returns the logits of the work items that sample
  // (samples() true), in the order they appear in `work`: [num_sampling, vocab], row-major.
  const std::vector<float>& forward(const std::vector<ScheduledWork>& work);
  KvCache& cache() { return cache_; }

  // Called in every layer of every step, after attention, with what attention read: q [T, Hq,
  // D] after RoPE, the layer's K/V cache (the step's tokens written) and the step's sequences
  // (their selected pages set where a flow selected). For recording decode traces; null: none.
  using AttentionObserver =
      std::function<void(int32_t layer, const float* q, const cpu::PagedKv& kv,
                         const std::vector<cpu::AttentionSeq>& seqs)>;
  void set_attention_observer(AttentionObserver observer) { observer_ = std::move(observer); }

 private:
  void attention_block(int32_t layer, int64_t T);
  void mlp_block(int32_t layer, int64_t T);
  void resize(int64_t T);

  const ModelConfig& config_;
  const ModelWeights& weights_;
  // The projections repacked once for the GEMM kernels (a copy beside the stored weights).
  struct PackedLayer {
    cpu::PackedWeight q, k, v, o, gate, up, down;
  };
  std::vector<PackedLayer> packed_;
  cpu::PackedWeight lm_head_;
  KvCache cache_;
  AttentionObserver observer_;
  std::vector<float> inv_freq_;
  // By Request::flow; empty: dense attention; null: a flow removed while serving.
  std::vector<std::unique_ptr<CpuSparseAttention>> flows_;

  // Per-step inputs, flattened over the batch.
  std::vector<int32_t> tokens_, positions_, kv_pages_, kv_slots_;
  std::vector<int32_t> sample_rows_;
  struct SeqView {
    int32_t q_begin, q_len, kv_len;
    const std::vector<int32_t>* pages;
  };
  std::vector<SeqView> seqs_;

  // Activations, sized for the step's T tokens.
  std::vector<float> x_, h_, q_, k_, v_, attn_, gate_, up_, logits_, last_, scratch_;
};

}  // namespace vortex
