#include "kernels/cpu/activation.h"

#include <cmath>

#include "core/thread_pool.h"

namespace vortex::cpu {

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  ThreadPool::global().parallel_for(n, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  });
}

}  // namespace vortex::cpu
