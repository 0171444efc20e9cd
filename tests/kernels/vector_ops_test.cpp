#include "kernels/cpu/vec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/kernel_test_util.h"

namespace vortex {
namespace {

using testing::random_floats;

TEST(Exp16, IsWithinTwoUlpOfExpOverTheUsefulRange) {
  std::vector<float> x;
  for (float v = -103.0f; v < 88.7f; v += 0.0137f) x.push_back(v);
  std::vector<float> y(x.size());
  cpu::exp_shifted(x.data(), 0.0f, static_cast<int64_t>(x.size()), y.data());
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = std::exp(static_cast<double>(x[i]));
    if (ref < 1.2e-38) {  // subnormal results: absolute error of a couple of subnormal steps
      ASSERT_NEAR(y[i], ref, 3e-45) << "x = " << x[i];
    } else {
      ASSERT_NEAR(y[i], ref, 2.5e-7 * ref) << "x = " << x[i];
    }
  }
}

TEST(Exp16, SaturatesToZeroAndInfinity) {
  std::vector<float> x = {-1000.0f, -105.0f, 0.0f, 89.0f, 1000.0f, INFINITY, -INFINITY};
  std::vector<float> y(x.size());
  cpu::exp_shifted(x.data(), 0.0f, static_cast<int64_t>(x.size()), y.data());
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], 1.0f);
  EXPECT_EQ(y[3], INFINITY);
  EXPECT_EQ(y[4], INFINITY);
  EXPECT_EQ(y[5], INFINITY);
  EXPECT_EQ(y[6], 0.0f);
}

TEST(Exp16, AnElementsResultDoesNotDependOnTheArrayLength) {
  Rng rng(1);
  std::vector<float> x = random_floats(rng, 37, 5.0f);
  std::vector<float> all(x.size()), one(1);
  cpu::exp_shifted(x.data(), 0.5f, 37, all.data());
  for (size_t i = 0; i < x.size(); ++i) {
    cpu::exp_shifted(x.data() + i, 0.5f, 1, one.data());
    ASSERT_EQ(one[0], all[i]) << i;
  }
}

// dot() is the definition every kernel's reductions follow: 16 lane sums in increasing k, then
// the lanes folded in halves. Written out here with scalar floats.
TEST(Dot, FollowsTheDocumentedSummationOrder) {
  Rng rng(2);
  for (int64_t n : {1, 15, 16, 17, 128, 203}) {
    std::vector<float> a = random_floats(rng, n), b = random_floats(rng, n);
    float lanes[16] = {};
    for (int64_t k = 0; k < n; ++k) lanes[k % 16] = std::fma(a[k], b[k], lanes[k % 16]);
    float s8[8], s4[4];
    for (int i = 0; i < 8; ++i) s8[i] = lanes[i] + lanes[i + 8];
    for (int i = 0; i < 4; ++i) s4[i] = s8[i] + s8[i + 4];
    const float expected = (s4[0] + s4[2]) + (s4[1] + s4[3]);
    const float got = cpu::dot(a.data(), b.data(), n);
#if defined(__FMA__)
    EXPECT_EQ(got, expected) << "n = " << n;
#else
    EXPECT_NEAR(got, expected, 1e-5f * std::fabs(expected) + 1e-6f) << "n = " << n;
#endif
  }
}

TEST(DotMany, EachRowEqualsDotBitForBit) {
  Rng rng(3);
  const int64_t n = 77;
  std::vector<float> b = random_floats(rng, n);
  std::vector<std::vector<float>> rows;
  std::vector<const float*> ptrs;
  for (int r = 0; r < 4; ++r) rows.push_back(random_floats(rng, n));
  for (auto& r : rows) ptrs.push_back(r.data());
  float out[4];
  cpu::dot_many<4>(ptrs.data(), b.data(), n, out);
  for (int r = 0; r < 4; ++r) EXPECT_EQ(out[r], cpu::dot(rows[r].data(), b.data(), n)) << r;
}

}  // namespace
}  // namespace vortex
