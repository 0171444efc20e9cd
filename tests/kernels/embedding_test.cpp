#include "kernels/cpu/embedding.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/kernel_test_util.h"

namespace vortex {
namespace {

using testing::make_weight;
using testing::random_floats;
using testing::widened;

class EmbeddingLooksUpRows : public ::testing::TestWithParam<DType> {};

TEST_P(EmbeddingLooksUpRows, InTheOrderOfTheIds) {
  const int64_t vocab = 50, hidden = 24;
  Rng rng(5);
  Tensor table = make_weight(random_floats(rng, vocab * hidden), GetParam(), {vocab, hidden});
  std::vector<float> rows = widened(table);
  std::vector<int32_t> ids = {3, 0, 49, 3, 17};
  std::vector<float> out(ids.size() * hidden);
  cpu::embedding(ids.data(), static_cast<int64_t>(ids.size()), table, out.data());
  for (size_t i = 0; i < ids.size(); ++i) {
    for (int64_t d = 0; d < hidden; ++d)
      ASSERT_EQ(out[i * hidden + d], rows[ids[i] * hidden + d]) << "id " << ids[i];
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, EmbeddingLooksUpRows,
                         ::testing::Values(DType::kF32, DType::kBF16, DType::kF16));

TEST(Embedding, RejectsAnIdPastTheVocabularyNamingIt) {
  Tensor table = Tensor::zeros(DType::kBF16, {10, 4});
  std::vector<int32_t> ids = {1, 10};
  std::vector<float> out(8, 7.0f);
  try {
    cpu::embedding(ids.data(), 2, table, out.data());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("token id 10"), std::string::npos) << msg;
    EXPECT_NE(msg.find("10 tokens"), std::string::npos) << msg;
  }
  EXPECT_EQ(out, std::vector<float>(8, 7.0f)) << "a rejected batch must leave the output alone";
}

TEST(Embedding, RejectsANegativeId) {
  Tensor table = Tensor::zeros(DType::kF32, {10, 4});
  std::vector<int32_t> ids = {-1};
  std::vector<float> out(4);
  EXPECT_THROW(cpu::embedding(ids.data(), 1, table, out.data()), Error);
}

TEST(Embedding, RejectsATableThatIsNotAMatrix) {
  Tensor table = Tensor::zeros(DType::kF32, {40});
  std::vector<int32_t> ids = {0};
  std::vector<float> out(4);
  EXPECT_THROW(cpu::embedding(ids.data(), 1, table, out.data()), Error);
}

}  // namespace
}  // namespace vortex
