// `vortex info` and `vortex --version` report the CPU kernel path, and VORTEX_CPU_ISA forces one
// or stops every command with a one-line usage error.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "support/run_vortex.h"

namespace vortex {
namespace {

using testing::CmdResult;

// Sets VORTEX_CPU_ISA for the commands a test runs, and clears it afterwards.
class ForcedPath {
 public:
  explicit ForcedPath(const char* isa) { setenv("VORTEX_CPU_ISA", isa, 1); }
  ~ForcedPath() { unsetenv("VORTEX_CPU_ISA"); }
};

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "in: " << (haystack)

TEST(Info, ReportsTheChosenCpuPathAndTheSupportedOnes) {
  CmdResult r = testing::run_vortex({"info", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const auto& paths = j.at("cpu_paths_supported");
  ASSERT_FALSE(paths.empty());
  EXPECT_EQ(paths.front(), "baseline");
  // Left to itself, Vortex takes the best path the CPU has.
  EXPECT_EQ(j.at("cpu_path"), paths.back());
  EXPECT_FALSE(j.at("cpu_path_forced").get<bool>());
  CmdResult text = testing::run_vortex({"info"});
  EXPECT_EQ(text.code, 0);
  EXPECT_CONTAINS(text.out, "cpu kernels:  " + paths.back().get<std::string>());
}

TEST(Info, VersionNamesTheCpuPath) {
  CmdResult r = testing::run_vortex({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_CONTAINS(r.out, "vortex 0.1.0");
  EXPECT_CONTAINS(r.out, "cpu kernels: ");
}

TEST(Info, TheBaselineCanAlwaysBeForced) {
  ForcedPath env("baseline");
  CmdResult r = testing::run_vortex({"info", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("cpu_path"), "baseline");
  EXPECT_TRUE(j.at("cpu_path_forced").get<bool>());
  CmdResult v = testing::run_vortex({"--version"});
  EXPECT_CONTAINS(v.out, "forced by VORTEX_CPU_ISA");
}

TEST(Info, AnUnknownPathStopsEveryCommandWithAUsageError) {
  ForcedPath env("avx9000");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"info"},
        {"generate", "--model", "qwen3-0.6b", "--random-weights", "--prompt-ids", "1"}}) {
    CmdResult r = testing::run_vortex(args);
    EXPECT_EQ(r.code, 2) << args[0];
    EXPECT_CONTAINS(r.err, "VORTEX_CPU_ISA=avx9000 is not a CPU path");
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
  }
  // --version still answers, saying what is wrong.
  CmdResult v = testing::run_vortex({"--version"});
  EXPECT_EQ(v.code, 0);
  EXPECT_CONTAINS(v.out, "VORTEX_CPU_ISA=avx9000");
}

}  // namespace
}  // namespace vortex
