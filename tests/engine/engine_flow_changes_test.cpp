// Flows added to and removed from a running engine (Engine::add_flow / remove_flow, what
// `POST /v1/flows` and `DELETE /v1/flows/NAME` do between steps): a flow added after prompts have
// filled the cache (and the prefix cache) gives the tokens of an engine loaded with it; a removed
// flow finishes the requests that run it and refuses new ones; names are checked.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "engine/engine.h"
#include "engine/engine_loop.h"
#include "engine/loaded_model.h"
#include "engine/sparse_decode.h"

namespace vortex {
namespace {

LoadedModel tiny_qwen3() {
  return load_model(std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3", {});
}

std::shared_ptr<const SparseAttentionConfig> load_flow(const LoadedModel& m, const char* name,
                                                       int32_t page_size) {
  flow::BudgetOverrides b;
  b.ratio = 0.25;
  return std::make_shared<const SparseAttentionConfig>(load_sparse_attention(
      std::string(VORTEX_SOURCE_DIR) + "/flows/" + name + ".py", b, m.config, page_size, false));
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

GenerationParams greedy(int32_t max_tokens, const std::string& flow = "") {
  GenerationParams gp;
  gp.max_tokens = max_tokens;
  gp.ignore_eos = true;
  gp.flow = flow;
  return gp;
}

std::vector<int32_t> prompt(int32_t len, int32_t salt) {
  std::vector<int32_t> p;
  for (int32_t i = 0; i < len; ++i) p.push_back((i * 37 + salt * 11) % 900 + 5);
  return p;
}

EngineOptions options() {
  EngineOptions eo;
  eo.page_size = 4;
  eo.num_pages = 512;
  return eo;
}

TEST(EngineFlowChanges, AnAddedFlowEqualsOneLoadedAtStart) {
  LoadedModel m = tiny_qwen3();
  EngineOptions eo = options();
  eo.sparse = load_flow(m, "quest", eo.page_size);
  Engine live(m, eo);
  // Fill the cache (and the prefix cache) first: the added flow must see those pages' Fields.
  const std::vector<int32_t> shared = prompt(120, 1);
  live.add_request(shared, greedy(8));
  live.run_to_completion();
  live.add_flow(load_flow(m, "block_topk", eo.page_size), "bt");
  EXPECT_EQ(live.flow_names(), (std::vector<std::string>{"quest", "bt"}));
  std::vector<int32_t> longer = shared;  // starts with the cached prefix
  for (int32_t t : prompt(40, 2)) longer.push_back(t);
  live.add_request(longer, greedy(12, "bt"));
  live.add_request(prompt(150, 3), greedy(12, "bt"));
  const std::vector<GenerationResult> got = live.run_to_completion();

  EngineOptions ref = options();
  ref.sparse = load_flow(m, "block_topk", ref.page_size);
  ref.prefix_cache = false;
  Engine fresh(m, ref);
  fresh.add_request(longer, greedy(12));
  fresh.add_request(prompt(150, 3), greedy(12));
  const std::vector<GenerationResult> want = fresh.run_to_completion();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].token_ids, want[0].token_ids) << "the prompt that reused cached pages";
  EXPECT_EQ(got[1].token_ids, want[1].token_ids);
  const SparseStats* s = live.runner().sparse_stats(1);
  ASSERT_NE(s, nullptr);
  EXPECT_GT(s->scored_rows, 0) << "the added flow never selected: the test shows nothing";
}

TEST(EngineFlowChanges, ARemovedFlowFinishesItsRequestsAndTakesNoMore) {
  LoadedModel m = tiny_qwen3();
  EngineOptions eo = options();
  eo.sparse = load_flow(m, "quest", eo.page_size);
  Engine e(m, eo);
  e.add_flow(load_flow(m, "block_topk", eo.page_size), "bt");
  e.add_request(prompt(100, 4), greedy(20, "bt"));
  e.step();
  e.step();
  e.remove_flow("bt");
  EXPECT_EQ(e.flow_names(), (std::vector<std::string>{"quest"}));
  std::string error = error_of([&] { e.validate_request({1, 2}, greedy(2, "bt")); });
  EXPECT_NE(error.find("no flow named 'bt'"), std::string::npos) << error;
  const std::vector<GenerationResult> done = e.run_to_completion();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].token_ids.size(), 20u);
  EXPECT_EQ(done[0].finish_reason, FinishReason::kLength);
  e.step();  // releases the removed flow
  EXPECT_EQ(e.runner().sparse_stats(1), nullptr);
  // The name can be used again, by a new flow in a new slot.
  e.add_flow(load_flow(m, "h2o", eo.page_size), "bt");
  e.add_request(prompt(60, 5), greedy(4, "bt"));
  EXPECT_EQ(e.run_to_completion().at(0).token_ids.size(), 4u);
}

TEST(EngineFlowChanges, NamesAreChecked) {
  LoadedModel m = tiny_qwen3();
  EngineOptions eo = options();
  eo.sparse = load_flow(m, "quest", eo.page_size);
  Engine e(m, eo);
  const auto bt = load_flow(m, "block_topk", eo.page_size);
  EXPECT_NE(error_of([&] { e.add_flow(bt, "quest"); }).find("already loaded"), std::string::npos);
  EXPECT_NE(error_of([&] { e.add_flow(bt, "dense"); }).find("full attention"), std::string::npos);
  EXPECT_NE(error_of([&] { e.add_flow(bt, "a b"); }).find("letters, digits"), std::string::npos);
  EXPECT_NE(error_of([&] { e.add_flow(bt, ""); }).find("letters, digits"), std::string::npos);
  EXPECT_NE(error_of([&] { e.remove_flow("nope"); }).find("no flow named 'nope'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { e.remove_flow("quest"); }).find("default"), std::string::npos);
}

TEST(EngineFlowChanges, TheLoopAppliesChangesBetweenSteps) {
  LoadedModel m = tiny_qwen3();
  EngineOptions eo = options();
  eo.sparse = load_flow(m, "quest", eo.page_size);
  EngineLoop loop(std::make_unique<Engine>(m, eo), {});
  loop.add_flow(load_flow(m, "block_topk", eo.page_size), "bt");
  EXPECT_EQ(loop.flow_names(), (std::vector<std::string>{"quest", "bt"}));
  EXPECT_NE(error_of([&] {
              loop.add_flow(load_flow(m, "h2o", eo.page_size), "bt");
            }).find("already loaded"),
            std::string::npos);
  loop.remove_flow("bt");
  EXPECT_EQ(loop.flow_names(), (std::vector<std::string>{"quest"}));
  loop.shutdown(false);
  EXPECT_NE(error_of([&] {
              loop.add_flow(load_flow(m, "h2o", eo.page_size), "late");
            }).find("shutting down"),
            std::string::npos);
}

}  // namespace
}  // namespace vortex
