#include "kernels/cuda/common.cuh"
#include "kernels/cuda/qkv_rope.h"

namespace vortex::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxHeadDim = 256;

// One warp per (token, head) item, kWarps items per block, so that a decode step of a few
// tokens still spreads over the whole GPU: q and k heads are normed (if asked) and rotated, v
// heads copied.
__global__ void __launch_bounds__(kWarps * 32) qkv_rope_kernel(QkvRopeArgs a) {
  __shared__ float row[kWarps][kMaxHeadDim];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int D = a.head_dim, half = D / 2;
  const int Hq = a.num_q_heads, Hkv = a.num_kv_heads, heads = Hq + 2 * Hkv;
  const int64_t item = int64_t{blockIdx.x} * kWarps + warp;
  if (item >= a.num_tokens * heads) return;
  const int64_t t = item / heads;
  const int h = static_cast<int>(item - t * heads);
  const int64_t width = int64_t{heads} * D;
  float* s = row[warp];
  const int64_t base = h * int64_t{D};
  const float* src = a.qkv + t * width + base;
  const bool is_v = h >= Hq + Hkv;
  const uint16_t* norm = h < Hq ? a.q_norm : (is_v ? nullptr : a.k_norm);
  float sq = 0.0f;
  for (int i = lane; i < D; i += 32) {
    float v = src[i];
    if (a.bias) v += bf16_bits_to_float(a.bias[base + i]);
    s[i] = v;
    sq += v * v;
  }
  if (norm) {
    sq = warp_sum(sq);
    const float inv_rms = 1.0f / sqrtf(sq / static_cast<float>(D) + a.eps);
    for (int i = lane; i < D; i += 32) s[i] = bf16_bits_to_float(norm[i]) * (s[i] * inv_rms);
  }
  __syncwarp();
  uint16_t* dst;
  if (h < Hq) {
    dst = a.q_out + (t * Hq + h) * D;
  } else {
    const int64_t page = a.kv_pages[t], slot = a.kv_slots[t];
    const int kvh = is_v ? h - Hq - Hkv : h - Hq;
    dst = (is_v ? a.v_cache : a.k_cache) + page * a.page_stride + kvh * a.head_stride + slot * D;
  }
  if (is_v) {
    for (int i = lane; i < D; i += 32) dst[i] = float_to_bf16_bits(s[i]);
  } else {
    const float pos = static_cast<float>(a.positions[t]);
    for (int i = lane; i < half; i += 32) {
      const float angle = __fmul_rn(pos, a.inv_freq[i]);
      const float c = cosf(angle), sn = sinf(angle);
      const float x1 = s[i], x2 = s[i + half];
      dst[i] = float_to_bf16_bits(__fadd_rn(__fmul_rn(x1, c), __fmul_rn(-x2, sn)));
      dst[i + half] = float_to_bf16_bits(__fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, sn)));
    }
  }
}

}  // namespace

cudaError_t qkv_rope_append(const QkvRopeArgs& args, cudaStream_t stream) {
  if (args.head_dim <= 0 || args.head_dim % 2 != 0 || args.head_dim > kMaxHeadDim)
    return cudaErrorInvalidValue;
  const int64_t items = args.num_tokens * (args.num_q_heads + 2 * int64_t{args.num_kv_heads});
  if (items > 0)
    qkv_rope_kernel<<<static_cast<unsigned>((items + kWarps - 1) / kWarps), kWarps * 32, 0,
                      stream>>>(args);
  return cudaGetLastError();
}

}  // namespace vortex::cuda
