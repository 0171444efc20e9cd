// The CUDA runner end to end through the Engine: greedy generation equals the CPU backend's on
// the test checkpoints (the CPU runs the same bf16-rounded weights the GPU holds), batched
// equals single, CUDA graphs change nothing, seeded sampling repeats; and without a GPU,
// --device cuda fails with a clear error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/json_file.h"
#include "cuda/cpu_greedy_reference.h"
#include "cuda/cuda_test_util.h"
#include "engine/cpu/cpu_model_runner.h"
#include "engine/engine.h"
#include "engine/loaded_model.h"

namespace vortex {
namespace {

using test::bf16_model;
using test::cpu_greedy;
using test::CpuGreedy;
using test::model_dir;

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
                                       const SamplingParams& sampling = {},
                                       const RunnerOptions& runner = {}) {
  EngineOptions eo;
  eo.runner = runner;
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

// bf16 activations and KV on the GPU move logits by about 1e-3 of their spread, so a choice the
// CPU makes by a smaller margin can flip on these random tiny models. Up to its first such
// near-tie a continuation must be identical; continuations without one in their first 16 tokens
// (at least 4 prompts per model) must be identical for all 16.
TEST_P(CudaGreedy, MatchesCpuBackendTokenForToken) {
  VORTEX_REQUIRE_GPU();
  const auto& [name, page_size] = GetParam();
  const double kNearTie = 0.01;
  const int32_t kTokens = 16;
  LoadedModel m = bf16_model(name);
  const auto ps = prompts(name, m.config.vocab_size);
  const auto gpu = generate(m, Device::kCuda, page_size, ps, kTokens, true);
  int clear = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    SCOPED_TRACE("prompt " + std::to_string(i) + " of " + std::to_string(ps[i].size()) + " tokens");
    const CpuGreedy cpu = cpu_greedy(m, ps[i], kTokens);
    size_t check = 0;
    while (check < cpu.tokens.size() && cpu.margins[check] >= kNearTie) ++check;
    if (check == cpu.tokens.size())
      ++clear;
    else
      std::printf(
          "  %s prompt %zu: CPU near-tie at token %zu (margin %.2e of the logits' "
          "spread); GPU %s there\n",
          name.c_str(), i, check, cpu.margins[check],
          gpu[i].token_ids[check] == cpu.tokens[check] ? "agrees" : "differs");
    for (size_t t = 0; t < check; ++t) {
      ASSERT_EQ(gpu[i].token_ids[t], cpu.tokens[t])
          << "token " << t << ", CPU margin " << cpu.margins[t];
    }
  }
  EXPECT_GE(clear, 4) << "too few prompts without a near-tie to compare 16 tokens";
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
    // Equal up to rounding: the batch size changes the GEMM algorithm and the attention splits
    // (softmax weights enter the tensor cores as bf16).
    for (size_t t = 0; t < alone[i].logprobs.size(); ++t)
      EXPECT_NEAR(together[i].logprobs[t], alone[i].logprobs[t], 1e-2) << "token " << t;
  }
}

TEST(CudaRunner, GraphsOffGivesTheSameTokens) {
  VORTEX_REQUIRE_GPU();
  LoadedModel m = load_model(model_dir("tiny-llama"), {});
  const auto ps = prompts("tiny-llama", m.config.vocab_size);
  RunnerOptions no_graphs;
  no_graphs.cuda_graphs = false;
  const auto with_graphs = generate(m, Device::kCuda, 16, ps, 20, true);
  const auto without = generate(m, Device::kCuda, 16, ps, 20, true, {}, no_graphs);
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_EQ(with_graphs[i].token_ids, without[i].token_ids) << "prompt " << i;
    // Graphs pad the batch (GEMM algorithm, attention splits): equal up to rounding.
    for (size_t t = 0; t < without[i].logprobs.size(); ++t)
      EXPECT_NEAR(with_graphs[i].logprobs[t], without[i].logprobs[t], 2e-2) << "token " << t;
  }
}

// Sampled tokens repeat run to run and change with the seed. (Unlike the CPU backend, they may
// differ between batch compositions: logits agree only up to rounding there, and a draw over a
// flat distribution lands on a neighbouring token for a tiny change in the cumulative sum.)
TEST(CudaRunner, SeededSamplingRepeatsAndDiffersAcrossSeeds) {
  VORTEX_REQUIRE_GPU();
  LoadedModel m = load_model(model_dir("tiny-qwen3"), {});
  const auto ps = prompts("tiny-qwen3", m.config.vocab_size);
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_p = 0.95f;
  sp.seed = 1234;
  const auto a = generate(m, Device::kCuda, 16, ps, 30, true, sp);
  const auto b = generate(m, Device::kCuda, 16, ps, 30, true, sp);
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
