// The prefix cache inside the engine: prompts that share full pages compute them once, greedy
// outputs are the same with the cache on and off (alone, batched, under page pressure and
// preemption, with a flow), and idle engines hold no pages but the cache's.
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "engine/loaded_model.h"
#include "engine/sparse_decode.h"

namespace vortex {
namespace {

LoadedModel tiny(const char* name) {
  return load_model(std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/" + name, {});
}

GenerationParams greedy(int32_t max_tokens) {
  GenerationParams gp;
  gp.max_tokens = max_tokens;
  gp.ignore_eos = true;
  return gp;
}

// Prompts with a shared 40-token head (two full pages of 16 and part of a third) and
// different tails; the last one repeats the first exactly.
std::vector<std::vector<int32_t>> shared_prefix_prompts(int32_t vocab) {
  std::vector<int32_t> head;
  for (int32_t i = 0; i < 40; ++i) head.push_back((i * 37 + 11) % vocab);
  std::vector<std::vector<int32_t>> prompts;
  for (int32_t r = 0; r < 4; ++r) {
    std::vector<int32_t> p = head;
    for (int32_t i = 0; i < 5 + 7 * r; ++i) p.push_back((r * 101 + i * 13 + 5) % vocab);
    prompts.push_back(p);
  }
  prompts.push_back(prompts[0]);
  return prompts;
}

struct RunResult {
  std::vector<std::vector<int32_t>> tokens;
  int64_t prefill_tokens = 0;
  int64_t preemptions = 0;
  int32_t pages_used_after = 0;
  int64_t cache_hits = 0;
};

// Runs the prompts in waves (each wave to completion before the next, as requests that arrive
// later would), with the cache on or off.
// flows: the flow of each request, in order over the waves, cycled ("" = the engine's default).
RunResult run(const LoadedModel& m, EngineOptions eo, bool cache,
              const std::vector<std::vector<std::vector<int32_t>>>& waves, int32_t max_tokens,
              const std::vector<std::string>& flows = {""}) {
  eo.prefix_cache = cache;
  Engine e(m, eo);
  RunResult out;
  size_t i = 0;
  for (const auto& wave : waves) {
    for (const auto& p : wave) {
      GenerationParams gp = greedy(max_tokens);
      gp.flow = flows[i++ % flows.size()];
      e.add_request(p, gp);
    }
    for (GenerationResult& r : e.run_to_completion()) out.tokens.push_back(r.token_ids);
  }
  out.prefill_tokens = e.stats().prefill_tokens;
  out.preemptions = e.stats().preemptions;
  out.pages_used_after = e.pages_used();
  if (e.prefix_cache()) out.cache_hits = e.prefix_cache()->stats().hits;
  return out;
}

TEST(PrefixCacheEngine, LaterRequestsReuseSharedPagesAndGenerateTheSameTokens) {
  LoadedModel m = tiny("tiny-qwen3");
  auto prompts = shared_prefix_prompts(m.config.vocab_size);
  std::vector<std::vector<std::vector<int32_t>>> waves = {
      {prompts[0]}, {prompts[1], prompts[2]}, {prompts[3], prompts[4]}};
  EngineOptions eo;
  eo.num_pages = 64;
  RunResult off = run(m, eo, false, waves, 12);
  RunResult on = run(m, eo, true, waves, 12);
  EXPECT_EQ(on.tokens, off.tokens);
  // Every later request finds the two full pages of the shared head; the repeated prompt finds
  // its own third page too (45 tokens: pages [0, 2) of (45 - 1) / 16 = 2).
  EXPECT_EQ(on.cache_hits, 4 * 2);
  EXPECT_EQ(off.prefill_tokens - on.prefill_tokens, 4 * 32);
  EXPECT_EQ(on.pages_used_after, 0);
  EXPECT_EQ(off.pages_used_after, 0);
  EXPECT_EQ(off.cache_hits, 0);
}

TEST(PrefixCacheEngine, SameTokensInOneBatchWithChunkedPrefill) {
  LoadedModel m = tiny("tiny-llama");
  auto prompts = shared_prefix_prompts(m.config.vocab_size);
  EngineOptions eo;
  eo.num_pages = 64;
  eo.max_step_tokens = 24;  // prompts arrive in chunks; requests share pages as they fill
  eo.max_batch = 4;
  RunResult off = run(m, eo, false, {prompts}, 10);
  RunResult on = run(m, eo, true, {prompts}, 10);
  EXPECT_EQ(on.tokens, off.tokens);
  EXPECT_LT(on.prefill_tokens, off.prefill_tokens);
  EXPECT_EQ(on.pages_used_after, 0);
}

TEST(PrefixCacheEngine, EvictsUnderPagePressureAndSurvivesPreemption) {
  LoadedModel m = tiny("tiny-qwen3");
  auto prompts = shared_prefix_prompts(m.config.vocab_size);
  // 12 pages for 5 requests of up to 66 + 24 tokens (6 pages each): requests are preempted and
  // the cache must give its pages back for the running ones.
  EngineOptions eo;
  eo.num_pages = 12;
  eo.max_step_tokens = 64;
  std::vector<std::vector<std::vector<int32_t>>> waves = {{prompts[0], prompts[1]},
                                                          {prompts[2], prompts[3], prompts[4]}};
  RunResult off = run(m, eo, false, waves, 24);
  RunResult on = run(m, eo, true, waves, 24);
  EXPECT_EQ(on.tokens, off.tokens);
  EXPECT_GT(off.preemptions + on.preemptions, 0) << "the test no longer exercises preemption";
  EXPECT_EQ(on.pages_used_after, 0);
}

TEST(PrefixCacheEngine, SparseFlowOutputsMatchWithTheCacheOnAndOff) {
  LoadedModel m = tiny("tiny-qwen3");
  auto prompts = shared_prefix_prompts(m.config.vocab_size);
  EngineOptions eo;
  eo.num_pages = 64;
  eo.page_size = 4;  // several pages per prompt, so the flow selects among shared pages
  flow::BudgetOverrides budget;
  budget.ratio = 0.25;
  // quest reads the shared pages' Fields; h2o also keeps a per-request State over them.
  for (const char* flow : {"quest.py", "h2o.py"}) {
    eo.sparse = std::make_shared<SparseAttentionConfig>(load_sparse_attention(
        std::string(VORTEX_SOURCE_DIR) + "/flows/" + flow, budget, m.config, eo.page_size, false));
    std::vector<std::vector<std::vector<int32_t>>> waves = {{prompts[0]},
                                                            {prompts[1], prompts[2], prompts[4]}};
    RunResult off = run(m, eo, false, waves, 16);
    RunResult on = run(m, eo, true, waves, 16);
    EXPECT_EQ(on.tokens, off.tokens) << flow;
    EXPECT_GT(on.cache_hits, 0) << flow;
  }
}

// Pages shared between requests of different flows: every flow summarized each page when it
// filled, so a request reusing a page another flow's request computed reads its own flow's
// Fields there, and gets the tokens it gets without the cache.
TEST(PrefixCacheEngine, RequestsOfDifferentFlowsShareCachedPages) {
  LoadedModel m = tiny("tiny-qwen3");
  auto prompts = shared_prefix_prompts(m.config.vocab_size);
  EngineOptions eo;
  eo.num_pages = 64;
  eo.page_size = 4;
  flow::BudgetOverrides budget;
  budget.ratio = 0.25;
  auto load = [&](const char* flow) {
    return std::make_shared<SparseAttentionConfig>(load_sparse_attention(
        std::string(VORTEX_SOURCE_DIR) + "/flows/" + flow, budget, m.config, eo.page_size, false));
  };
  eo.sparse = load("quest.py");
  eo.more_flows = {load("block_topk.py"), load("h2o.py")};
  std::vector<std::vector<std::vector<int32_t>>> waves = {
      {prompts[0]}, {prompts[1], prompts[2]}, {prompts[3], prompts[4]}};
  const std::vector<std::string> flows = {"quest", "block_topk", "h2o", "dense", "block_topk"};
  RunResult off = run(m, eo, false, waves, 16, flows);
  RunResult on = run(m, eo, true, waves, 16, flows);
  EXPECT_EQ(on.tokens, off.tokens);
  EXPECT_GT(on.cache_hits, 0);
  EXPECT_EQ(on.pages_used_after, 0);
}

}  // namespace
}  // namespace vortex
