// The CPU kernels for any x86-64 CPU: SSE2, 16 xmm registers of 4 floats, no FMA (so results
// differ from the FMA paths in the last bits). Compiled for the default target.
#include "kernels/cpu/simd/kernel_prelude.h"

namespace vortex::cpu::isa_baseline {

constexpr CpuIsa kIsa = CpuIsa::kBaseline;
constexpr int kW = 4;
using VF = float __attribute__((vector_size(16)));

// bf16 is the high half of an f32: interleaving zeros below each value widens it exactly.
inline VF load_bf16(const uint16_t* p) {
  const __m128i h = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return (VF)(_mm_unpacklo_epi16(_mm_setzero_si128(), h));
}
inline VF load_f16(const uint16_t* p) {
  return VF{f16_to_f32(p[0]), f16_to_f32(p[1]), f16_to_f32(p[2]), f16_to_f32(p[3])};
}

inline VF splat(float s) {
  return (VF)(_mm_set1_ps(s));
}
// acc + a·b with the product rounded first: SSE2 has no fused multiply-add.
inline VF fmav(VF acc, VF a, VF b) {
  return acc + a * b;
}

// GEMM register tiles {rows of x, panels of 16 columns = 4 xmm}, largest first: 8
// accumulators, the tile's broadcasts, a weight vector and a product in the 16 registers.
constexpr int kGemmTiles[][2] = {{2, 1}, {1, 2}};
// Broadcast the tile's x first, then stream one weight vector at a time (8 accumulators leave
// no room for a k-row of 4 weight vectors as well).
constexpr bool kGemmBroadcastFirst = true;
// Attention scores: up to 2 query rows × 1 key, 2 accumulators of four xmm each.
constexpr int kScoreRows = 2;
constexpr int kScoreKeys = 1;
constexpr int kValueVecs = 2;  // 4 rows × 2 xmm of value dimensions (8 per pass)

// The kernel sources, in dependency order.
// clang-format off
#define VORTEX_SIMD_WIDTH 4
#include "kernels/cpu/simd/vector_ops.inc"
#include "kernels/cpu/simd/gemm.inc"
#include "kernels/cpu/simd/attention.inc"
#include "kernels/cpu/simd/elementwise.inc"
#include "kernels/cpu/simd/kernel_table.inc"
#undef VORTEX_SIMD_WIDTH
// clang-format on

}  // namespace vortex::cpu::isa_baseline
