// Llama and Qwen3: the dense GQA decoder layer (pre-norm RMSNorm, q/k/v/o projections with
// optional biases, RoPE, SwiGLU MLP). Qwen3 adds a per-head RMSNorm of q and k before RoPE.
#pragma once

#include "model/architecture.h"

namespace vortex {

const Architecture& llama_architecture();
const Architecture& qwen3_architecture();

}  // namespace vortex
