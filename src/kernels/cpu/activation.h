// Gated MLP activation (SwiGLU, as in Llama/Qwen3: down(silu(gate(x)) * up(x))).
#pragma once

#include <cstdint>

namespace vortex::cpu {

// out[i] = silu(gate[i]) * up[i] with silu(g) = g / (1 + exp(-g)), for n elements. out may alias
// gate or up. Each element depends on its own inputs only.
void silu_mul(const float* gate, const float* up, int64_t n, float* out);

}  // namespace vortex::cpu
