#include "engine/cuda/step_plan.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/cuda/attention.h"

namespace vortex {
namespace {

size_t align_up(size_t n, size_t a) {
  return (n + a - 1) / a * a;
}

}  // namespace

StepPlan build_step_plan(const std::vector<ScheduledWork>& work,
                         const std::vector<SamplingRow>& rows, const ModelConfig& cfg,
                         const KvGeometry& geo, CudaSparseFlows* sparse) {
  StepPlan p;
  const int32_t P = geo.page_size, Hkv = geo.num_kv_heads;
  const int32_t tpb = cuda::prefill_attention_block_tokens(cfg.group_size());
  struct Block {
    int32_t seq, q_start, last_pos;
  };
  std::vector<Block> blocks;
  size_t row = 0;
  for (const ScheduledWork& wk : work) {
    const Request& r = *wk.request;
    const std::vector<int32_t>& pages = r.blocks.pages();
    const int32_t kv_len = wk.first + wk.count;
    const int32_t n_pages = (kv_len + P - 1) / P;
    VORTEX_ASSERT(static_cast<int32_t>(pages.size()) >= n_pages);
    const auto offset = static_cast<int32_t>(p.pages.size());
    p.pages.insert(p.pages.end(), pages.begin(), pages.begin() + n_pages);
    const auto q_begin = static_cast<int32_t>(p.tokens.size());
    for (int32_t pos = wk.first; pos < kv_len; ++pos) {
      p.tokens.push_back(r.token_at(pos));
      p.positions.push_back(pos);
      p.kv_pages.push_back(pages[pos / P]);
      p.kv_slots.push_back(pos % P);
    }
    if (wk.count == 1) {
      p.q_rows.push_back(q_begin);
      for (int32_t hd = 0; hd < Hkv; ++hd) {
        p.row_page_offset.push_back(offset);
        p.row_num_tokens.push_back(kv_len);
      }
      p.max_row_tokens = std::max(p.max_row_tokens, kv_len);
    } else {
      const auto seq = static_cast<int32_t>(p.seq_q_begin.size());
      p.seq_q_begin.push_back(q_begin);
      p.seq_q_len.push_back(wk.count);
      p.seq_kv_len.push_back(kv_len);
      p.seq_page_offset.push_back(offset);
      for (int32_t qs = 0; qs < wk.count; qs += tpb)
        blocks.push_back({seq, qs, wk.first + std::min(qs + tpb, wk.count) - 1});
    }
    if (wk.samples()) {
      VORTEX_ASSERT(row < rows.size());
      p.sample_rows.push_back(static_cast<int32_t>(p.tokens.size()) - 1);
      const SamplingParams& sp = *rows[row].params;
      cuda::SampleParams dp;
      dp.temperature = sp.temperature;
      dp.top_k = sp.top_k;
      dp.top_p = sp.top_p;
      dp.min_p = sp.min_p;
      // One draw of the request's own generator keys the device's counter-based generator,
      // so a request's samples do not depend on the rest of the batch. A forced token draws
      // nothing (as on the CPU).
      dp.forced_token = rows[row].forced_token;
      if (sp.temperature > 0.0f && dp.forced_token < 0) dp.key = rows[row].rng->next_u64();
      dp.counter = static_cast<uint64_t>(kv_len);
      p.params.push_back(dp);
      ++row;
    }
  }
  VORTEX_ASSERT(row == rows.size());
  if (sparse) sparse->begin_step(work, p.sparse);
  // Longest blocks first, so the long causal blocks do not end up in the last wave.
  std::stable_sort(blocks.begin(), blocks.end(),
                   [](const Block& a, const Block& b) { return a.last_pos > b.last_pos; });
  for (const Block& b : blocks) {
    p.block_seq.push_back(b.seq);
    p.block_q_start.push_back(b.q_start);
  }
  return p;
}

void pad_step_plan(int32_t bucket, int32_t scratch_page, int32_t num_kv_heads,
                   const CudaSparseFlows* sparse, StepPlan& p) {
  const auto scratch_offset = static_cast<int32_t>(p.pages.size());
  p.pages.push_back(scratch_page);
  while (static_cast<int32_t>(p.tokens.size()) < bucket) {
    const auto t = static_cast<int32_t>(p.tokens.size());
    p.tokens.push_back(0);
    p.positions.push_back(0);
    p.kv_pages.push_back(scratch_page);
    p.kv_slots.push_back(0);
    p.q_rows.push_back(t);
    for (int32_t hd = 0; hd < num_kv_heads; ++hd) {
      p.row_page_offset.push_back(scratch_offset);
      p.row_num_tokens.push_back(1);
    }
    if (sparse) sparse->pad_rows(1, p.sparse);
    p.sample_rows.push_back(t);
    p.params.push_back(cuda::SampleParams{});
  }
}

MetaLayout::MetaLayout(int64_t t_cap, int64_t s_cap, int64_t rows, int64_t pages_cap,
                       int64_t mode_lists)
    : rows_cap(rows) {
  size_t at = 0;
  auto take = [&](int64_t n, size_t elem) {
    at = align_up(at, 16);
    size_t r = at;
    at += static_cast<size_t>(n) * elem;
    return r;
  };
  tokens = take(t_cap, 4);
  positions = take(t_cap, 4);
  kv_pages = take(t_cap, 4);
  kv_slots = take(t_cap, 4);
  sample_rows = take(s_cap, 4);
  q_rows = take(t_cap, 4);
  row_page_offset = take(rows_cap, 4);
  row_num_tokens = take(rows_cap, 4);
  block_seq = take(t_cap, 4);
  block_q_start = take(t_cap, 4);
  seq_q_begin = take(t_cap, 4);
  seq_q_len = take(t_cap, 4);
  seq_kv_len = take(t_cap, 4);
  seq_page_offset = take(t_cap, 4);
  params = take(s_cap, sizeof(cuda::SampleParams));
  summarize_pages = take(t_cap, 4);
  reset_pages = take(t_cap, 4);
  sparse_counts = take(4, 4);  // [0] summarize, [1] reset
  row_mode = take(mode_lists * rows_cap, 4);
  row_policy = take(rows_cap, sizeof(cuda::DevicePagePolicy));
  pages = take(pages_cap, 4);
  total = align_up(at, 16);
}

void StepMetadata::lay_out(const MetaLayout& layout) {
  layout_ = layout;
  if (layout_.total > device_.bytes()) {
    device_ = DeviceBuffer(layout_.total, "step metadata");
    host_ = PinnedBuffer(layout_.total);
  }
}

void StepMetadata::upload(const StepPlan& p, bool with_flows, cudaStream_t stream) {
  char* base = host_.as<char>();
  const MetaLayout& l = layout_;
  auto put = [&](size_t off, const auto& v) {
    if (!v.empty()) std::memcpy(base + off, v.data(), v.size() * sizeof(v[0]));
  };
  put(l.tokens, p.tokens);
  put(l.positions, p.positions);
  put(l.kv_pages, p.kv_pages);
  put(l.kv_slots, p.kv_slots);
  put(l.sample_rows, p.sample_rows);
  put(l.q_rows, p.q_rows);
  put(l.row_page_offset, p.row_page_offset);
  put(l.row_num_tokens, p.row_num_tokens);
  put(l.block_seq, p.block_seq);
  put(l.block_q_start, p.block_q_start);
  put(l.seq_q_begin, p.seq_q_begin);
  put(l.seq_q_len, p.seq_q_len);
  put(l.seq_kv_len, p.seq_kv_len);
  put(l.seq_page_offset, p.seq_page_offset);
  put(l.params, p.params);
  if (with_flows) {
    put(l.summarize_pages, p.sparse.summarize_pages);
    put(l.reset_pages, p.sparse.reset_pages);
    for (size_t i = 0; i < p.sparse.row_mode.size(); ++i)
      put(l.row_mode + i * static_cast<size_t>(l.rows_cap) * 4, p.sparse.row_mode[i]);
    put(l.row_policy, p.sparse.row_policy);
    const int32_t counts[4] = {static_cast<int32_t>(p.sparse.summarize_pages.size()),
                               static_cast<int32_t>(p.sparse.reset_pages.size()), 0, 0};
    std::memcpy(base + l.sparse_counts, counts, sizeof(counts));
  }
  put(l.pages, p.pages);
  const size_t used = l.pages + p.pages.size() * sizeof(int32_t);
  check_cuda(cudaMemcpyAsync(device_.data(), base, used, cudaMemcpyHostToDevice, stream),
             "metadata upload");
}

SparseStepMeta StepMetadata::sparse_meta(const StepShape& s) const {
  const MetaLayout& l = layout_;
  SparseStepMeta m;
  m.q_rows = at<int32_t>(l.q_rows);
  m.row_page_offset = at<int32_t>(l.row_page_offset);
  m.row_num_tokens = at<int32_t>(l.row_num_tokens);
  m.pages = at<int32_t>(l.pages);
  m.summarize_pages = at<int32_t>(l.summarize_pages);
  m.num_summarize = at<int32_t>(l.sparse_counts);
  m.reset_pages = at<int32_t>(l.reset_pages);
  m.num_reset = at<int32_t>(l.sparse_counts) + 1;
  m.row_mode = at<int32_t>(l.row_mode);
  m.row_mode_stride = l.rows_cap;
  m.row_policy = at<cuda::DevicePagePolicy>(l.row_policy);
  m.decode_seqs = s.decode_seqs;
  m.max_summarize = s.max_summarize;
  return m;
}

}  // namespace vortex
