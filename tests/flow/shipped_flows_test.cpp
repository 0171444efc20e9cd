// Every shipped flow (flows/*.py), compiled by the real compiler and run by the CPU executor,
// against its straight loop-nest reference (reference_flows.h) on random inputs: fields (an int8
// Field against an independent model of its rounding), scores and selected pages, over GQA groups, page sizes, head dims, ragged rows and budgets below and
// above the row's page count, and h2o's State over many decode steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "flow/budget_planner.h"
#include "flow/compiler.h"
#include "flow/cpu_executor.h"
#include "flow/selection.h"
#include "reference_flows.h"

namespace vortex::flow {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

FlowProgram compile_shipped(const std::string& name) {
  const std::string path = std::string(VORTEX_SOURCE_DIR) + "/flows/" + name + ".py";
  const std::string source = read_text(path);
  CompileOptions options;
  options.dump_ir = false;
  CompileResult result = compile_flow(source, name + ".py", nullptr, options);
  if (!result.ok()) ADD_FAILURE() << format_compile_errors(result, source, name + ".py");
  return result.ok() ? *result.program : FlowProgram{};
}

struct Case {
  int G, P, D;
};

// What an int8 Field block stores for the values x[0..n) (docs/flows.md section 2), computed
// here in double, independently of flow/field_storage: a power-of-two step s = 2^e that puts the
// largest magnitude m in (63.5, 127] steps (e clamped to [-126, 104]), and each value rounded to
// the nearest multiple of s (ties to even), at most 127 steps. Rounds x in place; returns s.
double round_like_int8_field(double* x, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  if (m == 0) return 0;
  int e = static_cast<int>(std::floor(std::log2(m))) - 6;
  if (m / std::ldexp(1.0, e) > 127) ++e;
  e = std::clamp(e, -126, 104);
  const double step = std::ldexp(1.0, e);
  for (int64_t i = 0; i < n; ++i)
    x[i] = std::clamp(std::nearbyint(x[i] / step), -127.0, 127.0) * step;
  return step;
}

std::string case_name(const std::string& flow, const Case& c) {
  return flow + " G=" + std::to_string(c.G) + " P=" + std::to_string(c.P) +
         " D=" + std::to_string(c.D);
}

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (int G : {1, 2, 5, 8})
    for (int P : {4, 16, 64})
      for (int D : {8, 64, 128}) cases.push_back({G, P, D});
  return cases;
}

// A pool of pages for kHeads KV heads, with some pages exact copies of others so that exact
// score ties (resolved to the lower page) happen.
struct PagePool {
  static constexpr int kHeads = 2;
  int P, D, num_pages;
  std::vector<float> k, v;  // [page][head][P][D]

  PagePool(Rng& rng, int pages, int p, int d) : P(p), D(d), num_pages(pages) {
    const size_t block = static_cast<size_t>(P) * static_cast<size_t>(D);
    k.resize(static_cast<size_t>(pages) * kHeads * block);
    v.resize(k.size());
    for (float& x : k) x = rng.normal();
    for (float& x : v) x = rng.normal() * (0.5f + rng.uniform());
    for (int page = 3; page < pages; page += 5)  // page 3 copies page 1, 8 copies 6, ...
      for (int h = 0; h < kHeads; ++h) {
        std::copy_n(k_block(page - 2, h), block, k_block(page, h));
        std::copy_n(v_block(page - 2, h), block, v_block(page, h));
      }
  }
  float* k_block(int page, int head) {
    return k.data() + (static_cast<size_t>(page) * kHeads + static_cast<size_t>(head)) *
                          static_cast<size_t>(P * D);
  }
  float* v_block(int page, int head) {
    return v.data() + (static_cast<size_t>(page) * kHeads + static_cast<size_t>(head)) *
                          static_cast<size_t>(P * D);
  }
};

double score_tolerance(const std::vector<double>& ref, double value) {
  double scale = 0;
  for (double x : ref) scale = std::max(scale, std::fabs(x));
  return 1e-4 * std::max(std::fabs(value), 1e-2 * scale) + 1e-30;
}

// The runtime budget under test: the flow's own, or one of a few overrides that put the budget
// below or above the row's page count.
struct BudgetChoice {
  BudgetPolicy policy;
  reference::Budget ref;
};

constexpr int kBudgetVariants = 5;

BudgetChoice choose_budget(const BudgetPolicy& flow_policy, int variant) {
  BudgetOverrides o;
  switch (variant) {
    case 0: break;  // the flow's default
    case 1: o.pages = 6; break;
    case 2: o.pages = 40; break;  // above every row: read all
    case 3: o.ratio = 0.3; o.floor = 2; o.sink = 2; o.recent = 1; break;
    case 4: o.pages = 4; o.sink = 0; o.recent = 0; break;
  }
  BudgetChoice c;
  c.policy = apply_budget_overrides(flow_policy, o);
  c.ref.pages = c.policy.pages ? static_cast<long>(*c.policy.pages) : -1;
  c.ref.ratio = c.policy.ratio.value_or(0.0);
  c.ref.floor = static_cast<long>(c.policy.floor);
  c.ref.cap = c.policy.cap ? static_cast<long>(*c.policy.cap) : -1;
  c.ref.sink = static_cast<long>(c.policy.sink);
  c.ref.recent = static_cast<long>(c.policy.recent);
  return c;
}

class ShippedFlows : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const reference::ReferenceFlow& r : reference::reference_flows())
      programs_.emplace(r.name, compile_shipped(r.name));
  }
  static std::map<std::string, FlowProgram> programs_;
};
std::map<std::string, FlowProgram> ShippedFlows::programs_;

TEST_F(ShippedFlows, EveryShippedFlowHasAReference) {
  EXPECT_EQ(programs_.size(), 7u);
}

// One random batch per (flow, G, P, D): summarize every page, then score and select ragged rows
// (one per request and KV head) in one batch, each against the reference.
TEST_F(ShippedFlows, FieldsScoresAndSelectionsMatchTheReference) {
  for (const reference::ReferenceFlow& ref : reference::reference_flows()) {
    const FlowProgram& program = programs_.at(ref.name);
    for (const Case& c : all_cases()) {
      SCOPED_TRACE(case_name(ref.name, c));
      Rng rng(static_cast<uint64_t>(c.G * 1000003 + c.P * 1009 + c.D) ^
              std::hash<std::string>()(ref.name));
      const reference::Geometry g{c.G, c.D, c.P};
      CpuFlowExecutor executor(program, FlowGeometry{c.G, c.D, c.P});
      ASSERT_EQ(executor.field_floats_per_page_head(), ref.field_floats(g));
      const int64_t floats = executor.field_floats_per_page_head();

      const int num_pages = 26;
      PagePool pool(rng, num_pages, c.P, c.D);
      FieldStore store(1, num_pages, PagePool::kHeads, floats);

      // summarize all (page, head) items as one batch.
      std::vector<const float*> ks, vs;
      std::vector<float*> outs;
      for (int page = 0; page < num_pages; ++page)
        for (int h = 0; h < PagePool::kHeads; ++h) {
          ks.push_back(pool.k_block(page, h));
          vs.push_back(pool.v_block(page, h));
          outs.push_back(store.block(0, page, h));
        }
      executor.summarize_pages(ks.data(), vs.data(), static_cast<int64_t>(ks.size()),
                               outs.data());
      // An int8 Field (block_topk's centroid) must be within a step or two of the reference's
      // own rounding (the two compute the mean in different precision, which can move a value
      // across a rounding boundary); the reference then scores the values the executor stored,
      // so scores and selections are compared on the same inputs.
      std::vector<std::vector<double>> ref_fields(ks.size());
      for (size_t i = 0; i < ks.size(); ++i) {
        ref_fields[i] = ref.summarize(ks[i], vs[i], g);
        std::vector<double> tol(static_cast<size_t>(floats), -1.0);
        for (const FieldSlot& slot : executor.field_slots()) {
          if (!slot.int8) continue;
          const double* want = ref_fields[i].data() + slot.offset;
          const double step =
              round_like_int8_field(ref_fields[i].data() + slot.offset, slot.num_floats);
          // The stored values are whole numbers of one power-of-two step (the reference's, or
          // one next to it), at most 127 of them, and nearly all equal the reference's.
          const float* got = outs[i] + slot.offset;
          bool on_grid = false;
          for (double s : {step, 2 * step, step / 2}) {
            bool all = s > 0;
            for (int64_t f = 0; f < slot.num_floats && all; ++f) {
              const double units = got[f] / s;
              all = units == std::nearbyint(units) && std::fabs(units) <= 127;
            }
            on_grid = on_grid || all;
          }
          int64_t differ = 0;
          for (int64_t f = 0; f < slot.num_floats; ++f) differ += got[f] != want[f];
          ASSERT_TRUE(on_grid || step == 0) << "int8 field of item " << i << " is not on a grid";
          ASSERT_LE(differ, std::max<int64_t>(1, slot.num_floats / 32)) << "item " << i;
          for (int64_t f = 0; f < slot.num_floats; ++f)
            tol[static_cast<size_t>(slot.offset + f)] = 2 * step + 1e-30;
        }
        for (int64_t f = 0; f < floats; ++f) {
          const double want = ref_fields[i][static_cast<size_t>(f)];
          const double t = tol[static_cast<size_t>(f)];
          ASSERT_NEAR(outs[i][f], want, t >= 0 ? t : 1e-5 * (1 + std::fabs(want)))
              << "field float " << f << " of item " << i;
          if (t >= 0) ref_fields[i][static_cast<size_t>(f)] = outs[i][f];
        }
      }

      // Rows: requests with ragged page tables over the pool, one row per KV head.
      struct Row {
        int head, n;
        std::vector<int> table;       // row page position -> pool page
        std::vector<float> q;         // [G, D]
        BudgetChoice budget;
        std::vector<const float*> fields;  // per position; null for the partial last page
        RowState state_for_score, state_for_select;
        std::vector<double> ref_state;     // per position
      };
      std::vector<Row> rows(15);
      for (size_t r = 0; r < rows.size(); ++r) {
        Row& row = rows[r];
        row.head = static_cast<int>(r % PagePool::kHeads);
        row.n = 1 + static_cast<int>(rng.next_u64() % num_pages);
        for (int p = 0; p < row.n; ++p)
          row.table.push_back(static_cast<int>(rng.next_u64() % num_pages));
        row.q.resize(static_cast<size_t>(c.G * c.D));
        for (float& x : row.q) x = rng.normal();
        row.budget = choose_budget(program.budget, static_cast<int>(r) % kBudgetVariants);
        for (int p = 0; p < row.n; ++p)
          row.fields.push_back(p + 1 == row.n ? nullptr : store.block(0, row.table[p], row.head));
        row.ref_state.assign(static_cast<size_t>(row.n), 0.0);
      }

      // score_rows over the scoreable pages of every row that scores, as one batch.
      std::vector<ScoreRow> score_batch;
      std::vector<std::vector<float>> scores(rows.size());
      for (size_t r = 0; r < rows.size(); ++r) {
        Row& row = rows[r];
        RowPlan plan = plan_row(row.budget.policy, row.n);
        if (plan.num_scoreable() == 0) continue;
        scores[r].resize(static_cast<size_t>(plan.num_scoreable()));
        score_batch.push_back({row.q.data(), plan.num_scoreable(),
                               row.fields.data() + plan.sink_end, &row.state_for_score,
                               plan.sink_end, scores[r].data()});
      }
      executor.score_rows(score_batch);

      // select_rows takes one policy per call (one per layer in the engine): batch by budget.
      std::vector<std::vector<int32_t>> selected(rows.size());
      for (int variant = 0; variant < kBudgetVariants; ++variant) {
        std::vector<SelectRow> select_batch;
        for (size_t r = variant; r < rows.size(); r += kBudgetVariants)
          select_batch.push_back({rows[r].q.data(), rows[r].n, rows[r].fields.data(),
                                  &rows[r].state_for_select, &selected[r]});
        executor.select_rows(rows[static_cast<size_t>(variant)].budget.policy, select_batch);
      }

      for (size_t r = 0; r < rows.size(); ++r) {
        Row& row = rows[r];
        SCOPED_TRACE(testing::Message() << "row " << r << " n=" << row.n);
        reference::Plan ref_plan = reference::plan(row.budget.ref, row.n);
        std::vector<const double*> page_fields;
        std::vector<double*> page_state;
        for (int p : ref_plan.scoreable) {
          page_fields.push_back(
              ref_fields[static_cast<size_t>(row.table[static_cast<size_t>(p)] * PagePool::kHeads +
                                             row.head)]
                  .data());
          page_state.push_back(&row.ref_state[static_cast<size_t>(p)]);
        }
        std::vector<double> ref_scores;
        if (!ref_plan.scoreable.empty())
          ref_scores = ref.score(row.q.data(), page_fields, page_state, g);
        ASSERT_EQ(scores[r].size(), ref_scores.size());
        for (size_t i = 0; i < ref_scores.size(); ++i)
          ASSERT_NEAR(scores[r][i], ref_scores[i], score_tolerance(ref_scores, ref_scores[i]))
              << "score of scoreable page " << i;
        std::vector<int> want = reference::select(ref_plan, row.n, ref_scores);
        ASSERT_EQ(std::vector<int>(selected[r].begin(), selected[r].end()), want);
      }
    }
  }
}

// h2o's State over many decode steps of a few requests whose rows grow a page every few steps:
// each step's scores, selection and state must follow the reference, pages appearing in the
// scoreable range starting from 0.
TEST_F(ShippedFlows, H2oStateEvolvesLikeTheReferenceOverDecodeSteps) {
  const reference::ReferenceFlow* ref = nullptr;
  std::vector<reference::ReferenceFlow> refs = reference::reference_flows();
  for (const auto& r : refs)
    if (r.name == "h2o") ref = &r;
  ASSERT_NE(ref, nullptr);
  const FlowProgram& program = programs_.at("h2o");
  for (const Case& c : {Case{1, 16, 64}, Case{5, 4, 8}, Case{8, 16, 128}}) {
    SCOPED_TRACE(case_name("h2o", c));
    Rng rng(static_cast<uint64_t>(c.G * 31 + c.P * 7 + c.D));
    const reference::Geometry g{c.G, c.D, c.P};
    CpuFlowExecutor executor(program, FlowGeometry{c.G, c.D, c.P});
    ASSERT_TRUE(executor.has_state());
    const int max_pages = 40;
    PagePool pool(rng, max_pages, c.P, c.D);
    FieldStore store(1, max_pages, PagePool::kHeads, executor.field_floats_per_page_head());
    std::vector<std::vector<double>> ref_fields(static_cast<size_t>(max_pages));
    for (int page = 0; page < max_pages; ++page) {  // head 0 only
      const float* kp = pool.k_block(page, 0);
      const float* vp = pool.v_block(page, 0);
      float* out = store.block(0, page, 0);
      executor.summarize_pages(&kp, &vp, 1, &out);
      ref_fields[static_cast<size_t>(page)] = ref->summarize(kp, vp, g);
    }
    BudgetOverrides o;
    o.pages = 6;
    BudgetPolicy policy = apply_budget_overrides(program.budget, o);
    reference::Budget ref_budget;
    ref_budget.pages = 6;

    // Three requests starting at different lengths; request j's page p is pool page
    // (p + 11 j) % max_pages.
    struct Request {
      int n;
      RowState state_for_score, state_for_select;
      std::vector<double> ref_state;
    };
    std::vector<Request> requests(3);
    for (int j = 0; j < 3; ++j) requests[static_cast<size_t>(j)].n = 2 + 5 * j;
    for (int step = 0; step < 60; ++step) {
      for (int j = 0; j < 3; ++j) {
        Request& req = requests[static_cast<size_t>(j)];
        SCOPED_TRACE(testing::Message() << "step " << step << " request " << j);
        if (step % 3 == 0 && req.n < 30) ++req.n;  // a page fills up, a new partial one starts
        req.ref_state.resize(static_cast<size_t>(req.n), 0.0);
        std::vector<float> q(static_cast<size_t>(c.G * c.D));
        for (float& x : q) x = rng.normal() + (j == 1 ? 1.0f : 0.0f);
        std::vector<const float*> fields;
        for (int p = 0; p < req.n; ++p)
          fields.push_back(p + 1 == req.n ? nullptr : store.block(0, (p + 11 * j) % max_pages, 0));

        RowPlan plan = plan_row(policy, req.n);
        std::vector<float> scores(static_cast<size_t>(plan.num_scoreable()));
        if (plan.num_scoreable() > 0) {
          ScoreRow row{q.data(), plan.num_scoreable(), fields.data() + plan.sink_end,
                       &req.state_for_score, plan.sink_end, scores.data()};
          executor.score_rows(std::span<const ScoreRow>(&row, 1));
        }
        std::vector<int32_t> selected;
        SelectRow srow{q.data(), req.n, fields.data(), &req.state_for_select, &selected};
        executor.select_rows(policy, std::span<const SelectRow>(&srow, 1));

        reference::Plan ref_plan = reference::plan(ref_budget, req.n);
        std::vector<const double*> page_fields;
        std::vector<double*> page_state;
        for (int p : ref_plan.scoreable) {
          page_fields.push_back(ref_fields[static_cast<size_t>((p + 11 * j) % max_pages)].data());
          page_state.push_back(&req.ref_state[static_cast<size_t>(p)]);
        }
        std::vector<double> ref_scores;
        if (!page_fields.empty()) ref_scores = ref->score(q.data(), page_fields, page_state, g);
        ASSERT_EQ(scores.size(), ref_scores.size());
        for (size_t i = 0; i < ref_scores.size(); ++i)
          ASSERT_NEAR(scores[i], ref_scores[i], score_tolerance(ref_scores, ref_scores[i]));
        ASSERT_EQ(std::vector<int>(selected.begin(), selected.end()),
                  reference::select(ref_plan, req.n, ref_scores));
        for (int p : ref_plan.scoreable) {
          double want = req.ref_state[static_cast<size_t>(p)];
          ASSERT_NEAR(req.state_for_score.page_state(0, p)[0], want, 1e-4 * (1 + want));
          ASSERT_NEAR(req.state_for_select.page_state(0, p)[0], want, 1e-4 * (1 + want));
        }
      }
    }
  }
}

// Selection does not depend on how rows are batched: one batch of all rows equals each row alone.
TEST_F(ShippedFlows, BatchedSelectionEqualsRowsRunAlone) {
  const FlowProgram& program = programs_.at("quest");
  Case c{4, 16, 64};
  Rng rng(99);
  CpuFlowExecutor executor(program, FlowGeometry{c.G, c.D, c.P});
  const int num_pages = 64;
  PagePool pool(rng, num_pages, c.P, c.D);
  FieldStore store(1, num_pages, PagePool::kHeads, executor.field_floats_per_page_head());
  std::vector<const float*> ks, vs;
  std::vector<float*> outs;
  for (int page = 0; page < num_pages; ++page)
    for (int h = 0; h < PagePool::kHeads; ++h) {
      ks.push_back(pool.k_block(page, h));
      vs.push_back(pool.v_block(page, h));
      outs.push_back(store.block(0, page, h));
    }
  executor.summarize_pages(ks.data(), vs.data(), static_cast<int64_t>(ks.size()), outs.data());
  const int num_rows = 40;
  std::vector<std::vector<float>> qs(num_rows);
  std::vector<std::vector<const float*>> fields(num_rows);
  std::vector<std::vector<int32_t>> batched(num_rows), alone(num_rows);
  std::vector<SelectRow> batch;
  BudgetOverrides o;
  o.pages = 8;
  BudgetPolicy policy = apply_budget_overrides(program.budget, o);
  for (int r = 0; r < num_rows; ++r) {
    qs[r].resize(static_cast<size_t>(c.G * c.D));
    for (float& x : qs[r]) x = rng.normal();
    int n = 1 + static_cast<int>(rng.next_u64() % num_pages);
    for (int p = 0; p < n; ++p)
      fields[r].push_back(store.block(0, static_cast<int>(rng.next_u64() % num_pages), r % 2));
    batch.push_back({qs[r].data(), n, fields[r].data(), nullptr, &batched[r]});
  }
  executor.select_rows(policy, batch);
  for (int r = 0; r < num_rows; ++r) {
    SelectRow one = batch[static_cast<size_t>(r)];
    one.selected = &alone[r];
    executor.select_rows(policy, std::span<const SelectRow>(&one, 1));
    EXPECT_EQ(batched[r], alone[r]) << "row " << r;
    EXPECT_EQ(batched[r].size(), static_cast<size_t>(plan_row(policy, one.num_pages).num_selected()));
  }
}

}  // namespace
}  // namespace vortex::flow
