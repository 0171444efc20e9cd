// `vortex check --context L --batch B`: the estimated bytes and time of a decode step with the
// flow and with full attention, and the GPU footprint of the flow's Fields and States.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/json_file.h"
#include "support/run_vortex.h"

namespace vortex {
namespace {

using testing::CmdResult;
using testing::run_vortex;

std::string flow(const std::string& name) {
  return std::string(VORTEX_SOURCE_DIR) + "/flows/" + name + ".py";
}

TEST(CheckEstimate, BytesAndTimeOfADecodeStep) {
  const CmdResult r = run_vortex({"check", flow("quest"), "--model", "qwen3-1.7b", "--context",
                                  "16384", "--batch", "32", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const Json j = parse_json(r.out, "check --json");
  // quest keeps two bf16 [1, D] bounds: 2 x 128 x 2 bytes per page and KV head.
  EXPECT_EQ(j["gpu_field_bytes_per_page"], 512);
  EXPECT_EQ(j["gpu_state_bytes_per_page"], 0);
  const Json& e = j["step_estimate"];
  EXPECT_EQ(e["estimate"], true);
  // Full attention: 32 rows x 28 layers x 1024 pages x 8 KV heads x 16 tokens x 128 x 2 x 2 B.
  EXPECT_NEAR(e["gb"]["full_kv"].get<double>(), 32.0 * 28 * 1024 * 8 * 16 * 128 * 4 * 1e-9, 1e-9);
  EXPECT_GT(e["gb"]["fields"].get<double>(), 0);
  EXPECT_GT(e["speedup"].get<double>(), 1.0);
  EXPECT_LT(e["step_ms_flow"].get<double>(), e["step_ms_full"].get<double>());
  // The text form says it is an estimate.
  const CmdResult t =
      run_vortex({"check", flow("quest"), "--model", "qwen3-1.7b", "--context", "16384"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("an estimate, not a measurement"), std::string::npos) << t.out;
}

TEST(CheckEstimate, AnInt8ScalarFieldIsFlagged) {
  const auto p = std::filesystem::temp_directory_path() / "vortex_int8_scalar.py";
  std::ofstream(p) << "\"\"\"A scalar per page. Score: its value.\"\"\"\n"
                      "from vortex.flow import Flow, Field\n\n"
                      "class S(Flow):\n    n = Field(dtype=\"int8\")\n\n"
                      "    def summarize(self, k, v):\n        self.n = k.mean()\n\n"
                      "    def score(self, q):\n        return self.n\n";
  const CmdResult r = run_vortex({"check", p.string(), "--model", "qwen3-1.7b"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("larger than in bf16"), std::string::npos) << r.out;
  std::filesystem::remove(p);
}

TEST(CheckEstimate, ContextNeedsAModelAndSaneValues) {
  CmdResult r = run_vortex({"check", flow("quest"), "--context", "4096"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--model"), std::string::npos) << r.err;
  r = run_vortex(
      {"check", flow("quest"), "--model", "qwen3-1.7b", "--context", "4096", "--batch", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--batch"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace vortex
