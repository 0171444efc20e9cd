// Seeded choices for the task generators. Only vortex::Rng and integer arithmetic are used (no
// <random> distributions, whose output differs between standard libraries), so a seed gives the
// same sample on every machine.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/rng.h"

namespace vortex::eval {

// A value in [0, n), n > 0.
inline uint64_t random_below(Rng& rng, uint64_t n) {
  return rng.next_u64() % n;
}

// A value in [0, 1].
inline double random_unit(Rng& rng) {
  return static_cast<double>(rng.next_u64() >> 11) * (1.0 / 9007199254740991.0);
}

template <class T>
const T& random_pick(Rng& rng, std::span<const T> items) {
  return items[random_below(rng, items.size())];
}

template <class T>
void random_shuffle(Rng& rng, std::vector<T>& items) {
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[random_below(rng, i)]);
}

// `count` distinct indices of [0, n), in random order (count <= n).
std::vector<size_t> random_distinct(Rng& rng, size_t n, size_t count);

// A decimal number of exactly `digits` digits (no leading zero).
std::string random_number(Rng& rng, int digits);

// `length` random uppercase ASCII letters.
std::string random_upper_word(Rng& rng, int length);

// The seed of sample `index` of `task` in a run seeded with `seed`: samples of different tasks
// and indices are independent, and one sample can be regenerated alone from its own seed.
uint64_t sample_seed(uint64_t seed, std::string_view task, int64_t index);

}  // namespace vortex::eval
