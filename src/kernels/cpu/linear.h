// Dense projection y = x · wᵀ (+ bias), the CPU backend's GEMM/GEMV.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace vortex::cpu {

// y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]); w (and bias) in f32, bf16 or f16, e.g. a memory-mapped
// Hugging Face Linear weight. Runs on ThreadPool::global(). Each y[m,n] is the fixed-order dot
// product of vec.h plus bias: bit-identical whatever M, the other rows and the thread count.
// Throws vortex::Error if w is not [N, K] or bias not [N].
void linear(const float* x, int64_t M, int64_t K, const Tensor& w, const Tensor* bias, float* y);

}  // namespace vortex::cpu
