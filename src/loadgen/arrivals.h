// When each request of an online benchmark is sent: a Poisson process, as the serving
// benchmarks of SGLang and vLLM model independent users.
#pragma once

#include <cstdint>
#include <vector>

namespace vortex::loadgen {

// Send times of `n` requests in seconds after the start: the first at 0, then gaps drawn from
// an exponential distribution of mean 1/rate (deterministic for a seed). An infinite rate sends
// all at 0. Throws vortex::Error unless rate > 0.
std::vector<double> poisson_arrival_offsets(int64_t n, double rate, uint64_t seed);

}  // namespace vortex::loadgen
