// The engine flags (cli/engine_flags.h) as users meet them: every command that runs the engine
// refuses the same bad values with the same message naming the flag (exit 2), before loading
// the model.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/run_vortex.h"

namespace vortex {
namespace {

using testing::CmdResult;

std::string tiny() {
  return std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "in: " << (haystack)

// Each command with the arguments it needs besides the engine flags.
std::vector<std::vector<std::string>> commands() {
  return {
      {"generate", "--model", tiny(), "--prompt-ids", "1,2"},
      {"bench", "--model", tiny(), "--input-len", "4", "--output-len", "2"},
      {"eval", "--model", tiny(), "--tasks", "niah_single", "--context", "64", "--samples", "1"},
      {"serve", "--model", tiny(), "--port", "0"}};
}

CmdResult run(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return testing::run_vortex(args);
}

TEST(EngineFlags, EveryCommandRefusesTheSameBadValues) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--page-size", "3"}, "--page-size must be a power of two, got 3"},
      {{"--threads", "-1"}, "--threads must be >= 0"},
      {{"--device", "tpu"}, "unknown device 'tpu'"},
      {{"--max-step-tokens", "0"}, "--max-step-tokens must be at least 1"},
  };
  for (const auto& cmd : commands()) {
    for (const auto& [flags, message] : bad) {
      CmdResult r = run(cmd, flags);
      EXPECT_EQ(r.code, 2) << cmd[0] << " " << flags[0] << ": " << r.err;
      EXPECT_CONTAINS(r.err, message);
    }
  }
}

TEST(EngineFlags, AStepBudgetBelowTheBatchIsRefusedNamingTheBatchFlag) {
  CmdResult r = run(commands()[0], {"--max-batch", "8", "--max-step-tokens", "4"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--max-step-tokens (4) must be at least --max-batch (8)");
  // bench's batch is its --batch.
  r = run(commands()[1], {"--batch", "8", "--max-step-tokens", "4"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--max-step-tokens (4) must be at least --batch (8)");
  r = run(commands()[2], {"--max-batch", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--max-batch must be at least 1, got 0");
  r = run(commands()[0], {"--kv-memory-gb", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--kv-memory-gb must be positive");
  r = run(commands()[3], {"--kv-pages", "-2"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--kv-pages must be >= 0");
  // The default step budget rises to a larger batch instead.
  r = run(commands()[0], {"--max-batch", "1000", "--max-tokens", "2", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(EngineFlags, BenchKeepsItsOwnBatchFlag) {
  CmdResult r = run(commands()[1], {"--batch", "2", "--max-step-tokens", "8", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "\"batch\":2");
  // The cache is sized from the workload: no KV flags in bench.
  r = run(commands()[1], {"--kv-pages", "8"});
  EXPECT_EQ(r.code, 2);
}

TEST(ServeFlags, UsageErrorsComeBeforeLoading) {
  const std::string flows = std::string(VORTEX_SOURCE_DIR) + "/flows/";
  // Several flows are fine, but each needs a name of its own (its file name).
  CmdResult r =
      run(commands()[3], {"--flow", flows + "block_topk.py", "--flow", flows + "block_topk.py"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "another flow is already named 'block_topk'");
  r = testing::run_vortex({"serve", "--model", tiny(), "--port", "70000"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--port must be in [0, 65535]");
  r = run(commands()[3], {"--max-waiting", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--max-waiting");
  r = run(commands()[3], {"--max-body-mb", "-1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--max-body-mb");
  r = testing::run_vortex({"serve", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_CONTAINS(r.out, "--served-model-name");
  EXPECT_CONTAINS(r.out, "--max-batch");
}

}  // namespace
}  // namespace vortex
