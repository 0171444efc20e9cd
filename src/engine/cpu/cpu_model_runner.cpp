#include "engine/cpu/cpu_model_runner.h"

#include <atomic>
#include <chrono>

#include "core/error.h"
#include "core/thread_pool.h"

namespace vortex {

CpuModelRunner::CpuModelRunner(const LoadedModel& model, const KvGeometry& geometry,
                               int32_t num_pages)
    : config_(model.config),
      weights_(model.weights),
      architecture_(architecture_of(model.config.arch)),
      cache_(geometry, num_pages),
      backend_(model.config, model.weights, cache_),
      scratch_(static_cast<size_t>(model.config.vocab_size)) {
  VORTEX_ASSERT(geometry.num_layers == config_.num_layers &&
                geometry.num_kv_heads == config_.num_kv_heads &&
                geometry.head_dim == config_.head_dim);
}

void CpuModelRunner::set_flows(std::vector<std::shared_ptr<const SparseAttentionConfig>> flows) {
  auto& flows_ = backend_.flows();
  flows_.clear();
  for (size_t i = 0; i < flows.size(); ++i) {
    flows_.push_back(std::make_unique<CpuSparseAttention>(
        std::move(flows[i]), static_cast<int32_t>(i), cache_.geometry(), cache_.num_pages(),
        config_.num_heads));
  }
}

void CpuModelRunner::add_flow(std::shared_ptr<const SparseAttentionConfig> flow, size_t index) {
  VORTEX_ASSERT(index >= backend_.flows().size());
  auto added = std::make_unique<CpuSparseAttention>(std::move(flow), static_cast<int32_t>(index),
                                                    cache_.geometry(), cache_.num_pages(),
                                                    config_.num_heads);
  // Pages already in the cache (of running requests, or kept by the prefix cache) get this
  // flow's Fields now; a page still filling is summarized again when it fills.
  added->summarize_every_page(cache_);
  auto& flows_ = backend_.flows();
  flows_.resize(index + 1);
  flows_[index] = std::move(added);
}

void CpuModelRunner::remove_flow(size_t index) {
  auto& flows = backend_.flows();
  if (index < flows.size()) flows[index].reset();
}

const SparseStats* CpuModelRunner::sparse_stats(size_t flow) const {
  const auto& flows = backend_.flows();
  return flow < flows.size() && flows[flow] ? &flows[flow]->stats() : nullptr;
}

void CpuModelRunner::release_request(int64_t request_id) {
  for (auto& f : backend_.flows())
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
    for (const Tensor& t : l.tensors) {
      if (t.defined()) total += t.nbytes();
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

const std::vector<float>& CpuModelRunner::forward(const std::vector<ScheduledWork>& work) {
  backend_.plan(work);
  architecture_.forward(config_, backend_);
  return backend_.logits_out();
}

}  // namespace vortex
