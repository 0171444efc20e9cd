#include "loadgen/stats.h"

#include <gtest/gtest.h>

namespace vortex::loadgen {
namespace {

// Expected values from numpy.percentile (linear interpolation).
TEST(Percentile, MatchesNumpyLinearInterpolation) {
  const std::vector<double> v = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 95), 3.85);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 99), 3.97);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 100), 4);
  const std::vector<double> odd = {10, 20, 30, 40, 50};
  EXPECT_DOUBLE_EQ(percentile_sorted(odd, 50), 30);
  EXPECT_DOUBLE_EQ(percentile_sorted(odd, 25), 20);
}

TEST(Percentile, OneValueAndNone) {
  EXPECT_DOUBLE_EQ(percentile_sorted({7}, 99), 7);
  EXPECT_DOUBLE_EQ(percentile_sorted({}, 50), 0);
}

TEST(Describe, SortsAndSummarises) {
  Distribution d = describe({4, 1, 3, 2});
  EXPECT_EQ(d.count, 4);
  EXPECT_DOUBLE_EQ(d.mean, 2.5);
  EXPECT_DOUBLE_EQ(d.median, 2.5);
  EXPECT_DOUBLE_EQ(d.p95, 3.85);
  EXPECT_DOUBLE_EQ(d.p99, 3.97);
  EXPECT_EQ(describe({}).count, 0);
}

}  // namespace
}  // namespace vortex::loadgen
