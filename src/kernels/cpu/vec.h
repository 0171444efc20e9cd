// Internal to the CPU kernels: a fixed-width float vector (GCC/Clang vector extension) and the
// one dot-product pattern every kernel uses, so a result never depends on which code path or
// how many rows a call had. A dot product over n elements is defined as: 16 lane sums, lane j
// accumulating a[k]*b[k] for k ≡ j (mod 16) in increasing k (a zero-padded last block), then the
// lanes folded in halves (8, 4, 2, 1).
#pragma once

#include <cmath>
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

using F32x8 = float __attribute__((vector_size(32)));
using F32x4 = float __attribute__((vector_size(16)));

// Lanes folded in halves: (j, j+8), then (j, j+4), (j, j+2), (0, 1).
inline float fold16(F32x16 v) {
  F32x8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
            __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  F32x4 b = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] + b[2]) + (b[1] + b[3]);
}

using I32x16 = int32_t __attribute__((vector_size(64)));

// e^x on 16 lanes, within about 2 ulp of the exact value (Cody-Waite reduction by ln 2, then
// Cephes' degree-6 polynomial), 0 below about -103.9 and +inf above 88.72. One code path for
// every lane and every caller, so a lane's result depends on its input only.
inline F32x16 exp16(F32x16 x) {
  const F32x16 overflow = x > 88.72283935546875f ? F32x16{} + INFINITY : F32x16{};
  x = x < -104.0f ? F32x16{} - 104.0f : x;
  x = x > 88.72283935546875f ? F32x16{} + 88.72283935546875f : x;
  const float kShift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const F32x16 n = (x * 1.44269504088896341f + kShift) - kShift;
  F32x16 r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  F32x16 p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  // 2^n in two factors so that n down to -252 and up to 128 stays representable.
  const I32x16 ni = __builtin_convertvector(n, I32x16);
  const I32x16 half = ni >> 1;
  const I32x16 bits1 = (half + 127) << 23, bits2 = (ni - half + 127) << 23;
  F32x16 scale1, scale2;
  std::memcpy(&scale1, &bits1, sizeof(scale1));
  std::memcpy(&scale2, &bits2, sizeof(scale2));
  const F32x16 result = p * scale1 * scale2;
  return overflow > 0.0f ? overflow : result;
}

// out[i] = e^(x[i] - shift) for n floats (in place allowed).
inline void exp_shifted(const float* x, float shift, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) store16(out + i, exp16(load16(x + i) - shift));
  if (i < n) {
    float buf[kLanes];
    store16(buf, exp16(load16_partial(x + i, n - i) - shift));
    std::memcpy(out + i, buf, static_cast<size_t>(n - i) * sizeof(float));
  }
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

// out[r] = dot(a[r], b, n) for R vectors a[r] against one b: R independent accumulator chains
// sharing b's loads, each bit-identical to dot().
template <int R>
inline void dot_many(const float* const* a, const float* b, int64_t n, float* out) {
  F32x16 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = F32x16{};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes) {
    const F32x16 bv = load16(b + k);
    for (int r = 0; r < R; ++r) acc[r] = madd(acc[r], load16(a[r] + k), bv);
  }
  if (k < n) {
    const F32x16 bv = load16_partial(b + k, n - k);
    for (int r = 0; r < R; ++r) acc[r] = madd(acc[r], load16_partial(a[r] + k, n - k), bv);
  }
  for (int r = 0; r < R; ++r) out[r] = fold16(acc[r]);
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
