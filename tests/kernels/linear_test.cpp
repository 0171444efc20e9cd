#include "kernels/cpu/linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/kernel_test_util.h"

namespace vortex {
namespace {

using testing::bit_equal;
using testing::make_weight;
using testing::random_floats;
using testing::widened;

// y = x · wᵀ + b in double, plus Σ|x·w| per output to scale the tolerance.
void reference_linear(const std::vector<float>& x, int64_t M, int64_t K,
                      const std::vector<float>& w, int64_t N, const std::vector<float>* bias,
                      std::vector<double>* y, std::vector<double>* magnitude) {
  y->assign(static_cast<size_t>(M * N), 0.0);
  magnitude->assign(static_cast<size_t>(M * N), 0.0);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      double sum = bias ? (*bias)[static_cast<size_t>(n)] : 0.0, mag = std::fabs(sum);
      for (int64_t k = 0; k < K; ++k) {
        double p = static_cast<double>(x[static_cast<size_t>(m * K + k)]) *
                   w[static_cast<size_t>(n * K + k)];
        sum += p;
        mag += std::fabs(p);
      }
      (*y)[static_cast<size_t>(m * N + n)] = sum;
      (*magnitude)[static_cast<size_t>(m * N + n)] = mag;
    }
  }
}

class LinearMatchesReference
    : public ::testing::TestWithParam<std::tuple<DType, std::tuple<int, int, int>, bool>> {};

TEST_P(LinearMatchesReference, OnRandomInputs) {
  const auto [dtype, mnk, with_bias] = GetParam();
  const auto [M, N, K] = mnk;
  Rng rng(static_cast<uint64_t>(M * 1000003 + N * 1009 + K));
  std::vector<float> x = random_floats(rng, int64_t{M} * K);
  Tensor w = make_weight(random_floats(rng, int64_t{N} * K, 0.1f), dtype, {N, K});
  Tensor b = make_weight(random_floats(rng, N), dtype, {N});
  std::vector<float> y(static_cast<size_t>(M * N));
  cpu::linear(x.data(), M, K, w, with_bias ? &b : nullptr, y.data());

  std::vector<float> b32 = widened(b);
  std::vector<double> ref, mag;
  reference_linear(x, M, K, widened(w), N, with_bias ? &b32 : nullptr, &ref, &mag);
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(y[i], ref[i], 1e-6 * mag[i] + 1e-7) << "element " << i;
}

INSTANTIATE_TEST_SUITE_P(
    Sizes, LinearMatchesReference,
    ::testing::Combine(::testing::Values(DType::kF32, DType::kBF16, DType::kF16),
                       ::testing::Values(std::make_tuple(1, 1, 1), std::make_tuple(1, 7, 5),
                                         std::make_tuple(1, 64, 256), std::make_tuple(2, 3, 16),
                                         std::make_tuple(3, 5, 17), std::make_tuple(4, 4, 32),
                                         std::make_tuple(5, 9, 33), std::make_tuple(13, 50, 100),
                                         std::make_tuple(37, 13, 300),
                                         std::make_tuple(300, 70, 64),
                                         std::make_tuple(6, 130, 2048)),
                       ::testing::Bool()));

TEST(Linear, OutputOfZeroLengthRowsIsTheBias) {
  Tensor w = Tensor::zeros(DType::kF32, {3, 0});
  Tensor b = make_weight({1.0f, -2.0f, 0.5f}, DType::kF32, {3});
  std::vector<float> y(6, 99.0f);
  cpu::linear(nullptr, 2, 0, w, &b, y.data());
  EXPECT_EQ(y, (std::vector<float>{1.0f, -2.0f, 0.5f, 1.0f, -2.0f, 0.5f}));
}

// The engine's continuous batching relies on this: a row's result must not depend on which
// other rows share the call, nor on how many threads run it.
class LinearBatchInvariance : public ::testing::TestWithParam<DType> {
 protected:
  void TearDown() override { ThreadPool::set_global_threads(0); }
};

TEST_P(LinearBatchInvariance, RowOfABatchEqualsTheRowAloneBitForBit) {
  const int64_t M = 37, N = 50, K = 300;
  Rng rng(7);
  std::vector<float> x = random_floats(rng, M * K);
  Tensor w = make_weight(random_floats(rng, N * K, 0.1f), GetParam(), {N, K});
  Tensor b = make_weight(random_floats(rng, N), GetParam(), {N});
  std::vector<float> batch(static_cast<size_t>(M * N));
  cpu::linear(x.data(), M, K, w, &b, batch.data());
  std::vector<float> one(static_cast<size_t>(N));
  for (int64_t m = 0; m < M; ++m) {
    cpu::linear(x.data() + m * K, 1, K, w, &b, one.data());
    ASSERT_TRUE(bit_equal(one.data(), batch.data() + m * N, N)) << "row " << m;
  }
  // Sub-batches that put a row at every position of a row tile.
  for (int64_t begin : {0, 1, 2, 3, 5}) {
    for (int64_t rows : {2, 3, 6, 9}) {
      std::vector<float> part(static_cast<size_t>(rows * N));
      cpu::linear(x.data() + begin * K, rows, K, w, &b, part.data());
      ASSERT_TRUE(bit_equal(part.data(), batch.data() + begin * N, rows * N))
          << "rows " << begin << " .. " << begin + rows;
    }
  }
}

TEST_P(LinearBatchInvariance, ResultDoesNotDependOnTheThreadCount) {
  const int64_t M = 37, N = 203, K = 129;
  Rng rng(8);
  std::vector<float> x = random_floats(rng, M * K);
  Tensor w = make_weight(random_floats(rng, N * K, 0.1f), GetParam(), {N, K});
  std::vector<float> one_thread(static_cast<size_t>(M * N)), three(one_thread.size());
  ThreadPool::set_global_threads(1);
  cpu::linear(x.data(), M, K, w, nullptr, one_thread.data());
  ThreadPool::set_global_threads(3);
  cpu::linear(x.data(), M, K, w, nullptr, three.data());
  EXPECT_TRUE(bit_equal(one_thread.data(), three.data(), M * N));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, LinearBatchInvariance,
                         ::testing::Values(DType::kF32, DType::kBF16, DType::kF16));

TEST(Linear, RejectsAWeightOfTheWrongShape) {
  Tensor w = Tensor::zeros(DType::kF32, {4, 8});
  std::vector<float> x(9), y(4);
  try {
    cpu::linear(x.data(), 1, 9, w, nullptr, y.data());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[4, 8]"), std::string::npos) << e.what();
  }
}

TEST(Linear, RejectsABiasOfTheWrongShape) {
  Tensor w = Tensor::zeros(DType::kF32, {4, 8});
  Tensor b = Tensor::zeros(DType::kF32, {5});
  std::vector<float> x(8), y(4);
  EXPECT_THROW(cpu::linear(x.data(), 1, 8, w, &b, y.data()), Error);
}

TEST(Linear, RejectsAnIntegerWeight) {
  Tensor w = Tensor::zeros(DType::kI32, {4, 8});
  std::vector<float> x(8), y(4);
  EXPECT_THROW(cpu::linear(x.data(), 1, 8, w, nullptr, y.data()), Error);
}

}  // namespace
}  // namespace vortex
