// Whole-program checks on a lowered flow: every Field written exactly once by summarize with its
// declared shape and read by score; every State read and written by score with shape [N, ...];
// score returns one value per page, shape [N]. Also the IR's own invariants (operands defined
// before use, field indices valid), which the compiler re-checks after every pass.
#pragma once

#include <string>

#include "flow/diagnostics.h"
#include "flow/ir.h"

namespace vortex::flow {

// Reports each violation of the flow contract to `sink`, and values larger than the limits of
// flow/limits.h (elements per page of one value and of a whole function; with symbols not bound
// yet counted as 1, so what is refused is too large for every model).
void verify_flow(const FlowProgram& program, DiagnosticSink& sink);

// After constant folding: every constant a flow computes must be finite in f32, the precision
// flows compute in (1e39 or a folded 0/0 would poison every score).
void verify_constants(const FlowProgram& program, DiagnosticSink& sink);

// Empty if the IR is well formed, else a description of the first broken invariant (a bug in a
// pass, never the user's fault).
std::string check_ir_invariants(const FlowProgram& program);

}  // namespace vortex::flow
