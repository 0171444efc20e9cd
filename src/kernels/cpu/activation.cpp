#include "kernels/cpu/activation.h"

#include "kernels/cpu/cpu_kernels.h"

namespace vortex::cpu {

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  if (n > 0) cpu_kernels().silu_mul(gate, up, n, out);
}

}  // namespace vortex::cpu
