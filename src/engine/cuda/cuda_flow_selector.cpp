#include "engine/cuda/cuda_flow_selector.h"

#include <algorithm>

#include "core/error.h"
#include "engine/cuda/cuda_flow_module.h"
#include "engine/cuda/device_page_policy.h"
#include "flow/budget_planner.h"
#include "flow/codegen/cuda_flow_abi.h"
#include "kernels/cuda/flow_state.h"
#include "kernels/cuda/page_selection.h"

namespace vortex {

CudaFlowSelector::CudaFlowSelector(std::shared_ptr<const SparseAttentionConfig> config,
                                   int32_t flow_index, const ModelConfig& cfg,
                                   const KvGeometry& geometry, int32_t num_pages_with_scratch,
                                   const RunnerOptions& options)
    : config_(std::move(config)),
      flow_index_(flow_index),
      device_policy_(to_device_policy(config_->policy)),
      cfg_(cfg),
      geo_(geometry),
      num_pages_(num_pages_with_scratch) {
  const int32_t P = geo_.page_size;
  max_pages_ = (cfg_.max_position_embeddings + P - 1) / P + 1;
  max_chunks_ = (max_pages_ + flow::kCudaScorePageThreads - 1) / flow::kCudaScorePageThreads;
  std::vector<int32_t> sparse_layers;
  for (int32_t layer = 0; layer < geo_.num_layers; ++layer)
    if (is_sparse_layer(layer)) sparse_layers.push_back(layer);
  num_sparse_layers_ = static_cast<int64_t>(sparse_layers.size());
  if (!sparse_layers.empty()) {
    sparse_layers_ = DeviceBuffer(sparse_layers.size() * 4, "sparse layers");
    check_cuda(cudaMemcpy(sparse_layers_.data(), sparse_layers.data(), sparse_layers.size() * 4,
                          cudaMemcpyHostToDevice),
               "sparse layers");
  }
  // Summarizing a step's filled pages once after the last layer instead of after each sparse
  // layer's K/V append is exact: no score of a step reads a Field written in that step.
  //  - Only a generating decode row scores (prefill chunks, one-token prefill chunks and graph
  //    padding rows read everything). Its one new token sits at position t = tokens - 1, so the
  //    only page of the row that can become full in the step is page t / P = n - 1, its last.
  //  - plan_row (flow/budget_planner.cpp, and the device planner in page_selection.cu alike)
  //    reserves the last page whatever the policy says: recent is clamped to at least 1 ("the
  //    last page holds the token being decoded"), so the count of recent pages includes the
  //    token's own page. The scoreable range [sink_end, recent_begin) therefore ends at or
  //    before n - 1, for every recent >= 0.
  //  - Pages filled by prefill chunks (several per chunk, possibly) belong to their own request:
  //    a page being written has one owner, so no other row of the step scores it.
  //  - The launch follows every layer's K/V append on the same stream, so it reads the same K/V
  //    the per-layer launches read, and the next step's first score comes after it.
  // The first time the page is scoreable is the next step, when it is the row's page n - 2 (or
  // earlier). The check below keeps the per-layer path should the planner ever let a row score
  // its last page.
  bool last_page_reserved = true;
  for (int32_t n = 1; n <= max_pages_ && last_page_reserved; ++n) {
    const flow::RowPlan plan = flow::plan_row(config_->policy, n);
    last_page_reserved = plan.num_scoreable() == 0 || plan.sink_end + plan.num_scoreable() <= n - 1;
  }
  defer_summarize_ = last_page_reserved && options.summarize != RunnerOptions::Summarize::kLayer;
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&sms_, cudaDevAttrMultiProcessorCount, device),
             "cudaDeviceGetAttribute");
  if (options.score_blocks_per_sm > 0) score_blocks_per_sm_ = options.score_blocks_per_sm;
  select_mode_ = options.score_select;
  const flow::FlowGeometry fg{cfg_.group_size(), geo_.head_dim, P};
  flow::CudaCodegenOptions codegen;
  codegen.score_lanes = options.flow_score_lanes;
  module_ =
      std::make_unique<CudaFlowModule>(CudaFlowModule::make(config_->program, fg, "", &codegen));
  const flow::CudaFlowSource& src = module_->source();
  const int64_t blocks = int64_t{num_pages_} * geo_.num_kv_heads;
  field_layer_stride_ = blocks * src.field_stride;
  scale_layer_stride_ = blocks * src.field_scales;
  state_layer_stride_ = blocks * src.state_stride;
  if (field_layer_stride_ > 0) {
    fields_ =
        DeviceBuffer(static_cast<size_t>(field_layer_stride_) * geo_.num_layers * 2, "flow fields");
    check_cuda(cudaMemset(fields_.data(), 0, fields_.bytes()), "flow fields");
  }
  if (scale_layer_stride_ > 0) {
    field_scales_ = DeviceBuffer(static_cast<size_t>(scale_layer_stride_) * geo_.num_layers * 4,
                                 "flow field scales");
    check_cuda(cudaMemset(field_scales_.data(), 0, field_scales_.bytes()), "flow field scales");
  }
  if (state_layer_stride_ > 0) {
    state_ =
        DeviceBuffer(static_cast<size_t>(state_layer_stride_) * geo_.num_layers * 4, "flow state");
    check_cuda(cudaMemset(state_.data(), 0, state_.bytes()), "flow state");
  }
  if (config_->record_recall)
    fail("--record-recall is not available with --device cuda yet (use --device cpu)");
}

CudaFlowSelector::~CudaFlowSelector() = default;

bool CudaFlowSelector::is_sparse_layer(int32_t layer) const {
  return !flow::is_dense_layer(config_->policy, layer);
}

bool CudaFlowSelector::selects_for(const ScheduledWork& w) const {
  // The same rule as the CPU runner: only a request of this flow that is generating decodes
  // sparsely (a one-token prefill chunk reads everything, as prefill does).
  const Request& r = *w.request;
  return w.count == 1 && r.flow == flow_index_ && !r.output.empty() && w.first + 1 == r.seq_len();
}

void CudaFlowSelector::begin_step(const std::vector<ScheduledWork>& work, bool shared_lists,
                                  int64_t filled_pages, std::vector<int32_t>& row_mode) {
  const int32_t P = geo_.page_size, H = geo_.num_kv_heads;
  const int32_t other = shared_lists ? cuda::kRowSkip : cuda::kRowReadAll;
  int64_t rows = 0;
  for (const ScheduledWork& w : work) {
    if (w.count != 1) continue;
    const bool mine = selects_for(w);
    row_mode.insert(row_mode.end(), static_cast<size_t>(H), mine ? cuda::kRowPlan : other);
    if (!mine) continue;
    ++rows;
    // Statistics (as the CPU runner counts them): what the row's layers would read dense and
    // what they read (its sparse layers read the plan's pages).
    const Request& r = *w.request;
    const flow::BudgetPolicy& budget = r.budget ? *r.budget : config_->policy;
    const int64_t n = (w.first + P) / P, L = geo_.num_layers;
    const int64_t sparse = num_sparse_layers_;
    const flow::RowPlan plan = flow::plan_row(budget, static_cast<int32_t>(n));
    stats_.decode_rows += L * H;
    stats_.dense_pages += L * n * H;
    stats_.read_pages += ((L - sparse) * n + sparse * plan.num_selected()) * H;
    stats_.sparse_rows += sparse * H;
    stats_.sparse_dense_pages += sparse * n * H;
    stats_.sparse_read_pages += sparse * plan.num_selected() * H;
    if (!plan.read_all) stats_.scored_rows += sparse * H;
  }
  if (rows > 0) ++stats_.decode_steps;
  if (module_->source().field_stride > 0)
    stats_.summarized_pages += filled_pages * H * num_sparse_layers_;
}

// By the flow's budget: a request with a larger budget of its own reads more, which only makes
// the split count chosen from this figure smaller than ideal (splits divide any row's tokens).
int64_t CudaFlowSelector::max_selected_tokens(int64_t max_row_tokens) const {
  const int32_t P = geo_.page_size;
  const auto n = static_cast<int32_t>((max_row_tokens + P - 1) / P);
  return int64_t{flow::plan_row(config_->policy, n).num_selected()} * P;
}

bool CudaFlowSelector::ensure_rows(int64_t rows) {
  if (rows <= rows_cap_) return false;
  rows_cap_ = std::max<int64_t>(rows, rows_cap_ * 2);
  const flow::CudaFlowSource& src = module_->source();
  const auto R = static_cast<size_t>(rows_cap_);
  const auto M = static_cast<size_t>(max_pages_);
  row_first_ = DeviceBuffer(R * 4, "row plans");
  row_count_ = DeviceBuffer(R * 4, "row plans");
  row_k_ = DeviceBuffer(R * 4, "row plans");
  row_recent_ = DeviceBuffer(R * 4, "row plans");
  item_row_ = DeviceBuffer(R * static_cast<size_t>(max_chunks_) * 4, "score worklist");
  item_begin_ = DeviceBuffer(R * static_cast<size_t>(max_chunks_) * 4, "score worklist");
  num_items_ = DeviceBuffer(16, "score worklist");
  scores_ = DeviceBuffer(R * M * 4, "page scores");
  if (src.page_scratch_floats > 0)
    page_scratch_ = DeviceBuffer(R * M * src.page_scratch_floats * 4, "flow scratch");
  if (src.row_scratch_floats > 0)
    row_scratch_ = DeviceBuffer(R * src.row_scratch_floats * 4, "flow scratch");
  out_pages_ = DeviceBuffer(R * M * 4, "selected pages");
  out_num_tokens_ = DeviceBuffer(R * 4, "selected pages");
  std::vector<int32_t> offsets(R);
  for (size_t r = 0; r < R; ++r) offsets[r] = static_cast<int32_t>(r * M);
  out_offset_ = DeviceBuffer(R * 4, "selected pages");
  check_cuda(cudaMemcpy(out_offset_.data(), offsets.data(), R * 4, cudaMemcpyHostToDevice),
             "selected page offsets");
  return true;
}

void CudaFlowSelector::enqueue_plan(const SparseStepMeta& m, cudaStream_t stream) {
  const flow::CudaFlowSource& src = module_->source();
  if (src.state_stride > 0 && m.max_summarize > 0) {
    check_cuda(cuda::reset_page_state(state_.as<float>(), state_layer_stride_, geo_.num_layers,
                                      geo_.num_kv_heads, src.state_stride, m.reset_pages,
                                      m.num_reset, m.max_summarize, stream),
               "flow state reset");
  }
  if (m.decode_seqs == 0) return;
  cuda::PlanRowsArgs a;
  a.row_num_tokens = m.row_num_tokens;
  a.row_mode = m.row_mode;
  a.num_rows = m.decode_seqs * geo_.num_kv_heads;
  a.page_size = geo_.page_size;
  a.max_pages = max_pages_;
  a.policy = device_policy_;
  a.row_policy = m.row_policy;
  a.row_first = row_first_.as<int32_t>();
  a.row_count = row_count_.as<int32_t>();
  a.row_k = row_k_.as<int32_t>();
  a.row_recent_begin = row_recent_.as<int32_t>();
  a.chunk_pages = flow::kCudaScorePageThreads;
  a.item_row = item_row_.as<int32_t>();
  a.item_begin = item_begin_.as<int32_t>();
  a.num_items = num_items_.as<int32_t>();
  check_cuda(cuda::plan_rows(a, stream), "flow planner");
}

void CudaFlowSelector::launch_summarize(const cuda::DevicePagedKv& kv, int64_t kv_layer_stride,
                                        int32_t base_layer, const int32_t* layers,
                                        int32_t num_layers, const SparseStepMeta& m,
                                        cudaStream_t stream) {
  const flow::CudaFlowSource& src = module_->source();
  if (src.summarize_kernel.empty() || src.field_stride == 0 || m.max_summarize == 0 ||
      num_layers == 0)
    return;
  flow::CudaSummarizeArgs a;
  a.k = reinterpret_cast<const uint16_t*>(kv.k);
  a.v = reinterpret_cast<const uint16_t*>(kv.v);
  a.fields = fields_.as<uint16_t>() + base_layer * field_layer_stride_;
  a.field_scales = scale_layer_stride_ > 0
                       ? field_scales_.as<float>() + base_layer * scale_layer_stride_
                       : nullptr;
  a.items = m.summarize_pages;
  a.num_items = m.num_summarize;
  a.layers = layers;
  a.page_stride = kv.page_stride;
  a.head_stride = kv.head_stride;
  a.kv_layer_stride = kv_layer_stride;
  a.field_layer_stride = field_layer_stride_;
  a.scale_layer_stride = scale_layer_stride_;
  a.num_kv_heads = kv.num_kv_heads;
  a.field_stride = src.field_stride;
  a.num_layers = num_layers;
  a.num_pages = num_pages_;
  module_->launch_summarize(a, m.max_summarize, stream);
}

void CudaFlowSelector::enqueue_summarize(int32_t layer, const cuda::DevicePagedKv& kv,
                                         const SparseStepMeta& m, cudaStream_t stream) {
  launch_summarize(kv, 0, layer, nullptr, 1, m, stream);
}

void CudaFlowSelector::enqueue_summarize_all(const cuda::DevicePagedKv& kv0,
                                             int64_t kv_layer_stride, const SparseStepMeta& m,
                                             cudaStream_t stream) {
  launch_summarize(kv0, kv_layer_stride, 0, sparse_layers_.as<int32_t>(),
                   static_cast<int32_t>(num_sparse_layers_), m, stream);
}

SelectedPageLists CudaFlowSelector::own_lists() const {
  return {out_offset_.as<int32_t>(), out_num_tokens_.as<int32_t>(), out_pages_.as<int32_t>()};
}

void CudaFlowSelector::enqueue_score(int32_t layer, const uint16_t* q, int32_t num_q_heads,
                                     const SparseStepMeta& m, cudaStream_t stream,
                                     const SelectedPageLists* into) {
  const flow::CudaFlowSource& src = module_->source();
  const int32_t rows = m.decode_seqs * geo_.num_kv_heads;
  flow::CudaScoreArgs s;
  s.q = q;
  s.q_rows = m.q_rows;
  s.row_page_offset = m.row_page_offset;
  s.pages = m.pages;
  s.row_first = row_first_.as<int32_t>();
  s.row_count = row_count_.as<int32_t>();
  s.item_row = item_row_.as<int32_t>();
  s.item_begin = item_begin_.as<int32_t>();
  s.num_items = num_items_.as<int32_t>();
  s.fields = src.field_stride > 0 ? fields_.as<uint16_t>() + layer * field_layer_stride_ : nullptr;
  s.field_scales =
      scale_layer_stride_ > 0 ? field_scales_.as<float>() + layer * scale_layer_stride_ : nullptr;
  s.state = src.state_stride > 0 ? state_.as<float>() + layer * state_layer_stride_ : nullptr;
  s.page_scratch = page_scratch_.as<float>();
  s.row_scratch = row_scratch_.as<float>();
  s.scores = scores_.as<float>();
  s.num_rows = rows;
  s.num_q_heads = num_q_heads;
  s.num_kv_heads = geo_.num_kv_heads;
  s.max_pages = max_pages_;
  s.field_stride = src.field_stride;
  s.state_stride = src.state_stride;
  s.num_pages = num_pages_;
  s.row_num_tokens = m.row_num_tokens;
  s.page_size = geo_.page_size;
  if (fuses_select(rows)) {
    s.row_k = row_k_.as<int32_t>();
    s.row_recent_begin = row_recent_.as<int32_t>();
    const SelectedPageLists out = into ? *into : own_lists();
    s.out_pages = out.pages;
    s.out_num_tokens = out.num_tokens;
    module_->launch_score_select(s, stream);
    return;
  }
  // Enough blocks for a few waves; each loops over the worklist.
  const int grid = static_cast<int>(
      std::min<int64_t>(int64_t{rows} * max_chunks_, int64_t{sms_} * score_blocks_per_sm_));
  module_->launch_score(s, std::max(grid, 1), stream);
}

SelectedPageLists CudaFlowSelector::enqueue_select(const SparseStepMeta& m, cudaStream_t stream,
                                                   const SelectedPageLists* into) {
  const int32_t rows = m.decode_seqs * geo_.num_kv_heads;
  const SelectedPageLists out = into ? *into : own_lists();
  if (fuses_select(rows)) return out;  // enqueue_score selected
  cuda::SelectPagesArgs a;
  a.num_rows = rows;
  a.page_size = geo_.page_size;
  a.max_pages = max_pages_;
  a.row_page_offset = m.row_page_offset;
  a.pages = m.pages;
  a.row_num_tokens = m.row_num_tokens;
  a.row_first = row_first_.as<int32_t>();
  a.row_count = row_count_.as<int32_t>();
  a.row_k = row_k_.as<int32_t>();
  a.row_recent_begin = row_recent_.as<int32_t>();
  a.scores = scores_.as<float>();
  a.out_pages = out.pages;
  a.out_num_tokens = out.num_tokens;
  check_cuda(cuda::select_pages(a, stream), "page selection");
  return out;
}

bool CudaFlowSelector::fuses_select(int32_t rows) const {
  if (!module_->has_score_select() || select_mode_ == RunnerOptions::ScoreSelect::kSeparate)
    return false;
  return select_mode_ == RunnerOptions::ScoreSelect::kFused || rows >= sms_;
}

}  // namespace vortex
