// An algebraic rewrite of score's linear reductions, used by the CUDA generator only (on its own
// copy of the IR), so that per-page work shrinks to what the score really needs:
//  (a) a sum/mean of a sum/mean becomes one reduction over the union of the axes, with the mean
//      counts folded into one scale;
//  (b) a sum/mean over axes S of x * y, where y has extent 1 along S_y (a subset of S) while x
//      does not, becomes reduce_S(reduce_{S_y, keepdims}(x) * y), and symmetrically for x.
// So mean_G(sum_D(q * c)) becomes sum_D(mean_G(q) * c), where mean_G(q) depends on q alone and
// is computed once per row. Reductions over the page axis N are left alone (their count is the
// row's N). The result is the same program up to f32 rounding.
#pragma once

#include "flow/ir.h"

namespace vortex::flow {

// Returns a copy of `program` with score's reductions rewritten (dead ops removed, placement
// recomputed). Needs a concrete geometry to compare reduction counts; with a symbolic one it
// returns the program unchanged.
FlowProgram rewrite_reductions(const FlowProgram& program, const FlowGeometry& geometry);

}  // namespace vortex::flow
