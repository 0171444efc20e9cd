// CUDA code generation for flows (see cuda_codegen.h and the calling convention in
// cuda_flow_abi.h).
//
// How values become code. Every op value is addressed by an index per axis (an affine
// expression of loop variables), and is either computed inline where it is used (elementwise
// ops, transposes, reshapes, slices, constants, field loads) or materialized once and read back:
//  - summarize: one block per (page, KV head, layer); K and V staged in shared memory; reductions,
//    folds, softmax and matmul results in shared memory, threads striding over elements.
//  - score, per-page code: one thread per scoreable page. Values that depend on q and constants
//    only ("row-invariant") are computed once per worklist item into shared memory (the
//    prologue); per-page reductions go to small per-thread arrays, computed with the reduced
//    axis outermost and a tile of outputs innermost, so one chunk of a field (loaded 16 bytes
//    at a time) serves every output of the tile.
//    Cooperative form (the default where it applies): a group of L lanes per page. A per-page
//    reduction whose innermost reduced extent is a multiple of 8 * L is split over the group,
//    lane j taking the 8-wide chunks j, j + L, ... (so the group's 16-byte loads of a field row
//    are contiguous), and its partials are combined with shuffles within the group; everything
//    else is computed by every lane alike, and the group's lane 0 writes the outputs. A program
//    with no such reduction gets the one-thread-per-page kernel.
//  - score, cross-page ops (reductions and softmax over N): one block per row; each such op is
//    a pass over the row's pages with a block-wide reduction; per-page values before the first
//    pass that are costly to recompute come from page_scratch, written by the per-page kernel.
// Materializations are requested lazily while the code that uses them is generated, and land
// in the section that runs before it (prologue, passes, or the head of the per-page scope).
#include "flow/codegen/cuda_codegen.h"

#include <string>

#include "core/error.h"
#include "flow/codegen/generator.h"

namespace vortex::flow {

int parse_score_lanes(std::string_view value) {
  if (value.empty() || value == "auto") return 0;
  if (value == "thread") return 1;
  for (int l : {2, 4, 8, 16, 32})
    if (std::to_string(l) == value) return l;
  fail("'", value, "': expected auto, thread or lanes per page (2, 4, 8, 16 or 32)");
}

CudaFlowSource generate_cuda_flow(const FlowProgram& program, const FlowGeometry& geometry,
                                  const CudaCodegenOptions& options) {
  const int l = options.score_lanes;
  if (l < 0 || l > 32 || (l & (l - 1)) != 0)
    fail(program.filename,
         ": score_lanes must be 0 (automatic), 1 or a power of two up to 32, "
         "got ",
         l);
  return codegen::Generator(program, geometry, options).run();
}

}  // namespace vortex::flow
