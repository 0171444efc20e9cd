// Python's slice semantics on one axis of a known length, in one place for every part that needs
// them: shape inference (how long a slice is), the CPU executor and the CUDA code generator (which
// elements it reads).
#pragma once

#include <cstdint>
#include <utility>

#include "flow/ir.h"

namespace vortex::flow {

// The first index and the count of elements that `s` selects from an axis of `len` elements
// (an index selects one; negative bounds count from the back; bounds are clamped as Python
// clamps them, for positive and negative steps). The step must not be 0 and an index must be
// within the axis (shape inference has checked both).
std::pair<int64_t, int64_t> slice_range(const SliceSpec& s, int64_t len);

}  // namespace vortex::flow
