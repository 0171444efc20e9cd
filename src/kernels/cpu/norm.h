// RMSNorm as in Llama/Qwen3 (Hugging Face LlamaRMSNorm / Qwen3RMSNorm, computed in f32).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace vortex::cpu {

// out[r] = weight * (x[r] * 1/sqrt(mean(x[r]^2) + eps)) for each of `rows` rows of `dim` floats;
// weight [dim] in f32, bf16 or f16. out may alias x. Each row's result depends on that row only.
// Throws vortex::Error if weight is not [dim].
void rms_norm(const float* x, int64_t rows, int64_t dim, const Tensor& weight, double eps,
              float* out);

}  // namespace vortex::cpu
