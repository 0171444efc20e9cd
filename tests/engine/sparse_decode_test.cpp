// Sparse decode in the engine: flows choose each decode row's pages per request and KV head.
#include "engine/sparse_decode.h"

#include <gtest/gtest.h>

#include <map>

#include "core/error.h"
#include "core/rng.h"
#include "engine/engine.h"
#include "engine/loaded_model.h"
#include "flow/budget_planner.h"

namespace vortex {
namespace {

const char* const kFlows[] = {"block_topk", "quest", "gqa_softmax_max", "subpage_quest",
                              "streaming",  "h2o",   "value_gated"};

std::string flow_path(const std::string& name) {
  return std::string(VORTEX_SOURCE_DIR) + "/flows/" + name + ".py";
}

LoadedModel tiny(const std::string& name) {
  return load_model(std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/" + name, {});
}

std::vector<int32_t> random_prompt(Rng& rng, int32_t len, int32_t vocab) {
  std::vector<int32_t> p(static_cast<size_t>(len));
  for (int32_t& t : p) t = static_cast<int32_t>(rng.next_u64() % vocab);
  return p;
}

struct RunResult {
  std::vector<GenerationResult> results;
  SparseStats stats;
};

RunResult generate(const LoadedModel& m, const std::vector<std::vector<int32_t>>& prompts,
                   int32_t max_tokens, std::shared_ptr<const SparseAttentionConfig> sparse,
                   int32_t page_size = 16, int32_t num_pages = 0) {
  EngineOptions eo;
  eo.page_size = page_size;
  eo.num_pages = num_pages;
  eo.max_step_tokens = 96;
  eo.max_batch = 16;
  eo.sparse = sparse;
  Engine e(m, eo);
  GenerationParams gp;
  gp.max_tokens = max_tokens;
  gp.ignore_eos = true;
  for (const auto& p : prompts) e.add_request(p, gp);
  RunResult r;
  r.results = e.run_to_completion();
  if (e.runner().sparse_stats()) r.stats = *e.runner().sparse_stats();
  return r;
}

std::shared_ptr<const SparseAttentionConfig> load(const std::string& flow, const LoadedModel& m,
                                                  const flow::BudgetOverrides& o,
                                                  int32_t page_size = 16, bool recall = false) {
  return std::make_shared<const SparseAttentionConfig>(
      load_sparse_attention(flow_path(flow), o, m.config, page_size, recall));
}

TEST(SparseDecode, ABudgetCoveringEveryPageEqualsDenseForEveryFlow) {
  for (const char* model_name : {"tiny-qwen3", "tiny-llama"}) {
    LoadedModel m = tiny(model_name);
    Rng rng(5);
    std::vector<std::vector<int32_t>> prompts = {random_prompt(rng, 300, m.config.vocab_size),
                                                 random_prompt(rng, 37, m.config.vocab_size)};
    RunResult dense = generate(m, prompts, 20, nullptr);
    for (const char* f : kFlows) {
      flow::BudgetOverrides o;
      o.pages = 1000;
      RunResult sparse = generate(m, prompts, 20, load(f, m, o));
      for (size_t i = 0; i < prompts.size(); ++i) {
        EXPECT_EQ(sparse.results[i].token_ids, dense.results[i].token_ids)
            << model_name << " " << f;
      }
      EXPECT_DOUBLE_EQ(sparse.stats.kv_read_fraction(), 1.0) << f;
    }
  }
}

// kv_read_fraction is exactly the budget arithmetic: for every decode step, layer and KV head,
// a dense layer reads the row's n pages and a sparse one reads plan_row(policy, n).
TEST(SparseDecode, KvReadFractionMatchesTheBudgetArithmetic) {
  LoadedModel m = tiny("tiny-llama");
  Rng rng(9);
  const int32_t P = 4;
  std::vector<std::vector<int32_t>> prompts = {random_prompt(rng, 150, m.config.vocab_size),
                                               random_prompt(rng, 9, m.config.vocab_size),
                                               random_prompt(rng, 61, m.config.vocab_size)};
  const int32_t G = 12;
  flow::BudgetOverrides o;
  o.ratio = 0.25;
  o.floor = 3;
  o.dense_layers = std::vector<int64_t>{1};
  auto cfg = load("quest", m, o, P);
  RunResult r = generate(m, prompts, G, cfg, P);
  int64_t dense = 0, read = 0;
  const int64_t H = m.config.num_kv_heads;
  for (const auto& p : prompts) {
    for (int32_t step = 1; step < G; ++step) {  // the first token comes from prefill
      const int32_t kv_len = static_cast<int32_t>(p.size()) + step;
      const int32_t n = (kv_len + P - 1) / P;
      for (int32_t layer = 0; layer < m.config.num_layers; ++layer) {
        dense += n * H;
        read += (flow::is_dense_layer(cfg->policy, layer)
                     ? n
                     : flow::plan_row(cfg->policy, n).num_selected()) *
                H;
      }
    }
  }
  EXPECT_EQ(r.stats.dense_pages, dense);
  EXPECT_EQ(r.stats.read_pages, read);
  EXPECT_LT(r.stats.kv_read_fraction(), 0.7);
  EXPECT_GT(r.stats.scored_rows, 0);
}

// Requests of different lengths (some under their budget, some over), arriving and finishing at
// different steps, get exactly the tokens they get alone with the same flow: selection and flow
// State are per request and per head.
TEST(SparseDecode, MixedBatchesGiveEachRequestItsSoloTokens) {
  LoadedModel m = tiny("tiny-qwen3");
  for (const char* f : {"quest", "h2o", "gqa_softmax_max"}) {
    flow::BudgetOverrides o;
    o.pages = 4;
    o.sink = 1;
    o.recent = 1;
    o.dense_layers = std::vector<int64_t>{};
    auto cfg = load(f, m, o, 8);
    Rng rng(21);
    std::vector<std::vector<int32_t>> prompts;
    std::vector<int32_t> lens = {12, 200, 40, 90, 5, 130};
    for (int32_t len : lens) prompts.push_back(random_prompt(rng, len, m.config.vocab_size));
    // Staggered arrivals: add one request per step.
    EngineOptions eo;
    eo.page_size = 8;
    eo.max_step_tokens = 64;
    eo.max_batch = 8;
    eo.sparse = cfg;
    Engine e(m, eo);
    std::map<int64_t, size_t> job;
    std::vector<GenerationResult> together(prompts.size());
    size_t added = 0;
    while (added < prompts.size() || e.has_unfinished()) {
      if (added < prompts.size()) {
        GenerationParams gp;
        gp.max_tokens = 10 + static_cast<int32_t>(added) * 3;
        gp.ignore_eos = true;
        job[e.add_request(prompts[added], gp)] = added;
        ++added;
      }
      for (GenerationResult& r : e.step()) together[job.at(r.id)] = std::move(r);
    }
    for (size_t i = 0; i < prompts.size(); ++i) {
      RunResult alone = generate(m, {prompts[i]}, 10 + static_cast<int32_t>(i) * 3, cfg, 8);
      EXPECT_EQ(together[i].token_ids, alone.results[0].token_ids) << f << " request " << i;
      EXPECT_EQ(together[i].logprobs, alone.results[0].logprobs) << f << " request " << i;
    }
  }
}

// Under page pressure requests are preempted and recomputed (their re-prefill is dense, like any
// prefill); the run completes, every request gets its tokens, and requests never preempted
// still equal their solo runs.
TEST(SparseDecode, PreemptionUnderPagePressureKeepsRequestsApart) {
  LoadedModel m = tiny("tiny-llama");
  flow::BudgetOverrides o;
  o.pages = 3;
  auto cfg = load("h2o", m, o, 4);
  Rng rng(33);
  std::vector<std::vector<int32_t>> prompts;
  for (int32_t len : {60, 20, 75, 33, 50})
    prompts.push_back(random_prompt(rng, len, m.config.vocab_size));
  RunResult r = generate(m, prompts, 24, cfg, 4, /*num_pages=*/48);
  int preempted = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(r.results[i].token_ids.size(), 24u);
    if (r.results[i].num_preemptions > 0) {
      ++preempted;
      continue;
    }
    RunResult alone = generate(m, {prompts[i]}, 24, cfg, 4);
    EXPECT_EQ(r.results[i].token_ids, alone.results[0].token_ids) << "request " << i;
  }
  EXPECT_GT(preempted, 0) << "the pool was meant to be too small";
}

TEST(SparseDecode, RecordRecallReportsOneValuePerSparseRowInRange) {
  LoadedModel m = tiny("tiny-qwen3");
  flow::BudgetOverrides o;
  o.pages = 4;
  auto cfg = load("block_topk", m, o, 16, /*recall=*/true);
  Rng rng(2);
  RunResult r = generate(m, {random_prompt(rng, 400, m.config.vocab_size)}, 6, cfg);
  ASSERT_EQ(r.stats.recall.size(), static_cast<size_t>(m.config.num_layers));
  EXPECT_TRUE(r.stats.recall[0].empty());  // layer 0 is dense by default
  ASSERT_EQ(r.stats.recall[1].size(), 5u * m.config.num_kv_heads);
  for (float v : r.stats.recall[1]) {
    EXPECT_GT(v, 0.0f);
    EXPECT_LE(v, 1.0f + 1e-6f);
  }
}

TEST(SparseDecode, AFlowWithErrorsOrABadDenseLayerIsRefused) {
  LoadedModel m = tiny("tiny-qwen3");
  try {
    load_sparse_attention(
        std::string(VORTEX_SOURCE_DIR) + "/tests/data/flows/malformed/for_loop.py", {}, m.config,
        16, false);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("for_loop.py:"), std::string::npos) << e.what();
  }
  flow::BudgetOverrides o;
  o.dense_layers = std::vector<int64_t>{7};
  EXPECT_THROW(load("quest", m, o), Error);
}

}  // namespace
}  // namespace vortex
