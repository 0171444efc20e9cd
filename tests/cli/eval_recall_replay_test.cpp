// `vortex eval --recall-replay`: every flow's attention recall on one recorded trajectory of full
// attention. Its first decode step sees exactly what a live run's does (the prefill is dense and
// the first token the same), so with one step its recall equals --record-recall's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
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

// --recall-traces keeps the trajectory: a second run (another budget) reads it instead of
// recording, and gives the figures a fresh recording gives; a file of other samples is refused.
TEST(EvalRecallReplay, TheTrajectoryFileIsReusedAndChecked) {
  const std::string file = ::testing::TempDir() + "/vortex_replay_" + std::to_string(getpid());
  std::remove(file.c_str());
  auto args = [&](const char* ratio, const char* samples, bool keep) {
    std::vector<std::string> a = kCommon;
    a[8] = samples;
    a[12] = ratio;
    for (const std::string& x :
         {std::string("--flow"), source("flows/quest.py"), std::string("--recall-replay")})
      a.push_back(x);
    if (keep) {
      a.push_back("--recall-traces");
      a.push_back(file);
    }
    return a;
  };
  const CmdResult first = run_vortex(args("0.25", "2", true));
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_NE(first.err.find("recording"), std::string::npos) << first.err;
  const CmdResult reused = run_vortex(args("0.5", "2", true));
  ASSERT_EQ(reused.code, 0) << reused.err;
  EXPECT_NE(reused.err.find("read 4 recorded traces"), std::string::npos) << reused.err;
  const CmdResult fresh = run_vortex(args("0.5", "2", false));
  ASSERT_EQ(fresh.code, 0) << fresh.err;
  EXPECT_EQ(parse_json(reused.out, "reused")["runs"], parse_json(fresh.out, "fresh")["runs"]);
  const CmdResult other = run_vortex(args("0.5", "1", true));
  EXPECT_NE(other.code, 0);
  EXPECT_NE(other.err.find(file), std::string::npos) << other.err;
  std::remove(file.c_str());
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
