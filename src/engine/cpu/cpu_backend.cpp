#include "engine/cpu/cpu_backend.h"

#include <chrono>
#include <cmath>

#include "core/error.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"

namespace vortex {

CpuBackend::CpuBackend(const ModelConfig& config, const ModelWeights& weights, KvCache& cache)
    : config_(config),
      weights_(weights),
      cache_(cache),
      inv_freq_(cpu::rope_inv_freq(config.head_dim, config.rope)) {
  using enum LayerTensor;
  packed_.reserve(weights_.layers.size());
  for (const LayerWeights& l : weights_.layers) {
    packed_.push_back(
        {cpu::PackedWeight(l[kQProj], "q_proj"), cpu::PackedWeight(l[kKProj], "k_proj"),
         cpu::PackedWeight(l[kVProj], "v_proj"), cpu::PackedWeight(l[kOProj], "o_proj"),
         cpu::PackedWeight(l[kGateProj], "gate_proj"), cpu::PackedWeight(l[kUpProj], "up_proj"),
         cpu::PackedWeight(l[kDownProj], "down_proj")});
  }
  lm_head_ = cpu::PackedWeight(weights_.lm_head, "lm_head");
}

void CpuBackend::plan(const std::vector<ScheduledWork>& work) {
  const int32_t P = cache_.geometry().page_size;
  tokens_.clear();
  positions_.clear();
  kv_pages_.clear();
  kv_slots_.clear();
  sample_rows_.clear();
  seqs_.clear();
  for (const ScheduledWork& w : work) {
    const Request& r = *w.request;
    const std::vector<int32_t>& pages = r.blocks.pages();
    VORTEX_ASSERT(static_cast<int64_t>(pages.size()) * P >= w.first + w.count);
    seqs_.push_back({static_cast<int32_t>(tokens_.size()), w.count, w.first + w.count, &pages});
    for (int32_t pos = w.first; pos < w.first + w.count; ++pos) {
      tokens_.push_back(r.token_at(pos));
      positions_.push_back(pos);
      kv_pages_.push_back(pages[pos / P]);
      kv_slots_.push_back(pos % P);
    }
    if (w.samples()) sample_rows_.push_back(static_cast<int32_t>(tokens_.size()) - 1);
  }
  T_ = static_cast<int64_t>(tokens_.size());
  const int64_t hidden = config_.hidden_size, inter = config_.intermediate_size;
  const int64_t qd = config_.q_dim(), kvd = config_.kv_dim();
  x_.resize(T_ * hidden);
  h_.resize(T_ * hidden);
  delta_.resize(T_ * hidden);
  q_.resize(T_ * qd);
  k_.resize(T_ * kvd);
  v_.resize(T_ * kvd);
  attn_.resize(T_ * qd);
  gate_.resize(T_ * inter);
  up_.resize(T_ * inter);
  logits_.clear();
  for (auto& f : flows_)
    if (f) f->begin_step(work);
}

cpu::PagedKv CpuBackend::layer_kv(int32_t layer) const {
  return {cache_.k_layer(layer), cache_.v_layer(layer), cache_.geometry().page_size,
          config_.num_kv_heads,  config_.head_dim,      cache_.page_stride(),
          cache_.head_stride()};
}

const Tensor* CpuBackend::bias(int32_t layer, LayerTensor role) const {
  const Tensor& b = weights_.layers[static_cast<size_t>(layer)][role];
  return b.defined() ? &b : nullptr;
}

void CpuBackend::embed() {
  cpu::embedding(tokens_.data(), T_, weights_.embed_tokens, x_.data());
  delta_pending_ = false;
}

void CpuBackend::add_rms_norm(int32_t layer, LayerTensor norm) {
  const int64_t n = T_ * config_.hidden_size;
  if (delta_pending_) {
    for (int64_t i = 0; i < n; ++i) x_[i] += delta_[i];
    delta_pending_ = false;
  }
  cpu::rms_norm(x_.data(), T_, config_.hidden_size,
                weights_.layers[static_cast<size_t>(layer)][norm], config_.rms_norm_eps, h_.data());
}

void CpuBackend::linear(int32_t layer, Projection projection) {
  using enum LayerTensor;
  const PackedLayer& pw = packed_[static_cast<size_t>(layer)];
  const int64_t hidden = config_.hidden_size;
  switch (projection) {
    case Projection::kQkv:
      cpu::linear(h_.data(), T_, hidden, pw.q, bias(layer, kQBias), q_.data());
      cpu::linear(h_.data(), T_, hidden, pw.k, bias(layer, kKBias), k_.data());
      cpu::linear(h_.data(), T_, hidden, pw.v, bias(layer, kVBias), v_.data());
      return;
    case Projection::kOutput:
      cpu::linear(attn_.data(), T_, config_.q_dim(), pw.o, bias(layer, kOBias), delta_.data());
      delta_pending_ = true;
      return;
    case Projection::kGateUp:
      cpu::linear(h_.data(), T_, hidden, pw.gate, nullptr, gate_.data());
      cpu::linear(h_.data(), T_, hidden, pw.up, nullptr, up_.data());
      return;
    case Projection::kDown:
      cpu::linear(gate_.data(), T_, config_.intermediate_size, pw.down, nullptr, delta_.data());
      delta_pending_ = true;
      return;
  }
}

void CpuBackend::qkv_rope_append(int32_t layer, bool qk_norm) {
  const LayerWeights& w = weights_.layers[static_cast<size_t>(layer)];
  const int32_t D = config_.head_dim, Hq = config_.num_heads, Hkv = config_.num_kv_heads;
  if (qk_norm) {
    cpu::rms_norm(q_.data(), T_ * Hq, D, w[LayerTensor::kQNorm], config_.rms_norm_eps, q_.data());
    cpu::rms_norm(k_.data(), T_ * Hkv, D, w[LayerTensor::kKNorm], config_.rms_norm_eps, k_.data());
  }
  cpu::apply_rope(q_.data(), T_, Hq, D, positions_.data(), inv_freq_);
  cpu::apply_rope(k_.data(), T_, Hkv, D, positions_.data(), inv_freq_);
  cpu::write_kv(layer_kv(layer), k_.data(), v_.data(), T_, kv_pages_.data(), kv_slots_.data());
}

void CpuBackend::flow_summarize(int32_t layer) {
  for (auto& f : flows_) {
    if (f && f->is_sparse_layer(layer)) f->summarize(layer, cache_);
  }
}

void CpuBackend::attention(int32_t layer) {
  const cpu::PagedKv kv = layer_kv(layer);
  const int32_t P = kv.page_size;
  std::vector<cpu::AttentionSeq> seqs;
  seqs.reserve(seqs_.size());
  for (const SeqView& s : seqs_) {
    seqs.push_back({s.q_begin, s.q_len, s.kv_len, s.pages->data(), (s.kv_len + P - 1) / P});
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(config_.head_dim));
  for (auto& f : flows_)
    if (f) f->select(layer, q_.data(), seqs);
  auto t0 = std::chrono::steady_clock::now();
  cpu::paged_attention(q_.data(), config_.num_heads, kv, seqs.data(),
                       static_cast<int32_t>(seqs.size()), scale, attn_.data());
  const double attention_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& f : flows_) {
    if (!f) continue;
    if (f->pure_decode_step()) f->stats().attention_seconds += attention_s;
    f->record_recall(layer, q_.data(), kv, seqs, scale);
  }
  if (observer_) observer_(layer, q_.data(), kv, seqs);
}

void CpuBackend::swiglu() {
  cpu::silu_mul(gate_.data(), up_.data(), T_ * config_.intermediate_size, gate_.data());
}

void CpuBackend::logits() {
  // Only the rows that sample need the final norm and the (large) vocabulary projection.
  const int64_t hidden = config_.hidden_size;
  const int64_t S = static_cast<int64_t>(sample_rows_.size());
  last_.resize(S * hidden);
  for (int64_t i = 0; i < S; ++i) {
    const int64_t row = sample_rows_[static_cast<size_t>(i)] * hidden;
    for (int64_t d = 0; d < hidden; ++d) {
      last_[i * hidden + d] = x_[row + d] + (delta_pending_ ? delta_[row + d] : 0.0f);
    }
  }
  cpu::rms_norm(last_.data(), S, hidden, weights_.final_norm, config_.rms_norm_eps, last_.data());
  logits_.resize(S * config_.vocab_size);
  cpu::linear(last_.data(), S, hidden, lm_head_, nullptr, logits_.data());
}

void CpuBackend::sample() {
  VORTEX_ASSERT(logits_.size() == sample_rows_.size() * static_cast<size_t>(config_.vocab_size));
}

}  // namespace vortex
