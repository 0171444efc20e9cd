// Each instruction-set path's kernels against the arithmetic the kernels document, and the paths
// against each other: AVX2 and AVX-512 run the same chains with FMA and must agree bit for bit;
// the baseline (no FMA) within rounding. Only the paths this CPU supports run.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/kernel_test_util.h"

namespace vortex {
namespace {

using cpu::CpuIsa;
using cpu::CpuKernels;
using testing::make_weight;
using testing::random_floats;
using testing::widened;

std::string isa_test_name(const ::testing::TestParamInfo<CpuIsa>& info) {
  return std::string(cpu::cpu_isa_name(info.param));
}

// y[m, n] as the kernels define it: one multiply-add chain in increasing k (fused on the FMA
// paths), then + bias.
float documented_linear(const float* x, const float* w, int64_t K, float bias, bool fused) {
  float acc = 0.0f;
  for (int64_t k = 0; k < K; ++k) {
    if (fused) {
      acc = std::fma(x[k], w[k], acc);
    } else {
      volatile float product = x[k] * w[k];  // rounded on its own: no contraction
      acc += product;
    }
  }
  return acc + bias;
}

class CpuPath : public ::testing::TestWithParam<CpuIsa> {
 protected:
  const CpuKernels& k() const { return cpu::cpu_kernels_for(GetParam()); }
  bool fused() const { return GetParam() != CpuIsa::kBaseline; }
};

// Shapes cover every register tile of every path and the tails: rows 1..13 and 25 (a 12-row
// tile plus remainders), columns that are not a multiple of 16 or 64, K from 0 up.
TEST_P(CpuPath, LinearEqualsTheDocumentedChainBitForBit) {
  Rng rng(11);
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t M : {1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 25}) {
      for (auto [N, K] :
           {std::pair<int64_t, int64_t>{1, 1}, {17, 33}, {64, 0}, {100, 70}, {130, 257}}) {
        std::vector<float> x = random_floats(rng, M * K);
        Tensor w = make_weight(random_floats(rng, N * K), dtype, {N, K});
        std::vector<float> bias = random_floats(rng, N);
        const std::vector<float> wf = widened(w);
        cpu::PackedWeight packed(w);
        std::vector<float> y(static_cast<size_t>(M * N), NAN);
        k().linear(x.data(), M, K, packed, bias.data(), y.data());
        for (int64_t m = 0; m < M; ++m) {
          for (int64_t n = 0; n < N; ++n) {
            const float want = documented_linear(x.data() + m * K, wf.data() + n * K, K,
                                                 bias[static_cast<size_t>(n)], fused());
            ASSERT_EQ(y[static_cast<size_t>(m * N + n)], want)
                << dtype_name(dtype) << " M=" << M << " N=" << N << " K=" << K << " at (" << m
                << ", " << n << ")";
          }
        }
      }
    }
  }
}

TEST_P(CpuPath, RmsNormAndSiluMulMatchADoubleReference) {
  Rng rng(12);
  const int64_t rows = 5, dim = 77;
  std::vector<float> x = random_floats(rng, rows * dim), w = random_floats(rng, dim);
  std::vector<float> out(x.size());
  k().rms_norm(x.data(), rows, dim, w.data(), 1e-6f, out.data());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double{x[r * dim + i]} * x[r * dim + i];
    const double inv = 1.0 / std::sqrt(ss / dim + 1e-6);
    for (int64_t i = 0; i < dim; ++i)
      ASSERT_NEAR(out[r * dim + i], w[i] * x[r * dim + i] * inv, 1e-5 * (1 + std::fabs(w[i])));
  }
  const int64_t n = 1000;
  std::vector<float> g = random_floats(rng, n, 4.0f), u = random_floats(rng, n), s(n);
  k().silu_mul(g.data(), u.data(), n, s.data());
  for (int64_t i = 0; i < n; ++i) {
    const double want = g[i] / (1.0 + std::exp(-double{g[i]})) * u[i];
    ASSERT_NEAR(s[i], want, 1e-5 * (1 + std::fabs(want))) << i;
  }
}

// A small paged batch: two prefill sequences and a decode row, pages out of order.
struct SmallBatch {
  static constexpr int32_t kHq = 4, kHkv = 2, kD = 72, kP = 4;
  std::vector<float> k_cache, v_cache, q;
  std::vector<std::vector<int32_t>> tables;
  std::vector<cpu::AttentionSeq> seqs;
  std::vector<cpu::AttentionBlock> blocks;
  cpu::PagedKv kv{};

  SmallBatch() {
    Rng rng(13);
    const std::vector<std::pair<int32_t, int32_t>> specs = {{9, 9}, {1, 23}, {13, 17}};
    int32_t pages = 0, total_q = 0;
    for (auto [q_len, kv_len] : specs) pages += (kv_len + kP - 1) / kP;
    std::vector<int32_t> order(static_cast<size_t>(pages));
    std::iota(order.rbegin(), order.rend(), 0);
    const int64_t head_stride = int64_t{kP} * kD, page_stride = head_stride * kHkv;
    k_cache = random_floats(rng, page_stride * pages);
    v_cache = random_floats(rng, page_stride * pages);
    kv = {k_cache.data(), v_cache.data(), kP, kHkv, kD, page_stride, head_stride};
    size_t next = 0;
    for (auto [q_len, kv_len] : specs) {
      std::vector<int32_t> table;
      for (int32_t j = 0; j < kv_len; j += kP) table.push_back(order[next++]);
      tables.push_back(std::move(table));
    }
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto [q_len, kv_len] = specs[i];
      seqs.push_back(
          {total_q, q_len, kv_len, tables[i].data(), static_cast<int32_t>(tables[i].size())});
      for (int32_t j = 0; j < q_len; j += 8)
        blocks.push_back({static_cast<int32_t>(i), j, std::min(8, q_len - j)});
      total_q += q_len;
    }
    q = random_floats(rng, int64_t{total_q} * kHq * kD);
  }

  std::vector<float> run(const CpuKernels& k) const {
    std::vector<float> out(q.size(), NAN);
    k.attention(q.data(), kHq, kv, seqs.data(), blocks.data(), static_cast<int64_t>(blocks.size()),
                1.0f / std::sqrt(float{kD}), out.data());
    return out;
  }
};

TEST_P(CpuPath, AttentionMatchesTheAvailableReferencePath) {
  // The active path's attention is checked against a double reference in attention_test; here
  // every other path must agree with it (exactly between the FMA paths).
  SmallBatch batch;
  const std::vector<float> got = batch.run(k());
  const std::vector<float> ref = batch.run(cpu::cpu_kernels_for(CpuIsa::kBaseline));
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1e-5f) << i;
}

TEST(CpuPathsAgree, Avx2AndAvx512GiveBitIdenticalKernels) {
  if (!cpu::cpu_supports(CpuIsa::kAvx512)) GTEST_SKIP() << "this CPU has no AVX-512";
  const CpuKernels& a = cpu::cpu_kernels_for(CpuIsa::kAvx2);
  const CpuKernels& b = cpu::cpu_kernels_for(CpuIsa::kAvx512);
  SmallBatch batch;
  EXPECT_EQ(batch.run(a), batch.run(b));
  Rng rng(14);
  const int64_t M = 29, N = 200, K = 96;
  std::vector<float> x = random_floats(rng, M * K);
  cpu::PackedWeight w(make_weight(random_floats(rng, N * K), DType::kBF16, {N, K}));
  std::vector<float> ya(M * N), yb(M * N);
  a.linear(x.data(), M, K, w, nullptr, ya.data());
  b.linear(x.data(), M, K, w, nullptr, yb.data());
  EXPECT_EQ(ya, yb);
}

TEST(CpuIsa, ActivePathIsSupportedAndBaselineAlwaysIs) {
  const std::vector<CpuIsa> paths = cpu::supported_cpu_isas();
  ASSERT_FALSE(paths.empty());
  EXPECT_EQ(paths.front(), CpuIsa::kBaseline);
  EXPECT_TRUE(cpu::cpu_supports(cpu::active_cpu_isa()));
  EXPECT_EQ(cpu::cpu_kernels().isa, cpu::active_cpu_isa());
}

INSTANTIATE_TEST_SUITE_P(Paths, CpuPath, ::testing::ValuesIn(cpu::supported_cpu_isas()),
                         isa_test_name);

}  // namespace
}  // namespace vortex
