// Internal to the CPU executor: evaluates one phase function of the IR for one item (a page in
// summarize, a row in score) with concrete shapes. Not a public API.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "flow/ir.h"

namespace vortex::flow::cpu {

using Dims = std::vector<int64_t>;

int64_t num_elements(const Dims& shape);

// Where loads come from and stores go; the executor implements one per phase.
class FieldAccess {
 public:
  virtual ~FieldAccess() = default;
  // Fill `out` (count floats) with field `field` as the op sees it ([N, ...dims] in score).
  virtual void load(int field, float* out, int64_t count) = 0;
  virtual void store(int field, const float* data, int64_t count) = 0;
};

// Per-thread buffers, reused across items so that a steady state allocates nothing.
struct Scratch {
  std::vector<std::vector<float>> buffers;  // per op; unused for aliases (inputs, reshapes)
  std::vector<Dims> shapes;                 // per op, concrete
  std::vector<const float*> values;         // per op: where its result lives
  std::vector<double> accumulators;
  std::vector<float> scores;       // select_rows: one row's scores
  std::vector<int32_t> selection;  // select_rows: top-k scratch
};

// The concrete shape of every op of fn for the geometry and n (n < 0 in summarize). Throws
// vortex::Error naming the op and its symbolic shape if a dim is not a non-negative integer.
void bind_shapes(const FlowProgram& program, const Function& fn, const FlowGeometry& geometry,
                 int64_t n, std::vector<Dims>& shapes);

// Where a scored row's pages are (score's page_index() and num_pages()): scoreable page i is
// the row's page first_page + i of row_pages (row_pages < 0: unknown, an error if read).
struct RowPages {
  int64_t first_page = 0;
  int64_t row_pages = -1;
};

// Runs every op of fn in order. inputs: the phase's parameters (k, v or q). After the call,
// scratch.values[id] and scratch.shapes[id] hold each op's result.
void evaluate(const FlowProgram& program, const Function& fn, const FlowGeometry& geometry,
              int64_t n, std::span<const float* const> inputs, FieldAccess& fields,
              Scratch& scratch, const RowPages& row = {});

}  // namespace vortex::flow::cpu
