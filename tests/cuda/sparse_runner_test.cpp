// Flows on the GPU end to end through the Engine: greedy generation with every shipped flow
// equals the CPU backend's with the same flow and budget (on the test checkpoints, weights
// rounded to bf16 as the GPU holds them); a budget that covers every page changes nothing;
// CUDA graphs change nothing; the KV read statistics equal the CPU's exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
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

std::string flow_path(const std::string& name) {
  return std::string(VORTEX_SOURCE_DIR) + "/flows/" + name + ".py";
}

const std::vector<std::string> kFlows = {"block_topk", "quest", "gqa_softmax_max", "subpage_quest",
                                         "streaming",  "h2o",   "value_gated"};

// Prompts long enough that a page budget selects: 40 to 300 tokens.
std::vector<std::vector<int32_t>> prompts(int32_t vocab) {
  std::vector<std::vector<int32_t>> out;
  Rng rng(17);
  for (int32_t len : {40, 77, 128, 150, 201, 256, 300, 64}) {
    std::vector<int32_t> p(static_cast<size_t>(len));
    for (auto& t : p) t = static_cast<int32_t>(rng.next_u64() % vocab);
    out.push_back(p);
  }
  return out;
}

std::shared_ptr<const SparseAttentionConfig> flow_config(const LoadedModel& m,
                                                         const std::string& flow, int32_t page_size,
                                                         double ratio, int64_t recent = 2) {
  flow::BudgetOverrides o;
  o.ratio = ratio;
  o.sink = 1;
  o.recent = recent;
  o.dense_layers = std::vector<int64_t>{0};
  return std::make_shared<const SparseAttentionConfig>(
      load_sparse_attention(flow_path(flow), o, m.config, page_size, false));
}

struct Generated {
  std::vector<GenerationResult> results;
  SparseStats stats;
};

Generated generate(const LoadedModel& m, Device device, int32_t page_size,
                   const std::vector<std::vector<int32_t>>& ps, int32_t max_tokens,
                   std::shared_ptr<const SparseAttentionConfig> sparse,
                   const RunnerOptions& runner = {}) {
  EngineOptions eo;
  eo.runner = runner;
  eo.device = device;
  eo.page_size = page_size;
  eo.max_step_tokens = 256;
  eo.kv_memory_bytes = size_t{64} << 20;
  eo.sparse = std::move(sparse);
  GenerationParams gp;
  gp.max_tokens = max_tokens;
  gp.ignore_eos = true;
  Engine e(m, eo);
  for (const auto& p : ps) e.add_request(p, gp);
  Generated g;
  g.results = e.run_to_completion();
  if (const SparseStats* s = e.runner().sparse_stats()) g.stats = *s;
  return g;
}

class SparseGreedy
    : public ::testing::TestWithParam<std::tuple<std::string, std::string, int32_t, double>> {};

// bf16 on the GPU moves logits by about 1e-2 of their spread on these random models (the logprob
// drift printed below), so a greedy choice the CPU makes by a smaller margin can flip.
// With a budget that covers every page (the flow's whole machinery runs, selection is total), a
// continuation must be identical up to the CPU's first near-tie, and prompts without one must be
// identical for all 16 tokens. Under a selective budget, bf16 also moves page scores, and two
// pages whose scores are within rounding can swap places in the selection, which changes the
// attention output by much more than rounding; such flips cannot be seen from the logits, so
// there the test asks that the first token (prefill, dense) always matches and that at least
// half the prompts match all 16 tokens. The kernels themselves are compared within tolerance
// (flow_kernels_test.cpp) and exactly (page_selection_test.cpp).
TEST_P(SparseGreedy, MatchesCpuBackend) {
  VORTEX_REQUIRE_GPU();
  const auto& [model, flow, page_size, ratio] = GetParam();
  const double kNearTie = 0.02;
  const bool selective = ratio < 1.0;
  const int32_t kTokens = 16;
  LoadedModel m = bf16_model(model);
  const auto ps = prompts(m.config.vocab_size);
  const auto cfg = flow_config(m, flow, page_size, ratio);
  const Generated gpu = generate(m, Device::kCuda, page_size, ps, kTokens, cfg);
  int clear = 0, equal = 0;
  double drift = 0;  // largest |logprob GPU - CPU| while the tokens agree
  for (size_t i = 0; i < ps.size(); ++i) {
    SCOPED_TRACE("prompt " + std::to_string(i) + " of " + std::to_string(ps[i].size()) + " tokens");
    const CpuGreedy cpu = cpu_greedy(m, ps[i], kTokens, page_size, cfg);
    size_t check = 0;
    while (check < cpu.tokens.size() && cpu.margins[check] >= kNearTie) ++check;
    clear += check == cpu.tokens.size();
    equal += gpu.results[i].token_ids == cpu.tokens;
    for (size_t t = 0; t < cpu.tokens.size() && gpu.results[i].token_ids[t] == cpu.tokens[t]; ++t)
      drift = std::max(drift, std::abs(gpu.results[i].logprobs[t] - cpu.logprobs[t]));
    size_t first_diff = 0;
    while (first_diff < cpu.tokens.size() &&
           gpu.results[i].token_ids[first_diff] == cpu.tokens[first_diff])
      ++first_diff;
    if (first_diff < cpu.tokens.size())
      std::printf(
          "    prompt %zu: first difference at token %zu, CPU margin there %.3e, min margin "
          "before %.3e\n",
          i, first_diff, cpu.margins[first_diff],
          *std::min_element(cpu.margins.begin(), cpu.margins.begin() + first_diff + 1));
    if (selective)
      EXPECT_GE(first_diff, 1u) << "the first token (dense prefill) differs";
    else
      EXPECT_GE(first_diff, check) << "a token differs before the CPU's first near-tie";
  }
  std::printf(
      "  %s %s P=%d ratio %.3g: %d of %zu prompts equal for all %d tokens (%d without a "
      "near-tie), logprob drift %.2e\n",
      model.c_str(), flow.c_str(), page_size, ratio, equal, ps.size(), kTokens, clear, drift);
  if (selective)
    EXPECT_GE(2 * equal, static_cast<int>(ps.size())) << "fewer than half the prompts match";
  else
    EXPECT_GE(clear, 4) << "too few prompts without a near-tie to compare 16 tokens";
}

INSTANTIATE_TEST_SUITE_P(Flows, SparseGreedy,
                         ::testing::Combine(::testing::Values(std::string("tiny-qwen3"),
                                                              std::string("tiny-llama")),
                                            ::testing::ValuesIn(kFlows), ::testing::Values(4, 16),
                                            ::testing::Values(1.0, 0.25)),
                         [](const auto& info) {
                           return std::get<0>(info.param).substr(5) + "_" +
                                  std::get<1>(info.param) + "_P" +
                                  std::to_string(std::get<2>(info.param)) +
                                  (std::get<3>(info.param) < 1.0 ? "_sparse" : "_fullbudget");
                         });

// The KV read counts are budget arithmetic: the GPU's equal the CPU's for the same workload.
TEST(SparseRunner, StatisticsEqualTheCpuBackend) {
  VORTEX_REQUIRE_GPU();
  LoadedModel m = bf16_model("tiny-qwen3");
  const auto ps = prompts(m.config.vocab_size);
  const auto cfg = flow_config(m, "quest", 4, 0.125);
  const Generated gpu = generate(m, Device::kCuda, 4, ps, 12, cfg);
  const Generated cpu = generate(m, Device::kCpu, 4, ps, 12, cfg);
  EXPECT_EQ(gpu.stats.decode_rows, cpu.stats.decode_rows);
  EXPECT_EQ(gpu.stats.dense_pages, cpu.stats.dense_pages);
  EXPECT_EQ(gpu.stats.read_pages, cpu.stats.read_pages);
  EXPECT_EQ(gpu.stats.sparse_rows, cpu.stats.sparse_rows);
  EXPECT_EQ(gpu.stats.scored_rows, cpu.stats.scored_rows);
  EXPECT_LT(gpu.stats.kv_read_fraction(), 1.0);
}

// Teacher forcing (what `vortex eval --perplexity` runs): forced tokens come back as forced
// on both backends, with the logprobs of the CPU's. Dense and a flow whose budget covers every
// page agree token by token within bf16's drift; under a selective budget a page whose score is
// within rounding of another's can swap places, so there the mean NLL over all scored tokens
// must agree (to 2%), which is what a perplexity reports.
TEST(SparseRunner, ForcedTokensScoreAsOnTheCpu) {
  VORTEX_REQUIRE_GPU();
  LoadedModel m = bf16_model("tiny-qwen3");
  const auto ps = prompts(m.config.vocab_size);
  Rng rng(23);
  std::vector<std::vector<int32_t>> forced(ps.size(), std::vector<int32_t>(12));
  for (auto& f : forced)
    for (auto& t : f) t = static_cast<int32_t>(rng.next_u64() % m.config.vocab_size);
  auto run = [&](Device device, std::shared_ptr<const SparseAttentionConfig> sparse) {
    EngineOptions eo;
    eo.device = device;
    eo.page_size = 4;
    eo.max_step_tokens = 256;
    eo.kv_memory_bytes = size_t{64} << 20;
    eo.sparse = std::move(sparse);
    Engine e(m, eo);
    for (size_t i = 0; i < ps.size(); ++i) {
      GenerationParams gp;
      gp.forced_tokens = forced[i];
      gp.sampling.temperature = 0.7f;  // ignored for forced tokens: nothing is drawn
      e.add_request(ps[i], gp);
    }
    return e.run_to_completion();
  };
  struct Case {
    const char* flow;
    double ratio;
  };
  for (const Case c : {Case{nullptr, 1.0}, Case{"block_topk", 1.0}, Case{"quest", 1.0},
                       Case{"block_topk", 0.25}, Case{"quest", 0.25}, Case{"h2o", 0.25}}) {
    SCOPED_TRACE(std::string(c.flow ? c.flow : "dense") + " ratio " + std::to_string(c.ratio));
    const auto cfg = c.flow ? flow_config(m, c.flow, 4, c.ratio) : nullptr;
    const auto gpu = run(Device::kCuda, cfg);
    const auto cpu = run(Device::kCpu, cfg);
    double drift = 0, nll_gpu = 0, nll_cpu = 0;
    for (size_t i = 0; i < ps.size(); ++i) {
      ASSERT_EQ(gpu[i].token_ids, forced[i]) << "prompt " << i;
      ASSERT_EQ(cpu[i].token_ids, forced[i]) << "prompt " << i;
      for (size_t t = 0; t < forced[i].size(); ++t) {
        drift = std::max(drift, std::abs(gpu[i].logprobs[t] - cpu[i].logprobs[t]));
        nll_gpu -= gpu[i].logprobs[t];
        nll_cpu -= cpu[i].logprobs[t];
      }
    }
    std::printf("  forced tokens, %s at %.2f: NLL GPU %.4f CPU %.4f, largest drift %.2e\n",
                c.flow ? c.flow : "dense", c.ratio, nll_gpu, nll_cpu, drift);
    if (c.ratio >= 1.0) {
      EXPECT_LT(drift, 0.05);
    }
    EXPECT_NEAR(nll_gpu, nll_cpu, 0.02 * nll_cpu);
  }
}

// With a budget that covers every page, a flow reads what dense attention reads.
TEST(SparseRunner, FullBudgetEqualsDense) {
  VORTEX_REQUIRE_GPU();
  LoadedModel m = load_model(model_dir("tiny-llama"), {});
  const auto ps = prompts(m.config.vocab_size);
  const Generated dense = generate(m, Device::kCuda, 16, ps, 20, nullptr);
  for (const char* flow : {"block_topk", "h2o"}) {
    const Generated full = generate(m, Device::kCuda, 16, ps, 20, flow_config(m, flow, 16, 1.0));
    for (size_t i = 0; i < ps.size(); ++i)
      EXPECT_EQ(full.results[i].token_ids, dense.results[i].token_ids) << flow << " prompt " << i;
  }
}

// The step's filled pages are summarized once after the last layer for every sparse layer
// (the default) or after each sparse layer's K/V append (RunnerOptions::summarize kLayer,
// --flow-summarize layer): no score of a step reads a page filled in that step, so both give the
// same tokens and logprobs, with every flow, with and without recent pages beyond the token's own
// (recent 0 and 2), in decode-only steps (replayed from CUDA graphs) and in steps that mix
// prefill chunks and decode rows (8 prompts, 256 tokens a step).
TEST(SparseRunner, SummarizeOncePerStepEqualsPerLayer) {
  VORTEX_REQUIRE_GPU();
  for (const char* model : {"tiny-qwen3", "tiny-llama"}) {
    LoadedModel m = load_model(model_dir(model), {});
    const auto ps = prompts(m.config.vocab_size);
    for (const std::string& flow : kFlows)
      for (int64_t recent : {0, 2}) {
        SCOPED_TRACE(std::string(model) + " " + flow + " recent " + std::to_string(recent));
        const auto cfg = flow_config(m, flow, 4, 0.25, recent);
        RunnerOptions layer;
        layer.summarize = RunnerOptions::Summarize::kLayer;
        const Generated once = generate(m, Device::kCuda, 4, ps, 20, cfg);
        const Generated per_layer = generate(m, Device::kCuda, 4, ps, 20, cfg, layer);
        for (size_t i = 0; i < ps.size(); ++i) {
          EXPECT_EQ(once.results[i].token_ids, per_layer.results[i].token_ids) << "prompt " << i;
          ASSERT_EQ(once.results[i].logprobs.size(), per_layer.results[i].logprobs.size());
          for (size_t t = 0; t < once.results[i].logprobs.size(); ++t)
            EXPECT_NEAR(once.results[i].logprobs[t], per_layer.results[i].logprobs[t], 1e-5)
                << "prompt " << i << " token " << t;
        }
        EXPECT_EQ(once.stats.summarized_pages, per_layer.stats.summarized_pages);
        EXPECT_LT(once.stats.kv_read_fraction(), 1.0);
      }
  }
}

// A request's own budget runs on the GPU exactly as the flow loaded with that budget: in one
// batch, requests with the flow's budget (1/4), with their own (1/2, no sink page) and dense
// ones each get the tokens of an engine that runs all prompts their way. The split counts of
// decode attention are pinned, as they follow the flow's budget and would otherwise differ
// between the engines (and with them the summation order).
TEST(SparseRunner, RequestBudgetsEqualTheFlowLoadedWithThem) {
  VORTEX_REQUIRE_GPU();
  LoadedModel m = load_model(model_dir("tiny-qwen3"), {});
  const auto ps = prompts(m.config.vocab_size);
  for (const char* flow : {"quest", "h2o"}) {
    SCOPED_TRACE(flow);
    flow::BudgetOverrides own;
    own.ratio = 0.5;
    own.sink = 0;
    const auto quarter = flow_config(m, flow, 4, 0.25);
    auto half = std::make_shared<SparseAttentionConfig>(*quarter);
    half->policy = flow::apply_budget_overrides(quarter->policy, own);
    auto run = [&](std::shared_ptr<const SparseAttentionConfig> cfg, bool mixed) {
      EngineOptions eo;
      eo.runner.sparse_splits = 2;
      eo.runner.decode_splits = 2;
      eo.device = Device::kCuda;
      eo.page_size = 4;
      eo.max_step_tokens = 256;
      eo.kv_memory_bytes = size_t{64} << 20;
      eo.prefix_cache = false;
      eo.sparse = std::move(cfg);
      Engine e(m, eo);
      for (size_t i = 0; i < ps.size(); ++i) {
        GenerationParams gp;
        gp.max_tokens = 20;
        gp.ignore_eos = true;
        if (mixed && i % 3 == 1) gp.budget = own;
        if (mixed && i % 3 == 2) gp.flow = "dense";
        e.add_request(ps[i], gp);
      }
      return e.run_to_completion();
    };
    const auto mixed = run(quarter, true);
    const auto all_quarter = run(quarter, false);
    const auto all_half = run(half, false);
    const auto all_dense = run(nullptr, false);
    bool budgets_differ = false;
    for (size_t i = 0; i < ps.size(); ++i) {
      const auto& want = i % 3 == 0 ? all_quarter[i] : i % 3 == 1 ? all_half[i] : all_dense[i];
      EXPECT_EQ(mixed[i].token_ids, want.token_ids) << "prompt " << i;
      budgets_differ = budgets_differ || all_half[i].token_ids != all_quarter[i].token_ids;
    }
    EXPECT_TRUE(budgets_differ) << "the two budgets never change a token: the test shows nothing";
  }
}

// Several flows in one engine: requests of three flows and dense ones share every batch (and the
// graphs of padded batches, as requests end at different lengths), and each gets the tokens of
// an engine that runs all prompts its way. block_topk is sparse in every layer and the others
// not in layer 0, so the layers have different sets of sparse flows. Split counts pinned as
// above.
TEST(SparseRunner, SeveralFlowsShareBatchesAsEachAlone) {
  VORTEX_REQUIRE_GPU();
  LoadedModel m = load_model(model_dir("tiny-qwen3"), {});
  const auto ps = prompts(m.config.vocab_size);
  const auto quest = flow_config(m, "quest", 4, 0.25);
  const auto h2o = flow_config(m, "h2o", 4, 0.25);
  flow::BudgetOverrides every_layer;
  every_layer.dense_layers = std::vector<int64_t>{};
  auto block_topk = std::make_shared<SparseAttentionConfig>(*flow_config(m, "block_topk", 4, 0.25));
  block_topk->policy = flow::apply_budget_overrides(block_topk->policy, every_layer);
  const std::vector<std::string> names = {"quest", "h2o", "block_topk", "dense"};
  auto run = [&](std::vector<std::shared_ptr<const SparseAttentionConfig>> flows, bool mixed) {
    EngineOptions eo;
    eo.runner.sparse_splits = 2;
    eo.runner.decode_splits = 2;
    eo.device = Device::kCuda;
    eo.page_size = 4;
    eo.max_step_tokens = 256;
    eo.kv_memory_bytes = size_t{64} << 20;
    eo.prefix_cache = false;
    if (!flows.empty()) eo.sparse = flows.front();
    for (size_t f = 1; f < flows.size(); ++f) eo.more_flows.push_back(flows[f]);
    Engine e(m, eo);
    for (size_t i = 0; i < ps.size(); ++i) {
      GenerationParams gp;
      gp.max_tokens = 12 + 5 * static_cast<int32_t>(i % 3);  // batches shrink: padded graphs
      gp.ignore_eos = true;
      if (mixed) gp.flow = names[i % 4];
      e.add_request(ps[i], gp);
    }
    auto results = e.run_to_completion();
    if (mixed) {
      // Each flow's statistics count its own requests' rows only.
      for (size_t f = 0; f < 3; ++f) {
        const SparseStats* s = e.runner().sparse_stats(f);
        EXPECT_TRUE(s != nullptr && s->sparse_rows > 0) << names[f];
      }
    }
    return results;
  };
  const auto mixed = run({quest, h2o, block_topk}, true);
  const std::vector<std::vector<GenerationResult>> alone = {
      run({quest}, false), run({h2o}, false), run({block_topk}, false), run({}, false)};
  std::set<std::vector<int32_t>> distinct;
  for (size_t i = 0; i < ps.size(); ++i) {
    EXPECT_EQ(mixed[i].token_ids, alone[i % 4][i].token_ids)
        << "prompt " << i << " (" << names[i % 4] << ")";
    for (const auto& a : alone) distinct.insert(a[i].token_ids);
  }
  EXPECT_GT(distinct.size(), ps.size()) << "the flows never change a token: the test shows nothing";
}

TEST(SparseRunner, GraphsOffGivesTheSameTokens) {
  VORTEX_REQUIRE_GPU();
  LoadedModel m = load_model(model_dir("tiny-qwen3"), {});
  const auto ps = prompts(m.config.vocab_size);
  for (const char* flow : {"quest", "h2o"}) {
    const auto cfg = flow_config(m, flow, 4, 0.25);
    RunnerOptions no_graphs;
    no_graphs.cuda_graphs = false;
    const Generated with_graphs = generate(m, Device::kCuda, 4, ps, 20, cfg);
    const Generated without = generate(m, Device::kCuda, 4, ps, 20, cfg, no_graphs);
    for (size_t i = 0; i < ps.size(); ++i)
      EXPECT_EQ(with_graphs.results[i].token_ids, without.results[i].token_ids)
          << flow << " prompt " << i;
  }
}

}  // namespace
}  // namespace vortex

namespace vortex {
namespace {

// The CPU reference itself: with a budget covering every page a flow changes nothing.
TEST(SparseRunner, CpuReferenceWithFullBudgetEqualsDense) {
  for (const char* model : {"tiny-qwen3", "tiny-llama"}) {
    LoadedModel m = bf16_model(model);
    const auto ps = prompts(m.config.vocab_size);
    for (int32_t P : {4, 16}) {
      const auto cfg = flow_config(m, "block_topk", P, 1.0);
      for (size_t i = 0; i < 3; ++i) {
        const CpuGreedy dense = cpu_greedy(m, ps[i], 8, P, nullptr);
        const CpuGreedy full = cpu_greedy(m, ps[i], 8, P, cfg);
        EXPECT_EQ(dense.tokens, full.tokens) << model << " P=" << P << " prompt " << i;
        for (size_t t = 0; t < dense.logprobs.size(); ++t)
          EXPECT_EQ(dense.logprobs[t], full.logprobs[t]) << model << " P=" << P << " token " << t;
      }
    }
  }
}

}  // namespace
}  // namespace vortex
