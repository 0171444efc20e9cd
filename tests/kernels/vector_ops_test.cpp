#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/kernel_test_util.h"

namespace vortex {
namespace {

using cpu::CpuIsa;
using cpu::CpuKernels;
using testing::random_floats;

// Every test runs on each instruction-set path this CPU supports.
class VectorOps : public ::testing::TestWithParam<CpuIsa> {
 protected:
  const CpuKernels& k() const { return cpu::cpu_kernels_for(GetParam()); }
  bool fused() const { return GetParam() != CpuIsa::kBaseline; }
};

TEST_P(VectorOps, ExpIsWithinTwoUlpOfExpOverTheUsefulRange) {
  std::vector<float> x;
  for (float v = -103.0f; v < 88.7f; v += 0.0137f) x.push_back(v);
  std::vector<float> y(x.size());
  k().exp_shifted(x.data(), 0.0f, static_cast<int64_t>(x.size()), y.data());
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = std::exp(static_cast<double>(x[i]));
    if (ref < 1.2e-38) {  // subnormal results: absolute error of a couple of subnormal steps
      ASSERT_NEAR(y[i], ref, 3e-45) << "x = " << x[i];
    } else {
      ASSERT_NEAR(y[i], ref, 2.5e-7 * ref) << "x = " << x[i];
    }
  }
}

TEST_P(VectorOps, ExpSaturatesToZeroAndInfinity) {
  std::vector<float> x = {-1000.0f, -105.0f, 0.0f, 89.0f, 1000.0f, INFINITY, -INFINITY};
  std::vector<float> y(x.size());
  k().exp_shifted(x.data(), 0.0f, static_cast<int64_t>(x.size()), y.data());
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], 1.0f);
  EXPECT_EQ(y[3], INFINITY);
  EXPECT_EQ(y[4], INFINITY);
  EXPECT_EQ(y[5], INFINITY);
  EXPECT_EQ(y[6], 0.0f);
}

TEST_P(VectorOps, AnExpElementDoesNotDependOnTheArrayLength) {
  Rng rng(1);
  std::vector<float> x = random_floats(rng, 37, 5.0f);
  std::vector<float> all(x.size()), one(1);
  k().exp_shifted(x.data(), 0.5f, 37, all.data());
  for (size_t i = 0; i < x.size(); ++i) {
    k().exp_shifted(x.data() + i, 0.5f, 1, one.data());
    ASSERT_EQ(one[0], all[i]) << i;
  }
}

// dot() is the definition every kernel's reductions follow: 16 lane sums in increasing k, then
// the lanes folded in halves. Written out here with scalar floats.
TEST_P(VectorOps, DotFollowsTheDocumentedSummationOrder) {
  Rng rng(2);
  for (int64_t n : {1, 15, 16, 17, 128, 203}) {
    std::vector<float> a = random_floats(rng, n), b = random_floats(rng, n);
    float lanes[16] = {};
    for (int64_t i = 0; i < n; ++i) {
      if (fused()) {
        lanes[i % 16] = std::fma(a[i], b[i], lanes[i % 16]);
      } else {
        volatile float product = a[i] * b[i];  // rounded on its own: no contraction
        lanes[i % 16] += product;
      }
    }
    float s8[8], s4[4];
    for (int i = 0; i < 8; ++i) s8[i] = lanes[i] + lanes[i + 8];
    for (int i = 0; i < 4; ++i) s4[i] = s8[i] + s8[i + 4];
    const float expected = (s4[0] + s4[2]) + (s4[1] + s4[3]);
    const float got = k().dot(a.data(), b.data(), n);
    EXPECT_EQ(got, expected) << "n = " << n;
  }
}

// The attention scores fold 16 dots at once with whole-vector shuffles; each must still equal
// dot() of its pair, for every length (full blocks, a partial last block, shorter than one).
TEST_P(VectorOps, EachDotOfA4x4TileEqualsDotBitForBit) {
  Rng rng(3);
  for (int64_t n : {1, 5, 16, 64, 77, 128}) {
    std::vector<std::vector<float>> a, b;
    std::vector<const float*> pa, pb;
    for (int i = 0; i < 4; ++i) {
      a.push_back(random_floats(rng, n));
      b.push_back(random_floats(rng, n));
    }
    for (int i = 0; i < 4; ++i) {
      pa.push_back(a[i].data());
      pb.push_back(b[i].data());
    }
    float out[16];
    k().dot4x4(pa.data(), pb.data(), n, out);
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 4; ++c)
        EXPECT_EQ(out[r * 4 + c], k().dot(a[r].data(), b[c].data(), n))
            << "n = " << n << " (" << r << ", " << c << ")";
  }
}

// The two FMA paths run the same lane arithmetic, so they agree bit for bit.
TEST(VectorOpsAcrossPaths, Avx2AndAvx512AgreeBitForBit) {
  if (!cpu::cpu_supports(CpuIsa::kAvx512)) GTEST_SKIP() << "this CPU has no AVX-512";
  const CpuKernels& a = cpu::cpu_kernels_for(CpuIsa::kAvx2);
  const CpuKernels& b = cpu::cpu_kernels_for(CpuIsa::kAvx512);
  Rng rng(4);
  std::vector<float> x = random_floats(rng, 203, 4.0f), y = random_floats(rng, 203);
  std::vector<float> ea(x.size()), eb(x.size());
  a.exp_shifted(x.data(), 0.25f, 203, ea.data());
  b.exp_shifted(x.data(), 0.25f, 203, eb.data());
  EXPECT_EQ(ea, eb);
  EXPECT_EQ(a.dot(x.data(), y.data(), 203), b.dot(x.data(), y.data(), 203));
}

std::string isa_test_name(const ::testing::TestParamInfo<CpuIsa>& info) {
  return std::string(cpu::cpu_isa_name(info.param));
}

INSTANTIATE_TEST_SUITE_P(Paths, VectorOps, ::testing::ValuesIn(cpu::supported_cpu_isas()),
                         isa_test_name);

}  // namespace
}  // namespace vortex
