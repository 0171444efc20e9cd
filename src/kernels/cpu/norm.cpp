#include "kernels/cpu/norm.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/vec.h"

namespace vortex::cpu {

void rms_norm(const float* x, int64_t rows, int64_t dim, const Tensor& weight, double eps,
              float* out) {
  require_float_weight(weight, "rms_norm");
  if (weight.dim() != 1 || weight.size(0) != dim)
    fail("rms_norm: weight has shape ", shape_str(weight.shape()), ", expected [", dim, "]");
  if (rows <= 0 || dim <= 0) return;
  std::vector<float> w(static_cast<size_t>(dim));
  convert_to_f32(weight.dtype(), weight.data(), w.data(), w.size());
  const float eps_f = static_cast<float>(eps);
  // Rows are independent; a few per task keeps per-head norms (dim 128) worth the hand-off.
  const int64_t grain = std::max<int64_t>(1, 16384 / dim);
  ThreadPool::global().parallel_for(rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * dim;
      float* orow = out + r * dim;
      const float mean_sq = dot(xr, xr, dim) / static_cast<float>(dim);
      const float inv_rms = 1.0f / std::sqrt(mean_sq + eps_f);
      for (int64_t i = 0; i < dim; ++i) orow[i] = w[static_cast<size_t>(i)] * (xr[i] * inv_rms);
    }
  });
}

}  // namespace vortex::cpu
