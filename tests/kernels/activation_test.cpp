#include "kernels/cpu/activation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/kernel_test_util.h"

namespace vortex {
namespace {

using testing::random_floats;

TEST(SiluMul, MatchesSiluOfGateTimesUp) {
  Rng rng(1);
  const int64_t n = 100003;
  std::vector<float> gate = random_floats(rng, n, 4.0f), up = random_floats(rng, n);
  std::vector<float> out(static_cast<size_t>(n));
  cpu::silu_mul(gate.data(), up.data(), n, out.data());
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    const double ref = g / (1.0 + std::exp(-g)) * up[i];
    ASSERT_NEAR(out[i], ref, 1e-6 * std::fabs(ref) + 1e-30) << "element " << i;
  }
}

TEST(SiluMul, SaturatesWithoutNaN) {
  std::vector<float> gate = {-1000.0f, -80.0f, 0.0f, 80.0f, 1000.0f};
  std::vector<float> up(gate.size(), 2.0f), out(gate.size());
  cpu::silu_mul(gate.data(), up.data(), static_cast<int64_t>(gate.size()), out.data());
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_NEAR(out[1], 0.0f, 1e-30);
  EXPECT_EQ(out[2], 0.0f);
  EXPECT_EQ(out[3], 160.0f);
  EXPECT_EQ(out[4], 2000.0f);
}

TEST(SiluMul, MayWriteOverTheGate) {
  Rng rng(2);
  std::vector<float> gate = random_floats(rng, 1000), up = random_floats(rng, 1000);
  std::vector<float> out(1000);
  cpu::silu_mul(gate.data(), up.data(), 1000, out.data());
  cpu::silu_mul(gate.data(), up.data(), 1000, gate.data());
  EXPECT_EQ(gate, out);
}

}  // namespace
}  // namespace vortex
