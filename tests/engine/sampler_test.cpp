#include "engine/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace vortex {
namespace {

// Logits of a known distribution: p = [0.5, 0.25, 0.125, 0.125].
std::vector<float> four_way() {
  return {std::log(0.5f), std::log(0.25f), std::log(0.125f), std::log(0.125f)};
}

std::vector<int> histogram(const SamplingParams& p, int draws) {
  std::vector<float> logits = four_way(), scratch(4);
  Rng rng(p.seed);
  std::vector<int> h(4);
  for (int i = 0; i < draws; ++i) h[sample_token(logits.data(), 4, p, rng, scratch.data()).token]++;
  return h;
}

TEST(Sampler, GreedyTakesTheArgmaxAndItsUnscaledLogprob) {
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f}, scratch(4);
  Rng rng(1);
  SampledToken t = sample_token(logits.data(), 4, SamplingParams{}, rng, scratch.data());
  EXPECT_EQ(t.token, 1);  // lowest id on ties
  double z = std::exp(0.1) + 2 * std::exp(2.0) + std::exp(-1.0);
  EXPECT_NEAR(t.logprob, 2.0 - std::log(z), 1e-6);
}

TEST(Sampler, TemperatureOneFollowsTheDistribution) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 42;
  const int n = 40000;
  std::vector<int> h = histogram(p, n);
  const double expected[] = {0.5, 0.25, 0.125, 0.125};
  for (int i = 0; i < 4; ++i) {
    double sd = std::sqrt(n * expected[i] * (1 - expected[i]));
    EXPECT_NEAR(h[i], n * expected[i], 5 * sd) << "token " << i;
  }
}

TEST(Sampler, TopKTopPAndMinPRestrictTheSupport) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 3;
  p.top_k = 2;
  std::vector<int> h = histogram(p, 5000);
  EXPECT_EQ(h[2] + h[3], 0);
  EXPECT_GT(h[1], 0);

  p.top_k = 0;
  p.top_p = 0.7f;  // 0.5 + 0.25 reaches 0.7: tokens 0 and 1
  h = histogram(p, 5000);
  EXPECT_EQ(h[2] + h[3], 0);
  EXPECT_GT(h[1], 0);

  p.top_p = 1.0f;
  p.min_p = 0.4f;  // keeps p >= 0.2: tokens 0 and 1
  h = histogram(p, 5000);
  EXPECT_EQ(h[2] + h[3], 0);
  EXPECT_GT(h[1], 0);
}

TEST(Sampler, LowTemperatureConcentratesOnTheMode) {
  SamplingParams p;
  p.temperature = 0.05f;
  p.seed = 9;
  std::vector<int> h = histogram(p, 2000);
  EXPECT_EQ(h[0], 2000);
}

TEST(Sampler, TheSameSeedGivesTheSameStream) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 77;
  EXPECT_EQ(histogram(p, 300), histogram(p, 300));
  std::vector<float> logits = four_way(), scratch(4);
  Rng a(5), b(5);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(sample_token(logits.data(), 4, p, a, scratch.data()).token,
              sample_token(logits.data(), 4, p, b, scratch.data()).token);
  }
}

TEST(Sampler, RejectsOutOfRangeParameters) {
  SamplingParams p;
  p.temperature = -1;
  EXPECT_THROW(p.validate(), Error);
  p = {};
  p.top_p = 0;
  EXPECT_THROW(p.validate(), Error);
  p = {};
  p.top_k = -2;
  EXPECT_THROW(p.validate(), Error);
  p = {};
  p.min_p = 1.5f;
  EXPECT_THROW(p.validate(), Error);
}

TEST(Sampler, TopLogprobsAreTheMostLikelyFirstTiesToTheLowerId) {
  // p = [0.125, 0.5, 0.125, 0.25]: ranks 1, 3, then the tie 0 before 2.
  std::vector<float> logits = {std::log(0.125f), std::log(0.5f), std::log(0.125f), std::log(0.25f)};
  std::vector<TokenLogprob> top = top_logprobs(logits.data(), 4, 4);
  ASSERT_EQ(top.size(), 4u);
  const int32_t order[] = {1, 3, 0, 2};
  const double probs[] = {0.5, 0.25, 0.125, 0.125};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(top[i].token, order[i]);
    EXPECT_NEAR(top[i].logprob, std::log(probs[i]), 1e-6);
    EXPECT_EQ(top[i].logprob, token_logprob(logits.data(), 4, order[i]));
  }
  EXPECT_EQ(top_logprobs(logits.data(), 4, 2).size(), 2u);
  EXPECT_EQ(top_logprobs(logits.data(), 4, 2)[1].token, 3);
  EXPECT_EQ(top_logprobs(logits.data(), 4, 9).size(), 4u);  // at most the vocabulary
  EXPECT_TRUE(top_logprobs(logits.data(), 4, 0).empty());
  // All equal: ids in order.
  std::vector<float> flat(50, 1.0f);
  std::vector<TokenLogprob> first = top_logprobs(flat.data(), 50, 3);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0].token, 0);
  EXPECT_EQ(first[1].token, 1);
  EXPECT_EQ(first[2].token, 2);
}

TEST(Sampler, TopLogprobsMatchAFullSort) {
  Rng rng(3);
  std::vector<float> logits(1000);
  // Coarse values, so that many logits tie.
  for (float& x : logits) x = static_cast<float>(rng.next_u64() % 64) / 8.0f;
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  std::stable_sort(ids.begin(), ids.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  std::vector<TokenLogprob> top = top_logprobs(logits.data(), 1000, kMaxTopLogprobs);
  ASSERT_EQ(top.size(), static_cast<size_t>(kMaxTopLogprobs));
  for (int32_t i = 0; i < kMaxTopLogprobs; ++i) EXPECT_EQ(top[i].token, ids[i]) << i;
}

}  // namespace
}  // namespace vortex
