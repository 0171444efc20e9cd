#include "flow/field_storage.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace vortex::flow {

int int8_scale_exponent(float max_abs) {
  if (!(max_abs > 0.0f)) return 0;
  if (std::isinf(max_abs)) return 104;
  int exp = 0;
  std::frexp(max_abs, &exp);  // max_abs = f * 2^exp, f in [0.5, 1): floor(log2) = exp - 1
  int e = exp - 1 - 6;        // max_abs in [64, 128) units
  if (std::ldexp(max_abs, -e) > 127.0f) ++e;  // (127, 128) would round to 128
  return std::clamp(e, -126, 104);
}

float block_max_abs(const float* x, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::fmax(m, std::fabs(x[i]));
  return m;
}

int int8_code(float x, int e) {
  if (std::isnan(x)) return 0;
  const float q = std::nearbyint(std::ldexp(x, -e));  // exact scaling, round to nearest even
  return static_cast<int>(std::clamp(q, -127.0f, 127.0f));
}

void round_int8_block(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (std::isnan(x[i])) {
      std::fill(x, x + n, std::numeric_limits<float>::quiet_NaN());
      return;
    }
  const int e = int8_scale_exponent(block_max_abs(x, n));
  for (int64_t i = 0; i < n; ++i) x[i] = std::ldexp(static_cast<float>(int8_code(x[i], e)), e);
}

}  // namespace vortex::flow
