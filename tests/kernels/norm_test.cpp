#include "kernels/cpu/norm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/kernel_test_util.h"

namespace vortex {
namespace {

using testing::bit_equal;
using testing::make_weight;
using testing::random_floats;
using testing::widened;

class RmsNormMatchesReference : public ::testing::TestWithParam<std::tuple<DType, int>> {};

TEST_P(RmsNormMatchesReference, OnRandomRows) {
  const auto [dtype, dim] = GetParam();
  const int64_t rows = 7;
  const double eps = 1e-6;
  Rng rng(static_cast<uint64_t>(dim));
  std::vector<float> x = random_floats(rng, rows * dim, 3.0f);
  Tensor weight = make_weight(random_floats(rng, dim), dtype, {dim});
  std::vector<float> w = widened(weight);
  std::vector<float> out(x.size());
  cpu::rms_norm(x.data(), rows, dim, weight, eps, out.data());
  for (int64_t r = 0; r < rows; ++r) {
    double sum_sq = 0;
    for (int64_t i = 0; i < dim; ++i) sum_sq += double{x[r * dim + i]} * x[r * dim + i];
    const double inv_rms = 1.0 / std::sqrt(sum_sq / dim + eps);
    for (int64_t i = 0; i < dim; ++i) {
      const double ref = w[i] * (x[r * dim + i] * inv_rms);
      ASSERT_NEAR(out[r * dim + i], ref, 2e-6 * std::fabs(ref) + 1e-7) << r << ", " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(DtypesAndDims, RmsNormMatchesReference,
                         ::testing::Combine(::testing::Values(DType::kF32, DType::kBF16,
                                                              DType::kF16),
                                            ::testing::Values(1, 5, 16, 128, 1000, 2048)));

TEST(RmsNorm, EpsKeepsAZeroRowFinite) {
  std::vector<float> x(8, 0.0f), out(8, 1.0f);
  Tensor w = make_weight(std::vector<float>(8, 1.0f), DType::kF32, {8});
  cpu::rms_norm(x.data(), 1, 8, w, 1e-6, out.data());
  for (float v : out) EXPECT_EQ(v, 0.0f);
}

TEST(RmsNorm, InPlaceGivesTheSameResultAsOutOfPlace) {
  Rng rng(3);
  std::vector<float> x = random_floats(rng, 4 * 96);
  Tensor w = make_weight(random_floats(rng, 96), DType::kBF16, {96});
  std::vector<float> out(x.size());
  cpu::rms_norm(x.data(), 4, 96, w, 1e-5, out.data());
  cpu::rms_norm(x.data(), 4, 96, w, 1e-5, x.data());
  EXPECT_TRUE(bit_equal(x.data(), out.data(), 4 * 96));
}

TEST(RmsNorm, ARowsResultDoesNotDependOnTheOtherRows) {
  Rng rng(4);
  const int64_t rows = 300, dim = 64;
  std::vector<float> x = random_floats(rng, rows * dim);
  Tensor w = make_weight(random_floats(rng, dim), DType::kF32, {dim});
  std::vector<float> all(x.size()), one(static_cast<size_t>(dim));
  cpu::rms_norm(x.data(), rows, dim, w, 1e-6, all.data());
  for (int64_t r : {0, 1, 150, 299}) {
    cpu::rms_norm(x.data() + r * dim, 1, dim, w, 1e-6, one.data());
    EXPECT_TRUE(bit_equal(one.data(), all.data() + r * dim, dim)) << "row " << r;
  }
}

TEST(RmsNorm, RejectsAWeightOfTheWrongLength) {
  std::vector<float> x(8), out(8);
  Tensor w = Tensor::zeros(DType::kF32, {7});
  EXPECT_THROW(cpu::rms_norm(x.data(), 1, 8, w, 1e-6, out.data()), Error);
}

}  // namespace
}  // namespace vortex
