#include "loadgen/arrivals.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace vortex::loadgen {

std::vector<double> poisson_arrival_offsets(int64_t n, double rate, uint64_t seed) {
  if (!(rate > 0)) fail("request rate must be > 0, got ", rate);
  std::vector<double> offsets(static_cast<size_t>(std::max<int64_t>(n, 0)), 0.0);
  if (std::isinf(rate)) return offsets;
  Rng rng(seed);
  double t = 0;
  for (size_t i = 1; i < offsets.size(); ++i) {
    // Inverse CDF of the exponential; 1 - u lies in (0, 1], so the log is finite.
    t += -std::log(1.0 - rng.uniform_f64()) / rate;
    offsets[i] = t;
  }
  return offsets;
}

}  // namespace vortex::loadgen
