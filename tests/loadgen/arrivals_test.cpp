#include "loadgen/arrivals.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.h"

namespace vortex::loadgen {
namespace {

TEST(PoissonArrivals, MeanGapIsOneOverTheRate) {
  const int64_t n = 20000;
  const double rate = 8.0;
  std::vector<double> t = poisson_arrival_offsets(n, rate, 7);
  ASSERT_EQ(t.size(), static_cast<size_t>(n));
  EXPECT_EQ(t[0], 0.0);
  double sum = 0, sum_sq = 0;
  for (size_t i = 1; i < t.size(); ++i) {
    const double gap = t[i] - t[i - 1];
    ASSERT_GE(gap, 0.0);
    sum += gap;
    sum_sq += gap * gap;
  }
  const double mean = sum / (n - 1);
  EXPECT_NEAR(mean, 1 / rate, 0.03 / rate);
  // Exponential gaps: the standard deviation equals the mean.
  const double sd = std::sqrt(sum_sq / (n - 1) - mean * mean);
  EXPECT_NEAR(sd, 1 / rate, 0.05 / rate);
}

TEST(PoissonArrivals, SameSeedSameTimesOtherSeedOtherTimes) {
  EXPECT_EQ(poisson_arrival_offsets(100, 3.0, 42), poisson_arrival_offsets(100, 3.0, 42));
  EXPECT_NE(poisson_arrival_offsets(100, 3.0, 42), poisson_arrival_offsets(100, 3.0, 43));
}

TEST(PoissonArrivals, InfiniteRateSendsEverythingAtOnce) {
  std::vector<double> t = poisson_arrival_offsets(50, std::numeric_limits<double>::infinity(), 1);
  ASSERT_EQ(t.size(), 50u);
  for (double x : t) EXPECT_EQ(x, 0.0);
}

TEST(PoissonArrivals, RefusesRatesThatAreNotPositive) {
  EXPECT_THROW(poisson_arrival_offsets(5, 0.0, 1), Error);
  EXPECT_THROW(poisson_arrival_offsets(5, -2.0, 1), Error);
  EXPECT_THROW(poisson_arrival_offsets(5, std::nan(""), 1), Error);
  EXPECT_TRUE(poisson_arrival_offsets(0, 1.0, 1).empty());
}

}  // namespace
}  // namespace vortex::loadgen
