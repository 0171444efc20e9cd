// Op consistency of the per-token CUDA kernels (embedding, residual RMSNorm, SwiGLU, fused
// QK-norm + RoPE + KV append) and the cuBLASLt GEMM against the CPU kernels, on random inputs.
#include "kernels/cuda/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/tensor.h"
#include "cuda/cuda_test_util.h"
#include "engine/cuda/cublaslt.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/linear.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cuda/qkv_rope.h"

namespace vortex {
namespace {

using test::DeviceArray;

Tensor bf16_tensor(const std::vector<uint16_t>& v, Shape shape) {
  Tensor t = Tensor::empty(DType::kBF16, std::move(shape));
  std::copy(v.begin(), v.end(), t.data_as<uint16_t>());
  return t;
}

TEST(CudaElementwise, EmbeddingEqualsCpuLookup) {
  VORTEX_REQUIRE_GPU();
  Rng rng(1);
  const int64_t vocab = 300, hidden = 96, n = 37;
  std::vector<float> table_f;
  std::vector<uint16_t> table = test::random_bf16(vocab * hidden, rng, 1.0f, &table_f);
  std::vector<int32_t> ids(n);
  for (auto& id : ids) id = static_cast<int32_t>(rng.next_u64() % vocab);
  DeviceArray<uint16_t> d_table(table);
  DeviceArray<int32_t> d_ids(ids);
  DeviceArray<float> d_out(n * hidden);
  ASSERT_EQ(cuda::embedding(d_ids.get(), n, d_table.get(), vocab, hidden, d_out.get(), nullptr),
            cudaSuccess);
  std::vector<float> ref(n * hidden);
  cpu::embedding(ids.data(), n, bf16_tensor(table, {vocab, hidden}), ref.data());
  EXPECT_EQ(d_out.download(), ref);  // a lookup is exact
}

TEST(CudaElementwise, ResidualRmsNormMatchesCpuAddThenNorm) {
  VORTEX_REQUIRE_GPU();
  Rng rng(2);
  // 12288: wider than the register form (8 elements per thread), the loop form.
  for (int64_t dim : {64, 2048, 5120, 12288}) {
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE("dim " + std::to_string(dim) + (with_bias ? " bias" : ""));
      const int64_t T = 9;
      std::vector<float> x(T * dim), delta(T * dim), wf, bf;
      for (auto& v : x) v = rng.normal();
      for (auto& v : delta) v = rng.normal();
      std::vector<uint16_t> w = test::random_bf16(dim, rng, 1.0f, &wf);
      std::vector<uint16_t> b = test::random_bf16(dim, rng, 0.5f, &bf);
      // Gather rows 7, 2, 5 only (the final norm of the sampling rows).
      std::vector<int32_t> rows = {7, 2, 5};
      DeviceArray<float> d_x(x), d_delta(delta);
      DeviceArray<uint16_t> d_w(w), d_b(b), d_out(rows.size() * dim);
      DeviceArray<int32_t> d_rows(rows);
      ASSERT_EQ(
          cuda::residual_rms_norm(d_x.get(), d_delta.get(), with_bias ? d_b.get() : nullptr,
                                  d_rows.get(), 3, dim, d_w.get(), 1e-6f, d_out.get(), nullptr),
          cudaSuccess);
      std::vector<float> sum(rows.size() * dim);
      for (size_t r = 0; r < rows.size(); ++r)
        for (int64_t j = 0; j < dim; ++j)
          sum[r * dim + j] =
              x[rows[r] * dim + j] + (delta[rows[r] * dim + j] + (with_bias ? bf[j] : 0.0f));
      std::vector<float> ref(sum.size());
      cpu::rms_norm(sum.data(), 3, dim, bf16_tensor(w, {dim}), 1e-6, ref.data());
      const std::vector<float> got = test::to_f32(d_out.download());
      EXPECT_LT(test::rel_error(got, ref), 5e-3);  // bf16 output rounding
      // The residual stream was updated in place for the gathered rows only.
      const std::vector<float> x_after = d_x.download();
      EXPECT_NEAR(x_after[7 * dim + 3], sum[0 * dim + 3], 1e-5);
      EXPECT_EQ(x_after[0], x[0]);
    }
  }
}

TEST(CudaElementwise, SwigluMatchesCpuSiluMul) {
  VORTEX_REQUIRE_GPU();
  Rng rng(3);
  // 1000: four outputs per thread with 16-byte loads; 1001: one per thread.
  for (int64_t inter : {1000, 1001}) {
    SCOPED_TRACE("inter " + std::to_string(inter));
    const int64_t T = 5;
    std::vector<float> gu(T * 2 * inter);
    for (auto& v : gu) v = rng.normal() * 3.0f;
    DeviceArray<float> d_gu(gu);
    DeviceArray<uint16_t> d_out(T * inter);
    ASSERT_EQ(cuda::swiglu(d_gu.get(), T, inter, d_out.get(), nullptr), cudaSuccess);
    std::vector<float> g(T * inter), u(T * inter), ref(T * inter);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < inter; ++i) {
        g[t * inter + i] = gu[t * 2 * inter + i];
        u[t * inter + i] = gu[t * 2 * inter + inter + i];
      }
    cpu::silu_mul(g.data(), u.data(), T * inter, ref.data());
    EXPECT_LT(test::rel_error(test::to_f32(d_out.download()), ref), 5e-3);
  }
}

// q/k/v of T tokens through bias, QK-norm and RoPE, k/v written to their page slots.
void check_qkv_rope(int D, int Hq, int Hkv, bool qk_norm, bool bias, const RopeParams& rope) {
  Rng rng(4 + D);
  const int T = 11, P = 4, num_pages = 8;
  const int width = (Hq + 2 * Hkv) * D;
  std::vector<float> qkv(T * width), bias_f, qn_f, kn_f;
  for (auto& v : qkv) v = rng.normal();
  std::vector<uint16_t> bias_b = test::random_bf16(width, rng, 0.3f, &bias_f);
  std::vector<uint16_t> qn = test::random_bf16(D, rng, 1.0f, &qn_f);
  std::vector<uint16_t> kn = test::random_bf16(D, rng, 1.0f, &kn_f);
  std::vector<int32_t> pos(T), pages(T), slots(T);
  for (int t = 0; t < T; ++t) {
    pos[t] = static_cast<int32_t>(rng.next_u64() % 5000);
    pages[t] = (t / P * 3) % num_pages;  // each token its own (page, slot)
    slots[t] = t % P;
  }
  const std::vector<float> inv = cpu::rope_inv_freq(D, rope);
  const int64_t page_stride = int64_t{Hkv} * P * D, head_stride = int64_t{P} * D;
  DeviceArray<float> d_qkv(qkv), d_inv(inv);
  DeviceArray<uint16_t> d_bias(bias_b), d_qn(qn), d_kn(kn), d_q(T * Hq * D);
  DeviceArray<int32_t> d_pos(pos), d_pages(pages), d_slots(slots);
  DeviceArray<uint16_t> d_k(num_pages * page_stride), d_v(num_pages * page_stride);
  cuda::QkvRopeArgs a;
  a.qkv = d_qkv.get();
  a.bias = bias ? d_bias.get() : nullptr;
  a.q_norm = qk_norm ? d_qn.get() : nullptr;
  a.k_norm = qk_norm ? d_kn.get() : nullptr;
  a.inv_freq = d_inv.get();
  a.positions = d_pos.get();
  a.kv_pages = d_pages.get();
  a.kv_slots = d_slots.get();
  a.num_tokens = T;
  a.num_q_heads = Hq;
  a.num_kv_heads = Hkv;
  a.head_dim = D;
  a.eps = 1e-6f;
  a.q_out = d_q.get();
  a.k_cache = d_k.get();
  a.v_cache = d_v.get();
  a.page_stride = page_stride;
  a.head_stride = head_stride;
  ASSERT_EQ(cuda::qkv_rope_append(a, nullptr), cudaSuccess);

  // CPU: bias, per-head norm, rope.
  std::vector<float> q(T * Hq * D), k(T * Hkv * D), v(T * Hkv * D);
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < width; ++i) {
      const float x = qkv[t * width + i] + (bias ? bias_f[i] : 0.0f);
      if (i < Hq * D)
        q[t * Hq * D + i] = x;
      else if (i < (Hq + Hkv) * D)
        k[t * Hkv * D + i - Hq * D] = x;
      else
        v[t * Hkv * D + i - (Hq + Hkv) * D] = x;
    }
  if (qk_norm) {
    cpu::rms_norm(q.data(), T * Hq, D, bf16_tensor(qn, {D}), 1e-6, q.data());
    cpu::rms_norm(k.data(), T * Hkv, D, bf16_tensor(kn, {D}), 1e-6, k.data());
  }
  cpu::apply_rope(q.data(), T, Hq, D, pos.data(), inv);
  cpu::apply_rope(k.data(), T, Hkv, D, pos.data(), inv);
  EXPECT_LT(test::rel_error(test::to_f32(d_q.download()), q), 5e-3);
  const std::vector<float> kc = test::to_f32(d_k.download()), vc = test::to_f32(d_v.download());
  std::vector<float> k_got(k.size()), v_got(v.size());
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < Hkv; ++h)
      for (int d = 0; d < D; ++d) {
        const int64_t at = pages[t] * page_stride + h * head_stride + slots[t] * D + d;
        k_got[(t * Hkv + h) * D + d] = kc[at];
        v_got[(t * Hkv + h) * D + d] = vc[at];
      }
  EXPECT_LT(test::rel_error(k_got, k), 5e-3);
  EXPECT_LT(test::rel_error(v_got, v), 5e-3);
}

TEST(CudaQkvRope, Qwen3StyleNormRopeAppendMatchesCpu) {
  VORTEX_REQUIRE_GPU();
  RopeParams rope;
  rope.theta = 1e6;
  check_qkv_rope(128, 16, 8, /*qk_norm=*/true, /*bias=*/false, rope);
  check_qkv_rope(32, 4, 2, true, true, rope);
}

TEST(CudaQkvRope, LlamaStyleScaledRopeAppendMatchesCpu) {
  VORTEX_REQUIRE_GPU();
  RopeParams rope;
  rope.theta = 500000;
  rope.type = "llama3";
  rope.factor = 8;
  rope.original_max_position_embeddings = 64;
  check_qkv_rope(8, 8, 2, false, false, rope);
  check_qkv_rope(64, 8, 8, false, true, rope);
}

TEST(CudaGemm, CublasLtMatchesCpuLinearForDecodeAndPrefillShapes) {
  VORTEX_REQUIRE_GPU();
  require_cuda_device();
  CublasLt blas;
  Rng rng(5);
  for (int64_t M : {1, 7, 64, 300}) {
    for (bool f32_out : {true, false}) {
      SCOPED_TRACE("M " + std::to_string(M) + (f32_out ? " f32" : " bf16"));
      const int64_t K = 256, N = 320;
      std::vector<float> xf, wf;
      std::vector<uint16_t> x = test::random_bf16(M * K, rng, 1.0f, &xf);
      std::vector<uint16_t> w = test::random_bf16(N * K, rng, 0.05f, &wf);
      DeviceArray<uint16_t> d_x(x), d_w(w);
      std::vector<float> ref(M * N);
      cpu::linear(xf.data(), M, K, bf16_tensor(w, {N, K}), nullptr, ref.data());
      std::vector<float> got;
      if (f32_out) {
        DeviceArray<float> d_y(M * N);
        blas.gemm(d_x.get(), M, K, d_w.get(), N, d_y.get(), true, nullptr);
        got = d_y.download();
        EXPECT_LT(test::rel_error(got, ref), 1e-5);
      } else {
        DeviceArray<uint16_t> d_y(M * N);
        blas.gemm(d_x.get(), M, K, d_w.get(), N, d_y.get(), false, nullptr);
        got = test::to_f32(d_y.download());
        EXPECT_LT(test::rel_error(got, ref), 5e-3);
      }
    }
  }
}

}  // namespace
}  // namespace vortex
