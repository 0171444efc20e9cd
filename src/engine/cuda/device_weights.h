// A model's weights in GPU memory, in bf16 (f32 and f16 checkpoints are converted once at load),
// with the projections that read the same input fused into one matrix: q|k|v and gate|up.
#pragma once

#include <vector>

#include "core/cuda/cuda_util.h"
#include "kernels/cuda/types.h"
#include "model/model_config.h"
#include "model/model_weights.h"

namespace vortex {

struct DeviceLayerWeights {
  DeviceBuffer input_norm, post_attention_norm;  // [hidden]
  DeviceBuffer qkv;                              // [(Hq + 2 Hkv) * D, hidden]
  DeviceBuffer qkv_bias;                         // [(Hq + 2 Hkv) * D], empty without attention_bias
  DeviceBuffer q_norm, k_norm;                   // [D], empty without QK-norm
  DeviceBuffer o_proj;                           // [hidden, Hq * D]
  DeviceBuffer o_bias;                           // [hidden], empty without one
  DeviceBuffer gate_up;                          // [2 * intermediate, hidden]
  DeviceBuffer down;                             // [hidden, intermediate]
};

struct DeviceWeights {
  DeviceBuffer embed;  // [vocab, hidden]
  DeviceBuffer final_norm;
  DeviceBuffer lm_head_own;  // empty when tied to the embeddings
  std::vector<DeviceLayerWeights> layers;

  const cuda::bf16_t* lm_head() const {
    return (lm_head_own.data() ? lm_head_own : embed).as<cuda::bf16_t>();
  }
  size_t bytes() const;
};

// Uploads (and converts) every tensor. Throws vortex::Error if GPU memory runs out.
DeviceWeights upload_weights(const ModelWeights& weights);

}  // namespace vortex
