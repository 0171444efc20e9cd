// One flow's page selection in the CUDA runner: it plans each decode row's budget, summarizes
// pages as they fill, scores and selects (decode attention then reads the selected pages; it is
// not done here). Its generated kernels (summarize, score), the device planner and top-k
// (kernels/cuda/page_selection.h), the Field and State storage beside
// the KV cache, and the statistics of its requests. Everything a decode step does on the device
// reads only device buffers and the step's uploaded metadata, so the step, flow included, can be
// captured in a CUDA graph and replayed. An engine's flows together: cuda_sparse_flows.h.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/cuda/cuda_util.h"
#include "engine/runner_options.h"
#include "engine/scheduler.h"
#include "engine/sparse_decode.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/page_selection.h"
#include "kv/kv_cache.h"
#include "model/model_config.h"

namespace vortex {

class CudaFlowModule;

// Device addresses of the step's metadata that the sparse kernels read.
struct SparseStepMeta {
  const int32_t* q_rows = nullptr;
  const int32_t* row_page_offset = nullptr;  // dense lists
  const int32_t* row_num_tokens = nullptr;
  const int32_t* pages = nullptr;
  const int32_t* summarize_pages = nullptr;
  const int32_t* num_summarize = nullptr;  // device scalar
  const int32_t* reset_pages = nullptr;
  const int32_t* num_reset = nullptr;  // device scalar
  const int32_t* row_mode = nullptr;   // this flow's cuda::RowMode per decode row
  int64_t row_mode_stride = 0;         // elements between the uploaded row-mode lists
  const cuda::DevicePagePolicy* row_policy = nullptr;
  int32_t decode_seqs = 0;    // sequences of decode rows (padded in graphs)
  int32_t max_summarize = 0;  // grid of the summarize and reset launches
};

// Where a flow's selection writes the rows' page lists: row r's at pages + r * max_pages (the
// longest possible row's pages), its token count at num_tokens[r]; row_page_offset[r] is
// r * max_pages. Decode attention reads the three.
struct SelectedPageLists {
  const int32_t* row_page_offset = nullptr;
  int32_t* num_tokens = nullptr;
  int32_t* pages = nullptr;
};

class CudaFlowSelector {
 public:
  // flow_index: the Request::flow of the requests whose decode rows this flow selects.
  CudaFlowSelector(std::shared_ptr<const SparseAttentionConfig> config, int32_t flow_index,
                   const ModelConfig& cfg, const KvGeometry& geometry,
                   int32_t num_pages_with_scratch, const RunnerOptions& options);
  ~CudaFlowSelector();

  const SparseAttentionConfig& config() const { return *config_; }
  // The flow's budget as the device planner takes it (graph padding rows plan with it).
  const cuda::DevicePagePolicy& device_policy() const { return device_policy_; }
  bool is_sparse_layer(int32_t layer) const;
  int32_t max_row_pages() const { return max_pages_; }

  // Whether a decode item is one of this flow's generating rows (the rows it selects for).
  bool selects_for(const ScheduledWork& w) const;
  // Host part of a step: appends the RowMode of each decode row's KV heads to row_mode (decode
  // rows are the items with one query token, in work order, as the runner lays them out) and
  // counts the statistics of this flow's rows (exact counts from the same budget arithmetic the
  // device planner runs). Rows that are not this flow's read all (kRowReadAll) when the flow
  // writes its own page lists, or are skipped (kRowSkip) when several flows write one shared
  // list. filled_pages: pages that become full in the step (each flow summarizes them all).
  void begin_step(const std::vector<ScheduledWork>& work, bool shared_lists, int64_t filled_pages,
                  std::vector<int32_t>& row_mode);
  // Pages a sparse layer's decode row reads at most: the split count of sparse decode attention
  // is chosen for it. max_row_tokens: the longest dense row of the step (or of the context).
  int64_t max_selected_tokens(int64_t max_row_tokens) const;
  // Sizes the per-row buffers for `rows` decode rows; returns true when it reallocated (CUDA
  // graphs holding the old addresses must be dropped).
  bool ensure_rows(int64_t rows);

  // Whether the step's filled pages are summarized once after the last layer, for every sparse
  // layer in one launch (enqueue_summarize_all), instead of after each sparse layer's K/V append
  // (enqueue_summarize). Both give the same Fields at every score: see the .cpp for why. The
  // environment variable VORTEX_SUMMARIZE (step, the default, or layer) is read once, when this
  // object is made.
  bool defers_summarize() const { return defer_summarize_; }

  // Device work, enqueued on `stream`. plan: once per step before the layers (row plans, score
  // worklist, State reset). summarize: after a sparse layer's K/V append (kv: that layer's
  // cache). summarize_all: once per step after every layer's K/V append (kv0: layer 0's cache,
  // layer l's at + l * kv_layer_stride elements). score then select: a sparse layer's page
  // scores and top-k, written to `into` (null: this flow's own lists); select returns the page
  // lists decode attention reads.
  void enqueue_plan(const SparseStepMeta& m, cudaStream_t stream);
  void enqueue_summarize(int32_t layer, const cuda::DevicePagedKv& kv, const SparseStepMeta& m,
                         cudaStream_t stream);
  void enqueue_summarize_all(const cuda::DevicePagedKv& kv0, int64_t kv_layer_stride,
                             const SparseStepMeta& m, cudaStream_t stream);
  void enqueue_score(int32_t layer, const uint16_t* q, int32_t num_q_heads, const SparseStepMeta& m,
                     cudaStream_t stream, const SelectedPageLists* into = nullptr);
  SelectedPageLists enqueue_select(const SparseStepMeta& m, cudaStream_t stream,
                                   const SelectedPageLists* into = nullptr);
  // Whether a step of `rows` decode rows scores and selects in one kernel (the flow's fused
  // score-and-select kernel, one block per row): then enqueue_score also selects and
  // enqueue_select launches nothing. VORTEX_SCORE_SELECT (read once, when this object is made):
  // auto (the default: fused when the flow has the kernel and the rows fill the GPU, rows >=
  // SMs), fused (whenever the flow has it) or separate (never).
  bool fuses_select(int32_t rows) const;

  // The page lists this flow's selection writes when it is the engine's only flow.
  SelectedPageLists own_lists() const;

  SparseStats& stats() { return stats_; }
  const SparseStats& stats() const { return stats_; }

 private:
  // One summarize launch over num_layers layers: grid z's layer is layers[z] (nullptr: z), its
  // K/V at kv + layer * kv_layer_stride and its Fields (and int8 scales) those of layer
  // base_layer + layer.
  void launch_summarize(const cuda::DevicePagedKv& kv, int64_t kv_layer_stride, int32_t base_layer,
                        const int32_t* layers, int32_t num_layers, const SparseStepMeta& m,
                        cudaStream_t stream);

  std::shared_ptr<const SparseAttentionConfig> config_;
  int32_t flow_index_;
  cuda::DevicePagePolicy device_policy_;
  const ModelConfig& cfg_;
  KvGeometry geo_;
  int32_t num_pages_;   // physical pages incl. the scratch page
  int32_t max_pages_;   // pages of the longest possible row
  int64_t max_chunks_;  // score worklist items of such a row
  int64_t num_sparse_layers_ = 0;
  DeviceBuffer sparse_layers_;  // [num_sparse_layers_] int32: the sparse layers' indices
  bool defer_summarize_ = true;
  int sms_ = 1;
  // Per-page score grid: this many blocks per SM ($VORTEX_SCORE_BLOCKS_PER_SM). 12: on an H100
  // (qwen3-1.7b, batch 32 x 16K) 10 to 16 scored alike and 8 about 11 % slower
  // (docs/performance.md).
  int score_blocks_per_sm_ = 12;
  RunnerOptions::ScoreSelect select_mode_ = RunnerOptions::ScoreSelect::kAuto;
  std::unique_ptr<CudaFlowModule> module_;
  DeviceBuffer fields_, field_scales_, state_;
  int64_t field_layer_stride_ = 0, scale_layer_stride_ = 0, state_layer_stride_ = 0;  // elements
  // Per-row buffers (rows_cap_ rows).
  int64_t rows_cap_ = 0;
  DeviceBuffer row_first_, row_count_, row_k_, row_recent_, item_row_, item_begin_, num_items_,
      scores_, page_scratch_, row_scratch_, out_pages_, out_num_tokens_, out_offset_;
  SparseStats stats_;
};

}  // namespace vortex
