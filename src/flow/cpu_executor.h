// The CPU executor: the reference semantics of a compiled flow (docs/flows.md). It interprets
// the IR op by op in f32 (sums accumulate in double), over batches of pages (summarize) and of
// rows (score, select), in parallel on ThreadPool::global(). Results do not depend on the batch
// or the thread count: each item and row is computed alone.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "flow/budget_planner.h"
#include "flow/ir.h"

namespace vortex::flow {

// Where one declared field sits in a page's field block, in floats.
struct FieldSlot {
  int field = -1;          // index into FlowProgram::fields
  int64_t offset = 0;      // from the start of the block (Field) or 0 (State: own array)
  int64_t num_floats = 0;  // product of the declared dims (1 for a scalar)
  bool int8 = false;       // a Field(..., dtype="int8"): summarize rounds it (field_storage.h)
};

// A flow's Field values for every (layer, page, KV head), f32, laid out like the KV cache:
// [layer][page][kv_head][floats_per_page_head], the fields of a block concatenated in
// declaration order. A flow without fields stores nothing (floats_per_page_head() == 0).
class FieldStore {
 public:
  FieldStore(int32_t num_layers, int32_t num_pages, int32_t num_kv_heads,
             int64_t floats_per_page_head);

  int64_t floats_per_page_head() const { return floats_per_page_head_; }
  int32_t num_pages() const { return num_pages_; }
  float* block(int32_t layer, int32_t page, int32_t kv_head);
  const float* block(int32_t layer, int32_t page, int32_t kv_head) const;

 private:
  int32_t num_layers_, num_pages_, num_kv_heads_;
  int64_t floats_per_page_head_;
  std::vector<float> data_;
};

// The State values of one row (request, layer, KV head), indexed by the row's page position
// (0 = its first page), one array per State field. A page's state is 0 until it is first scored.
// Per request, never shared between requests.
class RowState {
 public:
  RowState() = default;
  // Sizes one array per state slot; called by the executor on first use.
  void bind(std::span<const FieldSlot> state_slots);
  // Grows every array to hold num_pages pages; new pages start at 0.
  void ensure_pages(int32_t num_pages);
  int32_t num_pages() const { return num_pages_; }
  // State field s (its position among the flow's State fields) of the row's page `page`, which
  // must be below num_pages().
  float* page_state(int s, int32_t page);
  const float* page_state(int s, int32_t page) const;

 private:
  std::vector<int64_t> floats_per_page_;
  std::vector<std::vector<float>> arrays_;
  int32_t num_pages_ = 0;
};

// One row to score: q and its N scoreable pages, which are the row's pages
// [first_page, first_page + num_pages).
struct ScoreRow {
  const float* q = nullptr;                   // [G, D]
  int32_t num_pages = 0;                      // N
  const float* const* page_fields = nullptr;  // N field blocks (FieldStore::block), page order
  RowState* state = nullptr;                  // required when the flow has State fields
  int32_t first_page = 0;                     // row position of the first scoreable page
  float* scores = nullptr;                    // [N], written
  int32_t row_pages = -1;  // n, the row's pages, for num_pages() (< 0: unknown, an error if read)
};

// One row to plan, score and select: all n pages of the row, the partial last one included.
struct SelectRow {
  const float* q = nullptr;                   // [G, D]
  int32_t num_pages = 0;                      // n
  const float* const* page_fields = nullptr;  // n blocks; those of reserved pages may be null
  RowState* state = nullptr;
  std::vector<int32_t>* selected = nullptr;  // written: ascending row page positions
  const BudgetPolicy* policy = nullptr;      // this row's budget; null: select_rows' policy
};

class CpuFlowExecutor {
 public:
  // Binds (a copy of) the program to a concrete geometry (G, D, P all positive). Throws
  // vortex::Error if a field's dims or an op's shape does not evaluate to a positive integer for it
  // (e.g. Field(P // 8, D) with P = 4), naming the flow file and what failed.
  CpuFlowExecutor(const FlowProgram& program, const FlowGeometry& geometry);

  const FlowProgram& program() const { return program_; }
  const FlowGeometry& geometry() const { return geometry_; }
  int64_t field_floats_per_page_head() const { return field_floats_; }
  const std::vector<FieldSlot>& field_slots() const { return field_slots_; }  // Fields
  const std::vector<FieldSlot>& state_slots() const { return state_slots_; }  // States
  bool has_state() const { return !state_slots_.empty(); }

  // summarize for a batch of full pages: item i reads k_blocks[i], v_blocks[i] ([P, D] each)
  // and writes its fields, concatenated in declaration order, to field_outputs[i]
  // (field_floats_per_page_head() floats).
  void summarize_pages(const float* const* k_blocks, const float* const* v_blocks,
                       int64_t num_items, float* const* field_outputs) const;

  // score for a batch of rows: writes each row's scores and updates its State for the scored
  // pages (growing the RowState as needed).
  void score_rows(std::span<const ScoreRow> rows) const;

  // plan_row (by the row's own policy, else `policy`) + score_rows (only for rows that do not
  // read all their pages) + select_pages.
  void select_rows(const BudgetPolicy& policy, std::span<const SelectRow> rows) const;

 private:
  FlowProgram program_;
  FlowGeometry geometry_;
  int64_t field_floats_ = 0;
  std::vector<FieldSlot> field_slots_;
  std::vector<FieldSlot> state_slots_;
  std::vector<int> state_index_of_field_;  // FlowProgram::fields index -> State position or -1
};

}  // namespace vortex::flow
