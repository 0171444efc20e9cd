// The runner's projections: y[M, N] (f32) = x[M, K] · w[N, K]ᵀ with bf16 inputs. Decode-sized
// batches (M <= 64) use the weight-streaming skinny_gemm kernel, larger ones (prefill) cuBLASLt.
// VORTEX_GEMM=cublas (read when the runner is built) sends every GEMM to cuBLASLt, to compare.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/cuda/cublaslt.h"
#include "engine/cuda/cuda_util.h"
#include "kernels/cuda/types.h"

namespace vortex {

class Gemm {
 public:
  // Loads cuBLASLt (throws vortex::Error naming what is missing) and allocates the k-split
  // workspace of the skinny kernel.
  Gemm();

  // Capturable in a CUDA graph once the same shape ran outside one (the first call of a shape
  // picks its kernel configuration). Throws vortex::Error on failure.
  void f32_out(const cuda::bf16_t* x, int64_t M, int64_t K, const cuda::bf16_t* w, int64_t N,
               float* y, cudaStream_t stream);

  bool skinny_enabled() const { return skinny_; }

 private:
  CublasLt blas_;
  bool skinny_ = true;
  DeviceBuffer workspace_;
};

}  // namespace vortex
