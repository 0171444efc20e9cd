// Latency statistics as the serving benchmarks report them: mean, median, p95, p99.
#pragma once

#include <cstdint>
#include <vector>

namespace vortex::loadgen {

// The q-th percentile (q in [0, 100]) of `sorted` (ascending), interpolating linearly between
// the closest ranks as numpy.percentile does by default; 0 for an empty list.
double percentile_sorted(const std::vector<double>& sorted, double q);

struct Distribution {
  int64_t count = 0;
  double mean = 0, median = 0, p95 = 0, p99 = 0;
};

Distribution describe(std::vector<double> values);

}  // namespace vortex::loadgen
