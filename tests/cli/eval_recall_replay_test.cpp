// `vortex eval --recall-replay`: every flow's attention recall on one recorded trajectory of full
// attention. Its first decode step sees exactly what a live run's does (the prefill is dense and
// the first token the same), so with one step its recall equals --record-recall's.
#include <gtest/gtest.h>

#include <string>

#include "core/json_file.h"
#include "support/run_vortex.h"

namespace vortex {
namespace {

using testing::CmdResult;
using testing::run_vortex;

std::string source(const std::string& rel) {
  return std::string(VORTEX_SOURCE_DIR) + "/" + rel;
}

const std::vector<std::string> kCommon = {"eval",
                                          "--model",
                                          source("tests/data/models/tiny-qwen3"),
                                          "--tasks",
                                          "niah_single,vt",
                                          "--context",
                                          "512",
                                          "--samples",
                                          "2",
                                          "--page-size",
                                          "4",
                                          "--topk-ratio",
                                          "0.25",
                                          "--json"};

TEST(EvalRecallReplay, OneStepEqualsTheLiveRecordedRecall) {
  std::vector<std::string> replay = kCommon;
  for (const char* a : {"--flow", "", "--flow", "", "--recall-replay", "--recall-tokens", "1"})
    replay.push_back(a);
  replay[replay.size() - 6] = source("flows/quest.py");
  replay[replay.size() - 4] = source("flows/block_topk.py");
  const CmdResult r = run_vortex(replay);
  ASSERT_EQ(r.code, 0) << r.err;
  const Json j = parse_json(r.out, "replay output");
  ASSERT_EQ(j["runs"].size(), 2u);
  EXPECT_EQ(j["samples"].get<int64_t>(), 4);
  for (size_t i = 0; i < 2; ++i) {
    const Json& run = j["runs"][i];
    SCOPED_TRACE(run["flow"].get<std::string>());
    EXPECT_GT(run["rows"].get<int64_t>(), 0);
    EXPECT_GT(run["recall_mean"].get<double>(), 0.0);
    EXPECT_LE(run["recall_mean"].get<double>(), 1.0 + 1e-6);
    EXPECT_LE(run["recall_p5"].get<double>(), run["recall_mean"].get<double>() + 1e-9);

    std::vector<std::string> live = kCommon;
    for (const std::string& a :
         {std::string("--flow"), run["flow"].get<std::string>(), std::string("--record-recall"),
          std::string("--max-tokens"), std::string("2")})
      live.push_back(a);
    const CmdResult l = run_vortex(live);
    ASSERT_EQ(l.code, 0) << l.err;
    const Json lj = parse_json(l.out, "live output");
    ASSERT_TRUE(lj.contains("recall_mean")) << l.out;
    EXPECT_NEAR(run["recall_mean"].get<double>(), lj["recall_mean"].get<double>(), 1e-5);
  }
}

TEST(EvalRecallReplay, NeedsAFlow) {
  std::vector<std::string> args = kCommon;
  args.push_back("--recall-replay");
  const CmdResult r = run_vortex(args);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--recall-replay needs at least one --flow"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace vortex
