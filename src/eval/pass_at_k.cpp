#include "eval/pass_at_k.h"

#include "core/error.h"

namespace vortex::eval {

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  if (n < 1 || c < 0 || c > n || k < 1 || k > n) {
    fail("pass@k needs 0 <= correct <= trials and 1 <= k <= trials, got trials ", n, ", correct ",
         c, ", k ", k);
  }
  if (n - c < k) return 1.0;
  // C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i), stable for large n.
  double miss = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i)
    miss *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - miss;
}

}  // namespace vortex::eval
