#include "engine/cpu/cpu_sparse_attention.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "core/thread_pool.h"

namespace vortex {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

flow::FlowGeometry flow_geometry(const KvGeometry& kv, int32_t num_q_heads) {
  return {num_q_heads / kv.num_kv_heads, kv.head_dim, kv.page_size};
}

}  // namespace

CpuSparseAttention::CpuSparseAttention(std::shared_ptr<const SparseAttentionConfig> config,
                                       int32_t flow_index, const KvGeometry& kv, int32_t num_pages,
                                       int32_t num_q_heads)
    : config_(std::move(config)),
      flow_index_(flow_index),
      kv_(kv),
      num_q_heads_(num_q_heads),
      executor_(config_->program, flow_geometry(kv, num_q_heads)),
      fields_(kv.num_layers, num_pages, kv.num_kv_heads, executor_.field_floats_per_page_head()) {
  if (config_->record_recall) stats_.recall.resize(static_cast<size_t>(kv.num_layers));
}

bool CpuSparseAttention::is_sparse_layer(int32_t layer) const {
  return !flow::is_dense_layer(config_->policy, layer);
}

void CpuSparseAttention::begin_step(const std::vector<ScheduledWork>& work) {
  const int32_t P = kv_.page_size;
  decode_rows_.clear();
  full_pages_.clear();
  for (size_t i = 0; i < work.size(); ++i) {
    const ScheduledWork& w = work[i];
    const Request& r = *w.request;
    // One query at the end of a request that is generating: a decode row. (A re-prefill after
    // preemption runs its chunks dense, as prefill does.) Requests of other flows, and those
    // that asked for dense attention, have none here: their rows are not in this flow's
    // statistics.
    if (w.count == 1 && r.flow == flow_index_ && !r.output.empty() && w.first + 1 == r.seq_len()) {
      decode_rows_.push_back({i, r.id, (w.first + P) / P, &r.blocks.pages(), r.budget.get()});
    }
    for (int32_t pos = w.first; pos < w.first + w.count; ++pos) {
      if (pos % P == P - 1) full_pages_.push_back(r.blocks.pages()[pos / P]);
    }
  }
  if (!decode_rows_.empty()) ++stats_.decode_steps;
  pure_decode_ = !decode_rows_.empty() && decode_rows_.size() == work.size();
}

void CpuSparseAttention::summarize(int32_t layer, KvCache& cache) {
  if (full_pages_.empty() || executor_.field_floats_per_page_head() == 0) return;
  auto t0 = std::chrono::steady_clock::now();
  const int32_t H = kv_.num_kv_heads;
  std::vector<const float*> k(full_pages_.size() * H), v(k.size());
  std::vector<float*> out(k.size());
  for (size_t i = 0; i < full_pages_.size(); ++i) {
    for (int32_t h = 0; h < H; ++h) {
      k[i * H + h] = cache.k_block(layer, full_pages_[i], h);
      v[i * H + h] = cache.v_block(layer, full_pages_[i], h);
      out[i * H + h] = fields_.block(layer, full_pages_[i], h);
    }
  }
  executor_.summarize_pages(k.data(), v.data(), static_cast<int64_t>(k.size()), out.data());
  stats_.summarized_pages += static_cast<int64_t>(k.size());
  stats_.summarize_seconds += seconds_since(t0);
}

void CpuSparseAttention::summarize_every_page(KvCache& cache) {
  full_pages_.resize(static_cast<size_t>(cache.num_pages()));
  for (int32_t p = 0; p < cache.num_pages(); ++p) full_pages_[static_cast<size_t>(p)] = p;
  for (int32_t layer = 0; layer < kv_.num_layers; ++layer)
    if (is_sparse_layer(layer)) summarize(layer, cache);
  full_pages_.clear();
}

void CpuSparseAttention::select(int32_t layer, const float* q,
                                std::vector<cpu::AttentionSeq>& seqs) {
  const int32_t H = kv_.num_kv_heads;
  const int32_t D = kv_.head_dim;
  const int32_t G = num_q_heads_ / H;
  const bool sparse = is_sparse_layer(layer);
  for (const DecodeRow& row : decode_rows_) {
    stats_.decode_rows += H;
    stats_.dense_pages += int64_t{row.num_pages} * H;
  }
  if (!sparse) {
    for (const DecodeRow& row : decode_rows_) stats_.read_pages += int64_t{row.num_pages} * H;
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  const size_t n_rows = decode_rows_.size() * static_cast<size_t>(H);
  selected_.resize(n_rows);
  selected_ptr_.resize(n_rows);
  selected_count_.resize(n_rows);
  // The field blocks of every row's pages, in page order (the partial last page has none).
  size_t total_pages = 0;
  for (const DecodeRow& row : decode_rows_) total_pages += static_cast<size_t>(row.num_pages) * H;
  page_fields_.resize(total_pages);
  std::vector<flow::SelectRow> select_rows;
  select_rows.reserve(n_rows);
  size_t at = 0;
  for (size_t r = 0; r < decode_rows_.size(); ++r) {
    const DecodeRow& row = decode_rows_[r];
    const cpu::AttentionSeq& seq = seqs[row.seq];
    std::vector<flow::RowState>* states = nullptr;
    if (executor_.has_state()) {
      states = &states_[row.request_id];
      states->resize(static_cast<size_t>(kv_.num_layers) * H);
    }
    for (int32_t h = 0; h < H; ++h) {
      const float** fields = page_fields_.data() + at;
      for (int32_t p = 0; p < row.num_pages; ++p) {
        const bool full = p + 1 < row.num_pages || seq.kv_len % kv_.page_size == 0;
        fields[p] = full ? fields_.block(layer, (*row.pages)[static_cast<size_t>(p)], h) : nullptr;
      }
      at += static_cast<size_t>(row.num_pages);
      flow::SelectRow s;
      s.q = q + (static_cast<int64_t>(seq.q_begin) * num_q_heads_ + int64_t{h} * G) * D;
      s.num_pages = row.num_pages;
      s.page_fields = fields;
      s.state = states ? &(*states)[static_cast<size_t>(layer) * H + h] : nullptr;
      s.selected = &selected_[r * H + h];
      s.policy = row.budget;
      select_rows.push_back(s);
    }
  }
  executor_.select_rows(config_->policy, select_rows);
  for (size_t r = 0; r < decode_rows_.size(); ++r) {
    const DecodeRow& row = decode_rows_[r];
    for (int32_t h = 0; h < H; ++h) {
      const std::vector<int32_t>& sel = selected_[r * H + h];
      selected_ptr_[r * H + h] = sel.data();
      selected_count_[r * H + h] = static_cast<int32_t>(sel.size());
      stats_.read_pages += static_cast<int64_t>(sel.size());
      stats_.sparse_read_pages += static_cast<int64_t>(sel.size());
      stats_.sparse_dense_pages += row.num_pages;
      ++stats_.sparse_rows;
      if (static_cast<int32_t>(sel.size()) < row.num_pages) ++stats_.scored_rows;
    }
    seqs[row.seq].selected = selected_ptr_.data() + r * H;
    seqs[row.seq].num_selected = selected_count_.data() + r * H;
  }
  stats_.select_seconds += seconds_since(t0);
}

void CpuSparseAttention::record_recall(int32_t layer, const float* q, const cpu::PagedKv& kv,
                                       const std::vector<cpu::AttentionSeq>& seqs, float scale) {
  if (!config_->record_recall || !is_sparse_layer(layer)) return;
  auto t0 = std::chrono::steady_clock::now();
  const int32_t H = kv_.num_kv_heads, D = kv_.head_dim, P = kv_.page_size;
  const int32_t G = num_q_heads_ / H;
  std::vector<float>& out = stats_.recall[static_cast<size_t>(layer)];
  const size_t base = out.size();
  out.resize(base + decode_rows_.size() * static_cast<size_t>(H));
  ThreadPool::global().parallel_for(
      static_cast<int64_t>(decode_rows_.size()) * H, 1, [&](int64_t b, int64_t e) {
        std::vector<double> logits;
        std::vector<char> chosen;
        for (int64_t i = b; i < e; ++i) {
          const DecodeRow& row = decode_rows_[static_cast<size_t>(i / H)];
          const int32_t h = static_cast<int32_t>(i % H);
          const cpu::AttentionSeq& seq = seqs[row.seq];
          chosen.assign(static_cast<size_t>(row.num_pages), 0);
          for (int32_t j = 0; j < seq.num_selected[h]; ++j) chosen[seq.selected[h][j]] = 1;
          double recall = 0;
          for (int32_t g = 0; g < G; ++g) {
            const float* qv = q + (int64_t{seq.q_begin} * num_q_heads_ + int64_t{h} * G + g) * D;
            logits.resize(static_cast<size_t>(seq.kv_len));
            double mx = -INFINITY;
            for (int32_t t = 0; t < seq.kv_len; ++t) {
              const float* kt = kv.k + int64_t{seq.pages[t / P]} * kv.page_stride +
                                int64_t{h} * kv.head_stride + int64_t{t % P} * D;
              double dot = 0;
              for (int32_t d = 0; d < D; ++d) dot += double{qv[d]} * kt[d];
              logits[static_cast<size_t>(t)] = dot * scale;
              mx = std::max(mx, logits[static_cast<size_t>(t)]);
            }
            double all = 0, kept = 0;
            for (int32_t t = 0; t < seq.kv_len; ++t) {
              double p = std::exp(logits[static_cast<size_t>(t)] - mx);
              all += p;
              if (chosen[static_cast<size_t>(t / P)]) kept += p;
            }
            recall += kept / all;
          }
          out[base + static_cast<size_t>(i)] = static_cast<float>(recall / G);
        }
      });
  stats_.recall_seconds += seconds_since(t0);
}

}  // namespace vortex
