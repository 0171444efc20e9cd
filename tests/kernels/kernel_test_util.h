// Helpers shared by the CPU kernel tests: random inputs, weights in each float dtype, and
// bitwise comparison for the batch-invariance checks.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace vortex::testing {

inline std::vector<float> random_floats(Rng& rng, int64_t n, float scale = 1.0f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.normal() * scale;
  return v;
}

// A tensor of `dtype` holding `values` rounded to that dtype.
inline Tensor make_weight(const std::vector<float>& values, DType dtype, Shape shape) {
  Tensor t = Tensor::empty(dtype, std::move(shape));
  for (size_t i = 0; i < values.size(); ++i) {
    switch (dtype) {
      case DType::kF32: t.data_as<float>()[i] = values[i]; break;
      case DType::kBF16: t.data_as<uint16_t>()[i] = f32_to_bf16(values[i]); break;
      case DType::kF16: t.data_as<uint16_t>()[i] = f32_to_f16(values[i]); break;
      default: break;
    }
  }
  return t;
}

// The values a kernel actually sees: the weight widened back to f32.
inline std::vector<float> widened(const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  convert_to_f32(t.dtype(), t.data(), out.data(), out.size());
  return out;
}

inline bool bit_equal(const float* a, const float* b, int64_t n) {
  return std::memcmp(a, b, static_cast<size_t>(n) * sizeof(float)) == 0;
}

}  // namespace vortex::testing
