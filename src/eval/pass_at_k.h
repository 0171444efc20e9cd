// Metrics over repeated trials of one problem.
#pragma once

#include <cstdint>

namespace vortex::eval {

// The unbiased estimate of pass@k from n trials of which c were correct: the chance that k
// trials drawn without replacement include a correct one, 1 - C(n-c, k) / C(n, k).
// Requires 0 <= c <= n and 1 <= k <= n (else vortex::Error).
double pass_at_k(int64_t n, int64_t c, int64_t k);

}  // namespace vortex::eval
