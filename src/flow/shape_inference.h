// Shape rules of the flow operators over symbolic dims (numpy semantics). Each function returns
// the result shape, or an error message that names the shapes involved; callers add the source
// location. Dims that are not provably equal never broadcast against each other.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "flow/ir.h"

namespace vortex::flow {

struct ShapeResult {
  Shape shape;
  std::string error;  // empty on success
  bool ok() const { return error.empty(); }
  static ShapeResult fail(std::string message) { return ShapeResult{{}, std::move(message)}; }
};

// numpy broadcasting of two shapes (right-aligned; equal dims or a 1 on either side).
ShapeResult broadcast_shapes(const Shape& a, const Shape& b);

// Normalises `axis` (negative counts from the end) for a tensor of `rank`; nullopt if out of
// range.
std::optional<int> normalize_axis(int64_t axis, int rank);
std::string axis_out_of_range_message(int64_t axis, const Shape& shape);

// Result of reducing `axes` (normalised, unique) with or without keepdims.
Shape reduce_shape(const Shape& s, const std::vector<int>& axes, bool keepdims);

// [.., S, ..] -> [.., S / group, ..] along `axis`; S must be divisible by group (for P, a
// power of two, this is decided symbolically; for G and D it is left to binding).
ShapeResult fold_shape(const Shape& s, int axis, int64_t group);

// numpy matmul: rank-1 promotion, inner dims equal, batch dims broadcast.
ShapeResult matmul_shape(const Shape& a, const Shape& b);

// perm must be a permutation of 0..rank-1.
ShapeResult transpose_shape(const Shape& s, const std::vector<int>& perm);

// New dims for a reshape of `from`; `to` may contain one Dim::constant(-1), which is inferred.
// The element counts must be provably equal.
ShapeResult reshape_shape(const Shape& from, const Shape& to);

// Length of `size[spec]` for a slice (not an index). Symbolic sizes are assumed at least as
// large as the constant bounds; lengths that would depend on the symbol's value are errors.
std::optional<Dim> slice_length(const Dim& size, const SliceSpec& spec, std::string* error);

// True when the dim mentions the page axis symbol N.
inline bool is_page_dim(const Dim& d) {
  return d.symbol == Symbol::kN;
}
int count_page_axes(const Shape& s);

// Elements of `s` without its page axis N: exact for dims the geometry binds, and a lower bound
// for the others, whose symbols count as 1 (every geometry symbol is at least 1). A double, so
// that any product of valid dims is representable for comparing against a limit.
double min_elements(const Shape& s, const FlowGeometry& geometry);

}  // namespace vortex::flow
