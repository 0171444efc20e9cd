// The decoder ops of model/decoder_backend.h on the CPU: f32 activations, the projections packed
// once for the GEMM kernels, the paged KV cache, and the flows' hooks (summarize after the KV
// append, page selection before attention). The CPU runner plans a step here, runs the model's
// architecture over it and reads the logits.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "engine/cpu/cpu_sparse_attention.h"
#include "engine/scheduler.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/linear.h"
#include "kv/kv_cache.h"
#include "model/decoder_backend.h"
#include "model/model_config.h"
#include "model/model_weights.h"

namespace vortex {

class CpuBackend final : public DecoderBackend {
 public:
  // Keeps references to the config, the weights and the cache, which must outlive it.
  CpuBackend(const ModelConfig& config, const ModelWeights& weights, KvCache& cache);

  // By Request::flow; empty: dense attention; null: a flow removed while serving.
  std::vector<std::unique_ptr<CpuSparseAttention>>& flows() { return flows_; }
  const std::vector<std::unique_ptr<CpuSparseAttention>>& flows() const { return flows_; }
  using AttentionObserver =
      std::function<void(int32_t layer, const float* q, const cpu::PagedKv& kv,
                         const std::vector<cpu::AttentionSeq>& seqs)>;
  void set_attention_observer(AttentionObserver observer) { observer_ = std::move(observer); }

  // The step's inputs, flattened over the batch (pages must already be reserved in each
  // request's block table); the flows look at the step.
  void plan(const std::vector<ScheduledWork>& work);
  // After the architecture's forward pass: [rows that sample, vocab], in the order of `work`.
  const std::vector<float>& logits_out() const { return logits_; }

  void embed() override;
  void add_rms_norm(int32_t layer, LayerTensor norm) override;
  void linear(int32_t layer, Projection projection) override;
  void qkv_rope_append(int32_t layer, bool qk_norm) override;
  void flow_summarize(int32_t layer) override;
  void attention(int32_t layer) override;
  void swiglu() override;
  void logits() override;
  // Sampling needs each request's parameters and generator: the CPU runner samples from
  // logits_out() itself, so this op only checks that the logits are there.
  void sample() override;

 private:
  cpu::PagedKv layer_kv(int32_t layer) const;
  const Tensor* bias(int32_t layer, LayerTensor role) const;

  const ModelConfig& config_;
  const ModelWeights& weights_;
  KvCache& cache_;
  // The projections repacked once for the GEMM kernels (a copy beside the stored weights).
  struct PackedLayer {
    cpu::PackedWeight q, k, v, o, gate, up, down;
  };
  std::vector<PackedLayer> packed_;
  cpu::PackedWeight lm_head_;
  std::vector<float> inv_freq_;
  std::vector<std::unique_ptr<CpuSparseAttention>> flows_;
  AttentionObserver observer_;

  // The step's inputs.
  int64_t T_ = 0;
  std::vector<int32_t> tokens_, positions_, kv_pages_, kv_slots_, sample_rows_;
  struct SeqView {
    int32_t q_begin, q_len, kv_len;
    const std::vector<int32_t>* pages;
  };
  std::vector<SeqView> seqs_;

  // Activations, sized for the step's T tokens. qkv is kept as three arrays (q, k, v) and
  // gate_up as two: the GEMMs write each directly.
  bool delta_pending_ = false;
  std::vector<float> x_, h_, q_, k_, v_, attn_, delta_, gate_, up_, last_, logits_;
};

}  // namespace vortex
