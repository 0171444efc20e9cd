#include "engine/cpu_model_runner.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"

namespace vortex {

CpuModelRunner::CpuModelRunner(const LoadedModel& model, const KvGeometry& geometry,
                               int32_t num_pages)
    : config_(model.config),
      weights_(model.weights),
      cache_(geometry, num_pages),
      inv_freq_(cpu::rope_inv_freq(model.config.head_dim, model.config.rope)),
      scratch_(static_cast<size_t>(model.config.vocab_size)) {
  VORTEX_ASSERT(geometry.num_layers == config_.num_layers &&
                geometry.num_kv_heads == config_.num_kv_heads &&
                geometry.head_dim == config_.head_dim);
  packed_.reserve(weights_.layers.size());
  for (const LayerWeights& l : weights_.layers) {
    packed_.push_back({cpu::PackedWeight(l.q_proj, "q_proj"), cpu::PackedWeight(l.k_proj, "k_proj"),
                       cpu::PackedWeight(l.v_proj, "v_proj"), cpu::PackedWeight(l.o_proj, "o_proj"),
                       cpu::PackedWeight(l.gate_proj, "gate_proj"),
                       cpu::PackedWeight(l.up_proj, "up_proj"),
                       cpu::PackedWeight(l.down_proj, "down_proj")});
  }
  lm_head_ = cpu::PackedWeight(weights_.lm_head, "lm_head");
}

void CpuModelRunner::set_flows(std::vector<std::shared_ptr<const SparseAttentionConfig>> flows) {
  flows_.clear();
  for (size_t i = 0; i < flows.size(); ++i) {
    flows_.push_back(std::make_unique<CpuSparseAttention>(
        std::move(flows[i]), static_cast<int32_t>(i), cache_.geometry(), cache_.num_pages(),
        config_.num_heads));
  }
}

void CpuModelRunner::add_flow(std::shared_ptr<const SparseAttentionConfig> flow, size_t index) {
  VORTEX_ASSERT(index >= flows_.size());
  auto added = std::make_unique<CpuSparseAttention>(std::move(flow), static_cast<int32_t>(index),
                                                    cache_.geometry(), cache_.num_pages(),
                                                    config_.num_heads);
  // Pages already in the cache (of running requests, or kept by the prefix cache) get this
  // flow's Fields now; a page still filling is summarized again when it fills.
  added->summarize_every_page(cache_);
  flows_.resize(index + 1);
  flows_[index] = std::move(added);
}

void CpuModelRunner::remove_flow(size_t index) {
  if (index < flows_.size()) flows_[index].reset();
}

const SparseStats* CpuModelRunner::sparse_stats(size_t flow) const {
  return flow < flows_.size() && flows_[flow] ? &flows_[flow]->stats() : nullptr;
}

void CpuModelRunner::release_request(int64_t request_id) {
  for (auto& f : flows_)
    if (f) f->release(request_id);
}

double CpuModelRunner::measure_bandwidth() {
  // A decode step streams its weights and KV: reads only. So the floor's bandwidth is that of
  // reading a buffer much larger than the caches with all threads (a copy would also pay for
  // the writes and their read-for-ownership, and varies more from run to run).
  const size_t n = size_t{64} << 20;  // 64 Mi words: 512 MiB
  std::vector<uint64_t> buffer(n, 1);
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    ThreadPool::global().parallel_for(static_cast<int64_t>(n), 1 << 16, [&](int64_t b, int64_t e) {
      // Four independent sums: the loop is limited by memory, not by one addition chain.
      uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      const uint64_t* p = buffer.data();
      int64_t i = b;
      for (; i + 4 <= e; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
      }
      for (; i < e; ++i) s0 += p[i];
      sink.fetch_add(s0 + s1 + s2 + s3, std::memory_order_relaxed);
    });
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n * sizeof(uint64_t)) / s);
  }
  if (sink.load() != uint64_t{5} * n) fail("internal error: the bandwidth probe summed wrongly");
  return best;
}

size_t CpuModelRunner::weight_bytes() const {
  size_t total = weights_.final_norm.nbytes() + weights_.lm_head.nbytes();
  for (const LayerWeights& l : weights_.layers) {
    for (const Tensor* t : {&l.input_norm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.q_norm,
                            &l.k_norm, &l.q_bias, &l.k_bias, &l.v_bias, &l.o_bias,
                            &l.post_attention_norm, &l.gate_proj, &l.up_proj, &l.down_proj}) {
      if (t->defined()) total += t->nbytes();
    }
  }
  return total;
}

std::vector<SampledToken> CpuModelRunner::step(const std::vector<ScheduledWork>& work,
                                               const std::vector<SamplingRow>& rows) {
  const std::vector<float>& logits = forward(work);
  const int32_t V = config_.vocab_size;
  VORTEX_ASSERT(static_cast<int64_t>(logits.size()) == static_cast<int64_t>(rows.size()) * V);
  std::vector<SampledToken> out;
  out.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* row = logits.data() + i * V;
    if (rows[i].forced_token >= 0)
      out.push_back({rows[i].forced_token, token_logprob(row, V, rows[i].forced_token), {}});
    else
      out.push_back(sample_token(row, V, *rows[i].params, *rows[i].rng, scratch_.data()));
    if (rows[i].top_logprobs > 0) out.back().top = top_logprobs(row, V, rows[i].top_logprobs);
  }
  return out;
}

void CpuModelRunner::resize(int64_t T) {
  const int64_t hidden = config_.hidden_size;
  const int64_t qd = int64_t{config_.num_heads} * config_.head_dim;
  const int64_t kvd = int64_t{config_.num_kv_heads} * config_.head_dim;
  x_.resize(T * hidden);
  h_.resize(T * hidden);
  q_.resize(T * qd);
  k_.resize(T * kvd);
  v_.resize(T * kvd);
  attn_.resize(T * qd);
  gate_.resize(T * config_.intermediate_size);
  up_.resize(T * config_.intermediate_size);
}

const std::vector<float>& CpuModelRunner::forward(const std::vector<ScheduledWork>& work) {
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
  const int64_t T = static_cast<int64_t>(tokens_.size());
  resize(T);
  for (auto& f : flows_)
    if (f) f->begin_step(work);

  cpu::embedding(tokens_.data(), T, weights_.embed_tokens, x_.data());
  for (int32_t layer = 0; layer < config_.num_layers; ++layer) {
    attention_block(layer, T);
    mlp_block(layer, T);
  }

  // Only the rows that sample need the final norm and the (large) vocabulary projection.
  const int64_t hidden = config_.hidden_size;
  const int64_t S = static_cast<int64_t>(sample_rows_.size());
  last_.resize(S * hidden);
  for (int64_t i = 0; i < S; ++i) {
    std::copy_n(x_.data() + sample_rows_[i] * hidden, hidden, last_.data() + i * hidden);
  }
  cpu::rms_norm(last_.data(), S, hidden, weights_.final_norm, config_.rms_norm_eps, last_.data());
  logits_.resize(S * config_.vocab_size);
  cpu::linear(last_.data(), S, hidden, lm_head_, nullptr, logits_.data());
  return logits_;
}

void CpuModelRunner::attention_block(int32_t layer, int64_t T) {
  const LayerWeights& w = weights_.layers[layer];
  const PackedLayer& pw = packed_[static_cast<size_t>(layer)];
  const int64_t hidden = config_.hidden_size;
  const int32_t D = config_.head_dim;
  const int32_t Hq = config_.num_heads;
  const int32_t Hkv = config_.num_kv_heads;

  cpu::rms_norm(x_.data(), T, hidden, w.input_norm, config_.rms_norm_eps, h_.data());
  cpu::linear(h_.data(), T, hidden, pw.q, w.q_bias.defined() ? &w.q_bias : nullptr, q_.data());
  cpu::linear(h_.data(), T, hidden, pw.k, w.k_bias.defined() ? &w.k_bias : nullptr, k_.data());
  cpu::linear(h_.data(), T, hidden, pw.v, w.v_bias.defined() ? &w.v_bias : nullptr, v_.data());
  if (config_.has_qk_norm()) {
    cpu::rms_norm(q_.data(), T * Hq, D, w.q_norm, config_.rms_norm_eps, q_.data());
    cpu::rms_norm(k_.data(), T * Hkv, D, w.k_norm, config_.rms_norm_eps, k_.data());
  }
  cpu::apply_rope(q_.data(), T, Hq, D, positions_.data(), inv_freq_);
  cpu::apply_rope(k_.data(), T, Hkv, D, positions_.data(), inv_freq_);

  cpu::PagedKv kv{cache_.k_layer(layer), cache_.v_layer(layer), cache_.geometry().page_size, Hkv, D,
                  cache_.page_stride(),  cache_.head_stride()};
  cpu::write_kv(kv, k_.data(), v_.data(), T, kv_pages_.data(), kv_slots_.data());
  for (auto& f : flows_) {
    if (f && f->is_sparse_layer(layer)) f->summarize(layer, cache_);
  }

  std::vector<cpu::AttentionSeq> seqs;
  seqs.reserve(seqs_.size());
  const int32_t P = kv.page_size;
  for (const SeqView& s : seqs_) {
    seqs.push_back({s.q_begin, s.q_len, s.kv_len, s.pages->data(), (s.kv_len + P - 1) / P});
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  for (auto& f : flows_)
    if (f) f->select(layer, q_.data(), seqs);
  auto t0 = std::chrono::steady_clock::now();
  cpu::paged_attention(q_.data(), Hq, kv, seqs.data(), static_cast<int32_t>(seqs.size()), scale,
                       attn_.data());
  const double attention_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& f : flows_) {
    if (!f) continue;
    if (f->pure_decode_step()) f->stats().attention_seconds += attention_s;
    f->record_recall(layer, q_.data(), kv, seqs, scale);
  }
  if (observer_) observer_(layer, q_.data(), kv, seqs);
  // o_proj output goes to h_, then the residual add.
  cpu::linear(attn_.data(), T, int64_t{Hq} * D, pw.o, w.o_bias.defined() ? &w.o_bias : nullptr,
              h_.data());
  for (int64_t i = 0; i < T * hidden; ++i) x_[i] += h_[i];
}

void CpuModelRunner::mlp_block(int32_t layer, int64_t T) {
  const LayerWeights& w = weights_.layers[layer];
  const PackedLayer& pw = packed_[static_cast<size_t>(layer)];
  const int64_t hidden = config_.hidden_size;
  const int64_t inter = config_.intermediate_size;
  cpu::rms_norm(x_.data(), T, hidden, w.post_attention_norm, config_.rms_norm_eps, h_.data());
  cpu::linear(h_.data(), T, hidden, pw.gate, nullptr, gate_.data());
  cpu::linear(h_.data(), T, hidden, pw.up, nullptr, up_.data());
  cpu::silu_mul(gate_.data(), up_.data(), T * inter, gate_.data());
  cpu::linear(gate_.data(), T, inter, pw.down, nullptr, h_.data());
  for (int64_t i = 0; i < T * hidden; ++i) x_[i] += h_[i];
}

}  // namespace vortex
