// Op consistency of the weight-streaming GEMM for decode batches against a CPU reference (bf16
// inputs, f32 accumulation) on random data: the projection shapes of qwen3-1.7b, odd N and K,
// every split path (warps and blocks over k), and bitwise reproducibility run to run.
#include "kernels/cuda/skinny_gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "cuda/cuda_test_util.h"

namespace vortex {
namespace {

using cuda::SkinnyGemmConfig;
using test::DeviceArray;

// y[m, n] = Σ_k x[m, k] · w[n, k] in f32, for the columns n in `cols` (y is [M, N], other
// columns left 0).
std::vector<float> reference(const std::vector<float>& x, int64_t M, int64_t K,
                             const std::vector<float>& w, int64_t N,
                             const std::vector<int64_t>& cols) {
  std::vector<float> y(size_t(M * N), 0.0f);
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x.data() + m * K;
    for (int64_t n : cols) {
      const float* wr = w.data() + n * K;
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc += xr[k] * wr[k];
      y[size_t(m * N + n)] = acc;
    }
  }
  return y;
}

// Random weights [N, K] on the host (f32 copies) and the device.
struct Weights {
  int64_t N, K;
  std::vector<float> f32;
  DeviceArray<uint16_t> dev;

  Weights(int64_t n, int64_t k, uint64_t seed) : N(n), K(k) {
    Rng rng(seed);
    dev = DeviceArray<uint16_t>(test::random_bf16(size_t(N * K), rng, 0.05f, &f32));
  }
};

// Random x [M, K] against `w`, with the reference output.
struct Problem {
  const Weights& w;
  int64_t M, N, K;
  std::vector<float> xf;
  DeviceArray<uint16_t> x;
  std::vector<int64_t> cols;  // the columns checked (all, or a sample of very wide outputs)
  std::vector<float> ref;

  Problem(const Weights& weights, int64_t m, uint64_t seed)
      : w(weights), M(m), N(weights.N), K(weights.K) {
    Rng rng(seed);
    x = DeviceArray<uint16_t>(test::random_bf16(size_t(M * K), rng, 1.0f, &xf));
    const int64_t stride = N > 20000 ? 13 : 1;
    for (int64_t c = 0; c < N; c += stride) cols.push_back(c);
    if (cols.back() != N - 1) cols.push_back(N - 1);
    ref = reference(xf, M, K, w.f32, N, cols);
  }

  // Every checked element within 1e-3 of its row's largest magnitude (f32 sums in another
  // order differ far less than that).
  void expect_close(const std::vector<float>& got) const {
    for (int64_t m = 0; m < M; ++m) {
      float row_max = 0.0f;
      for (int64_t n : cols) row_max = std::max(row_max, std::fabs(ref[size_t(m * N + n)]));
      const float tol = 1e-3f * row_max + 1e-6f;
      int bad = 0;
      for (int64_t n : cols) {
        const float g = got[size_t(m * N + n)], r = ref[size_t(m * N + n)];
        if (!(std::fabs(g - r) <= tol) && bad++ < 3)
          ADD_FAILURE() << "y[" << m << ", " << n << "] = " << g << ", expected " << r;
      }
      if (bad > 0) {
        ADD_FAILURE() << bad << " bad columns in row " << m;
        return;
      }
    }
  }
};

std::string describe(int64_t M, int64_t N, int64_t K) {
  return "M " + std::to_string(M) + " N " + std::to_string(N) + " K " + std::to_string(K);
}

// Runs the chosen config twice: close to the reference and bitwise identical.
void check_auto(const Problem& p, float* workspace, size_t workspace_floats) {
  DeviceArray<float> y1(size_t(p.M * p.N)), y2(size_t(p.M * p.N));
  ASSERT_EQ(cuda::skinny_gemm(p.x.get(), p.M, p.K, p.w.dev.get(), p.N, y1.get(), workspace,
                              workspace_floats, nullptr),
            cudaSuccess);
  ASSERT_EQ(cuda::skinny_gemm(p.x.get(), p.M, p.K, p.w.dev.get(), p.N, y2.get(), workspace,
                              workspace_floats, nullptr),
            cudaSuccess);
  const std::vector<float> a = y1.download(), b = y2.download();
  p.expect_close(a);
  EXPECT_TRUE(a == b) << "two runs differ";
}

TEST(SkinnyGemm, SupportsDecodeBatchesAndKMultipleOfEight) {
  EXPECT_TRUE(cuda::skinny_gemm_supported(1, 4096, 2048));
  EXPECT_TRUE(cuda::skinny_gemm_supported(64, 151936, 2048));
  EXPECT_TRUE(cuda::skinny_gemm_supported(7, 1000, 8));
  EXPECT_FALSE(cuda::skinny_gemm_supported(65, 4096, 2048));
  EXPECT_FALSE(cuda::skinny_gemm_supported(32, 4096, 2044));
  EXPECT_FALSE(cuda::skinny_gemm_supported(32, 0, 2048));
  EXPECT_FALSE(cuda::skinny_gemm_supported(32, 4096, 0));
  EXPECT_EQ(cuda::skinny_gemm_workspace_floats(SkinnyGemmConfig{16, 8, 1, 1}, 64, 4096), 0u);
  EXPECT_EQ(cuda::skinny_gemm_workspace_floats(SkinnyGemmConfig{16, 8, 1, 3}, 64, 4096),
            size_t{3 * 64 * 4096});
}

TEST(SkinnyGemm, MatchesCpuOnQwen3ProjectionShapes) {
  VORTEX_REQUIRE_GPU();
  const size_t ws_floats = size_t{4} << 20;
  DeviceArray<float> ws(ws_floats);
  struct Shape {
    int64_t N, K;
  };
  uint64_t seed = 1;
  for (Shape s : {Shape{4096, 2048}, Shape{2048, 2048}, Shape{12288, 2048}, Shape{2048, 6144},
                  Shape{151936, 2048}}) {
    const Weights w(s.N, s.K, seed++);
    for (int64_t M : {1, 7, 32, 64}) {
      SCOPED_TRACE(describe(M, s.N, s.K));
      Problem p(w, M, seed++);
      check_auto(p, ws.get(), ws_floats);
    }
  }
}

TEST(SkinnyGemm, MatchesCpuOnOddShapesWithAndWithoutWorkspace) {
  VORTEX_REQUIRE_GPU();
  const size_t ws_floats = size_t{4} << 20;
  DeviceArray<float> ws(ws_floats);
  uint64_t seed = 100;
  for (int64_t N : {1000, 4104, 5}) {
    for (int64_t K : {8, 72, 6144}) {
      const Weights w(N, K, seed++);
      for (int64_t M : {1, 7, 33, 64}) {
        SCOPED_TRACE(describe(M, N, K));
        Problem p(w, M, seed++);
        check_auto(p, ws.get(), ws_floats);
        check_auto(p, nullptr, 0);  // no workspace: no split over blocks
      }
    }
  }
}

TEST(SkinnyGemm, EverySplitOfTheWorkMatchesCpu) {
  VORTEX_REQUIRE_GPU();
  const size_t ws_floats = size_t{4} << 20;
  DeviceArray<float> ws(ws_floats);
  // {rows per warp, row groups, k groups, k splits}: warps over rows only, warps over k (summed
  // in shared memory), blocks over k (summed through the workspace), and both.
  const SkinnyGemmConfig configs[] = {{16, 8, 1, 1}, {32, 8, 1, 1}, {16, 1, 2, 1}, {32, 2, 4, 1},
                                      {32, 1, 8, 1}, {16, 4, 2, 3}, {16, 1, 1, 5}, {32, 2, 2, 8}};
  uint64_t seed = 200;
  for (int64_t N : {300, 2048}) {
    for (int64_t K : {72, 1000, 6144}) {
      const Weights w(N, K, seed++);
      for (int64_t M : {1, 9, 32, 64}) {
        Problem p(w, M, seed++);
        for (const SkinnyGemmConfig& c : configs) {
          if (M > 32 && c.rows_per_warp == 32) continue;  // not offered for 8 token tiles
          SCOPED_TRACE(describe(M, N, K) + " config " + std::to_string(c.rows_per_warp) + "," +
                       std::to_string(c.row_groups) + "," + std::to_string(c.k_groups) + "," +
                       std::to_string(c.k_splits));
          DeviceArray<float> y1(size_t(M * N)), y2(size_t(M * N));
          ASSERT_EQ(cuda::skinny_gemm_with_config(p.x.get(), M, K, p.w.dev.get(), N, y1.get(),
                                                  ws.get(), c, nullptr),
                    cudaSuccess);
          ASSERT_EQ(cuda::skinny_gemm_with_config(p.x.get(), M, K, p.w.dev.get(), N, y2.get(),
                                                  ws.get(), c, nullptr),
                    cudaSuccess);
          const std::vector<float> a = y1.download(), b = y2.download();
          p.expect_close(a);
          EXPECT_TRUE(a == b) << "two runs differ";
        }
      }
    }
  }
}

TEST(SkinnyGemm, RejectsUnsupportedShapesAndMisalignedPointers) {
  VORTEX_REQUIRE_GPU();
  DeviceArray<uint16_t> x(64 * 72 + 8), w(100 * 72 + 8);
  DeviceArray<float> y(64 * 100);
  EXPECT_EQ(cuda::skinny_gemm(x.get(), 65, 72, w.get(), 100, y.get(), nullptr, 0, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::skinny_gemm(x.get(), 4, 70, w.get(), 100, y.get(), nullptr, 0, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::skinny_gemm(x.get() + 1, 4, 72, w.get(), 100, y.get(), nullptr, 0, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(cuda::skinny_gemm(x.get(), 0, 72, w.get(), 100, y.get(), nullptr, 0, nullptr),
            cudaSuccess);
}

}  // namespace
}  // namespace vortex
