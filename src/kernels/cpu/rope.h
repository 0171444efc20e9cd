// Rotary position embedding with Hugging Face transformers' semantics (rotate_half convention).
#pragma once

#include <cstdint>
#include <vector>

#include "core/rope_scaling.h"

namespace vortex::cpu {

// The head_dim/2 inverse frequencies of rope type p.type ("default", "linear", "llama3"),
// computed with the same float32 operations, in the same order, as transformers'
// ROPE_INIT_FUNCTIONS on the CPU. Throws vortex::Error for an unknown type (naming the supported
// ones), an odd or non-positive head_dim, or parameters that make the formula meaningless.
std::vector<float> rope_inv_freq(int32_t head_dim, const RopeParams& p);

// Rotates x [T, H, D] in place: for token t at position positions[t] and i < D/2, with
// a = float(position) * inv_freq[i] (in f32), the pair (x[i], x[i + D/2]) becomes
// (x[i]·cos a − x[i + D/2]·sin a, x[i + D/2]·cos a + x[i]·sin a), each product rounded to f32.
// Throws vortex::Error if inv_freq does not have D/2 entries.
void apply_rope(float* x, int64_t T, int32_t H, int32_t D, const int32_t* positions,
                const std::vector<float>& inv_freq);

}  // namespace vortex::cpu
