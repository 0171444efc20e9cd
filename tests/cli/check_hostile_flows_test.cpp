// Hostile flow files met through the CLI: a path that is not a regular flow file, a flow that
// breaks a limit, a flow the GPU cannot compile. Each ends in a located error with exit 1 (never a
// crash or a hang); `check` and `check --target cuda` agree; `--json` never says ok: false
// without an error; the engine counts a flow's Fields against the KV memory budget.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "support/run_vortex.h"

namespace vortex {
namespace {

namespace fs = std::filesystem;
using testing::CmdResult;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

std::string source_path(const std::string& rel) {
  return std::string(VORTEX_SOURCE_DIR) + "/" + rel;
}
std::string malformed(const std::string& name) {
  return source_path("tests/data/flows/malformed/" + name + ".py");
}
const std::string kTinyModel = source_path("tests/data/models/tiny-qwen3");

int count_lines(const std::string& text) {
  int n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

class ScratchDir {
 public:
  ScratchDir()
      : path_(fs::temp_directory_path() /
              ("vortex_cli_hostile_flows_" + std::to_string(getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
    return *this / name;
  }

 private:
  fs::path path_;
};

CmdResult generate_with_flow(const std::string& flow, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"generate", "--model",      kTinyModel, "--prompt-ids",
                                   "1,2,3",    "--max-tokens", "2",        "--flow",
                                   flow};
  args.insert(args.end(), extra.begin(), extra.end());
  return testing::run_vortex(args);
}

TEST(CliHostileFlows, PathsThatAreNotRegularFlowFilesAreOneLineErrors) {
  ScratchDir dir;
  fs::create_directories(dir / "a_directory.py");
  ASSERT_EQ(mkfifo((dir / "a_fifo.py").c_str(), 0600), 0);
  dir.write("too_big.py", std::string((1 << 20) + 1, '#'));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {dir / "a_directory.py", "is a directory, not a flow file"},
      {dir / "a_fifo.py", "is a FIFO (named pipe), not a flow file"},
      {"/dev/zero", "is a character device, not a flow file"},
      {dir / "too_big.py", "flow files are limited to 1048576 bytes (1 MiB)"},
      {dir / "missing.py", "cannot read the flow file"},
  };
  for (const auto& [path, message] : cases) {
    CmdResult r = testing::run_vortex({"check", path});
    EXPECT_EQ(r.code, 1) << path;
    EXPECT_EQ(r.err.rfind(path + ": error: ", 0), 0u) << r.err;
    EXPECT_CONTAINS(r.err, message);
    EXPECT_EQ(count_lines(r.err), 1) << r.err;

    r = testing::run_vortex({"check", path, "--json"});
    EXPECT_EQ(r.code, 1) << path;
    const Json j = parse_json(r.out, "check output");
    EXPECT_FALSE(j["ok"].get<bool>());
    ASSERT_EQ(j["errors"].size(), 1u) << r.out;
    EXPECT_CONTAINS(j["errors"][0]["message"].get<std::string>(), message);

    r = generate_with_flow(path);
    EXPECT_EQ(r.code, 1) << path << r.err;
    EXPECT_EQ(r.err.rfind("vortex: error: " + path + ": ", 0), 0u) << r.err;
    EXPECT_CONTAINS(r.err, message);
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
  }
}

TEST(CliHostileFlows, FlowsBreakingALimitEndInOneLocatedError) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"field_too_large", ":7:5: error: Field 'b' takes 20000000000 bytes"},
      {"too_many_fields", ":70:5: error: Field 'f63' is one more than the 64"},
      {"two_page_axes", ":12:57: error: this gives shape [N, N]"},
      {"page_axis_not_leading", ":12:24: error: .T reverses every axis"},
      {"const_integer_overflow", ":12:58: error: integer overflow"},
      {"float_literal_infinite", ":12:57: error: number literal '1e400' is too large"},
      {"budget_dense_layer_too_large", ":7:34: error: Budget dense_layers: layer 1000000000000"},
      {"tabs_mixed_with_spaces", ":12:2: error: inconsistent use of tabs and spaces"},
      {"nul_byte", ":12:59: error: NUL byte"},
      {"state_declaration_error_no_followon", ":7:23: error: State takes no keyword arguments"},
  };
  for (const auto& [name, message] : cases) {
    const std::string path = malformed(name);
    CmdResult r = testing::run_vortex({"check", path});
    EXPECT_EQ(r.code, 1) << name;
    EXPECT_EQ(r.err.rfind(path + message, 0), 0u) << r.err;
    EXPECT_CONTAINS(r.out, "FAILED (1 error)");
    r = generate_with_flow(path);
    EXPECT_EQ(r.code, 1) << name;
    EXPECT_CONTAINS(r.err, path + message);
    EXPECT_EQ(count_lines(r.err), 1) << r.err;
  }
}

TEST(CliHostileFlows, AFiveThousandStatementChainIsALimitForEveryTarget) {
  ScratchDir dir;
  std::string source =
      "\"\"\"Test flow.\"\"\"\nfrom vortex.flow import Flow, Field, D\n\n\nclass F(Flow):\n"
      "    c = Field(1, D)\n\n    def summarize(self, k, v):\n"
      "        self.c = k.mean(axis=0, keepdims=True)\n\n    def score(self, q):\n"
      "        x = (q * self.c).sum(axis=-1).max(axis=-1)\n";
  for (int i = 0; i < 5000; ++i) source += "        x = x + 1.0\n";
  source += "        return x\n";
  const std::string path = dir.write("chain.py", source);
  for (std::vector<std::string> args :
       {std::vector<std::string>{"check", path},
        std::vector<std::string>{"check", path, "--model", "qwen3-1.7b"},
        std::vector<std::string>{"check", path, "--model", "qwen3-1.7b", "--target", "cuda"}}) {
    CmdResult r = testing::run_vortex(args);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(r.err.rfind(path + ":", 0), 0u) << r.err;
    EXPECT_CONTAINS(r.err, "(the dependency depth limit)");
  }
}

// The issue this pins: plain check said "ok" for what the GPU backend cannot compile, whose error
// then had no line or column, and --json said ok: false with empty errors.
TEST(CliHostileFlows, CheckAndTheCudaTargetAgreeAtTheSameLocation) {
  const std::string path = source_path("tests/data/flows/codegen/wide_softmax.py");
  const std::string want =
      path +
      ":13:13: error: the CUDA generator cannot compile 'softmax' here: a reduction over N "
      "with 128 outputs per row (at most 64 are supported)";
  for (bool cuda : {false, true}) {
    std::vector<std::string> args = {"check", path, "--model", "qwen3-1.7b"};
    if (cuda) args.insert(args.end(), {"--target", "cuda"});
    CmdResult r = testing::run_vortex(args);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_EQ(r.err.rfind(want, 0), 0u) << r.err;
    args.push_back("--json");
    r = testing::run_vortex(args);
    const Json j = parse_json(r.out, "check output");
    EXPECT_FALSE(j["ok"].get<bool>());
    ASSERT_FALSE(j["errors"].empty()) << r.out;
    EXPECT_EQ(j["errors"][0]["line"], 13);
    EXPECT_EQ(j["errors"][0]["col"], 13);
  }
  // Without a model the sizes are unknown, so only what fails for every model is refused.
  EXPECT_EQ(testing::run_vortex({"check", path}).code, 0);
}

TEST(CliHostileFlows, JsonNeverSaysNotOkWithoutAnError) {
  std::vector<std::string> args = {"check", "--json", "--model", "qwen3-1.7b", "/dev/zero"};
  for (const auto& e : fs::directory_iterator(source_path("tests/data/flows/malformed")))
    if (e.path().extension() == ".py") args.push_back(e.path().string());
  args.push_back(source_path("tests/data/flows/codegen/wide_softmax.py"));
  CmdResult r = testing::run_vortex(args);
  EXPECT_EQ(r.code, 1);
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    const Json j = parse_json(line, "check output");
    EXPECT_FALSE(j["ok"].get<bool>()) << line;
    EXPECT_FALSE(j["errors"].empty()) << line;
    ++n;
  }
  EXPECT_EQ(static_cast<size_t>(n), args.size() - 4);
}

TEST(CliHostileFlows, DenseLayersMustExistInTheCheckedModel) {
  ScratchDir dir;
  const std::string path =
      dir.write("dense.py",
                "\"\"\"Test flow.\"\"\"\nfrom vortex.flow import Flow, Field, Budget, D\n\n\n"
                "class F(Flow):\n    c = Field(1, D)\n    budget = Budget(dense_layers=[0, 5])\n\n"
                "    def summarize(self, k, v):\n        self.c = k.mean(axis=0, keepdims=True)\n\n"
                "    def score(self, q):\n        return (q * self.c).sum(axis=-1).max(axis=-1)\n");
  EXPECT_EQ(testing::run_vortex({"check", path}).code, 0);
  CmdResult r = testing::run_vortex({"check", path, "--model", kTinyModel});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind(path + ":7:34: error: Budget dense_layers: layer 5 does not exist: the "
                               "model has 2 layers (0..1)",
                        0),
            0u)
      << r.err;
  r = generate_with_flow(path);
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, path + ":7:34: error: Budget dense_layers: layer 5 does not exist");
}

TEST(CliHostileFlows, FieldMemoryCountsAgainstTheKvBudget) {
  ScratchDir dir;
  // tiny-qwen3 (2 layers, 2 KV heads, D = 32), 16-token pages: 16 KiB of f32 K and V a page;
  // a [4 * P, D] Field adds 2048 values per (page, KV head, layer), 32 KiB a page.
  const std::string path =
      dir.write("wide_field.py",
                "\"\"\"Test flow.\"\"\"\nfrom vortex.flow import Flow, Field, D, P, zeros\n\n\n"
                "class F(Flow):\n    c = Field(4 * P, D)\n\n"
                "    def summarize(self, k, v):\n        self.c = zeros((4 * P, D)) + k.mean()\n\n"
                "    def score(self, q):\n        return self.c.sum(axis=(1, 2))\n");
  // 40000 bytes hold 2 pages of K and V alone, but not with the Field beside each page.
  const std::vector<std::string> budget = {"--kv-memory-gb", "0.00003725"};
  CmdResult dense = testing::run_vortex({"generate", "--model", kTinyModel, "--prompt-ids", "1",
                                         "--max-tokens", "1", "--kv-memory-gb", "0.00003725"});
  EXPECT_EQ(dense.code, 0) << dense.err;
  CmdResult r = generate_with_flow(path, budget);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_CONTAINS(r.err,
                  "holds fewer than 2 pages (16384 bytes of K and V per page and 32832 of "
                  "the flow's Fields and States)");
}

}  // namespace
}  // namespace vortex
