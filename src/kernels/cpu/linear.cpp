#include "kernels/cpu/linear.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/weight_checks.h"

namespace vortex::cpu {
namespace {

// Copies rows [16p, 16p + 16) of w (zero past N) into panel p: element (n, k) to k * 16 + n % 16.
template <class T>
void pack_panels(const T* w, int64_t N, int64_t K, T* out, int64_t p_begin, int64_t p_end) {
  constexpr int64_t kP = PackedWeight::kPanelWidth;
  for (int64_t p = p_begin; p < p_end; ++p) {
    T* panel = out + p * K * kP;
    for (int64_t c = 0; c < kP; ++c) {
      const int64_t n = p * kP + c;
      if (n >= N) {
        for (int64_t k = 0; k < K; ++k) panel[k * kP + c] = T{};
        continue;
      }
      const T* row = w + n * K;
      for (int64_t k = 0; k < K; ++k) panel[k * kP + c] = row[k];
    }
  }
}

}  // namespace

PackedWeight::PackedWeight(const Tensor& w, const char* what) {
  require_float_weight(w, what);
  if (w.dim() != 2) fail(what, ": weight has shape ", shape_str(w.shape()), ", expected [N, K]");
  dtype_ = w.dtype();
  rows_ = w.size(0);
  cols_ = w.size(1);
  constexpr int64_t kGroupCols = kPanelWidth * kPanelsPerGroup;
  groups_ = (rows_ + kGroupCols - 1) / kGroupCols;
  const int64_t panels = groups_ * kPanelsPerGroup;
  const size_t elem = dtype_size(dtype_);
  nbytes_ = static_cast<size_t>(panels * kPanelWidth * cols_) * elem;
  // 64-byte aligned, so that a panel's k-rows never straddle more cache lines than they must.
  const size_t alloc = std::max<size_t>(64, (nbytes_ + 63) / 64 * 64);
  void* mem = std::aligned_alloc(64, alloc);
  if (mem == nullptr) fail(what, ": cannot allocate ", alloc, " bytes for the packed weight");
  data_ = std::shared_ptr<void>(mem, std::free);
  const int64_t N = rows_, K = cols_;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, K * 16));
  ThreadPool::global().parallel_for(panels, grain, [&](int64_t p0, int64_t p1) {
    if (elem == 4) {
      pack_panels(w.data_as<float>(), N, K, static_cast<float*>(mem), p0, p1);
    } else {
      pack_panels(w.data_as<uint16_t>(), N, K, static_cast<uint16_t*>(mem), p0, p1);
    }
  });
}

void linear(const float* x, int64_t M, int64_t K, const PackedWeight& w, const Tensor* bias,
            float* y) {
  VORTEX_ASSERT(w.defined());
  if (w.cols() != K)
    fail("linear: weight has shape [", w.rows(), ", ", w.cols(), "], expected [N, ", K, "]");
  const int64_t N = w.rows();
  std::vector<float> bias_f32;
  if (bias && bias->defined()) {
    require_float_weight(*bias, "linear bias");
    if (bias->dim() != 1 || bias->size(0) != N)
      fail("linear: bias has shape ", shape_str(bias->shape()), ", expected [", N, "]");
    bias_f32.resize(static_cast<size_t>(N));
    convert_to_f32(bias->dtype(), bias->data(), bias_f32.data(), static_cast<size_t>(N));
  }
  if (M <= 0 || N <= 0) return;
  cpu_kernels().linear(x, M, K, w, bias_f32.empty() ? nullptr : bias_f32.data(), y);
}

void linear(const float* x, int64_t M, int64_t K, const Tensor& w, const Tensor* bias, float* y) {
  require_float_weight(w, "linear");
  if (w.dim() != 2 || w.size(1) != K)
    fail("linear: weight has shape ", shape_str(w.shape()), ", expected [N, ", K, "]");
  linear(x, M, K, PackedWeight(w), bias, y);
}

}  // namespace vortex::cpu
