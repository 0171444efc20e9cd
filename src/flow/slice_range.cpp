#include "flow/slice_range.h"

#include <algorithm>
#include <optional>

#include "core/error.h"

namespace vortex::flow {

std::pair<int64_t, int64_t> slice_range(const SliceSpec& s, int64_t len) {
  if (s.index) {
    int64_t i = s.start.value_or(0);
    if (i < 0) i += len;
    VORTEX_ASSERT(i >= 0 && i < len);
    return {i, 1};
  }
  const int64_t step = s.step;
  VORTEX_ASSERT(step != 0);
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    const int64_t i = *v < 0 ? *v + len : *v;
    if (step > 0) return std::clamp<int64_t>(i, 0, len);
    return std::clamp<int64_t>(i, -1, len - 1);
  };
  const int64_t start = clamp(s.start, step > 0 ? 0 : len - 1);
  const int64_t stop = clamp(s.stop, step > 0 ? len : -1);
  const int64_t count = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                                 : (start > stop ? (start - stop - step - 1) / (-step) : 0);
  return {start, count};
}

}  // namespace vortex::flow
