#include "flow/budget_planner.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace vortex::flow {

void validate_budget_policy(const BudgetPolicy& policy, const std::string& context) {
  if (policy.pages && policy.ratio)
    fail(context, ": both pages and ratio are set; give one of them");
  if (policy.pages && *policy.pages < 0)
    fail(context, ": pages must be >= 0, got ", *policy.pages);
  if (policy.ratio && !(*policy.ratio > 0.0 && *policy.ratio <= 1.0))
    fail(context, ": ratio must be in (0, 1], got ", *policy.ratio);
  if (policy.floor < 0) fail(context, ": floor must be >= 0, got ", policy.floor);
  if (policy.cap && *policy.cap < 0) fail(context, ": cap must be >= 0, got ", *policy.cap);
  if (policy.cap && policy.floor > *policy.cap)
    fail(context, ": floor (", policy.floor, ") is greater than cap (", *policy.cap, ")");
  if (policy.sink < 0) fail(context, ": sink must be >= 0, got ", policy.sink);
  if (policy.recent < 0) fail(context, ": recent must be >= 0, got ", policy.recent);
  for (int64_t layer : policy.dense_layers)
    if (layer < 0) fail(context, ": dense_layers must be non-negative, got ", layer);
}

BudgetPolicy apply_budget_overrides(const BudgetPolicy& flow_policy,
                                    const BudgetOverrides& overrides) {
  if (overrides.pages && overrides.ratio)
    fail_usage("--topk-pages and --topk-ratio both given; give one of them");
  if (overrides.pages && *overrides.pages < 0)
    fail_usage("--topk-pages must be >= 0, got ", *overrides.pages);
  if (overrides.ratio && !(*overrides.ratio > 0.0 && *overrides.ratio <= 1.0))
    fail_usage("--topk-ratio must be in (0, 1], got ", *overrides.ratio);
  if (overrides.floor && *overrides.floor < 0)
    fail_usage("--topk-floor must be >= 0, got ", *overrides.floor);
  if (overrides.cap && *overrides.cap < 0)
    fail_usage("--topk-cap must be >= 0, got ", *overrides.cap);
  if (overrides.sink && *overrides.sink < 0)
    fail_usage("--sink-pages must be >= 0, got ", *overrides.sink);
  if (overrides.recent && *overrides.recent < 0)
    fail_usage("--recent-pages must be >= 0, got ", *overrides.recent);
  if (overrides.dense_layers)
    for (int64_t layer : *overrides.dense_layers)
      if (layer < 0) fail_usage("--dense-layers must be non-negative, got ", layer);

  BudgetPolicy policy = flow_policy;
  if (overrides.pages) {
    policy.pages = overrides.pages;
    policy.ratio.reset();
  }
  if (overrides.ratio) {
    policy.ratio = overrides.ratio;
    policy.pages.reset();
  }
  if (overrides.floor) policy.floor = *overrides.floor;
  if (overrides.cap) policy.cap = overrides.cap;
  if (overrides.sink) policy.sink = *overrides.sink;
  if (overrides.recent) policy.recent = *overrides.recent;
  if (overrides.dense_layers) policy.dense_layers = *overrides.dense_layers;
  if (policy.cap && policy.floor > *policy.cap)
    fail_usage("budget floor (", policy.floor, ") is greater than its cap (", *policy.cap,
               ") after the overrides; adjust --topk-floor or --topk-cap");
  return policy;
}

int32_t row_budget(const BudgetPolicy& policy, int32_t num_pages) {
  int64_t budget;
  if (policy.pages) {
    budget = *policy.pages;
  } else {
    double x = policy.effective_ratio() * num_pages;
    double nearest = std::round(x);
    // A ratio like 0.1 is not exact in binary; 0.1 * 30 must still give 3, not 4.
    budget = static_cast<int64_t>(std::abs(x - nearest) <= 1e-9 * std::max(1.0, x)
                                      ? nearest
                                      : std::ceil(x));
  }
  budget = std::max<int64_t>(budget, policy.floor);
  if (policy.cap) budget = std::min<int64_t>(budget, *policy.cap);
  return static_cast<int32_t>(std::min<int64_t>(budget, INT32_MAX));
}

bool is_dense_layer(const BudgetPolicy& policy, int32_t layer) {
  return std::find(policy.dense_layers.begin(), policy.dense_layers.end(), layer) !=
         policy.dense_layers.end();
}

std::vector<int32_t> RowPlan::reserved_pages() const {
  std::vector<int32_t> pages;
  pages.reserve(static_cast<size_t>(num_reserved()));
  for (int32_t p = 0; p < sink_end; ++p) pages.push_back(p);
  for (int32_t p = recent_begin; p < num_pages; ++p) pages.push_back(p);
  return pages;
}

std::vector<int32_t> RowPlan::scoreable_pages() const {
  std::vector<int32_t> pages;
  for (int32_t i = 0; i < num_scoreable(); ++i) pages.push_back(scoreable_page(i));
  return pages;
}

RowPlan plan_row(const BudgetPolicy& policy, int32_t num_pages) {
  VORTEX_ASSERT(num_pages >= 0);
  RowPlan plan;
  plan.num_pages = num_pages;
  plan.budget = row_budget(policy, num_pages);
  plan.sink_end = static_cast<int32_t>(std::min<int64_t>(policy.sink, num_pages));
  // The last page holds the token being decoded: always read it, whatever `recent` says.
  int64_t recent = num_pages > 0 ? std::max<int64_t>(policy.recent, 1) : 0;
  plan.recent_begin = static_cast<int32_t>(
      std::max<int64_t>(plan.sink_end, num_pages - std::min<int64_t>(recent, num_pages)));
  plan.read_all = num_pages <= std::max(plan.budget, plan.num_reserved());
  plan.k = plan.read_all ? 0 : std::max(0, plan.budget - plan.num_reserved());
  return plan;
}

}  // namespace vortex::flow
