// The budget policy of a flow (flow::BudgetPolicy, declared in the IR) with the user's overrides,
// and the per-row plan it gives (docs/flows.md, "Budget"): how many
// pages a row reads, which pages are always kept (sink and recent) and which compete on score.
// The plan is O(1) and allocation-free: the reserved pages are a prefix and a suffix of the row's
// pages and the scoreable pages are the contiguous range between them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "flow/ir.h"

namespace vortex::flow {

// User overrides (CLI `--topk-pages --topk-ratio --topk-floor --topk-cap --sink-pages
// --recent-pages --dense-layers`): each set field replaces the flow's value. Setting pages
// clears the flow's ratio and vice versa; setting both is an error.
struct BudgetOverrides {
  std::optional<int64_t> pages;
  std::optional<double> ratio;
  std::optional<int64_t> floor;
  std::optional<int64_t> cap;
  std::optional<int64_t> sink;
  std::optional<int64_t> recent;
  std::optional<std::vector<int64_t>> dense_layers;
};

// Throws vortex::Error naming the bad field (prefixed by `context`, e.g. "--topk-ratio" or
// "quest.py: budget") unless: not both pages and ratio, pages >= 0, ratio in (0, 1], floor >= 0,
// cap >= 0, floor <= cap, sink >= 0, recent >= 0, dense layers >= 0.
void validate_budget_policy(const BudgetPolicy& policy, const std::string& context);

// The flow's policy with the user's overrides applied, validated (usage errors name the flag).
BudgetPolicy apply_budget_overrides(const BudgetPolicy& flow_policy,
                                    const BudgetOverrides& overrides);

// B for a row of n pages, before reserved pages are accounted: pages, or ceil(ratio * n), then
// floor and cap. ratio * n within 1e-9 of an integer counts as that integer, so 0.1 * 30 is 3.
int32_t row_budget(const BudgetPolicy& policy, int32_t num_pages);

bool is_dense_layer(const BudgetPolicy& policy, int32_t layer);

// The plan for one row of n pages (n counts the partial last page). Pages [0, sink_end) and
// [recent_begin, n) are reserved; pages [sink_end, recent_begin) are scoreable (N of them),
// in page order; k of them are taken by score. When read_all, every page is read and nothing
// is scored (N = 0, k = 0).
struct RowPlan {
  int32_t num_pages = 0;     // n
  int32_t budget = 0;        // B
  int32_t sink_end = 0;      // reserved prefix [0, sink_end)
  int32_t recent_begin = 0;  // reserved suffix [recent_begin, n)
  int32_t k = 0;             // pages taken from the scoreable range by score
  bool read_all = false;

  int32_t num_reserved() const { return sink_end + (num_pages - recent_begin); }
  int32_t num_scoreable() const { return read_all ? 0 : recent_begin - sink_end; }  // N
  int32_t scoreable_page(int32_t i) const { return sink_end + i; }
  // Pages attention will read: n when read_all, else |reserved| + k.
  int32_t num_selected() const { return read_all ? num_pages : num_reserved() + k; }
  std::vector<int32_t> reserved_pages() const;   // ascending
  std::vector<int32_t> scoreable_pages() const;  // ascending; empty when read_all
};

RowPlan plan_row(const BudgetPolicy& policy, int32_t num_pages);

}  // namespace vortex::flow
