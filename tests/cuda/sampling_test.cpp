// Device sampling against the CPU sampler's rules: greedy argmax with the lowest id on ties, the
// log-softmax logprob, and the kept sets and frequencies of temperature/top-k/top-p/min-p.
#include "kernels/cuda/sampling.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "cuda/cuda_test_util.h"
#include "engine/sampler.h"

namespace vortex {
namespace {

using test::DeviceArray;

std::vector<cuda::SampleResult> run(const std::vector<float>& logits, int32_t vocab,
                                    const std::vector<cuda::SampleParams>& params) {
  const int64_t rows = static_cast<int64_t>(params.size());
  DeviceArray<float> d_logits(logits), d_scratch(rows * vocab);
  DeviceArray<cuda::SampleParams> d_params(params);
  DeviceArray<cuda::SampleResult> d_out(rows);
  EXPECT_EQ(cuda::sample_tokens(d_logits.get(), rows, vocab, d_params.get(), d_scratch.get(),
                                d_out.get(), nullptr),
            cudaSuccess);
  return d_out.download();
}

TEST(CudaSampling, GreedyTakesLowestIdOnTiesWithCpuLogprob) {
  VORTEX_REQUIRE_GPU();
  Rng rng(1);
  const int32_t V = 151936;
  std::vector<float> logits(size_t(V) * 3);
  for (auto& x : logits) x = rng.normal() * 4.0f;
  logits[size_t(0) * V + 777] = logits[size_t(0) * V + 90000] = 40.0f;  // tie: 777 wins
  logits[size_t(1) * V + V - 1] = 35.0f;                                // the last id
  std::vector<cuda::SampleParams> params(3);
  const auto out = run(logits, V, params);
  EXPECT_EQ(out[0].token, 777);
  EXPECT_EQ(out[1].token, V - 1);
  const float* row2 = logits.data() + size_t(2) * V;
  EXPECT_EQ(out[2].token, std::max_element(row2, row2 + V) - row2);
  for (int r = 0; r < 3; ++r)
    EXPECT_NEAR(out[r].logprob, token_logprob(logits.data() + size_t(r) * V, V, out[r].token),
                1e-3);
}

TEST(CudaSampling, GreedyOnRowsOfAnyLengthAndAlignment) {
  VORTEX_REQUIRE_GPU();
  // Odd vocabularies put rows 1 and 2 off 16-byte alignment (an unaligned head and tail around
  // the vectorized body); tiny ones have no body at all.
  for (int32_t V : {100003, 4099, 7, 1}) {
    SCOPED_TRACE("vocab " + std::to_string(V));
    Rng rng(static_cast<uint64_t>(V));
    std::vector<float> logits(size_t(V) * 3);
    for (auto& x : logits) x = rng.normal() * 3.0f;
    logits[size_t(1) * V + V - 1] = 30.0f;  // the last id of an unaligned row
    logits[size_t(2) * V] = 30.0f;          // the first id of an unaligned row
    std::vector<cuda::SampleParams> params(3);
    const auto out = run(logits, V, params);
    for (int r = 0; r < 3; ++r) {
      const float* row = logits.data() + size_t(r) * V;
      EXPECT_EQ(out[r].token, std::max_element(row, row + V) - row) << "row " << r;
      EXPECT_NEAR(out[r].logprob, token_logprob(row, V, out[r].token), 1e-3) << "row " << r;
    }
  }
}

// The tokens the CPU sampler can return for these parameters (its sort-based rules).
std::set<int32_t> cpu_kept(const std::vector<float>& logits, const SamplingParams& p) {
  std::set<int32_t> kept;
  float scratch[64];
  for (uint64_t seed = 0; seed < 3000; ++seed) {
    Rng rng(seed);
    kept.insert(
        sample_token(logits.data(), static_cast<int32_t>(logits.size()), p, rng, scratch).token);
  }
  return kept;
}

TEST(CudaSampling, FiltersKeepTheCpuSamplersTokensWithTheirProbabilities) {
  VORTEX_REQUIRE_GPU();
  const std::vector<float> base = {1.0f, 3.0f, 0.5f, 2.5f, -1.0f, 2.0f, 0.0f, 2.9f};
  const int32_t V = static_cast<int32_t>(base.size());
  struct Case {
    float t;
    int32_t k;
    float p, min_p;
  };
  for (Case c : {Case{1.0f, 0, 1.0f, 0.0f}, Case{0.7f, 3, 1.0f, 0.0f}, Case{1.0f, 0, 0.8f, 0.0f},
                 Case{1.3f, 0, 1.0f, 0.3f}, Case{1.0f, 5, 0.9f, 0.1f}}) {
    SCOPED_TRACE("t " + std::to_string(c.t) + " k " + std::to_string(c.k) + " p " +
                 std::to_string(c.p) + " min_p " + std::to_string(c.min_p));
    SamplingParams sp;
    sp.temperature = c.t;
    sp.top_k = c.k;
    sp.top_p = c.p;
    sp.min_p = c.min_p;
    const std::set<int32_t> kept = cpu_kept(base, sp);
    const int rows = 20000;
    std::vector<float> logits;
    std::vector<cuda::SampleParams> params(rows);
    for (int r = 0; r < rows; ++r) {
      logits.insert(logits.end(), base.begin(), base.end());
      params[r] = {c.t, c.k, c.p, c.min_p, 0x1234567ull + r * 7919ull, uint64_t(r)};
    }
    const auto out = run(logits, V, params);
    // Expected frequencies: softmax(logits / t) renormalised over the kept set.
    double z = 0;
    for (int32_t i : kept) z += std::exp(base[i] / c.t);
    std::map<int32_t, int> count;
    for (const auto& o : out) {
      ASSERT_TRUE(kept.count(o.token)) << "token " << o.token << " is filtered out on the CPU";
      ++count[o.token];
      EXPECT_NEAR(o.logprob, token_logprob(base.data(), V, o.token), 1e-5);
    }
    for (int32_t i : kept) {
      const double expect = std::exp(base[i] / c.t) / z;
      const double sigma = std::sqrt(expect * (1 - expect) / rows);
      EXPECT_NEAR(count[i] / double(rows), expect, 5 * sigma + 1e-3) << "token " << i;
    }
  }
}

// Teacher forcing: the forced token comes back with its log-softmax logprob, whatever the
// sampling parameters; an unforced row beside it is sampled as usual.
TEST(CudaSampling, ForcedTokenComesBackWithItsLogprob) {
  VORTEX_REQUIRE_GPU();
  const int32_t V = 4099;
  Rng rng(5);
  std::vector<float> logits(size_t(V) * 3);
  for (auto& x : logits) x = rng.normal() * 3.0f;
  std::vector<cuda::SampleParams> params(3);
  params[0].forced_token = 17;
  params[1] = {0.8f, 40, 0.9f, 0.0f, 42, 7};
  params[1].forced_token = V - 1;
  const auto out = run(logits, V, params);
  EXPECT_EQ(out[0].token, 17);
  EXPECT_EQ(out[1].token, V - 1);
  EXPECT_NEAR(out[0].logprob, token_logprob(logits.data(), V, 17), 1e-3);
  EXPECT_NEAR(out[1].logprob, token_logprob(logits.data() + V, V, V - 1), 1e-3);
  const float* row2 = logits.data() + size_t(2) * V;
  EXPECT_EQ(out[2].token, std::max_element(row2, row2 + V) - row2);
}

TEST(CudaSampling, SameKeyAndCounterGiveTheSameDraw) {
  VORTEX_REQUIRE_GPU();
  std::vector<float> logits(1000 * 4);
  Rng rng(3);
  for (auto& x : logits) x = rng.normal();
  std::vector<cuda::SampleParams> params(4, {1.0f, 0, 1.0f, 0.0f, 42, 7});
  for (int r = 0; r < 4; ++r)  // the same row of logits four times
    std::copy_n(logits.begin(), 1000, logits.begin() + r * 1000);
  const auto out = run(logits, 1000, params);
  for (int r = 1; r < 4; ++r) EXPECT_EQ(out[r].token, out[0].token);
  EXPECT_NE(cuda::philox_uniform(42, 7), cuda::philox_uniform(42, 8));
  EXPECT_NE(cuda::philox_uniform(42, 7), cuda::philox_uniform(43, 7));
}

}  // namespace
}  // namespace vortex
