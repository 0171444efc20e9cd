// Element types and their conversions. bf16/f16 are stored as raw uint16_t bits.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace vortex {

enum class DType : uint8_t { kF32, kF16, kBF16, kI32, kI64, kU8 };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // "f32", "bf16", ...
// Parses safetensors ("F32", "BF16") and config ("float32", "bfloat16") spellings; false if unknown.
bool parse_dtype(std::string_view s, DType* out);

inline float bf16_to_f32(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, as PyTorch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Converts n elements of type `from` at src to f32 at dst (from must be a float type).
void convert_to_f32(DType from, const void* src, float* dst, size_t n);

}  // namespace vortex
