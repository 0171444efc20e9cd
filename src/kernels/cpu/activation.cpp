#include "kernels/cpu/activation.h"

#include "core/thread_pool.h"
#include "kernels/cpu/vec.h"

namespace vortex::cpu {
namespace {

// The vector formula on one element (broadcast to every lane), bit-identical to a vector lane.
float silu_mul_one(float gate, float up) {
  const F32x16 g = F32x16{} + gate;
  return (g / (1.0f + exp16(-g)) * up)[0];
}

}  // namespace

void silu_mul(const float* gate, const float* up, int64_t n, float* out) {
  ThreadPool::global().parallel_for(n, 16384, [&](int64_t begin, int64_t end) {
    // Leftovers go through the same vector formula, so an element's result never depends on
    // where a thread's range begins or ends.
    int64_t i = begin;
    for (; i + kLanes <= end; i += kLanes) {
      const F32x16 g = load16(gate + i);
      store16(out + i, g / (1.0f + exp16(-g)) * load16(up + i));
    }
    for (; i < end; ++i) out[i] = silu_mul_one(gate[i], up[i]);
  });
}

}  // namespace vortex::cpu
