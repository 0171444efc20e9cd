// The per-request side of the Engine a server relies on: validation that names the field,
// per-request token callbacks with top logprobs, and aborting a request mid-generation.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/error.h"
#include "engine/engine.h"
#include "engine/loaded_model.h"
#include "engine/sparse_decode.h"

namespace vortex {
namespace {

LoadedModel tiny_qwen3() {
  return load_model(std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3", {});
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

GenerationParams greedy(int32_t max_tokens) {
  GenerationParams gp;
  gp.max_tokens = max_tokens;
  gp.ignore_eos = true;
  return gp;
}

TEST(EngineRequests, FinishReasonNames) {
  EXPECT_STREQ(finish_reason_name(FinishReason::kStop), "stop");
  EXPECT_STREQ(finish_reason_name(FinishReason::kLength), "length");
  EXPECT_STREQ(finish_reason_name(FinishReason::kAbort), "abort");
}

TEST(EngineRequests, ValidationErrorsNameTheField) {
  LoadedModel m = tiny_qwen3();
  EngineOptions eo;
  eo.num_pages = 8;  // 8 pages of 16 tokens: prompts of at most 127 tokens fit
  Engine e(m, eo);
  auto check = [&](const GenerationParams& gp, std::vector<int32_t> prompt = {1, 2, 3}) {
    return error_of([&] { e.validate_request(prompt, gp); });
  };
  EXPECT_EQ(check(greedy(4)), "(no error)");
  GenerationParams gp = greedy(0);
  EXPECT_NE(check(gp).find("max_tokens must be at least 1, got 0"), std::string::npos);
  gp = greedy(4);
  gp.top_logprobs = kMaxTopLogprobs + 1;
  EXPECT_NE(check(gp).find("top_logprobs must be in [0, 20], got 21"), std::string::npos);
  gp.top_logprobs = -1;
  EXPECT_NE(check(gp).find("top_logprobs"), std::string::npos);
  gp = greedy(4);
  gp.sampling.top_p = 0;
  EXPECT_NE(check(gp).find("top-p"), std::string::npos);
  gp = greedy(4);
  EXPECT_NE(check(gp, {1, 5000}).find("prompt token 1 has id 5000"), std::string::npos);
  EXPECT_NE(check(gp, std::vector<int32_t>(128, 1)).find("KV cache holds at most 127"),
            std::string::npos);
  EXPECT_EQ(check(gp, std::vector<int32_t>(127, 1)), "(no error)");
  gp.flow = "quest";
  EXPECT_NE(check(gp).find("flow: no flow named 'quest' is loaded"), std::string::npos);
  gp.flow = "dense";
  EXPECT_EQ(check(gp), "(no error)");  // dense is what this engine runs
  gp = greedy(4);
  gp.budget.ratio = 0.5;  // a dense request has no budget to override
  EXPECT_NE(check(gp).find("budget: budget overrides need a sparse flow"), std::string::npos);
  // add_request refuses with the same message and queues nothing.
  gp = greedy(0);
  EXPECT_NE(error_of([&] { e.add_request({1, 2, 3}, gp); }).find("max_tokens"), std::string::npos);
  EXPECT_FALSE(e.has_unfinished());
}

TEST(EngineRequests, RequestsNameTheEnginesFlowOrNothing) {
  LoadedModel m = tiny_qwen3();
  EngineOptions eo;
  eo.sparse = std::make_shared<const SparseAttentionConfig>(load_sparse_attention(
      std::string(VORTEX_SOURCE_DIR) + "/flows/block_topk.py", {}, m.config, eo.page_size, false));
  Engine e(m, eo);
  EXPECT_EQ(e.flow_name(), "block_topk");
  GenerationParams gp = greedy(2);
  EXPECT_NO_THROW(e.validate_request({1, 2}, gp));
  gp.flow = "block_topk";
  EXPECT_NO_THROW(e.validate_request({1, 2}, gp));
  gp.flow = "dense";
  EXPECT_NO_THROW(e.validate_request({1, 2}, gp));
  gp.flow = "quest";
  std::string error = error_of([&] { e.validate_request({1, 2}, gp); });
  EXPECT_NE(error.find("no flow named 'quest'"), std::string::npos) << error;
  EXPECT_NE(error.find("block_topk"), std::string::npos) << error;
}

std::shared_ptr<const SparseAttentionConfig> load_flow(const LoadedModel& m, const char* name,
                                                       int32_t page_size,
                                                       const flow::BudgetOverrides& budget = {}) {
  return std::make_shared<const SparseAttentionConfig>(
      load_sparse_attention(std::string(VORTEX_SOURCE_DIR) + "/flows/" + name + ".py", budget,
                            m.config, page_size, false));
}

TEST(EngineRequests, SeveralFlowsAndBudgetsAreCheckedPerRequest) {
  LoadedModel m = tiny_qwen3();
  EngineOptions eo;
  eo.sparse = load_flow(m, "block_topk", eo.page_size);
  eo.more_flows = {load_flow(m, "quest", eo.page_size)};
  Engine e(m, eo);
  EXPECT_EQ(e.flow_name(), "block_topk");
  EXPECT_EQ(e.flow_names(), (std::vector<std::string>{"block_topk", "quest"}));
  GenerationParams gp = greedy(2);
  for (const char* f : {"", "block_topk", "quest", "dense"}) {
    gp.flow = f;
    EXPECT_NO_THROW(e.validate_request({1, 2}, gp)) << f;
  }
  gp.flow = "h2o";
  std::string error = error_of([&] { e.validate_request({1, 2}, gp); });
  EXPECT_NE(error.find("no flow named 'h2o' is loaded"), std::string::npos) << error;
  EXPECT_NE(error.find("\"block_topk\", \"quest\""), std::string::npos) << error;
  gp.flow = "quest";
  gp.budget.ratio = 0.5;
  gp.budget.sink = 0;
  EXPECT_NO_THROW(e.validate_request({1, 2}, gp));
  gp.budget = {};
  gp.budget.dense_layers = std::vector<int64_t>{0};
  error = error_of([&] { e.validate_request({1, 2}, gp); });
  EXPECT_NE(error.find("budget: dense_layers cannot change per request"), std::string::npos)
      << error;
  gp.budget = {};
  gp.budget.floor = 9;
  gp.budget.cap = 3;
  error = error_of([&] { e.validate_request({1, 2}, gp); });
  EXPECT_NE(error.find("budget of flow 'quest'"), std::string::npos) << error;
  EXPECT_NE(error.find("greater than its cap"), std::string::npos) << error;

  // Two flows may not share a name (the file stem), and none may be called "dense".
  EngineOptions twice = eo;
  twice.more_flows = {load_flow(m, "block_topk", eo.page_size)};
  error = error_of([&] { Engine bad(m, twice); });
  EXPECT_NE(error.find("another flow is already named 'block_topk'"), std::string::npos) << error;
}

// Requests of several flows, with their own budgets, and dense ones share batches: each gets
// exactly the tokens an engine running only its flow, loaded with its budget, gives it.
TEST(EngineRequests, SeveralFlowsAndBudgetsShareBatches) {
  LoadedModel m = tiny_qwen3();
  EngineOptions eo;
  eo.page_size = 4;  // many pages per row, so the flows really select
  flow::BudgetOverrides quarter, half;
  quarter.ratio = 0.25;
  half.ratio = 0.5;
  half.sink = 0;
  std::vector<std::vector<int32_t>> prompts;
  for (int r = 0; r < 8; ++r) {
    std::vector<int32_t> p;
    for (int i = 0; i < 30 + 5 * r; ++i) p.push_back((r * 37 + i * 13 + 5) % 500);
    prompts.push_back(p);
  }
  // Request i: 0 the default flow (quest at 1/4), 1 block_topk (1/4), 2 dense, 3 quest with
  // the request's own budget (1/2, no sink page).
  struct Kind {
    const char* flow;
    bool half_budget;
  };
  const Kind kinds[] = {{"", false}, {"block_topk", false}, {"dense", false}, {"quest", true}};
  auto run_alone = [&](std::shared_ptr<const SparseAttentionConfig> flow, size_t i) {
    EngineOptions o = eo;
    o.sparse = std::move(flow);
    Engine e(m, o);
    e.add_request(prompts[i], greedy(24));
    return e.run_to_completion().at(0).token_ids;
  };
  EngineOptions o = eo;
  o.sparse = load_flow(m, "quest", eo.page_size, quarter);
  o.more_flows = {load_flow(m, "block_topk", eo.page_size, quarter)};
  Engine mixed(m, o);
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenerationParams gp = greedy(24);
    const Kind& k = kinds[i % 4];
    gp.flow = k.flow;
    if (k.half_budget) gp.budget = half;
    mixed.add_request(prompts[i], gp);
  }
  std::vector<GenerationResult> results = mixed.run_to_completion();
  ASSERT_EQ(results.size(), prompts.size());
  std::set<std::vector<int32_t>> distinct;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::shared_ptr<const SparseAttentionConfig> alone;
    switch (i % 4) {
      case 0:
        alone = load_flow(m, "quest", eo.page_size, quarter);
        break;
      case 1:
        alone = load_flow(m, "block_topk", eo.page_size, quarter);
        break;
      case 2:
        break;
      case 3:
        alone = load_flow(m, "quest", eo.page_size, half);
        break;
    }
    EXPECT_EQ(results[i].token_ids, run_alone(alone, i)) << "request " << i;
  }
  // The kinds of attention disagree somewhere on these prompts, or the test shows nothing.
  for (size_t i = 0; i < 4; ++i) {
    std::vector<std::vector<int32_t>> per_kind;
    per_kind.push_back(run_alone(nullptr, i));
    per_kind.push_back(run_alone(load_flow(m, "quest", eo.page_size, quarter), i));
    per_kind.push_back(run_alone(load_flow(m, "block_topk", eo.page_size, quarter), i));
    per_kind.push_back(run_alone(load_flow(m, "quest", eo.page_size, half), i));
    for (const auto& t : per_kind) distinct.insert(t);
  }
  EXPECT_GE(distinct.size(), 3u) << "the flows and budgets barely change tokens here";
  // Every flow's statistics count its own rows only.
  ASSERT_NE(mixed.runner().sparse_stats(0), nullptr);
  ASSERT_NE(mixed.runner().sparse_stats(1), nullptr);
  EXPECT_EQ(mixed.runner().sparse_stats(2), nullptr);
  EXPECT_GT(mixed.runner().sparse_stats(0)->sparse_rows, 0);
  EXPECT_GT(mixed.runner().sparse_stats(1)->sparse_rows, 0);
}

// Requests asking for dense attention share batches with the flow's requests: each gets exactly
// the tokens it gets from an engine running only its kind of attention.
TEST(EngineRequests, DenseAndFlowRequestsShareBatches) {
  LoadedModel m = tiny_qwen3();
  EngineOptions eo;
  eo.page_size = 4;  // many pages per row, so the flow really selects
  flow::BudgetOverrides budget;
  budget.ratio = 0.25;
  auto sparse = std::make_shared<const SparseAttentionConfig>(load_sparse_attention(
      std::string(VORTEX_SOURCE_DIR) + "/flows/quest.py", budget, m.config, eo.page_size, false));
  std::vector<std::vector<int32_t>> prompts;
  for (int r = 0; r < 6; ++r) {
    std::vector<int32_t> p;
    for (int i = 0; i < 30 + 5 * r; ++i) p.push_back((r * 31 + i * 17 + 3) % 500);
    prompts.push_back(p);
  }
  auto run = [&](std::shared_ptr<const SparseAttentionConfig> flow, bool mixed) {
    EngineOptions o = eo;
    o.sparse = flow;
    Engine e(m, o);
    for (size_t i = 0; i < prompts.size(); ++i) {
      GenerationParams gp = greedy(24);
      if (mixed && i % 2 == 0) gp.flow = "dense";
      e.add_request(prompts[i], gp);
    }
    std::vector<std::vector<int32_t>> tokens;
    for (const GenerationResult& r : e.run_to_completion()) tokens.push_back(r.token_ids);
    return tokens;
  };
  const auto dense_only = run(nullptr, false);
  const auto flow_only = run(sparse, false);
  const auto mixed = run(sparse, true);
  ASSERT_EQ(mixed.size(), prompts.size());
  bool flow_differs = false;
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(mixed[i], i % 2 == 0 ? dense_only[i] : flow_only[i]) << "request " << i;
    flow_differs = flow_differs || flow_only[i] != dense_only[i];
  }
  EXPECT_TRUE(flow_differs) << "the flow never changed a token: the test shows nothing";
}

// Each request hears only its own tokens; the streamed text is the result's text; the tokens
// and logprobs are the result's.
TEST(EngineRequests, CallbacksArePerRequest) {
  LoadedModel m = tiny_qwen3();
  Engine e(m, EngineOptions{});
  std::map<int64_t, std::vector<TokenEvent>> heard;
  std::vector<int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    std::vector<int32_t> prompt = {10 + i, 20, 30 + i};
    int64_t expected_id = static_cast<int64_t>(ids.size());
    ids.push_back(e.add_request(prompt, greedy(5 + 3 * i), [&heard, expected_id](TokenEvent&& ev) {
      EXPECT_EQ(ev.id, expected_id);
      heard[ev.id].push_back(std::move(ev));
    }));
    EXPECT_EQ(ids.back(), expected_id);
  }
  e.add_request({5, 6}, greedy(4));  // no callback: nobody hears it
  std::vector<GenerationResult> results = e.run_to_completion();
  ASSERT_EQ(results.size(), 4u);
  for (int64_t id : ids) {
    const GenerationResult& r = results[static_cast<size_t>(id)];
    std::vector<int32_t> tokens;
    std::vector<double> logprobs;
    std::string text;
    for (const TokenEvent& ev : heard[id]) {
      if (ev.token >= 0) {
        tokens.push_back(ev.token);
        logprobs.push_back(ev.logprob);
      }
      EXPECT_TRUE(ev.top_logprobs.empty());
      text += ev.text;
    }
    EXPECT_EQ(tokens, r.token_ids);
    EXPECT_EQ(logprobs, r.logprobs);
    EXPECT_EQ(text, r.text);
    EXPECT_TRUE(r.top_logprobs.empty());
  }
}

TEST(EngineRequests, TopLogprobsStartWithTheGreedyTokenAndAreSorted) {
  LoadedModel m = tiny_qwen3();
  Engine e(m, EngineOptions{});
  GenerationParams gp = greedy(6);
  gp.top_logprobs = 5;
  std::vector<TokenEvent> events;
  e.add_request({7, 8, 9}, gp, [&](TokenEvent&& ev) { events.push_back(std::move(ev)); });
  GenerationParams all = greedy(2);
  all.top_logprobs = kMaxTopLogprobs;
  e.add_request({7, 8}, all);
  std::vector<GenerationResult> results = e.run_to_completion();
  const GenerationResult& r = results.at(0);
  ASSERT_EQ(r.top_logprobs.size(), r.token_ids.size());
  size_t token_events = 0;
  for (const TokenEvent& ev : events) {
    if (ev.token < 0) continue;
    ASSERT_LT(token_events, r.top_logprobs.size());
    const std::vector<TokenLogprob>& top = r.top_logprobs[token_events];
    ASSERT_EQ(ev.top_logprobs.size(), 5u);
    ASSERT_EQ(top.size(), 5u);
    // Greedy: the most likely token is the sampled one, with the very same logprob.
    EXPECT_EQ(top[0].token, ev.token);
    EXPECT_EQ(top[0].logprob, ev.logprob);
    for (size_t k = 0; k < top.size(); ++k) {
      EXPECT_EQ(top[k].token, ev.top_logprobs[k].token);
      EXPECT_EQ(top[k].logprob, ev.top_logprobs[k].logprob);
      EXPECT_LE(top[k].logprob, 0.0);
      if (k > 0) {
        EXPECT_LE(top[k].logprob, top[k - 1].logprob);
        EXPECT_NE(top[k].token, top[k - 1].token);
      }
    }
    ++token_events;
  }
  EXPECT_EQ(token_events, r.token_ids.size());
  for (const std::vector<TokenLogprob>& top : results.at(1).top_logprobs) {
    EXPECT_EQ(top.size(), static_cast<size_t>(kMaxTopLogprobs));
  }
}

TEST(EngineRequests, AbortFreesThePagesOfRunningAndWaitingRequests) {
  LoadedModel m = tiny_qwen3();
  EngineOptions eo;
  eo.max_batch = 1;  // the second request waits
  Engine e(m, eo);
  std::vector<TokenEvent> heard;
  int64_t running = e.add_request(std::vector<int32_t>(40, 3), greedy(50),
                                  [&](TokenEvent&& ev) { heard.push_back(std::move(ev)); });
  int64_t waiting = e.add_request({4, 5, 6}, greedy(50));
  for (int i = 0; i < 3; ++i) e.step();
  EXPECT_EQ(e.num_running(), 1);
  EXPECT_EQ(e.num_waiting(), 1);
  EXPECT_GT(e.pages_used(), 0);
  const size_t heard_before = heard.size();
  ASSERT_GT(heard_before, 0u);

  std::optional<GenerationResult> r = e.abort(running);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->finish_reason, FinishReason::kAbort);
  EXPECT_EQ(r->id, running);
  EXPECT_EQ(r->prompt_tokens, 40);
  EXPECT_EQ(r->token_ids.size(), heard_before);
  for (size_t i = heard_before; i < heard.size(); ++i) EXPECT_EQ(heard[i].token, -1);
  EXPECT_EQ(e.pages_used(), 0);
  EXPECT_EQ(e.num_running(), 0);
  EXPECT_FALSE(e.abort(running).has_value());  // already finished

  std::optional<GenerationResult> w = e.abort(waiting);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->finish_reason, FinishReason::kAbort);
  EXPECT_TRUE(w->token_ids.empty());
  EXPECT_EQ(e.num_waiting(), 0);
  EXPECT_FALSE(e.has_unfinished());
  EXPECT_FALSE(e.abort(12345).has_value());

  // The engine goes on serving: a new request gets the tokens it gets alone.
  int64_t next = e.add_request({4, 5, 6}, greedy(5));
  std::vector<GenerationResult> rest = e.run_to_completion();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].id, next);
  Engine alone(m, EngineOptions{});
  alone.add_request({4, 5, 6}, greedy(5));
  EXPECT_EQ(rest[0].token_ids, alone.run_to_completion().at(0).token_ids);
  EXPECT_EQ(e.pages_used(), 0);
}

}  // namespace
}  // namespace vortex
