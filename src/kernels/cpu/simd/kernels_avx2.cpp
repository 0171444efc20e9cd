// The CPU kernels compiled for AVX2 + FMA + F16C (x86-64-v3): 16 ymm registers of 8 floats.
#include "kernels/cpu/simd/kernel_prelude.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt")

namespace vortex::cpu::isa_avx2 {

constexpr CpuIsa kIsa = CpuIsa::kAvx2;
constexpr int kW = 8;
using VF = float __attribute__((vector_size(32)));

inline VF load_bf16(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return (VF)(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline VF load_f16(const uint16_t* p) {
  return (VF)(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

inline VF splat(float s) {
  return (VF)(_mm256_set1_ps(s));
}
// acc + a·b rounded once.
inline VF fmav(VF acc, VF a, VF b) {
  return (VF)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)acc);
}

// GEMM register tiles {rows of x, panels of 16 columns = 2 ymm}, largest first: at most 12
// accumulators, leaving room for the weight vectors and a broadcast in the 16 registers.
constexpr int kGemmTiles[][2] = {{6, 1}, {3, 2}, {2, 2}, {1, 4}};
// Load a k-row of weights, then broadcast x row by row (enough registers for both).
constexpr bool kGemmBroadcastFirst = false;
// Attention scores: up to 2 query rows × 2 keys, 4 accumulators of two ymm each.
constexpr int kScoreRows = 2;
constexpr int kScoreKeys = 2;
constexpr int kValueVecs = 2;  // 4 rows × 2 ymm of value dimensions (16 per pass)

// The kernel sources, in dependency order.
// clang-format off
#define VORTEX_SIMD_WIDTH 8
#include "kernels/cpu/simd/vector_ops.inc"
#include "kernels/cpu/simd/gemm.inc"
#include "kernels/cpu/simd/attention.inc"
#include "kernels/cpu/simd/elementwise.inc"
#include "kernels/cpu/simd/kernel_table.inc"
#undef VORTEX_SIMD_WIDTH
// clang-format on

}  // namespace vortex::cpu::isa_avx2

#pragma GCC pop_options
