// The CUDA runner end to end through the Engine: greedy generation equals the CPU backend's on
// the test checkpoints (the CPU run uses the same bf16-rounded weights the GPU holds), batched
// equals single, CUDA graphs change nothing, seeded sampling repeats; and without a GPU,
// --device cuda fails with a clear error.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/json_file.h"
#include "cuda/cuda_test_util.h"
#include "engine/engine.h"
#include "engine/loaded_model.h"

namespace vortex {
namespace {

std::string model_dir(const std::string& name) {
  return std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/" + name;
}

Tensor round_to_bf16(const Tensor& t) {
  if (!t.defined() || t.dtype() == DType::kBF16) return t;
  Tensor out = Tensor::empty(DType::kBF16, t.shape());
  std::vector<float> f(static_cast<size_t>(t.numel()));
  convert_to_f32(t.dtype(), t.data(), f.data(), f.size());
  for (size_t i = 0; i < f.size(); ++i) out.data_as<uint16_t>()[i] = f32_to_bf16(f[i]);
  return out;
}

// The model as the GPU holds it: every weight rounded to bf16.
LoadedModel bf16_model(const std::string& name) {
  LoadedModel m = load_model(model_dir(name), {});
  ModelWeights& w = m.weights;
  w.embed_tokens = round_to_bf16(w.embed_tokens);
  w.final_norm = round_to_bf16(w.final_norm);
  w.lm_head = round_to_bf16(w.lm_head);
  for (LayerWeights& l : w.layers) {
    for (Tensor* t : {&l.input_norm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.q_norm,
                      &l.k_norm, &l.q_bias, &l.k_bias, &l.v_bias, &l.o_bias,
                      &l.post_attention_norm, &l.gate_proj, &l.up_proj, &l.down_proj})
      *t = round_to_bf16(*t);
  }
  return m;
}

std::vector<std::vector<int32_t>> prompts(const std::string& name, int32_t vocab) {
  std::vector<std::vector<int32_t>> out;
  Json ref = read_json_file(model_dir(name) + "/reference.json");
  for (const Json& c : ref["cases"]) out.push_back(c["prompt_ids"].get<std::vector<int32_t>>());
  Rng rng(9);
  for (int32_t len : {1, 15, 16, 17, 100, 300}) {
    std::vector<int32_t> p(static_cast<size_t>(len));
    for (auto& t : p) t = static_cast<int32_t>(rng.next_u64() % vocab);
    out.push_back(p);
  }
  return out;
}

std::vector<GenerationResult> generate(const LoadedModel& m, Device device, int32_t page_size,
                                       const std::vector<std::vector<int32_t>>& ps,
                                       int32_t max_tokens, bool together,
                                       const SamplingParams& sampling = {}) {
  EngineOptions eo;
  eo.device = device;
  eo.page_size = page_size;
  eo.max_step_tokens = 256;  // long prompts are prefilled in chunks, mixed with decodes
  eo.kv_memory_bytes = size_t{64} << 20;
  GenerationParams gp;
  gp.max_tokens = max_tokens;
  gp.ignore_eos = true;
  gp.sampling = sampling;
  std::vector<GenerationResult> out;
  if (together) {
    Engine e(m, eo);
    for (const auto& p : ps) e.add_request(p, gp);
    return e.run_to_completion();
  }
  for (const auto& p : ps) {
    Engine e(m, eo);
    e.add_request(p, gp);
    out.push_back(e.run_to_completion().at(0));
  }
  return out;
}

TEST(CudaRunner, WithoutAGpuDeviceCudaFailsWithAClearError) {
  if (test::have_gpu()) GTEST_SKIP() << "this machine has a GPU";
  LoadedModel m = load_model(model_dir("tiny-qwen3"), {});
  EngineOptions eo;
  eo.device = Device::kCuda;
  try {
    Engine e(m, eo);
    FAIL() << "expected an error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("no CUDA GPU found"), std::string::npos) << err.what();
  }
}

class CudaGreedy : public ::testing::TestWithParam<std::tuple<std::string, int32_t>> {};

TEST_P(CudaGreedy, MatchesCpuBackendTokenForToken) {
  VORTEX_REQUIRE_GPU();
  const auto& [name, page_size] = GetParam();
  LoadedModel m = bf16_model(name);
  const auto ps = prompts(name, m.config.vocab_size);
  const int32_t n = 24;
  const auto cpu = generate(m, Device::kCpu, page_size, ps, n, true);
  const auto gpu = generate(m, Device::kCuda, page_size, ps, n, true);
  ASSERT_EQ(cpu.size(), gpu.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    SCOPED_TRACE("prompt " + std::to_string(i) + " of " + std::to_string(ps[i].size()) +
                 " tokens");
    size_t same = 0;
    while (same < cpu[i].token_ids.size() && cpu[i].token_ids[same] == gpu[i].token_ids[same])
      ++same;
    EXPECT_GE(same, 16u) << "first difference at token " << same << ": cpu "
                         << cpu[i].token_ids[same] << " (logprob " << cpu[i].logprobs[same]
                         << "), gpu " << gpu[i].token_ids[same] << " (logprob "
                         << gpu[i].logprobs[same] << ")";
    for (size_t t = 0; t < same; ++t)
      EXPECT_NEAR(gpu[i].logprobs[t], cpu[i].logprobs[t], 2e-2) << "token " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, CudaGreedy,
                         ::testing::Combine(::testing::Values("tiny-qwen3", "tiny-llama"),
                                            ::testing::Values(4, 16)));

TEST(CudaRunner, BatchedEqualsSingle) {
  VORTEX_REQUIRE_GPU();
  LoadedModel m = load_model(model_dir("tiny-qwen3"), {});
  const auto ps = prompts("tiny-qwen3", m.config.vocab_size);
  const auto together = generate(m, Device::kCuda, 16, ps, 20, true);
  const auto alone = generate(m, Device::kCuda, 16, ps, 20, false);
  for (size_t i = 0; i < ps.size(); ++i) {
    SCOPED_TRACE("prompt " + std::to_string(i));
    EXPECT_EQ(together[i].token_ids, alone[i].token_ids);
    for (size_t t = 0; t < alone[i].logprobs.size(); ++t)
      EXPECT_NEAR(together[i].logprobs[t], alone[i].logprobs[t], 1e-3) << "token " << t;
  }
}

TEST(CudaRunner, GraphsOffGivesTheSameTokens) {
  VORTEX_REQUIRE_GPU();
  LoadedModel m = load_model(model_dir("tiny-llama"), {});
  const auto ps = prompts("tiny-llama", m.config.vocab_size);
  const auto with_graphs = generate(m, Device::kCuda, 16, ps, 20, true);
  setenv("VORTEX_CUDA_GRAPHS", "0", 1);
  const auto without = generate(m, Device::kCuda, 16, ps, 20, true);
  unsetenv("VORTEX_CUDA_GRAPHS");
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_EQ(with_graphs[i].token_ids, without[i].token_ids) << "prompt " << i;
    // Graphs pad the batch, which may change the GEMM algorithm: equal up to rounding.
    for (size_t t = 0; t < without[i].logprobs.size(); ++t)
      EXPECT_NEAR(with_graphs[i].logprobs[t], without[i].logprobs[t], 1e-3) << "token " << t;
  }
}

TEST(CudaRunner, SeededSamplingRepeatsAndDiffersAcrossSeeds) {
  VORTEX_REQUIRE_GPU();
  LoadedModel m = load_model(model_dir("tiny-qwen3"), {});
  const auto ps = prompts("tiny-qwen3", m.config.vocab_size);
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_p = 0.95f;
  sp.seed = 1234;
  const auto a = generate(m, Device::kCuda, 16, ps, 30, true, sp);
  const auto b = generate(m, Device::kCuda, 16, ps, 30, false, sp);  // alone: same draws
  sp.seed = 99;
  const auto c = generate(m, Device::kCuda, 16, ps, 30, true, sp);
  int differ = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_EQ(a[i].token_ids, b[i].token_ids) << "prompt " << i;
    differ += a[i].token_ids != c[i].token_ids;
    for (int32_t t : a[i].token_ids) EXPECT_TRUE(t >= 0 && t < m.config.vocab_size);
  }
  EXPECT_GT(differ, 0);
}

}  // namespace
}  // namespace vortex
