// Internal to the CPU kernels: a fixed-width float vector (GCC/Clang vector extension) and the
// one dot-product pattern every kernel uses, so a result never depends on which code path or
// how many rows a call had. A dot product over n elements is defined as: 16 lane sums, lane j
// accumulating a[k]*b[k] for k ≡ j (mod 16) in increasing k (a zero-padded last block), then the
// lanes folded in halves (8, 4, 2, 1).
#pragma once

#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"

namespace vortex::cpu {

constexpr int kLanes = 16;

using F32x16 = float __attribute__((vector_size(64)));
using U16x16 = uint16_t __attribute__((vector_size(32)));
using U32x16 = uint32_t __attribute__((vector_size(64)));

inline F32x16 load16(const float* p) {
  F32x16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void store16(float* p, F32x16 v) { std::memcpy(p, &v, sizeof(v)); }

// First n (< 16) floats of p, the rest zero: the padded last block of a dot product.
inline F32x16 load16_partial(const float* p, int64_t n) {
  float buf[kLanes] = {};
  std::memcpy(buf, p, static_cast<size_t>(n) * sizeof(float));
  return load16(buf);
}

inline F32x16 bf16x16_to_f32(const uint16_t* p) {
  U16x16 h;
  std::memcpy(&h, p, sizeof(h));
  U32x16 u = __builtin_convertvector(h, U32x16) << 16;
  F32x16 f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

inline F32x16 f16x16_to_f32(const uint16_t* p) {
#if defined(__F16C__) || defined(__AVX512FP16__)
  using H16x16 = _Float16 __attribute__((vector_size(32)));
  H16x16 h;
  std::memcpy(&h, p, sizeof(h));
  return __builtin_convertvector(h, F32x16);
#else
  float buf[kLanes];
  for (int i = 0; i < kLanes; ++i) buf[i] = f16_to_f32(p[i]);
  return load16(buf);
#endif
}

// One accumulation step. Every kernel goes through this one expression, so the compiler makes
// the same fused-or-not choice everywhere and results stay bit-identical across code paths.
[[gnu::always_inline]] inline F32x16 madd(F32x16 acc, F32x16 a, F32x16 b) { return acc + a * b; }

// Stops the compiler from folding a load into each of several uses (one load per FMA instead of
// one per vector), which makes the GEMM tiles load-bound.
[[gnu::always_inline]] inline void keep_in_register(F32x16& v) { asm("" : "+v"(v)); }

inline float fold16(F32x16 v) {
  float s8[8], s4[4], s2[2];
  for (int i = 0; i < 8; ++i) s8[i] = v[i] + v[i + 8];
  for (int i = 0; i < 4; ++i) s4[i] = s8[i] + s8[i + 4];
  for (int i = 0; i < 2; ++i) s2[i] = s4[i] + s4[i + 2];
  return s2[0] + s2[1];
}

inline float dot(const float* a, const float* b, int64_t n) {
  F32x16 acc = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes) acc = madd(acc, load16(a + k), load16(b + k));
  if (k < n) acc = madd(acc, load16_partial(a + k, n - k), load16_partial(b + k, n - k));
  return fold16(acc);
}

// Kernels accept weights in f32, bf16 or f16; anything else is a loader bug or a bad checkpoint.
inline void require_float_weight(const Tensor& t, const char* what) {
  DType d = t.dtype();
  if (d != DType::kF32 && d != DType::kBF16 && d != DType::kF16)
    fail(what, ": weight has dtype ", dtype_name(d), ", expected f32, bf16 or f16");
}

// Element i of a weight vector of type `dtype` (f32, bf16 or f16) as f32.
inline float weight_at(const void* data, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kF32: return static_cast<const float*>(data)[i];
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    default: break;
  }
  VORTEX_ASSERT(false && "weight_at on a non-float dtype");
  return 0.0f;
}

}  // namespace vortex::cpu
