#include "loadgen/workload.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace vortex::loadgen {
namespace {

TEST(SampleLength, StaysInsideTheRangeAndReachesBothEnds) {
  Rng rng(3);
  std::set<int32_t> seen;
  for (int i = 0; i < 2000; ++i) {
    const int32_t n = sample_length(rng, 100, 0.9);
    ASSERT_GE(n, 90);
    ASSERT_LE(n, 100);
    seen.insert(n);
  }
  EXPECT_EQ(seen.size(), 11u);  // every length of [90, 100]
}

TEST(SampleLength, RatioOneIsExactAndRatioZeroStartsAtOne) {
  Rng rng(5);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sample_length(rng, 37, 1.0), 37);
  int32_t lo = 1000, hi = 0;
  for (int i = 0; i < 2000; ++i) {
    const int32_t n = sample_length(rng, 8, 0.0);
    lo = std::min(lo, n);
    hi = std::max(hi, n);
  }
  EXPECT_EQ(lo, 1);
  EXPECT_EQ(hi, 8);
  EXPECT_EQ(sample_length(rng, 1, 0.5), 1);
}

TEST(RandomRequests, TokenIdsHaveTheSampledLengthsAndStayInTheVocabulary) {
  RandomWorkload w;
  w.num_prompts = 40;
  w.input_len = 64;
  w.output_len = 16;
  w.range_ratio = 0.5;
  w.vocab_size = 100;
  std::vector<BenchRequest> rs = random_requests(w);
  ASSERT_EQ(rs.size(), 40u);
  for (const BenchRequest& r : rs) {
    EXPECT_EQ(r.kind, PromptKind::kIds);
    EXPECT_GE(r.prompt_ids.size(), 32u);
    EXPECT_LE(r.prompt_ids.size(), 64u);
    EXPECT_GE(r.max_tokens, 8);
    EXPECT_LE(r.max_tokens, 16);
    for (int32_t id : r.prompt_ids) {
      ASSERT_GE(id, 0);
      ASSERT_LT(id, 100);
    }
  }
}

TEST(RandomRequests, DeterministicForASeed) {
  RandomWorkload w;
  w.num_prompts = 5;
  w.input_len = 20;
  w.range_ratio = 0.2;
  auto a = random_requests(w), b = random_requests(w);
  w.seed = 2;
  auto c = random_requests(w);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].prompt_ids, b[i].prompt_ids);
    EXPECT_EQ(a[i].max_tokens, b[i].max_tokens);
  }
  EXPECT_NE(a[0].prompt_ids, c[0].prompt_ids);
}

TEST(RandomRequests, ChatPromptsAreOneUserMessageOfInputLenWords) {
  RandomWorkload w;
  w.num_prompts = 3;
  w.input_len = 25;
  w.kind = PromptKind::kMessages;
  for (const BenchRequest& r : random_requests(w)) {
    ASSERT_EQ(r.kind, PromptKind::kMessages);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0]["role"], "user");
    const std::string text = r.messages[0]["content"].get<std::string>();
    EXPECT_EQ(std::count(text.begin(), text.end(), ' '), 24);
  }
}

}  // namespace
}  // namespace vortex::loadgen
