#include "flow/selection.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace vortex::flow {
namespace {

BudgetPolicy pages_policy(int64_t pages, int64_t sink, int64_t recent) {
  BudgetPolicy policy;
  policy.pages = pages;
  policy.sink = sink;
  policy.recent = recent;
  return policy;
}

// The spec's selection by full sort: the slow, obvious version.
std::vector<int32_t> select_by_sort(const RowPlan& plan, const std::vector<float>& scores) {
  if (plan.read_all) {
    std::vector<int32_t> all(static_cast<size_t>(plan.num_pages));
    for (int32_t p = 0; p < plan.num_pages; ++p) all[static_cast<size_t>(p)] = p;
    return all;
  }
  std::vector<int32_t> order(scores.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    float sa = scores[static_cast<size_t>(a)], sb = scores[static_cast<size_t>(b)];
    if (std::isnan(sa) || std::isnan(sb)) return !std::isnan(sa) && std::isnan(sb);
    return sa > sb;
  });
  std::vector<int32_t> selected = plan.reserved_pages();
  for (int32_t i = 0; i < plan.k; ++i) selected.push_back(plan.scoreable_page(order[i]));
  std::sort(selected.begin(), selected.end());
  return selected;
}

TEST(Selection, TakesReservedPlusHighestScoresInPageOrder) {
  RowPlan plan = plan_row(pages_policy(5, 1, 2), 10);  // scoreable pages 1..7, k = 2
  ASSERT_EQ(plan.k, 2);
  std::vector<float> scores = {0.1f, 0.9f, 0.2f, 0.3f, 0.8f, 0.0f, -1.0f};
  EXPECT_EQ(select_pages(plan, scores), (std::vector<int32_t>{0, 2, 5, 8, 9}));
}

TEST(Selection, TiesGoToTheLowerPage) {
  RowPlan plan = plan_row(pages_policy(3, 0, 1), 6);  // scoreable 0..4, k = 2
  std::vector<float> scores = {1.0f, 2.0f, 2.0f, 2.0f, 1.0f};
  EXPECT_EQ(select_pages(plan, scores), (std::vector<int32_t>{1, 2, 5}));
  std::vector<float> zeros = {0.0f, -0.0f, 0.0f, 0.0f, 0.0f};
  EXPECT_EQ(select_pages(plan, zeros), (std::vector<int32_t>{0, 1, 5}));
}

TEST(Selection, NanScoresRankBelowEveryNumber) {
  RowPlan plan = plan_row(pages_policy(3, 0, 1), 6);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> scores = {nan, -inf, nan, -5.0f, nan};
  EXPECT_EQ(select_pages(plan, scores), (std::vector<int32_t>{1, 3, 5}));
  std::vector<float> all_nan = {nan, nan, nan, nan, nan};
  EXPECT_EQ(select_pages(plan, all_nan), (std::vector<int32_t>{0, 1, 5}));
}

TEST(Selection, ReadAllRowsSelectEveryPageWithoutScores) {
  RowPlan plan = plan_row(pages_policy(8, 1, 2), 5);
  ASSERT_TRUE(plan.read_all);
  EXPECT_EQ(select_pages(plan, std::vector<float>{}), (std::vector<int32_t>{0, 1, 2, 3, 4}));
}

TEST(Selection, ZeroKKeepsOnlyReservedPages) {
  RowPlan plan = plan_row(pages_policy(0, 2, 3), 12);
  std::vector<float> scores(static_cast<size_t>(plan.num_scoreable()), 1.0f);
  EXPECT_EQ(select_pages(plan, scores), (std::vector<int32_t>{0, 1, 9, 10, 11}));
}

TEST(Selection, WrongScoreCountIsAnError) {
  RowPlan plan = plan_row(pages_policy(3, 1, 1), 10);
  EXPECT_THROW(select_pages(plan, std::vector<float>(3)), Error);
}

TEST(Selection, MatchesAFullSortOnRandomRowsWithTiesAndNans) {
  Rng rng(7);
  std::vector<int32_t> scratch;
  for (int trial = 0; trial < 2000; ++trial) {
    int32_t n = static_cast<int32_t>(rng.next_u64() % 80);
    BudgetPolicy policy = pages_policy(static_cast<int32_t>(rng.next_u64() % 40),
                                       static_cast<int32_t>(rng.next_u64() % 4),
                                       static_cast<int32_t>(rng.next_u64() % 4));
    RowPlan plan = plan_row(policy, n);
    std::vector<float> scores(static_cast<size_t>(plan.num_scoreable()));
    for (float& s : scores) {
      uint64_t kind = rng.next_u64() % 10;
      s = kind == 0   ? std::numeric_limits<float>::quiet_NaN()
          : kind < 4  ? static_cast<float>(rng.next_u64() % 3)  // many exact ties
                      : rng.normal();
    }
    std::vector<int32_t> selected(static_cast<size_t>(plan.num_selected()));
    select_pages(plan, scores, selected, scratch);
    ASSERT_EQ(selected, select_by_sort(plan, scores)) << "trial " << trial << " n=" << n;
  }
}

}  // namespace
}  // namespace vortex::flow
