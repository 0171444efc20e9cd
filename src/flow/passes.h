// IR passes, one per file, each rewriting a verified program in place. compile_flow runs them in
// this order and can print the IR after each.
#pragma once

#include "flow/ir.h"

namespace vortex::flow {

// Replaces ops whose operands are all constants by constants (every kConstant is a uniform
// tensor, so elementwise ops, reductions over concrete sizes, folds, reshapes and slices of
// constants fold), and forwards x*1, x/1, x+0, x-0 to x. Leaves the dead ops for dead-code removal.
void fold_constants(FlowProgram& program);

// Removes ops whose values reach neither a field store nor score's result; renumbers the rest.
void remove_dead_code(FlowProgram& program);

// Marks every op PER_PAGE or CROSS_PAGE and lists the stages (see Placement in ir.h): an op is
// CROSS_PAGE if it reduces or normalises over the page axis N, or depends on one that does.
// Stage s holds the ops behind s such page-wide steps.
void assign_placement(FlowProgram& program);

}  // namespace vortex::flow
