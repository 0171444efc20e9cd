// The runner's projections: y[M, N] (f32) = x[M, K] · w[N, K]ᵀ with bf16 inputs, through
// cuBLASLt. With skinny (RunnerOptions::gemm, --gemm skinny), decode-sized batches (M <= 64)
// go to the weight-streaming skinny_gemm kernel instead; prefill stays on cuBLASLt. The
// skinny kernel is opt-in because on an H100 it is still slower than cuBLASLt on most decode
// shapes of qwen3-1.7b (correct and deterministic, but below cuBLASLt's bandwidth).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/cuda/cuda_util.h"
#include "engine/cuda/cublaslt.h"
#include "kernels/cuda/types.h"

namespace vortex {

class Gemm {
 public:
  // Loads cuBLASLt (throws vortex::Error naming what is missing) and, with skinny, allocates
  // the k-split workspace of the skinny kernel.
  explicit Gemm(bool skinny = false);

  // Capturable in a CUDA graph once the same shape ran outside one (the first call of a shape
  // picks its kernel configuration). Throws vortex::Error on failure.
  void f32_out(const cuda::bf16_t* x, int64_t M, int64_t K, const cuda::bf16_t* w, int64_t N,
               float* y, cudaStream_t stream);

 private:
  CublasLt blas_;
  bool skinny_ = false;
  DeviceBuffer workspace_;
};

}  // namespace vortex
