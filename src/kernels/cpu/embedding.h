// Token embedding lookup.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace vortex::cpu {

// out[i] = table[ids[i]] as f32, for n ids; table [vocab, hidden] in f32, bf16 or f16.
// Throws vortex::Error naming the id and the vocabulary size if an id is out of range.
void embedding(const int32_t* ids, int64_t n, const Tensor& table, float* out);

}  // namespace vortex::cpu
