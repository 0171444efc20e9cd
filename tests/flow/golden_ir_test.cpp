// Golden IR dumps: each tests/data/flows/golden/NAME.py compiles (symbolically) to exactly the
// IR in NAME.ir, printed after every pass; NAME.bound.ir, where present, pins the IR for the
// geometry G=4, D=64, P=16. Set VORTEX_UPDATE_GOLDEN=1 to rewrite the files after an intended
// change, then review the diff.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "flow/compiler.h"

namespace vortex::flow {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::string all_dumps(const CompileResult& r) {
  std::string out;
  for (const std::string& d : r.ir_dumps) out += d;
  return out;
}

void expect_golden(const fs::path& flow, const fs::path& golden, const FlowGeometry* geometry) {
  std::string source = read(flow);
  CompileResult r = compile_flow(source, flow.filename().string(), geometry);
  ASSERT_TRUE(r.ok()) << format_compile_errors(r, source, flow.string());
  std::string got = all_dumps(r);
  if (std::getenv("VORTEX_UPDATE_GOLDEN")) {
    std::ofstream(golden, std::ios::binary) << got;
    return;
  }
  ASSERT_TRUE(fs::exists(golden)) << golden << " is missing (run with VORTEX_UPDATE_GOLDEN=1)";
  EXPECT_EQ(got, read(golden)) << "IR of " << flow << " differs from " << golden;
}

fs::path golden_dir() {
  return fs::path(VORTEX_SOURCE_DIR) / "tests/data/flows/golden";
}

TEST(GoldenIr, EveryGoldenFlowMatchesItsDump) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(golden_dir())) {
    if (entry.path().extension() != ".py") continue;
    ++count;
    SCOPED_TRACE(entry.path().string());
    fs::path ir = entry.path();
    expect_golden(entry.path(), ir.replace_extension(".ir"), nullptr);
    fs::path bound = entry.path();
    bound.replace_extension(".bound.ir");
    FlowGeometry geometry{4, 64, 16};
    if (fs::exists(bound) || std::getenv("VORTEX_UPDATE_GOLDEN"))
      expect_golden(entry.path(), bound, &geometry);
  }
  EXPECT_GE(count, 3);
}

TEST(GoldenIr, DumpsComeAfterEachPassInOrder) {
  std::string source = read(golden_dir() / "centroid.py");
  CompileResult r = compile_flow(source, "centroid.py", nullptr);
  ASSERT_EQ(r.ir_dumps.size(), 4u);
  EXPECT_EQ(r.ir_dumps[0].rfind("=== after lowering ===\n", 0), 0u);
  EXPECT_EQ(r.ir_dumps[1].rfind("=== after constant folding ===\n", 0), 0u);
  EXPECT_EQ(r.ir_dumps[2].rfind("=== after dead-code removal ===\n", 0), 0u);
  EXPECT_EQ(r.ir_dumps[3].rfind("=== after placement ===\n", 0), 0u);
}

TEST(GoldenIr, NoDumpsWhenNotAskedFor) {
  std::string source = read(golden_dir() / "centroid.py");
  CompileOptions options;
  options.dump_ir = false;
  CompileResult r = compile_flow(source, "centroid.py", nullptr, options);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.ir_dumps.empty());
}

}  // namespace
}  // namespace vortex::flow
