// flow::BudgetPolicy as the device planner takes it (kernels/cuda/page_selection.h), which
// cannot see the flow headers. Counts above INT32_MAX are clamped: the planner's budget is
// clamped there anyway, so the plans stay equal to flow::plan_row's.
#pragma once

#include <algorithm>
#include <cstdint>

#include "flow/budget_planner.h"
#include "kernels/cuda/page_selection.h"

namespace vortex {

inline int32_t clamp_to_device_count(int64_t v) {
  return static_cast<int32_t>(std::clamp<int64_t>(v, 0, INT32_MAX));
}

// `policy` must be valid (flow::validate_budget_policy); dense_layers is not part of it.
inline cuda::DevicePagePolicy to_device_policy(const flow::BudgetPolicy& policy) {
  cuda::DevicePagePolicy d;
  d.pages = policy.pages ? clamp_to_device_count(*policy.pages) : -1;
  d.ratio = policy.effective_ratio();
  d.floor = clamp_to_device_count(policy.floor);
  d.cap = policy.cap ? clamp_to_device_count(*policy.cap) : -1;
  d.sink = clamp_to_device_count(policy.sink);
  d.recent = clamp_to_device_count(policy.recent);
  return d;
}

}  // namespace vortex
