#include <string>

#include "flow/budget_planner.h"
#include "flow/codegen/cuda_codegen.h"
#include "flow/compiler.h"
#include "fuzz_targets.h"

namespace vortex::fuzz {
namespace {

constexpr const char* kFilename = "fuzz.py";

// compile_flow promises diagnostics, never exceptions, for bad input; a rejected flow must say
// why.
flow::CompileResult compile(std::string_view source, const flow::FlowGeometry* geometry) {
  flow::CompileResult result;
  try {
    result = flow::compile_flow(source, kFilename, geometry);
  } catch (const std::exception& e) {
    throw FuzzInvariantError(std::string("compile_flow threw: ") + e.what());
  }
  if (!result.ok() && result.diagnostics.empty())
    throw FuzzInvariantError("compile_flow rejected the flow without a diagnostic");
  if (!result.ok()) (void)flow::format_compile_errors(result, source, kFilename);
  return result;
}

// The engine plans every decode row with the flow's budget (after the same validation the CLI's
// overrides go through); the plan must stay inside the row.
void plan_rows(const flow::BudgetPolicy& budget) {
  const flow::BudgetPolicy policy = flow::apply_budget_overrides(budget, {});
  for (int32_t n : {0, 1, 3, 17, 1000, 1 << 20, 2147483647}) {
    const flow::RowPlan plan = flow::plan_row(policy, n);
    const bool inside = plan.num_pages == n && 0 <= plan.sink_end &&
                        plan.sink_end <= plan.recent_begin && plan.recent_begin <= n &&
                        0 <= plan.k && plan.k <= plan.num_scoreable() &&
                        plan.num_selected() <= n;
    if (!inside)
      throw FuzzInvariantError("plan_row(" + std::to_string(n) + ") left the row: sink_end " +
                               std::to_string(plan.sink_end) + ", recent_begin " +
                               std::to_string(plan.recent_begin) + ", k " +
                               std::to_string(plan.k));
  }
}

}  // namespace

void fuzz_flow_check(std::string_view source) {
  // `vortex check FLOW.py`: symbolic sizes.
  const flow::CompileResult symbolic = compile(source, nullptr);
  if (symbolic.ok()) plan_rows(symbolic.program->budget);

  // `vortex check --target cuda --model llama-3.1-8b`: G=4, D=128, P=16, then the generator
  // (as the CLI does, minus NVRTC), once with its default lanes and once one thread per page.
  const flow::FlowGeometry geometry{4, 128, 16};
  const flow::CompileResult bound = compile(source, &geometry);
  if (!bound.ok()) return;
  for (int lanes : {0, 1}) {
    flow::CudaCodegenOptions options;
    options.score_lanes = lanes;
    const flow::CudaFlowSource cuda = flow::generate_cuda_flow(*bound.program, geometry, options);
    if (cuda.source.empty()) throw FuzzInvariantError("generate_cuda_flow returned no source");
  }
}

}  // namespace vortex::fuzz
