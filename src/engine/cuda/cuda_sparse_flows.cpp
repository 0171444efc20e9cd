#include "engine/cuda/cuda_sparse_flows.h"

#include <algorithm>

#include "core/error.h"
#include "engine/cuda/device_page_policy.h"
#include "kernels/cuda/page_selection.h"

namespace vortex {

CudaSparseFlows::CudaSparseFlows(std::vector<std::shared_ptr<const SparseAttentionConfig>> flows,
                                 const ModelConfig& cfg, const KvGeometry& geometry,
                                 int32_t num_pages_with_scratch, const RunnerOptions& options)
    : num_kv_heads_(geometry.num_kv_heads), page_size_(geometry.page_size) {
  VORTEX_ASSERT(!flows.empty());
  if (flows.size() > kMaxFlows)
    fail_usage("at most ", kMaxFlows, " flows run in one engine on the GPU, got ", flows.size());
  for (size_t f = 0; f < flows.size(); ++f) {
    flows_.push_back(std::make_unique<CudaFlowSelector>(std::move(flows[f]),
                                                        static_cast<int32_t>(f), cfg, geometry,
                                                        num_pages_with_scratch, options));
  }
  max_pages_ = flows_.front()->max_row_pages();
  sparse_at_.assign(static_cast<size_t>(geometry.num_layers), 0);
  layer_class_.assign(static_cast<size_t>(geometry.num_layers), -1);
  for (int32_t l = 0; l < geometry.num_layers; ++l) {
    uint32_t& mask = sparse_at_[static_cast<size_t>(l)];
    for (size_t f = 0; f < flows_.size(); ++f)
      if (flows_[f]->is_sparse_layer(l)) mask |= 1u << f;
    if (flows_.size() == 1 || mask == 0) continue;
    auto it = std::find(classes_.begin(), classes_.end(), mask);
    if (it == classes_.end()) it = classes_.insert(classes_.end(), mask);
    layer_class_[static_cast<size_t>(l)] = static_cast<int32_t>(it - classes_.begin());
  }
  class_pages_.resize(classes_.size());
  class_tokens_.resize(classes_.size());
  class_lists_.resize(classes_.size());
}

CudaSparseFlows::~CudaSparseFlows() = default;

std::vector<size_t> CudaSparseFlows::flows_at(int32_t layer) const {
  std::vector<size_t> out;
  const uint32_t mask = sparse_at_[static_cast<size_t>(layer)];
  for (size_t f = 0; f < flows_.size(); ++f)
    if (mask & (1u << f)) out.push_back(f);
  return out;
}

void CudaSparseFlows::begin_step(const std::vector<ScheduledWork>& work, SparseStepLists& lists) {
  const int32_t P = page_size_, H = num_kv_heads_;
  lists.summarize_pages.clear();
  lists.reset_pages.clear();
  lists.row_policy.clear();
  lists.row_mode.assign(num_mode_lists(), {});
  // Which flow selects for each decode row (-1: none: dense, or not generating).
  std::vector<int32_t> owner;
  for (const ScheduledWork& w : work) {
    const Request& r = *w.request;
    const std::vector<int32_t>& pages = r.blocks.pages();
    for (int32_t pos = w.first; pos < w.first + w.count; ++pos) {
      if (pos % P == 0) lists.reset_pages.push_back(pages[pos / P]);
      if (pos % P == P - 1) lists.summarize_pages.push_back(pages[pos / P]);
    }
    if (w.count != 1) continue;
    int32_t selected_by = -1;
    for (size_t f = 0; f < flows_.size() && selected_by < 0; ++f)
      if (flows_[f]->selects_for(w)) selected_by = static_cast<int32_t>(f);
    owner.push_back(selected_by);
    // A row's budget: its request's own, else its flow's (rows no flow selects plan as read_all
    // whatever the budget says).
    const cuda::DevicePagePolicy policy =
        r.budget ? to_device_policy(*r.budget) : flows_[std::max(selected_by, 0)]->device_policy();
    lists.row_policy.insert(lists.row_policy.end(), static_cast<size_t>(H), policy);
  }
  const bool shared = flows_.size() > 1;
  const auto filled = static_cast<int64_t>(lists.summarize_pages.size());
  for (size_t f = 0; f < flows_.size(); ++f)
    flows_[f]->begin_step(work, shared, filled, lists.row_mode[f]);
  for (size_t c = 0; c < classes_.size(); ++c) {
    std::vector<int32_t>& mode = lists.row_mode[flows_.size() + c];
    for (const int32_t o : owner) {
      const bool selected = o >= 0 && (classes_[c] & (1u << o)) != 0;
      mode.insert(mode.end(), static_cast<size_t>(H),
                  selected ? cuda::kRowSkip : cuda::kRowReadAll);
    }
  }
}

void CudaSparseFlows::pad_rows(int32_t seqs, SparseStepLists& lists) const {
  const auto n = static_cast<size_t>(seqs) * static_cast<size_t>(num_kv_heads_);
  lists.row_policy.insert(lists.row_policy.end(), n, flows_.front()->device_policy());
  lists.row_mode.resize(num_mode_lists());
  // Padding rows read all: each flow writes them itself (one flow) or the classes copy them.
  const int32_t flow_mode = flows_.size() > 1 ? cuda::kRowSkip : cuda::kRowReadAll;
  for (size_t i = 0; i < lists.row_mode.size(); ++i) {
    std::vector<int32_t>& mode = lists.row_mode[i];
    mode.insert(mode.end(), n, i < flows_.size() ? flow_mode : cuda::kRowReadAll);
  }
}

int64_t CudaSparseFlows::max_selected_tokens(int64_t max_row_tokens) const {
  int64_t most = 0;
  for (const auto& f : flows_) most = std::max(most, f->max_selected_tokens(max_row_tokens));
  return most;
}

bool CudaSparseFlows::ensure_rows(int64_t rows) {
  bool changed = false;
  for (const auto& f : flows_) changed = f->ensure_rows(rows) || changed;
  if (classes_.empty() || rows <= rows_cap_) return changed;
  rows_cap_ = std::max<int64_t>(rows, rows_cap_ * 2);
  const auto R = static_cast<size_t>(rows_cap_);
  const auto M = static_cast<size_t>(max_pages_);
  std::vector<int32_t> offsets(R);
  for (size_t r = 0; r < R; ++r) offsets[r] = static_cast<int32_t>(r * M);
  offsets_ = DeviceBuffer(R * 4, "selected pages");
  check_cuda(cudaMemcpy(offsets_.data(), offsets.data(), R * 4, cudaMemcpyHostToDevice),
             "selected page offsets");
  for (size_t c = 0; c < classes_.size(); ++c) {
    class_pages_[c] = DeviceBuffer(R * M * 4, "selected pages");
    class_tokens_[c] = DeviceBuffer(R * 4, "selected pages");
    class_lists_[c] = {offsets_.as<int32_t>(), class_tokens_[c].as<int32_t>(),
                       class_pages_[c].as<int32_t>()};
  }
  return true;
}

SparseStepMeta CudaSparseFlows::flow_meta(size_t f, const SparseStepMeta& m) const {
  SparseStepMeta fm = m;
  fm.row_mode = m.row_mode + static_cast<int64_t>(f) * m.row_mode_stride;
  return fm;
}

const SelectedPageLists* CudaSparseFlows::target(int32_t layer) const {
  const int32_t c = layer_class_[static_cast<size_t>(layer)];
  return c < 0 ? nullptr : &class_lists_[static_cast<size_t>(c)];
}

void CudaSparseFlows::enqueue_plan(const SparseStepMeta& m, cudaStream_t stream) {
  for (size_t f = 0; f < flows_.size(); ++f) flows_[f]->enqueue_plan(flow_meta(f, m), stream);
  if (m.decode_seqs == 0) return;
  for (size_t c = 0; c < classes_.size(); ++c) {
    cuda::CopyDenseRowsArgs a;
    a.num_rows = m.decode_seqs * num_kv_heads_;
    a.max_pages = max_pages_;
    a.page_size = page_size_;
    a.row_mode = m.row_mode + static_cast<int64_t>(flows_.size() + c) * m.row_mode_stride;
    a.row_page_offset = m.row_page_offset;
    a.pages = m.pages;
    a.row_num_tokens = m.row_num_tokens;
    a.out_pages = class_lists_[c].pages;
    a.out_num_tokens = class_lists_[c].num_tokens;
    check_cuda(cuda::copy_dense_rows(a, stream), "dense page lists");
  }
}

bool CudaSparseFlows::summarizes_after_layer(int32_t layer) const {
  for (const auto& f : flows_)
    if (f->is_sparse_layer(layer) && !f->defers_summarize()) return true;
  return false;
}

void CudaSparseFlows::enqueue_summarize_after_layer(int32_t layer, const cuda::DevicePagedKv& kv,
                                                    const SparseStepMeta& m, cudaStream_t stream) {
  for (size_t f = 0; f < flows_.size(); ++f) {
    if (flows_[f]->is_sparse_layer(layer) && !flows_[f]->defers_summarize())
      flows_[f]->enqueue_summarize(layer, kv, flow_meta(f, m), stream);
  }
}

bool CudaSparseFlows::summarizes_after_step() const {
  for (const auto& f : flows_)
    if (f->defers_summarize()) return true;
  return false;
}

void CudaSparseFlows::enqueue_summarize_after_step(const cuda::DevicePagedKv& kv0,
                                                   int64_t kv_layer_stride, const SparseStepMeta& m,
                                                   cudaStream_t stream) {
  for (size_t f = 0; f < flows_.size(); ++f) {
    if (flows_[f]->defers_summarize())
      flows_[f]->enqueue_summarize_all(kv0, kv_layer_stride, flow_meta(f, m), stream);
  }
}

void CudaSparseFlows::enqueue_score(size_t f, int32_t layer, const uint16_t* q, int32_t num_q_heads,
                                    const SparseStepMeta& m, cudaStream_t stream) {
  flows_[f]->enqueue_score(layer, q, num_q_heads, flow_meta(f, m), stream, target(layer));
}

void CudaSparseFlows::enqueue_select(size_t f, int32_t layer, const SparseStepMeta& m,
                                     cudaStream_t stream) {
  flows_[f]->enqueue_select(flow_meta(f, m), stream, target(layer));
}

SelectedPageLists CudaSparseFlows::lists(int32_t layer) const {
  if (const SelectedPageLists* t = target(layer)) return *t;
  return flows_.front()->own_lists();
}

}  // namespace vortex
