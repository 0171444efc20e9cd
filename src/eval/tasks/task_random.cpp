#include "eval/tasks/task_random.h"

#include <numeric>

namespace vortex::eval {

std::vector<size_t> random_distinct(Rng& rng, size_t n, size_t count) {
  std::vector<size_t> all(n);
  std::iota(all.begin(), all.end(), size_t{0});
  // A partial Fisher-Yates shuffle: the first `count` slots are a uniform sample.
  for (size_t i = 0; i < count && i < n; ++i) std::swap(all[i], all[i + random_below(rng, n - i)]);
  all.resize(std::min(count, n));
  return all;
}

std::string random_number(Rng& rng, int digits) {
  std::string s;
  for (int i = 0; i < digits; ++i) {
    s += static_cast<char>('0' + (i == 0 ? 1 + random_below(rng, 9) : random_below(rng, 10)));
  }
  return s;
}

std::string random_upper_word(Rng& rng, int length) {
  std::string s;
  for (int i = 0; i < length; ++i) s += static_cast<char>('A' + random_below(rng, 26));
  return s;
}

uint64_t sample_seed(uint64_t seed, std::string_view task, int64_t index) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the task name
  for (char c : task) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  Rng mix(seed ^ h);
  mix.next_u64();
  Rng per_index(mix.next_u64() + static_cast<uint64_t>(index) * 0x9e3779b97f4a7c15ull);
  return per_index.next_u64();
}

}  // namespace vortex::eval
