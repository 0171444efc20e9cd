#include "kernels/cpu/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/kernel_test_util.h"

namespace vortex {
namespace {

using testing::bit_equal;
using testing::random_floats;

RopeParams llama3_params() {
  RopeParams p;
  p.theta = 500000.0;
  p.type = "llama3";
  p.factor = 8.0;
  p.low_freq_factor = 1.0;
  p.high_freq_factor = 4.0;
  p.original_max_position_embeddings = 8192;
  return p;
}

// Meta's published llama3 scaling, written independently in double precision.
std::vector<double> llama3_reference(int dim, const RopeParams& p) {
  std::vector<double> out;
  const double low_wavelen = p.original_max_position_embeddings / p.low_freq_factor;
  const double high_wavelen = p.original_max_position_embeddings / p.high_freq_factor;
  for (int i = 0; i < dim / 2; ++i) {
    const double freq = std::pow(p.theta, -2.0 * i / dim);
    const double wavelen = 2 * std::numbers::pi / freq;
    if (wavelen < high_wavelen) {
      out.push_back(freq);
    } else if (wavelen > low_wavelen) {
      out.push_back(freq / p.factor);
    } else {
      const double smooth = (p.original_max_position_embeddings / wavelen - p.low_freq_factor) /
                            (p.high_freq_factor - p.low_freq_factor);
      out.push_back((1 - smooth) * freq / p.factor + smooth * freq);
    }
  }
  return out;
}

TEST(RopeInvFreq, DefaultIsThetaToTheMinusTwoIOverD) {
  RopeParams p;  // default, theta 10000
  std::vector<float> inv = cpu::rope_inv_freq(128, p);
  ASSERT_EQ(inv.size(), 64u);
  EXPECT_EQ(inv[0], 1.0f);
  EXPECT_NEAR(inv[1], 0.8659643233600653, 1e-7);  // 10000^(-2/128)
  for (int i = 0; i < 64; ++i) {
    const double ref = std::pow(10000.0, -2.0 * i / 128);
    EXPECT_NEAR(inv[i], ref, 2e-7 * ref) << "i = " << i;
  }
}

TEST(RopeInvFreq, LinearDividesTheDefaultByTheFactor) {
  RopeParams p;
  p.theta = 1000000.0;
  std::vector<float> plain = cpu::rope_inv_freq(64, p);
  p.type = "linear";
  p.factor = 4.0;
  std::vector<float> scaled = cpu::rope_inv_freq(64, p);
  ASSERT_EQ(scaled.size(), plain.size());
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_EQ(scaled[i], plain[i] / 4.0f) << i;
}

TEST(RopeInvFreq, Llama3MatchesAnIndependentDoubleImplementation) {
  const RopeParams p = llama3_params();
  std::vector<float> inv = cpu::rope_inv_freq(128, p);
  std::vector<double> ref = llama3_reference(128, p);
  ASSERT_EQ(inv.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(inv[i], ref[i], 1e-6 * ref[i]) << i;
}

// For D = 128 and theta = 500000, wavelen_i = 2π·500000^(i/64): below 8192/4 = 2048 for
// i <= 28 (kept), above 8192/1 for i >= 35 (divided by 8), smoothly interpolated in between.
TEST(RopeInvFreq, Llama3KeepsHighFrequenciesAndDividesLowOnesByTheFactor) {
  RopeParams plain_params;
  plain_params.theta = 500000.0;
  std::vector<float> plain = cpu::rope_inv_freq(128, plain_params);
  std::vector<float> inv = cpu::rope_inv_freq(128, llama3_params());
  for (int i = 0; i <= 28; ++i) EXPECT_EQ(inv[i], plain[i]) << "high-frequency entry " << i;
  for (int i = 35; i < 64; ++i) EXPECT_EQ(inv[i], plain[i] / 8.0f) << "low-frequency entry " << i;
  for (int i = 29; i <= 34; ++i) {
    EXPECT_LT(inv[i], plain[i]) << "medium entry " << i;
    EXPECT_GT(inv[i], plain[i] / 8.0f) << "medium entry " << i;
  }
}

TEST(RopeInvFreq, RejectsAnUnknownTypeNamingTheSupportedOnes) {
  RopeParams p;
  p.type = "yarn";
  try {
    cpu::rope_inv_freq(128, p);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'yarn'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("default, linear, llama3"), std::string::npos) << msg;
  }
}

TEST(RopeInvFreq, RejectsAnOddHeadDim) {
  EXPECT_THROW(cpu::rope_inv_freq(63, RopeParams{}), Error);
}

// x · cos + rotate_half(x) · sin, in double, from the same f32 angle as Hugging Face.
std::vector<double> reference_rope(const std::vector<float>& x, int64_t T, int H, int D,
                                   const std::vector<int32_t>& pos,
                                   const std::vector<float>& inv) {
  std::vector<double> out(x.size());
  const int half = D / 2;
  for (int64_t t = 0; t < T; ++t) {
    for (int h = 0; h < H; ++h) {
      const float* v = x.data() + (t * H + h) * D;
      double* o = out.data() + (t * H + h) * D;
      for (int i = 0; i < D; ++i) {
        const float angle = static_cast<float>(pos[t]) * inv[i % half];
        const double rotated = i < half ? -double{v[i + half]} : double{v[i - half]};
        o[i] = v[i] * std::cos(double{angle}) + rotated * std::sin(double{angle});
      }
    }
  }
  return out;
}

TEST(ApplyRope, MatchesRotateHalfReference) {
  const int64_t T = 6;
  const int H = 3, D = 64;
  Rng rng(11);
  std::vector<float> x = random_floats(rng, T * H * D);
  std::vector<int32_t> pos = {0, 1, 7, 100, 4095, 131071};
  std::vector<float> inv = cpu::rope_inv_freq(D, llama3_params());
  std::vector<double> ref = reference_rope(x, T, H, D, pos, inv);
  cpu::apply_rope(x.data(), T, H, D, pos.data(), inv);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(x[i], ref[i], 2e-6) << "element " << i;
}

TEST(ApplyRope, RotatesPairsIAndIPlusHalf) {
  // D = 4: pairs (0, 2) and (1, 3); position 1 with inv_freq {π/2, 0}: the first pair turns
  // a quarter (x0, x2) -> (-x2, x0), the second not at all.
  std::vector<float> x = {1.0f, 2.0f, 3.0f, 4.0f};
  std::vector<int32_t> pos = {1};
  cpu::apply_rope(x.data(), 1, 1, 4, pos.data(), {static_cast<float>(std::numbers::pi / 2), 0.0f});
  EXPECT_NEAR(x[0], -3.0f, 1e-6);
  EXPECT_EQ(x[1], 2.0f);
  EXPECT_NEAR(x[2], 1.0f, 1e-6);
  EXPECT_EQ(x[3], 4.0f);
}

TEST(ApplyRope, PositionZeroLeavesTheVectorUnchanged) {
  Rng rng(12);
  std::vector<float> x = random_floats(rng, 2 * 128), before = x;
  std::vector<int32_t> pos = {0};
  cpu::apply_rope(x.data(), 1, 2, 128, pos.data(), cpu::rope_inv_freq(128, RopeParams{}));
  EXPECT_EQ(x, before);
}

TEST(ApplyRope, ATokensResultDoesNotDependOnTheBatchOrThreads) {
  const int64_t T = 40;
  const int H = 4, D = 128;
  Rng rng(13);
  std::vector<float> x = random_floats(rng, T * H * D);
  std::vector<int32_t> pos(T);
  for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(t * 37 % 1000);
  std::vector<float> inv = cpu::rope_inv_freq(D, RopeParams{});
  std::vector<float> all = x;
  ThreadPool::set_global_threads(3);
  cpu::apply_rope(all.data(), T, H, D, pos.data(), inv);
  ThreadPool::set_global_threads(1);
  for (int64_t t = 0; t < T; ++t) {
    std::vector<float> one(x.begin() + t * H * D, x.begin() + (t + 1) * H * D);
    cpu::apply_rope(one.data(), 1, H, D, &pos[t], inv);
    ASSERT_TRUE(bit_equal(one.data(), all.data() + t * H * D, H * D)) << "token " << t;
  }
  ThreadPool::set_global_threads(0);
}

TEST(ApplyRope, RejectsATableOfTheWrongLength) {
  std::vector<float> x(8);
  std::vector<int32_t> pos = {0};
  EXPECT_THROW(cpu::apply_rope(x.data(), 1, 1, 8, pos.data(), {1.0f, 0.5f}), Error);
}

}  // namespace
}  // namespace vortex
