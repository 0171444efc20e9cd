// The CPU kernels compiled for AVX-512 (x86-64-v4): 32 zmm registers of 16 floats.
#include "kernels/cpu/simd/kernel_prelude.h"

// GCC 12's AVX-512 intrinsics start from an "undefined" register that -Wmaybe-uninitialized
// mistakes for a read of an uninitialised variable (fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt")

namespace vortex::cpu::isa_avx512 {

constexpr CpuIsa kIsa = CpuIsa::kAvx512;
constexpr int kW = 16;
using VF = float __attribute__((vector_size(64)));

inline VF load_bf16(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return (VF)(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
inline VF load_f16(const uint16_t* p) {
  return (VF)(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
}

inline VF splat(float s) {
  return (VF)(_mm512_set1_ps(s));
}
// acc + a·b rounded once.
inline VF fmav(VF acc, VF a, VF b) {
  return (VF)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)acc);
}

// GEMM register tiles {rows of x, panels of 16 columns}, largest first: 12 × 2 zmm = 24
// accumulators plus 2 weight vectors and a broadcast in the 32 registers.
constexpr int kGemmTiles[][2] = {{12, 2}, {4, 4}, {2, 4}, {1, 4}};
// Load a k-row of weights, then broadcast x row by row (enough registers for both).
constexpr bool kGemmBroadcastFirst = false;
// Attention scores: up to 4 query rows × 4 keys, 16 zmm accumulators folded together.
constexpr int kScoreRows = 4;
constexpr int kScoreKeys = 4;
constexpr int kValueVecs = 4;  // 4 rows × 4 zmm of value dimensions (64 per pass)

// The kernel sources, in dependency order.
// clang-format off
#define VORTEX_SIMD_WIDTH 16
#include "kernels/cpu/simd/vector_ops.inc"
#include "kernels/cpu/simd/gemm.inc"
#include "kernels/cpu/simd/attention.inc"
#include "kernels/cpu/simd/elementwise.inc"
#include "kernels/cpu/simd/kernel_table.inc"
#undef VORTEX_SIMD_WIDTH
// clang-format on

}  // namespace vortex::cpu::isa_avx512

#pragma GCC pop_options
