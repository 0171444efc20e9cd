// `vortex submit` as an agent calls it: a broken flow is rejected at verify with a located
// reason (exit 3, JSON on stdout), the verdict is kept in the store and an identical source is
// recognized; bad options are usage errors (exit 2) naming the flag.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/json_file.h"
#include "support/run_vortex.h"

namespace vortex {
namespace {

namespace fs = std::filesystem;
using testing::CmdResult;
using testing::run_vortex;

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / (std::to_string(getpid()) + "_" + name);
}

TEST(SubmitCommand, ABrokenFlowIsRejectedAtVerifyAndStored) {
  const fs::path flow = temp_path("typo.py");
  std::ofstream(flow) << "from vortex.flow import Flow\n\nclass F(Flow):\n    budget = Budgt()\n";
  const fs::path db = temp_path("submit_cli.db");
  fs::remove(db);
  for (int attempt = 0; attempt < 2; ++attempt) {
    const CmdResult r = run_vortex({"submit", flow.string(), "--json", "--db", db.string(),
                                    "--model", std::string(VORTEX_SOURCE_DIR) + "/models/needle"});
    EXPECT_EQ(r.code, 3) << r.err;
    const Json j = parse_json(r.out, "submit --json");
    EXPECT_EQ(j["accepted"], false);
    EXPECT_EQ(j["failed_stage"], "verify");
    ASSERT_EQ(j["stages"].size(), 1u);
    const std::string reason = j["stages"][0]["reason"].get<std::string>();
    EXPECT_NE(reason.find(flow.string() + ":4:"), std::string::npos) << reason;
    EXPECT_EQ(j["id"], attempt + 1);
    // The second submission of the same text is recognized.
    EXPECT_EQ(j["identical_to"].size(), static_cast<size_t>(attempt)) << j.dump();
  }
  fs::remove(flow);
  fs::remove(db);
}

TEST(SubmitCommand, BadOptionsAreUsageErrorsNamingTheFlag) {
  const std::string flow = std::string(VORTEX_SOURCE_DIR) + "/flows/quest.py";
  struct Case {
    std::vector<std::string> args;
    std::string flag;
  } cases[] = {
      {{"--context", "10"}, "--context"},
      {{"--samples", "0"}, "--samples"},
      {{"--page-size", "3"}, "--page-size"},
      {{"--max-mean-drop", "2"}, "--max-mean-drop"},
      {{"--tasks", "nope"}, "nope"},
      {{"--device", "tpu"}, "tpu"},
      {{"--natural-model", "/nonexistent"}, "--natural-model"},
      {{"--natural-model", "none", "--natural-data", "a.txt"}, "--natural-data"},
      {{"--natural-model", std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3"},
       "heldout/*.txt"},
      {{"--natural-model", std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3",
        "--natural-data", "/nonexistent.txt"},
       "/nonexistent.txt"},
      {{"--natural-model", std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3",
        "--natural-data", std::string(VORTEX_SOURCE_DIR) + "/tests/data/perplexity/gpl-3.txt",
        "--natural-score-tokens", "5000"},
       "--natural-score-tokens"}};
  for (const Case& c : cases) {
    std::vector<std::string> args = {"submit", flow, "--no-store"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const CmdResult r = run_vortex(args);
    EXPECT_EQ(r.code, 2) << c.flag << ": " << r.err;
    EXPECT_NE(r.err.find(c.flag), std::string::npos) << r.err;
  }
}

TEST(SubmitCommand, AnUnreadableStoreIsAnErrorNamingIt) {
  const fs::path bad = temp_path("not_a_db.db");
  std::ofstream(bad) << "this is not a SQLite database, just text that is long enough to check";
  const CmdResult r = run_vortex(
      {"submit", std::string(VORTEX_SOURCE_DIR) + "/flows/quest.py", "--db", bad.string()});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find(bad.string()), std::string::npos) << r.err;
  fs::remove(bad);
}

}  // namespace
}  // namespace vortex
