#include "kernels/cuda/common.cuh"
#include "kernels/cuda/qkv_rope.h"

namespace vortex::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxHeadDim = 256;

// One block per token; each warp takes whole heads: q heads and k heads are normed (if asked)
// and rotated, v heads copied.
__global__ void qkv_rope_kernel(QkvRopeArgs a) {
  __shared__ float row[kWarps][kMaxHeadDim];
  const int64_t t = blockIdx.x;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int D = a.head_dim, half = D / 2;
  const int Hq = a.num_q_heads, Hkv = a.num_kv_heads;
  const int64_t width = int64_t{Hq + 2 * Hkv} * D;
  const float pos = static_cast<float>(a.positions[t]);
  const int64_t page = a.kv_pages[t], slot = a.kv_slots[t];
  float* s = row[warp];
  for (int h = warp; h < Hq + 2 * Hkv; h += kWarps) {
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
      const int kvh = is_v ? h - Hq - Hkv : h - Hq;
      dst = (is_v ? a.v_cache : a.k_cache) + page * a.page_stride + kvh * a.head_stride + slot * D;
    }
    if (is_v) {
      for (int i = lane; i < D; i += 32) dst[i] = float_to_bf16_bits(s[i]);
    } else {
      for (int i = lane; i < half; i += 32) {
        const float angle = __fmul_rn(pos, a.inv_freq[i]);
        const float c = cosf(angle), sn = sinf(angle);
        const float x1 = s[i], x2 = s[i + half];
        dst[i] = float_to_bf16_bits(__fadd_rn(__fmul_rn(x1, c), __fmul_rn(-x2, sn)));
        dst[i + half] = float_to_bf16_bits(__fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, sn)));
      }
    }
    __syncwarp();
  }
}

}  // namespace

cudaError_t qkv_rope_append(const QkvRopeArgs& args, cudaStream_t stream) {
  if (args.head_dim <= 0 || args.head_dim % 2 != 0 || args.head_dim > kMaxHeadDim)
    return cudaErrorInvalidValue;
  if (args.num_tokens > 0)
    qkv_rope_kernel<<<static_cast<unsigned>(args.num_tokens), kWarps * 32, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace vortex::cuda
