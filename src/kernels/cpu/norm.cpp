#include "kernels/cpu/norm.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/weight_checks.h"

namespace vortex::cpu {

void rms_norm(const float* x, int64_t rows, int64_t dim, const Tensor& weight, double eps,
              float* out) {
  require_float_weight(weight, "rms_norm");
  if (weight.dim() != 1 || weight.size(0) != dim)
    fail("rms_norm: weight has shape ", shape_str(weight.shape()), ", expected [", dim, "]");
  if (rows <= 0 || dim <= 0) return;
  std::vector<float> w(static_cast<size_t>(dim));
  convert_to_f32(weight.dtype(), weight.data(), w.data(), w.size());
  cpu_kernels().rms_norm(x, rows, dim, w.data(), static_cast<float>(eps), out);
}

}  // namespace vortex::cpu
