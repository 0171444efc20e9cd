// The CPU runner: one engine step (a flat batch of prefill chunks and decode tokens) is the
// model's architecture (model/architecture.h) run over the CPU backend's ops (cpu_backend.h),
// then sampling on the host. It owns the paged KV cache.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/cpu_sparse_attention.h"
#include "engine/model_runner.h"
#include "engine/scheduler.h"
#include "kv/kv_cache.h"
#include "model/architecture.h"
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
  using AttentionObserver = CpuBackend::AttentionObserver;
  void set_attention_observer(AttentionObserver observer) {
    backend_.set_attention_observer(std::move(observer));
  }

 private:
  const ModelConfig& config_;
  const ModelWeights& weights_;
  const Architecture& architecture_;
  KvCache cache_;
  CpuBackend backend_;
  std::vector<float> scratch_;  // sampling
};

}  // namespace vortex
