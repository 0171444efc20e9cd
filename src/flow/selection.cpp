#include "flow/selection.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace vortex::flow {

void select_pages(const RowPlan& plan, std::span<const float> scores,
                  std::span<int32_t> selected, std::vector<int32_t>& scratch) {
  const int32_t n_scoreable = plan.num_scoreable();
  if (static_cast<int64_t>(scores.size()) != n_scoreable)
    fail("select_pages: got ", scores.size(), " scores for a row with ", n_scoreable,
         " scoreable pages");
  if (static_cast<int64_t>(selected.size()) != plan.num_selected())
    fail("select_pages: output has room for ", selected.size(), " pages, the plan selects ",
         plan.num_selected());

  if (plan.read_all) {
    std::iota(selected.begin(), selected.end(), 0);
    return;
  }
  int32_t* out = selected.data();
  for (int32_t p = 0; p < plan.sink_end; ++p) *out++ = p;

  if (plan.k > 0) {
    scratch.resize(static_cast<size_t>(n_scoreable));
    std::iota(scratch.begin(), scratch.end(), 0);
    const float* s = scores.data();
    auto better = [s](int32_t a, int32_t b) { return ranks_before(s, a, b); };
    auto kth = scratch.begin() + plan.k;
    if (plan.k < n_scoreable) std::nth_element(scratch.begin(), kth - 1, scratch.end(), better);
    // The winners are the first k; only they need ordering, and by page index.
    std::sort(scratch.begin(), kth);
    for (auto it = scratch.begin(); it != kth; ++it) *out++ = plan.scoreable_page(*it);
  }
  for (int32_t p = plan.recent_begin; p < plan.num_pages; ++p) *out++ = p;
  VORTEX_ASSERT(out == selected.data() + selected.size());
}

std::vector<int32_t> select_pages(const RowPlan& plan, std::span<const float> scores) {
  std::vector<int32_t> selected(static_cast<size_t>(plan.num_selected()));
  std::vector<int32_t> scratch;
  select_pages(plan, scores, selected, scratch);
  return selected;
}

}  // namespace vortex::flow
