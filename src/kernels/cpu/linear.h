// Dense projection y = x · wᵀ (+ bias), the CPU backend's GEMM/GEMV.
#pragma once

#include <cstdint>
#include <memory>

#include "core/tensor.h"

namespace vortex::cpu {

// A Linear weight [N, K] repacked once for the GEMM kernels, in its stored dtype (f32, bf16 or
// f16): the N output columns in panels of 16, each panel k-major ([K][16], so one k-row of a
// panel is one vector load), panels in groups of 4 (N padded with zero columns to a multiple of
// 64). Element (n, k) lives at index ((n / 16) * K + k) * 16 + n % 16. Copies share the data.
class PackedWeight {
 public:
  static constexpr int64_t kPanelWidth = 16;
  static constexpr int64_t kPanelsPerGroup = 4;

  PackedWeight() = default;
  // Throws vortex::Error (naming `what`) if w is not a 2-D f32/bf16/f16 tensor.
  explicit PackedWeight(const Tensor& w, const char* what = "linear");

  bool defined() const { return data_ != nullptr; }
  int64_t rows() const { return rows_; }  // N: output features
  int64_t cols() const { return cols_; }  // K: input features
  int64_t groups() const { return groups_; }
  DType dtype() const { return dtype_; }
  const void* data() const { return data_.get(); }
  size_t nbytes() const { return nbytes_; }

 private:
  std::shared_ptr<void> data_;
  DType dtype_ = DType::kF32;
  int64_t rows_ = 0, cols_ = 0, groups_ = 0;
  size_t nbytes_ = 0;
};

// y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]) with the kernels of active_cpu_isa(), on
// ThreadPool::global(). Each y[m,n] is one multiply-add chain over k in increasing order (fused
// on the FMA paths), plus bias: bit-identical whatever M, the other rows and the thread count,
// and equal on the AVX2 and AVX-512 paths. Throws vortex::Error if w has K != `K` columns or
// bias is not [N].
void linear(const float* x, int64_t M, int64_t K, const PackedWeight& w, const Tensor* bias,
            float* y);

// The same on an unpacked weight [N, K], packed for this one call: for tests and one-off
// products; a model packs its weights once (PackedWeight) instead.
void linear(const float* x, int64_t M, int64_t K, const Tensor& w, const Tensor* bias, float* y);

}  // namespace vortex::cpu
