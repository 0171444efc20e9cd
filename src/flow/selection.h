// Top-k page selection for one row (docs/flows.md, "Selection"): the reserved pages plus the k
// best-scoring scoreable pages, in ascending page order. Higher score wins; equal scores go to
// the lower page index; NaN scores lose to every number. Average O(N) (a partial selection, not
// a sort of all N scores).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "flow/budget_planner.h"

namespace vortex::flow {

// True when scoreable page a ranks before scoreable page b (a, b index `scores`). A strict weak
// order: NaN last, then higher score, then lower index.
inline bool ranks_before(const float* scores, int32_t a, int32_t b) {
  float sa = scores[a], sb = scores[b];
  bool nan_a = sa != sa, nan_b = sb != sb;
  if (nan_a != nan_b) return nan_b;
  if (!nan_a && sa != sb) return sa > sb;
  return a < b;
}

// Writes the plan's selected pages, ascending, to `selected` (plan.num_selected() entries).
// `scores` holds one score per scoreable page (plan.num_scoreable()). `scratch` is reused
// between calls to avoid allocation.
void select_pages(const RowPlan& plan, std::span<const float> scores,
                  std::span<int32_t> selected, std::vector<int32_t>& scratch);

// Convenience form that allocates its result.
std::vector<int32_t> select_pages(const RowPlan& plan, std::span<const float> scores);

}  // namespace vortex::flow
