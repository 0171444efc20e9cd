// The CPU executor's row contract, through flows compiled from source: State starts at 0 per
// page and persists per row, reserved pages need no fields, a missing RowState is an error,
// and results do not depend on the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "flow/compiler.h"
#include "flow/cpu_executor.h"

namespace vortex::flow {
namespace {

FlowProgram compile(const std::string& source) {
  CompileOptions options;
  options.dump_ir = false;
  CompileResult result = compile_flow(source, "inline.py", nullptr, options);
  EXPECT_TRUE(result.ok()) << format_compile_errors(result, source, "inline.py");
  return result.ok() ? *result.program : FlowProgram{};
}

// score = the page's scalar field + a step counter kept in State.
const char* kCounterFlow = R"(
"""Test flow: a per-page scalar plus a per-request counter of how often the page was scored."""
from vortex.flow import Flow, Field, State, Budget

class Counter(Flow):
    level = Field()
    seen = State()
    budget = Budget(pages=3, sink=1, recent=1)

    def summarize(self, k, v):
        self.level = k.mean()

    def score(self, q):
        seen = self.seen + 1
        self.seen = seen
        return self.level + 0 * seen
)";

TEST(ExecutorRows, StateStartsAtZeroPerPageAndPersistsAcrossSteps) {
  FlowProgram program = compile(kCounterFlow);
  CpuFlowExecutor executor(program, FlowGeometry{2, 4, 4});
  ASSERT_TRUE(executor.has_state());
  ASSERT_EQ(executor.field_floats_per_page_head(), 1);
  std::vector<float> levels = {5, 1, 4, 2, 3, 0, 6, 7};
  std::vector<const float*> fields;
  for (const float& l : levels) fields.push_back(&l);
  std::vector<float> q(8, 0.0f);
  RowState state;
  std::vector<int32_t> selected;
  // n = 5: pages 1..3 scoreable (k = 1); then the row grows to 8: pages 1..6 scoreable.
  for (int step = 0; step < 3; ++step) {
    SelectRow row{q.data(), 5, fields.data(), &state, &selected};
    executor.select_rows(program.budget, std::span<const SelectRow>(&row, 1));
    EXPECT_EQ(selected, (std::vector<int32_t>{0, 2, 4}));  // level 4 at page 2 is the best
  }
  SelectRow grown{q.data(), 8, fields.data(), &state, &selected};
  executor.select_rows(program.budget, std::span<const SelectRow>(&grown, 1));
  EXPECT_EQ(selected, (std::vector<int32_t>{0, 6, 7}));
  EXPECT_EQ(state.page_state(0, 0)[0], 0.0f);  // reserved: never scored
  for (int p = 1; p <= 3; ++p) EXPECT_EQ(state.page_state(0, p)[0], 4.0f) << "page " << p;
  for (int p = 4; p <= 6; ++p) EXPECT_EQ(state.page_state(0, p)[0], 1.0f) << "page " << p;
  // The last page was never scoreable, so the state does not hold it yet; once grown to it, it
  // starts at 0.
  EXPECT_EQ(state.num_pages(), 7);
  state.ensure_pages(8);
  EXPECT_EQ(state.page_state(0, 7)[0], 0.0f);
}

TEST(ExecutorRows, RowsReadingAllPagesNeitherScoreNorTouchState) {
  FlowProgram program = compile(kCounterFlow);
  CpuFlowExecutor executor(program, FlowGeometry{1, 4, 4});
  std::vector<const float*> fields(3, nullptr);  // no field is read: n <= B
  std::vector<float> q(4, 1.0f);
  RowState state;
  std::vector<int32_t> selected;
  SelectRow row{q.data(), 3, fields.data(), &state, &selected};
  executor.select_rows(program.budget, std::span<const SelectRow>(&row, 1));
  EXPECT_EQ(selected, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(state.num_pages(), 0);
}

TEST(ExecutorRows, StatefulFlowWithoutRowStateIsAnError) {
  FlowProgram program = compile(kCounterFlow);
  CpuFlowExecutor executor(program, FlowGeometry{1, 4, 4});
  std::vector<float> levels(6, 1.0f);
  std::vector<const float*> fields;
  for (const float& l : levels) fields.push_back(&l);
  std::vector<float> q(4, 1.0f);
  std::vector<int32_t> selected;
  SelectRow row{q.data(), 6, fields.data(), nullptr, &selected};
  EXPECT_THROW(executor.select_rows(program.budget, std::span<const SelectRow>(&row, 1)), Error);
}

TEST(ExecutorRows, ResultsDoNotDependOnTheThreadCount) {
  FlowProgram program = compile(R"(
"""Test flow: Quest-like bound with a softmax over pages, to cover cross-page ops."""
from vortex.flow import Flow, Field, D, maximum, softmax

class Mixed(Flow):
    kmax = Field(1, D)
    kmin = Field(1, D)

    def summarize(self, k, v):
        self.kmax = k.max(axis=0, keepdims=True)
        self.kmin = k.min(axis=0, keepdims=True)

    def score(self, q):
        s = maximum(q * self.kmax, q * self.kmin).sum(axis=-1)
        return softmax(s, axis=0).max(axis=-1)
)");
  const FlowGeometry geometry{4, 32, 16};
  CpuFlowExecutor executor(program, geometry);
  const int num_pages = 200;
  Rng rng(5);
  std::vector<float> k(static_cast<size_t>(num_pages * 16 * 32)), v(k.size());
  for (float& x : k) x = rng.normal();
  FieldStore store(1, num_pages, 1, executor.field_floats_per_page_head());
  std::vector<const float*> ks, vs;
  std::vector<float*> outs;
  for (int p = 0; p < num_pages; ++p) {
    ks.push_back(k.data() + p * 16 * 32);
    vs.push_back(v.data() + p * 16 * 32);
    outs.push_back(store.block(0, p, 0));
  }
  std::vector<float> q(static_cast<size_t>(30 * 4 * 32));
  for (float& x : q) x = rng.normal();
  std::vector<const float*> fields;
  for (int p = 0; p < num_pages; ++p) fields.push_back(store.block(0, (p * 37) % num_pages, 0));

  auto run = [&](int threads) {
    ThreadPool::set_global_threads(threads);
    executor.summarize_pages(ks.data(), vs.data(), num_pages, outs.data());
    std::vector<std::vector<int32_t>> selected(30);
    std::vector<SelectRow> rows;
    for (int r = 0; r < 30; ++r)
      rows.push_back({q.data() + r * 4 * 32, 20 + 6 * r, fields.data(), nullptr, &selected[r]});
    BudgetPolicy policy;
    policy.pages = 9;
    executor.select_rows(policy, rows);
    std::vector<float> all_fields(store.block(0, 0, 0), store.block(0, 0, 0) + num_pages * 2 * 32);
    return std::make_pair(all_fields, selected);
  };
  auto one = run(1);
  auto four = run(4);
  ThreadPool::set_global_threads(2);
  EXPECT_EQ(one.first, four.first);
  EXPECT_EQ(one.second, four.second);
}

// page_index() is each scoreable page's position in the row and num_pages() the row's page
// count: a flow scoring by them alone selects exactly what the formula says.
TEST(ExecutorRows, PageIndexAndNumPagesAreTheRowsPositions) {
  FlowProgram program = compile(R"(
"""Test flow: prefers the pages a third of the way into the row, by position alone."""
from vortex.flow import Flow, Field, Budget, page_index, num_pages, abs

class Third(Flow):
    level = Field()
    budget = Budget(pages=4, sink=2, recent=1)

    def summarize(self, k, v):
        self.level = k.mean()

    def score(self, q):
        return -abs(page_index() - num_pages() / 3) + 0 * self.level
)");
  CpuFlowExecutor executor(program, FlowGeometry{1, 4, 4});
  std::vector<float> level(40, 0.0f);
  std::vector<const float*> fields;
  for (const float& l : level) fields.push_back(&l);
  std::vector<float> q(4, 0.0f);
  std::vector<int32_t> selected;
  // n = 30: reserved {0, 1, 29}; k = 1; the page nearest 10 is 10.
  SelectRow row{q.data(), 30, fields.data(), nullptr, &selected};
  executor.select_rows(program.budget, std::span<const SelectRow>(&row, 1));
  EXPECT_EQ(selected, (std::vector<int32_t>{0, 1, 10, 29}));
  // n = 37: the nearest to 12.33 is 12.
  row.num_pages = 37;
  executor.select_rows(program.budget, std::span<const SelectRow>(&row, 1));
  EXPECT_EQ(selected, (std::vector<int32_t>{0, 1, 12, 36}));

  // Scoring alone: scores over pages first_page .. first_page + N - 1 of a row of row_pages.
  std::vector<float> scores(5);
  ScoreRow alone{q.data(), 5, fields.data(), nullptr, 3, scores.data(), 21};
  executor.score_rows(std::span<const ScoreRow>(&alone, 1));
  for (int i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(scores[i], -std::abs(3.0f + i - 7.0f)) << i;
  // A row whose page count was not given cannot read num_pages().
  alone.row_pages = -1;
  EXPECT_THROW(executor.score_rows(std::span<const ScoreRow>(&alone, 1)), Error);
}

TEST(ExecutorRows, PagePositionsExistOnlyInScore) {
  const std::string source = R"(
"""Test flow: reads a page position in summarize, which has none."""
from vortex.flow import Flow, Field, page_index

class Wrong(Flow):
    level = Field()

    def summarize(self, k, v):
        self.level = k.mean() + page_index()

    def score(self, q):
        return self.level
)";
  CompileOptions options;
  options.dump_ir = false;
  CompileResult result = compile_flow(source, "wrong.py", nullptr, options);
  ASSERT_FALSE(result.ok());
  const std::string errors = format_compile_errors(result, source, "wrong.py");
  EXPECT_NE(
      errors.find(
          "wrong.py:9:33: error: page_index() (the row's page positions) exists only in score"),
      std::string::npos)
      << errors;
}

}  // namespace
}  // namespace vortex::flow
