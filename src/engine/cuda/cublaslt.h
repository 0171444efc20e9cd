// bf16 GEMMs through cuBLASLt, loaded with dlopen at run time so that the vortex binary needs no
// CUDA library to start: y[M, N] = x[M, K] · w[N, K]ᵀ, bf16 inputs, f32 accumulation, bf16 or
// f32 output, row-major as the rest of the engine.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "core/cuda/cuda_util.h"
#include "kernels/cuda/types.h"

namespace vortex {

class CublasLt {
 public:
  // Loads libcublasLt (libcublasLt.so.13, or the path in VORTEX_CUBLASLT) and creates a handle;
  // throws vortex::Error naming what is missing.
  CublasLt();
  ~CublasLt();
  CublasLt(const CublasLt&) = delete;
  CublasLt& operator=(const CublasLt&) = delete;

  // The algorithm for each (M, N, K, output type) is chosen once and cached; the call is
  // capturable in a CUDA graph. Throws vortex::Error if cuBLASLt rejects the problem.
  void gemm(const cuda::bf16_t* x, int64_t M, int64_t K, const cuda::bf16_t* w, int64_t N, void* y,
            bool y_f32, cudaStream_t stream);

 private:
  struct Api;
  struct Plan;
  Plan& plan(int64_t M, int64_t N, int64_t K, bool y_f32);

  void* lib_ = nullptr;
  std::unique_ptr<Api> api_;
  void* handle_ = nullptr;
  DeviceBuffer workspace_;
  std::map<std::tuple<int64_t, int64_t, int64_t, bool>, std::unique_ptr<Plan>> plans_;
};

}  // namespace vortex
