// Recorded decode traces: the replayed recall equals the live engine's where the two see the
// same inputs, a flow that reads every page has recall 1, and a trace file round-trips and is
// refused when truncated or recorded for another model.
#include "agent/decode_traces.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "engine/engine.h"
#include "eval/eval_runner.h"

namespace vortex::agent {
namespace {

namespace fs = std::filesystem;

const LoadedModel& tiny() {
  static const LoadedModel m =
      load_model(std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3", {});
  return m;
}

std::vector<int32_t> prompt(int32_t n, int32_t salt) {
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < n; ++i) ids.push_back((i * 37 + salt * 11) % 900 + 5);
  return ids;
}

std::shared_ptr<const SparseAttentionConfig> flow(const std::string& name,
                                                  const flow::BudgetOverrides& b, int32_t P,
                                                  bool record_recall) {
  return std::make_shared<const SparseAttentionConfig>(
      load_sparse_attention(std::string(VORTEX_SOURCE_DIR) + "/flows/" + name + ".py", b,
                            tiny().config, P, record_recall));
}

// With the flow sparse only in the last layer and one decode step, the live engine's last layer
// sees exactly the traces' queries and keys (every earlier layer is dense, and no token the flow
// changed has been fed back yet), so the recall of each row must be the same number.
TEST(DecodeTraces, ReplayEqualsTheLiveEngineOnTheSameInputs) {
  const int32_t P = 4;
  const int32_t L = tiny().config.num_layers;
  flow::BudgetOverrides b;
  b.ratio = 0.25;
  b.dense_layers = std::vector<int64_t>{};
  for (int32_t l = 0; l + 1 < L; ++l) b.dense_layers->push_back(l);
  for (const char* name : {"block_topk", "quest", "h2o"}) {
    SCOPED_TRACE(name);
    std::vector<TracePrompt> prompts = {{prompt(150, 1), 2}, {prompt(97, 2), 2}};
    std::vector<float> live;
    for (const TracePrompt& p : prompts) {
      EngineOptions eo;
      eo.page_size = P;
      eo.sparse = flow(name, b, P, true);
      Engine engine(tiny(), eo);
      eval::EvalRequest r;
      r.prompt = p.ids;
      r.params.max_tokens = p.max_tokens;
      r.params.ignore_eos = true;
      eval::run_eval_requests(engine, {r});
      const auto& rec = engine.runner().sparse_stats()->recall;
      live.insert(live.end(), rec[L - 1].begin(), rec[L - 1].end());
    }
    const DecodeTraces traces = record_decode_traces(tiny(), prompts, P);
    ASSERT_EQ(traces.traces.size(), 2u);
    EXPECT_EQ(traces.traces[0].steps, 1);
    EXPECT_EQ(traces.traces[0].prompt_len, 150);
    const std::vector<std::vector<float>> replayed =
        replay_recall(traces, *flow(name, b, P, false), P);
    ASSERT_EQ(replayed.size(), static_cast<size_t>(L));
    for (int32_t l = 0; l + 1 < L; ++l) EXPECT_TRUE(replayed[l].empty()) << "dense layer " << l;
    ASSERT_EQ(replayed[L - 1].size(), live.size());
    ASSERT_FALSE(live.empty());
    for (size_t i = 0; i < live.size(); ++i) {
      EXPECT_NEAR(replayed[L - 1][i], live[i], 1e-6) << "row " << i;
      EXPECT_LT(live[i], 1.0f) << "row " << i << " selected every page: the test shows nothing";
    }
  }
}

TEST(DecodeTraces, AFlowReadingEveryPageHasRecallOneAtEveryStep) {
  const int32_t P = 4;
  const DecodeTraces traces = record_decode_traces(tiny(), {{prompt(60, 3), 6}}, P);
  EXPECT_EQ(traces.traces[0].steps, 5);
  flow::BudgetOverrides all;
  all.ratio = 1.0;
  const auto recall = replay_recall(traces, *flow("quest", all, P, false), P);
  size_t rows = 0;
  for (const auto& layer : recall)
    for (float r : layer) {
      EXPECT_NEAR(r, 1.0, 1e-6);
      ++rows;
    }
  // Every sparse layer (layer 0 is dense by default), every step, every KV head.
  EXPECT_EQ(rows,
            static_cast<size_t>((tiny().config.num_layers - 1) * 5 * tiny().config.num_kv_heads));
}

TEST(DecodeTraces, AFileRoundTripsAndABadOneIsRefusedNamingIt) {
  const int32_t P = 4;
  const DecodeTraces traces = record_decode_traces(tiny(), {{prompt(40, 4), 3}}, P);
  const fs::path path = fs::temp_directory_path() / (std::to_string(getpid()) + "_traces.bin");
  write_decode_traces(traces, path.string());
  const DecodeTraces back = read_decode_traces(path.string(), tiny().config);
  ASSERT_EQ(back.traces.size(), 1u);
  EXPECT_EQ(back.traces[0].q, traces.traces[0].q);
  EXPECT_EQ(back.traces[0].k, traces.traces[0].k);
  EXPECT_EQ(back.traces[0].v, traces.traces[0].v);
  flow::BudgetOverrides b;
  b.ratio = 0.25;
  EXPECT_EQ(replay_recall(back, *flow("quest", b, P, false), P),
            replay_recall(traces, *flow("quest", b, P, false), P));

  ModelConfig other = tiny().config;
  other.num_layers += 1;
  try {
    read_decode_traces(path.string(), other);
    ADD_FAILURE() << "another model's traces were read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos) << e.what();
  }
  fs::resize_file(path, fs::file_size(path) - 7);
  try {
    read_decode_traces(path.string(), tiny().config);
    ADD_FAILURE() << "a truncated file was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  std::ofstream(path, std::ios::trunc) << "not a trace\n";
  EXPECT_THROW(read_decode_traces(path.string(), tiny().config), Error);
  fs::remove(path);
}

}  // namespace
}  // namespace vortex::agent
