// `vortex check --target cuda`: generates and NVRTC-compiles every shipped flow for a model's
// geometry without a GPU, reports kernels and sizes, hits the kernel cache the second time,
// and reports what the generator cannot compile as a flow diagnostic at the flow's line.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "flow/codegen/nvrtc_compiler.h"
#include "support/run_vortex.h"

namespace vortex {
namespace {

namespace fs = std::filesystem;
using testing::CmdResult;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

#define REQUIRE_NVRTC()                                                          \
  do {                                                                           \
    std::string why;                                                             \
    if (!flow::nvrtc_available(&why)) GTEST_SKIP() << "NVRTC unavailable: " << why; \
  } while (0)

std::string source_path(const std::string& rel) { return std::string(VORTEX_SOURCE_DIR) + "/" + rel; }

// Points the kernel cache of the vortex processes at a fresh directory for one test.
class CacheDir {
 public:
  CacheDir() : path_(fs::temp_directory_path() / ("vortex_check_cuda_" + std::to_string(getpid()))) {
    fs::remove_all(path_);
    setenv("VORTEX_CACHE_DIR", path_.c_str(), 1);
  }
  ~CacheDir() {
    unsetenv("VORTEX_CACHE_DIR");
    fs::remove_all(path_);
  }

 private:
  fs::path path_;
};

TEST(CliCheckCuda, EveryShippedFlowCompilesForTheModel) {
  REQUIRE_NVRTC();
  CacheDir cache;
  std::vector<std::string> args = {"check", "--target", "cuda", "--model", "qwen3-1.7b", "--json"};
  for (const auto& e : fs::directory_iterator(source_path("flows")))
    if (e.path().extension() == ".py") args.push_back(e.path().string());
  CmdResult r = testing::run_vortex(args);
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    Json j = parse_json(line, "check output");
    ASSERT_TRUE(j["ok"].get<bool>()) << line;
    const Json& cuda = j["cuda"];
    EXPECT_TRUE(cuda["ok"].get<bool>()) << line;
    EXPECT_EQ(cuda["arch"], "sm_90a");
    EXPECT_GT(cuda["cubin_bytes"].get<int64_t>(), 0) << line;
    EXPECT_FALSE(cuda["kernels"].empty()) << line;
    EXPECT_EQ(cuda["field_stride"].get<int64_t>() % 8, 0) << line;
    ++n;
  }
  EXPECT_EQ(n, 7);
}

TEST(CliCheckCuda, PrintsKernelsAndHitsTheCacheTheSecondTime) {
  REQUIRE_NVRTC();
  CacheDir cache;
  const std::vector<std::string> args = {"check", source_path("flows/h2o.py"), "--model",
                                         "qwen3-1.7b", "--target", "cuda", "--arch", "sm_80"};
  CmdResult first = testing::run_vortex(args);
  ASSERT_EQ(first.code, 0) << first.err << first.out;
  EXPECT_CONTAINS(first.out, "flow H2O");  // the usual report is still there
  EXPECT_CONTAINS(first.out, "cuda sm_80");
  EXPECT_CONTAINS(first.out, "H2O_summarize (summarize)");
  EXPECT_CONTAINS(first.out, "H2O_score_pages (score, per-page)");
  EXPECT_CONTAINS(first.out, "H2O_score_rows (score, per-row)");
  EXPECT_CONTAINS(first.out, "state 1 floats (stride 4 f32)");
  EXPECT_EQ(first.out.find("(cached)"), std::string::npos) << first.out;
  CmdResult second = testing::run_vortex(args);
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_CONTAINS(second.out, "compiled (cached)");
}

TEST(CliCheckCuda, GeneratorLimitsAreFlowDiagnostics) {
  CacheDir cache;
  CmdResult r = testing::run_vortex({"check", source_path("tests/data/flows/codegen/wide_softmax.py"),
                                     "--model", "qwen3-1.7b", "--target", "cuda"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_CONTAINS(r.err, "wide_softmax.py:13:13: error: the CUDA generator cannot compile 'softmax'");
  // Piped, the error is one line; the source line and caret come with --show-source.
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  // The generator's rules are the check's own: the flow fails before any CUDA is generated.
  EXPECT_CONTAINS(r.out, "FAILED (1 error)");
  CmdResult shown = testing::run_vortex({"check",
                                         source_path("tests/data/flows/codegen/wide_softmax.py"),
                                         "--model", "qwen3-1.7b", "--show-source"});
  EXPECT_EQ(shown.code, 1);
  EXPECT_CONTAINS(shown.err, "w = softmax(self.c, axis=0)");  // the source line, with a caret
}

TEST(CliCheckCuda, NeedsAModelAndARealArchitecture) {
  CmdResult r = testing::run_vortex({"check", source_path("flows/quest.py"), "--target", "cuda"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--model");
  r = testing::run_vortex({"check", source_path("flows/quest.py"), "--model", "qwen3-1.7b",
                           "--target", "cuda", "--arch", "compute_90"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "compute_90");
  r = testing::run_vortex({"check", source_path("flows/quest.py"), "--target", "tpu"});
  EXPECT_NE(r.code, 0);
}

}  // namespace
}  // namespace vortex
