// The reduction rewrite used by the CUDA generator: the CPU executor gives the same fields,
// scores and State (within 1e-5 of the row's score scale) on the rewritten program as on the
// original, for every shipped flow and for the generator's coverage flows
// (tests/data/flows/codegen), some built to hit each rule; and the
// rewrite does what it is for (block_topk's per-page product loses its G axis).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "flow/codegen/reduction_rewrite.h"
#include "flow/compiler.h"
#include "flow/cpu_executor.h"

namespace vortex::flow {
namespace {

namespace fs = std::filesystem;

FlowProgram compile_source(const std::string& source, const std::string& filename) {
  CompileOptions options;
  options.dump_ir = false;
  CompileResult result = compile_flow(source, filename, nullptr, options);
  if (!result.ok()) {
    ADD_FAILURE() << format_compile_errors(result, source, filename);
    return FlowProgram{};
  }
  return *result.program;
}

FlowProgram compile_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return compile_source(ss.str(), path.filename().string());
}

FlowProgram compile_shipped(const std::string& name) {
  return compile_file(fs::path(VORTEX_SOURCE_DIR) / "flows" / (name + ".py"));
}

FlowProgram compile_data_flow(const std::string& name) {
  return compile_file(fs::path(VORTEX_SOURCE_DIR) / "tests/data/flows/codegen" / (name + ".py"));
}

// Runs summarize on random pages, then `steps` score calls of one row over all of them, with
// the original and the rewritten program; compares scores and State at every step.
void expect_same_results(const FlowProgram& program, const FlowGeometry& g, uint64_t seed) {
  SCOPED_TRACE(program.filename + " G=" + std::to_string(g.G) + " D=" + std::to_string(g.D) +
               " P=" + std::to_string(g.P));
  const FlowProgram rewritten = rewrite_reductions(program, g);
  const CpuFlowExecutor original(program, g);
  const CpuFlowExecutor changed(rewritten, g);
  ASSERT_EQ(original.field_floats_per_page_head(), changed.field_floats_per_page_head());

  Rng rng(seed);
  const int pages = 37;
  const size_t block = static_cast<size_t>(g.P * g.D);
  std::vector<float> k(pages * block), v(pages * block);
  for (float& x : k) x = rng.normal();
  for (float& x : v) x = rng.normal() * (0.5f + rng.uniform());
  const int64_t ff = original.field_floats_per_page_head();
  std::vector<float> fields_a(static_cast<size_t>(pages * std::max<int64_t>(ff, 1)));
  std::vector<float> fields_b(fields_a.size());
  std::vector<const float*> kp, vp;
  std::vector<float*> fa, fb;
  for (int p = 0; p < pages; ++p) {
    kp.push_back(k.data() + p * block);
    vp.push_back(v.data() + p * block);
    fa.push_back(fields_a.data() + p * ff);
    fb.push_back(fields_b.data() + p * ff);
  }
  original.summarize_pages(kp.data(), vp.data(), pages, fa.data());
  changed.summarize_pages(kp.data(), vp.data(), pages, fb.data());
  EXPECT_EQ(fields_a, fields_b);  // summarize is not rewritten

  RowState state_a, state_b;
  std::vector<const float*> page_fields(fa.begin(), fa.end());
  for (int step = 0; step < 3; ++step) {
    std::vector<float> q(static_cast<size_t>(g.G * g.D));
    for (float& x : q) x = rng.normal();
    std::vector<float> sa(pages), sb(pages);
    ScoreRow ra{q.data(), pages, page_fields.data(), &state_a, 0, sa.data()};
    ScoreRow rb{q.data(), pages, page_fields.data(), &state_b, 0, sb.data()};
    original.score_rows({&ra, 1});
    changed.score_rows({&rb, 1});
    double scale = 0;
    for (float s : sa) scale = std::max(scale, std::fabs(static_cast<double>(s)));
    for (int p = 0; p < pages; ++p)
      EXPECT_NEAR(sb[p], sa[p], 1e-5 * std::max(scale, 1e-30))
          << "step " << step << " page " << p << " (row scale " << scale << ")";
    for (size_t s = 0; s < original.state_slots().size(); ++s)
      for (int p = 0; p < pages; ++p)
        for (int64_t e = 0; e < original.state_slots()[s].num_floats; ++e) {
          const float a = state_a.page_state(static_cast<int>(s), p)[e];
          const float b = state_b.page_state(static_cast<int>(s), p)[e];
          EXPECT_NEAR(b, a, 1e-5 * std::max(1.0, std::fabs(static_cast<double>(a))))
              << "state " << s << " page " << p;
        }
  }
}

const FlowGeometry kGeometries[] = {{8, 128, 16}, {2, 64, 16}, {4, 128, 64}, {1, 64, 4}};

TEST(ReductionRewrite, ShippedFlowsGiveTheSameResults) {
  for (const char* name : {"block_topk", "gqa_softmax_max", "h2o", "quest", "streaming",
                           "subpage_quest", "value_gated"}) {
    const FlowProgram program = compile_shipped(name);
    for (const FlowGeometry& g : kGeometries) expect_same_results(program, g, 17);
  }
}

TEST(ReductionRewrite, BlockTopkMeanOverHeadsMovesOntoTheQuery) {
  const FlowProgram program = compile_shipped("block_topk");
  const FlowGeometry g{8, 128, 16};
  const FlowProgram rewritten = rewrite_reductions(program, g);
  // No per-page value of G * D elements is left: the product is [N, 1, D], the G-mean is on q.
  bool mean_of_q = false;
  for (const Op& op : rewritten.score.ops) {
    if (op.kind == OpKind::kMul) {
      ASSERT_EQ(op.shape.size(), 3u);
      EXPECT_TRUE(op.shape[1].is_one()) << shape_to_string(op.shape);
    }
    if (op.kind == OpKind::kMean &&
        rewritten.score.ops[static_cast<size_t>(op.operands[0])].kind == OpKind::kInput)
      mean_of_q = true;
  }
  EXPECT_TRUE(mean_of_q) << print_function(rewritten, rewritten.score);
}

TEST(ReductionRewrite, SymbolicGeometryLeavesTheProgramAlone) {
  const FlowProgram program = compile_shipped("block_topk");
  const FlowProgram same = rewrite_reductions(program, FlowGeometry{});
  EXPECT_EQ(print_program(same), print_program(program));
}

// Flows written to hit each rule (tests/data/flows/codegen): merged chains with keepdims,
// distribution over both operands, a scale that fits no single reduction, nested products.
TEST(ReductionRewrite, EachRuleFiresAndGivesTheSameResults) {
  for (const char* name : {"chain", "both_sides", "odd_scale", "nested"}) {
    const FlowProgram program = compile_data_flow(name);
    ASSERT_FALSE(program.score.ops.empty()) << name;
    const FlowProgram rewritten = rewrite_reductions(program, FlowGeometry{4, 64, 16});
    EXPECT_NE(print_function(rewritten, rewritten.score), print_function(program, program.score))
        << "the rewrite did not fire on " << name;
    if (std::getenv("VORTEX_TEST_PRINT_IR"))
      std::printf("%s\n", print_function(rewritten, rewritten.score).c_str());
    for (const FlowGeometry& g : kGeometries) expect_same_results(program, g, 5);
  }
}

TEST(ReductionRewrite, OtherGeneratorFlowsGiveTheSameResults) {
  for (const char* name : {"page_ops", "row_ops"}) {
    const FlowProgram program = compile_data_flow(name);
    ASSERT_FALSE(program.score.ops.empty()) << name;
    for (const FlowGeometry& g : kGeometries)
      if (g.P >= 16) expect_same_results(program, g, 9);  // page_ops halves P/4
  }
}

}  // namespace
}  // namespace vortex::flow
