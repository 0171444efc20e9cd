#include "flow/cpu_executor.h"

#include <cstring>
#include <utility>

#include "core/error.h"
#include "core/thread_pool.h"
#include "flow/cpu_executor_eval.h"
#include "flow/field_storage.h"
#include "flow/selection.h"

namespace vortex::flow {

using cpu::Dims;
using cpu::Scratch;

// ---- FieldStore ----

FieldStore::FieldStore(int32_t num_layers, int32_t num_pages, int32_t num_kv_heads,
                       int64_t floats_per_page_head)
    : num_layers_(num_layers),
      num_pages_(num_pages),
      num_kv_heads_(num_kv_heads),
      floats_per_page_head_(floats_per_page_head) {
  VORTEX_ASSERT(num_layers >= 0 && num_pages >= 0 && num_kv_heads >= 0 &&
                floats_per_page_head >= 0);
  data_.assign(static_cast<size_t>(num_layers) * static_cast<size_t>(num_pages) *
                   static_cast<size_t>(num_kv_heads) * static_cast<size_t>(floats_per_page_head),
               0.0f);
}

float* FieldStore::block(int32_t layer, int32_t page, int32_t kv_head) {
  return const_cast<float*>(std::as_const(*this).block(layer, page, kv_head));
}

const float* FieldStore::block(int32_t layer, int32_t page, int32_t kv_head) const {
  VORTEX_ASSERT(layer >= 0 && layer < num_layers_ && page >= 0 && page < num_pages_ &&
                kv_head >= 0 && kv_head < num_kv_heads_);
  const int64_t index = (static_cast<int64_t>(layer) * num_pages_ + page) * num_kv_heads_ + kv_head;
  return data_.data() + index * floats_per_page_head_;
}

// ---- RowState ----

void RowState::bind(std::span<const FieldSlot> state_slots) {
  if (!floats_per_page_.empty() || state_slots.empty()) return;
  for (const FieldSlot& slot : state_slots) floats_per_page_.push_back(slot.num_floats);
  arrays_.resize(floats_per_page_.size());
  ensure_pages(num_pages_);
}

void RowState::ensure_pages(int32_t num_pages) {
  if (num_pages < num_pages_) return;
  num_pages_ = num_pages;
  for (size_t s = 0; s < arrays_.size(); ++s)
    arrays_[s].resize(static_cast<size_t>(num_pages) * static_cast<size_t>(floats_per_page_[s]),
                      0.0f);
}

float* RowState::page_state(int s, int32_t page) {
  return const_cast<float*>(std::as_const(*this).page_state(s, page));
}

const float* RowState::page_state(int s, int32_t page) const {
  VORTEX_ASSERT(s >= 0 && static_cast<size_t>(s) < arrays_.size() && page >= 0 &&
                page < num_pages_);
  return arrays_[static_cast<size_t>(s)].data() + page * floats_per_page_[static_cast<size_t>(s)];
}

// ---- the executor ----

namespace {

// summarize: no loads; each store lands at its field's offset in the item's block.
class SummarizeAccess final : public cpu::FieldAccess {
 public:
  SummarizeAccess(const std::vector<FieldSlot>& slots_by_field, float* out)
      : slots_(slots_by_field), out_(out) {}
  void load(int, float*, int64_t) override { VORTEX_ASSERT(false && "summarize loads no field"); }
  void store(int field, const float* data, int64_t count) override {
    const FieldSlot& slot = slots_[static_cast<size_t>(field)];
    VORTEX_ASSERT(count == slot.num_floats);
    std::memcpy(out_ + slot.offset, data, static_cast<size_t>(count) * sizeof(float));
    if (slot.int8) round_int8_block(out_ + slot.offset, count);
  }

 private:
  const std::vector<FieldSlot>& slots_;
  float* out_;
};

// score: Fields are gathered from the N page blocks into [N, ...dims]; States are read from and
// written to the row's state arrays, whose scoreable pages are contiguous.
class ScoreAccess final : public cpu::FieldAccess {
 public:
  ScoreAccess(const FlowProgram& program, const std::vector<FieldSlot>& slots_by_field,
              const std::vector<int>& state_index, const ScoreRow& row)
      : program_(program), slots_(slots_by_field), state_index_(state_index), row_(row) {}

  void load(int field, float* out, int64_t count) override {
    const FieldSlot& slot = slots_[static_cast<size_t>(field)];
    VORTEX_ASSERT(count == slot.num_floats * row_.num_pages);
    const size_t bytes = static_cast<size_t>(slot.num_floats) * sizeof(float);
    if (program_.fields[static_cast<size_t>(field)].kind == FieldKind::kState) {
      const int s = state_index_[static_cast<size_t>(field)];
      std::memcpy(out, row_.state->page_state(s, row_.first_page), bytes * row_.num_pages);
      return;
    }
    for (int32_t p = 0; p < row_.num_pages; ++p)
      std::memcpy(out + p * slot.num_floats, row_.page_fields[p] + slot.offset, bytes);
  }
  void store(int field, const float* data, int64_t count) override {
    const FieldSlot& slot = slots_[static_cast<size_t>(field)];
    VORTEX_ASSERT(program_.fields[static_cast<size_t>(field)].kind == FieldKind::kState);
    VORTEX_ASSERT(count == slot.num_floats * row_.num_pages);
    const int s = state_index_[static_cast<size_t>(field)];
    std::memcpy(row_.state->page_state(s, row_.first_page), data,
                static_cast<size_t>(count) * sizeof(float));
  }

 private:
  const FlowProgram& program_;
  const std::vector<FieldSlot>& slots_;
  const std::vector<int>& state_index_;
  const ScoreRow& row_;
};

}  // namespace

CpuFlowExecutor::CpuFlowExecutor(const FlowProgram& program, const FlowGeometry& geometry)
    : program_(program), geometry_(geometry) {
  if (geometry.G <= 0 || geometry.D <= 0 || geometry.P <= 0)
    fail(program.filename, ": the executor needs a concrete geometry, got G=", geometry.G,
         " D=", geometry.D, " P=", geometry.P);
  state_index_of_field_.assign(program.fields.size(), -1);
  for (size_t f = 0; f < program.fields.size(); ++f) {
    const FieldDecl& decl = program.fields[f];
    int64_t floats = 1;
    for (const Dim& d : decl.dims) {
      std::optional<int64_t> v = eval_dim(d, geometry);
      if (!v || *v <= 0)
        fail(program.filename, ":", decl.loc.line, ":", decl.loc.col, ": error: field '", decl.name,
             "' has shape ", shape_to_string(decl.dims),
             ", which is not a positive whole size for G=", geometry.G, " D=", geometry.D,
             " P=", geometry.P);
      floats *= *v;
    }
    if (decl.kind == FieldKind::kField) {
      field_slots_.push_back(
          {static_cast<int>(f), field_floats_, floats, decl.dtype == FieldDtype::kInt8});
      field_floats_ += floats;
    } else {
      state_index_of_field_[f] = static_cast<int>(state_slots_.size());
      state_slots_.push_back({static_cast<int>(f), 0, floats});
    }
  }
  // Check every op's shape once, so a bad geometry fails here and not inside a worker.
  std::vector<Dims> shapes;
  cpu::bind_shapes(program_, program_.summarize, geometry_, -1, shapes);
  cpu::bind_shapes(program_, program_.score, geometry_, 1, shapes);
}

namespace {

// Slots indexed by FlowProgram::fields index, for the FieldAccess implementations.
std::vector<FieldSlot> slots_by_field(size_t num_fields, const std::vector<FieldSlot>& a,
                                      const std::vector<FieldSlot>& b) {
  std::vector<FieldSlot> slots(num_fields);
  for (const FieldSlot& s : a) slots[static_cast<size_t>(s.field)] = s;
  for (const FieldSlot& s : b) slots[static_cast<size_t>(s.field)] = s;
  return slots;
}

}  // namespace

void CpuFlowExecutor::summarize_pages(const float* const* k_blocks, const float* const* v_blocks,
                                      int64_t num_items, float* const* field_outputs) const {
  if (num_items <= 0 || field_floats_ == 0) return;
  const std::vector<FieldSlot> slots =
      slots_by_field(program_.fields.size(), field_slots_, state_slots_);
  ThreadPool::global().parallel_for(num_items, 8, [&](int64_t begin, int64_t end) {
    Scratch scratch;
    for (int64_t i = begin; i < end; ++i) {
      const float* inputs[2] = {k_blocks[i], v_blocks[i]};
      SummarizeAccess access(slots, field_outputs[i]);
      cpu::evaluate(program_, program_.summarize, geometry_, -1, inputs, access, scratch);
    }
  });
}

namespace {

void score_one(const FlowProgram& program, const FlowGeometry& geometry,
               const std::vector<FieldSlot>& slots, const std::vector<int>& state_index,
               bool has_state, const ScoreRow& row, Scratch& scratch) {
  if (row.num_pages <= 0) return;
  if (has_state) {
    if (row.state == nullptr)
      fail(program.filename, ": flow '", program.class_name,
           "' keeps State per request; the row to score has no RowState");
    row.state->ensure_pages(row.first_page + row.num_pages);
  }
  ScoreAccess access(program, slots, state_index, row);
  const float* inputs[1] = {row.q};
  const cpu::RowPages pages{row.first_page, row.row_pages};
  cpu::evaluate(program, program.score, geometry, row.num_pages, inputs, access, scratch, pages);
  const size_t result = static_cast<size_t>(program.score.result);
  VORTEX_ASSERT(cpu::num_elements(scratch.shapes[result]) == row.num_pages);
  std::memcpy(row.scores, scratch.values[result],
              static_cast<size_t>(row.num_pages) * sizeof(float));
}

}  // namespace

void CpuFlowExecutor::score_rows(std::span<const ScoreRow> rows) const {
  const std::vector<FieldSlot> slots =
      slots_by_field(program_.fields.size(), field_slots_, state_slots_);
  for (const ScoreRow& row : rows)
    if (row.state) row.state->bind(state_slots_);
  ThreadPool::global().parallel_for(
      static_cast<int64_t>(rows.size()), 1, [&](int64_t begin, int64_t end) {
        Scratch scratch;
        for (int64_t r = begin; r < end; ++r)
          score_one(program_, geometry_, slots, state_index_of_field_, has_state(),
                    rows[static_cast<size_t>(r)], scratch);
      });
}

void CpuFlowExecutor::select_rows(const BudgetPolicy& policy,
                                  std::span<const SelectRow> rows) const {
  const std::vector<FieldSlot> slots =
      slots_by_field(program_.fields.size(), field_slots_, state_slots_);
  for (const SelectRow& row : rows)
    if (row.state) row.state->bind(state_slots_);
  ThreadPool::global().parallel_for(
      static_cast<int64_t>(rows.size()), 1, [&](int64_t begin, int64_t end) {
        Scratch scratch;
        for (int64_t r = begin; r < end; ++r) {
          const SelectRow& row = rows[static_cast<size_t>(r)];
          VORTEX_ASSERT(row.selected != nullptr);
          RowPlan plan = plan_row(row.policy ? *row.policy : policy, row.num_pages);
          const int32_t n_scoreable = plan.num_scoreable();
          scratch.scores.resize(static_cast<size_t>(n_scoreable));
          // With k = 0 the scores cannot change the selection; only State makes them matter.
          if (n_scoreable > 0 && (plan.k > 0 || has_state())) {
            ScoreRow score_row{row.q,        n_scoreable,   row.page_fields + plan.sink_end,
                               row.state,    plan.sink_end, scratch.scores.data(),
                               row.num_pages};
            score_one(program_, geometry_, slots, state_index_of_field_, has_state(), score_row,
                      scratch);
          }
          row.selected->resize(static_cast<size_t>(plan.num_selected()));
          select_pages(plan, scratch.scores, *row.selected, scratch.selection);
        }
      });
}

}  // namespace vortex::flow
