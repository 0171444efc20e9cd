#include "flow/budget_planner.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"

namespace vortex::flow {
namespace {

BudgetPolicy ratio_policy(double ratio, int64_t sink, int64_t recent) {
  BudgetPolicy policy;
  policy.ratio = ratio;
  policy.sink = sink;
  policy.recent = recent;
  return policy;
}

BudgetPolicy pages_policy(int64_t pages, int64_t sink, int64_t recent) {
  BudgetPolicy policy;
  policy.pages = pages;
  policy.sink = sink;
  policy.recent = recent;
  return policy;
}

TEST(BudgetPlanner, DefaultsFollowTheSpec) {
  BudgetPolicy policy;
  EXPECT_FALSE(policy.pages.has_value());
  EXPECT_FALSE(policy.ratio.has_value());
  EXPECT_EQ(policy.floor, 0);
  EXPECT_FALSE(policy.cap.has_value());
  EXPECT_EQ(policy.sink, 1);
  EXPECT_EQ(policy.recent, 2);
  EXPECT_EQ(policy.dense_layers, std::vector<int64_t>{0});
  // Neither pages nor ratio: ratio 1/16, rounded up.
  EXPECT_EQ(row_budget(policy, 160), 10);
  EXPECT_EQ(row_budget(policy, 161), 11);
  EXPECT_EQ(row_budget(policy, 1), 1);
}

TEST(BudgetPlanner, RatioRoundsUpButExactProductsStayExact) {
  EXPECT_EQ(row_budget(ratio_policy(0.25, 1, 2), 9), 3);
  EXPECT_EQ(row_budget(ratio_policy(0.25, 1, 2), 8), 2);
  // 0.1 * 30 is 3.0000000000000004 in doubles; the spec means 3.
  EXPECT_EQ(row_budget(ratio_policy(0.1, 1, 2), 30), 3);
  EXPECT_EQ(row_budget(ratio_policy(0.1, 1, 2), 31), 4);
  EXPECT_EQ(row_budget(ratio_policy(1.0 / 3.0, 1, 2), 300), 100);
  EXPECT_EQ(row_budget(ratio_policy(1.0, 1, 2), 17), 17);
  EXPECT_EQ(row_budget(ratio_policy(0.5, 1, 2), 0), 0);
}

TEST(BudgetPlanner, FloorAndCapBoundTheBudget) {
  BudgetPolicy policy = ratio_policy(1.0 / 16, 1, 2);
  policy.floor = 4;
  policy.cap = 6;
  EXPECT_EQ(row_budget(policy, 16), 4);   // ceil(1) raised to the floor
  EXPECT_EQ(row_budget(policy, 80), 5);   // in range
  EXPECT_EQ(row_budget(policy, 800), 6);  // 50 capped
  BudgetPolicy fixed = pages_policy(10, 1, 2);
  fixed.cap = 3;
  EXPECT_EQ(row_budget(fixed, 100), 3);
  fixed.cap.reset();
  fixed.floor = 12;
  EXPECT_EQ(row_budget(fixed, 100), 12);
}

TEST(BudgetPlanner, LongRowReservesSinkAndRecentAndScoresTheMiddle) {
  RowPlan plan = plan_row(pages_policy(6, 1, 2), 20);
  EXPECT_FALSE(plan.read_all);
  EXPECT_EQ(plan.budget, 6);
  EXPECT_EQ(plan.reserved_pages(), (std::vector<int32_t>{0, 18, 19}));
  EXPECT_EQ(plan.num_scoreable(), 17);
  EXPECT_EQ(plan.scoreable_page(0), 1);
  EXPECT_EQ(plan.scoreable_page(16), 17);
  EXPECT_EQ(plan.k, 3);
  EXPECT_EQ(plan.num_selected(), 6);
}

TEST(BudgetPlanner, SinglePageRowReadsItsOnlyPage) {
  RowPlan plan = plan_row(BudgetPolicy{}, 1);
  EXPECT_TRUE(plan.read_all);
  EXPECT_EQ(plan.reserved_pages(), std::vector<int32_t>{0});
  EXPECT_EQ(plan.num_scoreable(), 0);
  EXPECT_EQ(plan.k, 0);
  EXPECT_EQ(plan.num_selected(), 1);
}

TEST(BudgetPlanner, RowShorterThanSinkPlusRecentReadsAll) {
  RowPlan plan = plan_row(pages_policy(0, 4, 8), 10);
  EXPECT_TRUE(plan.read_all);
  EXPECT_EQ(plan.num_reserved(), 10);  // union clipped to n, no page counted twice
  EXPECT_EQ(plan.num_selected(), 10);
  EXPECT_EQ(plan.scoreable_pages(), std::vector<int32_t>{});

  RowPlan overlap = plan_row(pages_policy(0, 3, 3), 5);
  EXPECT_TRUE(overlap.read_all);
  EXPECT_EQ(overlap.reserved_pages(), (std::vector<int32_t>{0, 1, 2, 3, 4}));
}

TEST(BudgetPlanner, RecentZeroStillKeepsTheLastPage) {
  RowPlan plan = plan_row(pages_policy(3, 0, 0), 10);
  EXPECT_FALSE(plan.read_all);
  EXPECT_EQ(plan.reserved_pages(), std::vector<int32_t>{9});
  EXPECT_EQ(plan.scoreable_pages(), (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(plan.k, 2);
}

TEST(BudgetPlanner, ZeroPagesBudgetKeepsOnlySinkAndRecent) {
  RowPlan plan = plan_row(pages_policy(0, 4, 3), 100);
  EXPECT_FALSE(plan.read_all);
  EXPECT_EQ(plan.k, 0);
  EXPECT_EQ(plan.num_scoreable(), 93);
  EXPECT_EQ(plan.reserved_pages(), (std::vector<int32_t>{0, 1, 2, 3, 97, 98, 99}));
  EXPECT_EQ(plan.num_selected(), 7);
}

TEST(BudgetPlanner, BudgetSmallerThanReservedTakesNoScoredPages) {
  RowPlan plan = plan_row(pages_policy(2, 2, 2), 10);
  EXPECT_FALSE(plan.read_all);
  EXPECT_EQ(plan.k, 0);
  EXPECT_EQ(plan.num_selected(), 4);
}

TEST(BudgetPlanner, ReadsAllExactlyWhenBudgetCoversTheRow) {
  EXPECT_TRUE(plan_row(pages_policy(10, 1, 2), 10).read_all);
  EXPECT_FALSE(plan_row(pages_policy(10, 1, 2), 11).read_all);
  EXPECT_EQ(plan_row(pages_policy(10, 1, 2), 11).k, 7);
  EXPECT_EQ(plan_row(pages_policy(10, 1, 2), 11).num_scoreable(), 8);
  // ratio 1 reads everything at any length
  EXPECT_TRUE(plan_row(ratio_policy(1.0, 1, 2), 1000).read_all);
}

TEST(BudgetPlanner, EmptyRowPlansNothing) {
  RowPlan plan = plan_row(BudgetPolicy{}, 0);
  EXPECT_TRUE(plan.read_all);
  EXPECT_EQ(plan.num_selected(), 0);
  EXPECT_EQ(plan.num_reserved(), 0);
}

TEST(BudgetPlanner, PlanInvariantsHoldOverManyPolicies) {
  for (int32_t sink = 0; sink <= 4; ++sink)
    for (int32_t recent = 0; recent <= 4; ++recent)
      for (int32_t pages = 0; pages <= 12; pages += 3)
        for (int32_t n = 0; n <= 20; ++n) {
          RowPlan plan = plan_row(pages_policy(pages, sink, recent), n);
          SCOPED_TRACE(testing::Message() << "sink=" << sink << " recent=" << recent
                                          << " pages=" << pages << " n=" << n);
          int32_t expected_reserved = 0;
          for (int32_t p = 0; p < n; ++p)
            if (p < sink || p >= n - std::max(recent, 1)) ++expected_reserved;
          EXPECT_EQ(plan.num_reserved(), expected_reserved);
          EXPECT_EQ(plan.read_all, n <= std::max(pages, expected_reserved));
          if (!plan.read_all) {
            EXPECT_EQ(plan.num_scoreable(), n - expected_reserved);
            EXPECT_EQ(plan.k, std::max(0, pages - expected_reserved));
            EXPECT_LT(plan.k, plan.num_scoreable());
          }
        }
}

// The CUDA runner summarizes a step's filled pages after the last layer, because the only page
// a decode row fills in a step is its last, and no policy lets a row score its last page (it
// holds the token being decoded): recent 0 reserves it too.
TEST(BudgetPlanner, LastPageIsNeverScoreable) {
  for (int32_t sink = 0; sink <= 3; ++sink)
    for (int32_t recent = 0; recent <= 3; ++recent)
      for (double ratio : {0.05, 0.25, 0.5}) {
        const BudgetPolicy policy = ratio_policy(ratio, sink, recent);
        for (int32_t n = 1; n <= 64; ++n) {
          const RowPlan plan = plan_row(policy, n);
          const std::vector<int32_t> scoreable = plan.scoreable_pages();
          SCOPED_TRACE(testing::Message() << "sink=" << sink << " recent=" << recent
                                          << " ratio=" << ratio << " n=" << n);
          EXPECT_TRUE(scoreable.empty() || scoreable.back() < n - 1);
          const std::vector<int32_t> reserved = plan.reserved_pages();
          EXPECT_TRUE(plan.read_all || (!reserved.empty() && reserved.back() == n - 1));
        }
      }
}

TEST(BudgetPlanner, DenseLayersAreListedLayersOnly) {
  BudgetPolicy policy;
  policy.dense_layers = {0, 5};
  EXPECT_TRUE(is_dense_layer(policy, 0));
  EXPECT_TRUE(is_dense_layer(policy, 5));
  EXPECT_FALSE(is_dense_layer(policy, 1));
  policy.dense_layers.clear();
  EXPECT_FALSE(is_dense_layer(policy, 0));
}

TEST(BudgetPlanner, OverridesReplaceFieldsAndPagesDisplacesRatio) {
  BudgetPolicy flow = ratio_policy(0.125, 1, 2);
  BudgetOverrides overrides;
  overrides.pages = 7;
  overrides.sink = 4;
  overrides.dense_layers = std::vector<int64_t>{0, 1};
  BudgetPolicy policy = apply_budget_overrides(flow, overrides);
  EXPECT_EQ(policy.pages, 7);
  EXPECT_FALSE(policy.ratio.has_value());
  EXPECT_EQ(policy.sink, 4);
  EXPECT_EQ(policy.recent, 2);
  EXPECT_EQ(policy.dense_layers, (std::vector<int64_t>{0, 1}));

  BudgetOverrides to_ratio;
  to_ratio.ratio = 0.5;
  BudgetPolicy back = apply_budget_overrides(policy, to_ratio);
  EXPECT_FALSE(back.pages.has_value());
  EXPECT_EQ(back.ratio, 0.5);
}

TEST(BudgetPlanner, BadOverridesAreUsageErrorsNamingTheFlag) {
  auto message_of = [](const BudgetOverrides& overrides) {
    try {
      apply_budget_overrides(BudgetPolicy{}, overrides);
    } catch (const Error& e) {
      EXPECT_EQ(e.exit_code(), 2);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  BudgetOverrides both;
  both.pages = 1;
  both.ratio = 0.5;
  EXPECT_NE(message_of(both).find("--topk-pages and --topk-ratio"), std::string::npos);
  BudgetOverrides ratio;
  ratio.ratio = 1.5;
  EXPECT_NE(message_of(ratio).find("--topk-ratio must be in (0, 1]"), std::string::npos);
  BudgetOverrides zero_ratio;
  zero_ratio.ratio = 0.0;
  EXPECT_NE(message_of(zero_ratio).find("--topk-ratio"), std::string::npos);
  BudgetOverrides sink;
  sink.sink = -1;
  EXPECT_NE(message_of(sink).find("--sink-pages must be >= 0, got -1"), std::string::npos);
  BudgetOverrides floor_cap;
  floor_cap.floor = 5;
  floor_cap.cap = 2;
  EXPECT_NE(message_of(floor_cap).find("floor (5) is greater than its cap (2)"),
            std::string::npos);
}

TEST(BudgetPlanner, ValidationNamesTheContextAndField) {
  BudgetPolicy policy;
  EXPECT_NO_THROW(validate_budget_policy(policy, "quest.py: budget"));
  policy.pages = 3;
  policy.ratio = 0.5;
  EXPECT_THROW(validate_budget_policy(policy, "quest.py: budget"), Error);
  policy.ratio.reset();
  policy.floor = 4;
  policy.cap = 3;
  try {
    validate_budget_policy(policy, "quest.py: budget");
    FAIL() << "floor > cap accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "quest.py: budget: floor (4) is greater than cap (3)");
  }
}

}  // namespace
}  // namespace vortex::flow
