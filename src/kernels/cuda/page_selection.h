// The flow's per-step planning and page selection on the GPU, so a sparse decode step needs
// nothing from the host and can be replayed from a CUDA graph. plan_rows applies the budget rule
// of flow/budget_planner.h to every decode row and builds the score worklist; select_pages takes
// each row's top-k scoreable pages (flow/selection.h's order: higher score first, equal scores
// to the lower page, NaN last) plus its reserved pages and writes the page list the decode
// attention kernel reads. Both match the CPU functions exactly (tests/cuda/page_selection_test).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace vortex::cuda {

// flow::BudgetPolicy in plain fields: pages < 0 = not set (use ratio); cap < 0 = no cap.
struct DevicePagePolicy {
  int32_t pages = -1;
  double ratio = 1.0 / 16.0;  // BudgetPolicy::effective_ratio()
  int32_t floor = 0;
  int32_t cap = -1;
  int32_t sink = 1;
  int32_t recent = 2;
};

// What a planner does with a row (PlanRowsArgs::row_mode).
enum RowMode : int32_t {
  kRowPlan = 0,     // plan by the budget
  kRowReadAll = 1,  // read all its pages whatever the budget says (a row that is not generating,
                    // e.g. a one-token prefill chunk, or a dense request's)
  // Not this planner's row (another flow's, in an engine of several flows): planned with no
  // scoreable pages and k = -1, which tells select_pages and the fused score-and-select kernels
  // to write nothing for it.
  kRowSkip = 2,
};

// Rows are (sequence, KV head) pairs, row = s * num_kv_heads + h, as in DecodeAttentionArgs.
struct PlanRowsArgs {
  const int32_t* row_num_tokens = nullptr;  // [num_rows] tokens of the row (>= 1)
  const int32_t* row_mode = nullptr;        // optional [num_rows] RowMode; null: every row kRowPlan
  int32_t num_rows = 0;
  int32_t page_size = 0;
  int32_t max_pages = 0;  // capacity of a row's page list and of its scores
  DevicePagePolicy policy;
  // Optional [num_rows]: row r's own policy (a request with its own budget), used instead of
  // `policy`.
  const DevicePagePolicy* row_policy = nullptr;
  // Outputs, [num_rows] each: the RowPlan of flow::plan_row for n = ceil(tokens / page_size).
  int32_t* row_first = nullptr;  // sink_end
  int32_t* row_count = nullptr;  // N = recent_begin - sink_end, or 0 when read_all
  int32_t* row_k = nullptr;      // pages taken by score (0 when read_all, -1 when skipped)
  int32_t* row_recent_begin = nullptr;
  // The score worklist: one item per started chunk of chunk_pages scoreable pages, rows in
  // order; item_row/item_begin have room for num_rows * ceil(max_pages / chunk_pages) items.
  int32_t chunk_pages = 128;
  int32_t* item_row = nullptr;
  int32_t* item_begin = nullptr;
  int32_t* num_items = nullptr;  // device scalar
};

// One block; num_rows up to 65536.
cudaError_t plan_rows(const PlanRowsArgs& args, cudaStream_t stream);

struct SelectPagesArgs {
  int32_t num_rows = 0;
  int32_t page_size = 0;
  int32_t max_pages = 0;
  // The dense page lists: row r's page i is pages[row_page_offset[r] + i], and it has
  // row_num_tokens[r] tokens.
  const int32_t* row_page_offset = nullptr;
  const int32_t* pages = nullptr;
  const int32_t* row_num_tokens = nullptr;
  // plan_rows' outputs and the scores (scores[r * max_pages + i] of scoreable page i).
  const int32_t* row_first = nullptr;
  const int32_t* row_count = nullptr;
  const int32_t* row_k = nullptr;
  const int32_t* row_recent_begin = nullptr;
  const float* scores = nullptr;
  // Outputs: row r reads out_pages[r * max_pages + 0 .. ) (physical pages, in ascending page
  // position) holding out_num_tokens[r] tokens; rows that read all their pages get a copy of
  // their dense list; skipped rows (row_k < 0) are not written.
  int32_t* out_pages = nullptr;
  int32_t* out_num_tokens = nullptr;
};

// One block per row.
cudaError_t select_pages(const SelectPagesArgs& args, cudaStream_t stream);

struct CopyDenseRowsArgs {
  int32_t num_rows = 0;
  int32_t max_pages = 0;
  int32_t page_size = 0;
  const int32_t* row_mode = nullptr;  // [num_rows]: rows of kRowReadAll are copied, others not
  const int32_t* row_page_offset = nullptr;  // the dense lists, as in SelectPagesArgs
  const int32_t* pages = nullptr;
  const int32_t* row_num_tokens = nullptr;
  int32_t* out_pages = nullptr;  // row r's copy at out_pages[r * max_pages]
  int32_t* out_num_tokens = nullptr;
};

// One block per row: each kRowReadAll row's dense list and token count, copied to the outputs
// as select_pages writes a read_all row; other rows are left as they are.
cudaError_t copy_dense_rows(const CopyDenseRowsArgs& args, cudaStream_t stream);

}  // namespace vortex::cuda
