// The step between the fused QKV projection and attention, in one CUDA kernel: bias, per-head
// QK-norm (Qwen3), rotary embedding of q and k (Hugging Face rotate_half convention, the angle
// float(position) * inv_freq[i] rounded to f32 as on the CPU), and the append of k and v to
// their page slots in the bf16 cache.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/types.h"

namespace vortex::cuda {

struct QkvRopeArgs {
  const float* qkv = nullptr;          // [T, (Hq + 2 Hkv) * D]: q heads, then k heads, then v heads
  const bf16_t* bias = nullptr;        // [(Hq + 2 Hkv) * D] or null
  const bf16_t* q_norm = nullptr;      // [D], or null for no QK-norm
  const bf16_t* k_norm = nullptr;      // [D], or null
  const float* inv_freq = nullptr;     // [D / 2]
  const int32_t* positions = nullptr;  // [T]
  const int32_t* kv_pages = nullptr;   // [T] page of each token's K/V
  const int32_t* kv_slots = nullptr;   // [T] slot in that page
  int64_t num_tokens = 0;
  int32_t num_q_heads = 0, num_kv_heads = 0, head_dim = 0;
  float eps = 1e-6f;
  bf16_t* q_out = nullptr;  // [T, Hq, D]
  // This layer's cache: element (page, head, slot, d) at page * page_stride + head * head_stride
  // + slot * D + d, in k_cache and v_cache.
  bf16_t* k_cache = nullptr;
  bf16_t* v_cache = nullptr;
  int64_t page_stride = 0, head_stride = 0;
};

// head_dim must be even and at most 256.
cudaError_t qkv_rope_append(const QkvRopeArgs& args, cudaStream_t stream);

}  // namespace vortex::cuda
