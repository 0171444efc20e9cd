// Op consistency of the device planner and top-k (kernels/cuda/page_selection.h) against the CPU
// functions they mirror, flow::plan_row and flow::select_pages: ragged rows, many budget
// policies, and scores with ties, NaNs, infinities, signed zeros and denormals. Plans,
// worklists, page lists and token counts must be equal, not close.
#include "kernels/cuda/page_selection.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/cuda_test_util.h"
#include "engine/cuda/device_page_policy.h"
#include "flow/budget_planner.h"
#include "flow/selection.h"

namespace vortex {
namespace {

using test::DeviceArray;

enum class ScoreKind {
  kNormal,     // distinct almost surely
  kFewValues,  // many exact ties
  kAllEqual,
  kSpecials,  // NaN, +-inf, +-0, denormals, ties
  kAllNaN,
  kAscending,
  kNearlyEqual,  // equal in the high bits: the selection needs every radix pass
};
constexpr int kNumScoreKinds = 7;

float float_from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

std::vector<float> random_scores(int32_t n, ScoreKind kind, Rng& rng) {
  std::vector<float> s(static_cast<size_t>(n));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (int32_t i = 0; i < n; ++i) {
    const uint64_t u = rng.next_u64();
    switch (kind) {
      case ScoreKind::kNormal:
        s[i] = rng.normal();
        break;
      case ScoreKind::kFewValues:
        s[i] = static_cast<float>(u % 4) - 1.5f;
        break;
      case ScoreKind::kAllEqual:
        s[i] = 0.25f;
        break;
      case ScoreKind::kSpecials: {
        const float specials[] = {
            nan,  -nan, inf, -inf, 0.0f, -0.0f, float_from_bits(1), float_from_bits(0x80000001u),
            1.0f, -1.0f};
        s[i] = u % 3 == 0 ? rng.normal() : specials[(u >> 8) % 10];
        break;
      }
      case ScoreKind::kAllNaN:
        s[i] = (u & 1) ? nan : -nan;
        break;
      case ScoreKind::kAscending:
        s[i] = static_cast<float>(i / 3);
        break;
      case ScoreKind::kNearlyEqual:
        s[i] = float_from_bits(0x3f800000u + static_cast<uint32_t>(u % 40));
        break;
    }
  }
  return s;
}

// A valid random policy for rows of up to max_n pages.
flow::BudgetPolicy random_policy(int32_t max_n, Rng& rng) {
  flow::BudgetPolicy p;
  const auto pick = [&rng](std::initializer_list<int64_t> values) {
    return *(values.begin() + rng.next_u64() % values.size());
  };
  switch (rng.next_u64() % 4) {
    case 0:
      break;  // neither: ratio 1/16
    case 1:
      p.pages = static_cast<int64_t>(rng.next_u64() % (max_n + 8));
      break;
    case 2:
      p.pages = pick({0, 1, 2, 5, 16, 64});
      break;
    case 3: {
      const double ratios[] = {0.1, 0.3, 0.7, 0.05, 1.0 / 3.0, 0.5, 1.0};
      p.ratio =
          rng.next_u64() % 3 == 0 ? std::max(1e-4, rng.uniform_f64()) : ratios[rng.next_u64() % 7];
      break;
    }
  }
  p.floor = rng.next_u64() % 3 == 0 ? static_cast<int64_t>(rng.next_u64() % 200) : 0;
  if (rng.next_u64() % 3 == 0) p.cap = p.floor + static_cast<int64_t>(rng.next_u64() % 300);
  p.sink = pick({0, 1, 1, 2, 5, 4000});
  p.recent = pick({0, 1, 2, 2, 3, 8, 5000});
  flow::validate_budget_policy(p, "random policy");
  return p;
}

std::string describe(const flow::BudgetPolicy& p) {
  std::ostringstream os;
  os << "pages " << (p.pages ? std::to_string(*p.pages) : "-") << " ratio " << p.effective_ratio()
     << " floor " << p.floor << " cap " << (p.cap ? std::to_string(*p.cap) : "-") << " sink "
     << p.sink << " recent " << p.recent;
  return os.str();
}

struct SelectionCase {
  int32_t page_size = 16;
  int32_t max_pages = 0;
  int32_t chunk_pages = 128;
  flow::BudgetPolicy policy;
  std::vector<int32_t> row_tokens;
  std::vector<int32_t> row_mode;  // cuda::RowMode per row; empty: not given
  // Per row: its own policy (PlanRowsArgs::row_policy); empty: `policy` for every row.
  std::vector<flow::BudgetPolicy> row_policies;
  std::vector<float> scores;  // [rows][max_pages]; +inf past a row's scoreable pages
};

int32_t num_pages_of(int32_t tokens, int32_t page_size) {
  return (tokens + page_size - 1) / page_size;
}

// Rows of the given page counts, each with a random partial (or full) last page, and scores of
// the given kind (a random kind per row when kind < 0).
SelectionCase make_case(const std::vector<int32_t>& row_pages, int32_t page_size,
                        const flow::BudgetPolicy& policy, int kind, Rng& rng,
                        std::vector<flow::BudgetPolicy> row_policies = {}) {
  SelectionCase c;
  c.page_size = page_size;
  c.policy = policy;
  c.row_policies = std::move(row_policies);
  c.max_pages = std::max(1, *std::max_element(row_pages.begin(), row_pages.end()));
  c.scores.assign(row_pages.size() * c.max_pages, std::numeric_limits<float>::infinity());
  for (size_t r = 0; r < row_pages.size(); ++r) {
    const int32_t n = row_pages[r];
    c.row_tokens.push_back((n - 1) * page_size + 1 +
                           static_cast<int32_t>(rng.next_u64() % page_size));
    const flow::RowPlan plan =
        flow::plan_row(c.row_policies.empty() ? policy : c.row_policies[r], n);
    const ScoreKind k = static_cast<ScoreKind>(kind >= 0 ? kind : rng.next_u64() % kNumScoreKinds);
    const std::vector<float> s = random_scores(plan.num_scoreable(), k, rng);
    std::copy(s.begin(), s.end(), c.scores.begin() + r * c.max_pages);
  }
  return c;
}

// Runs plan_rows and select_pages on the case and compares everything with the CPU functions.
void expect_equal_to_cpu(const SelectionCase& c, Rng& rng) {
  SCOPED_TRACE(describe(c.policy) + " page_size " + std::to_string(c.page_size) + " max_pages " +
               std::to_string(c.max_pages) + " chunk " + std::to_string(c.chunk_pages));
  const int32_t rows = static_cast<int32_t>(c.row_tokens.size());
  // Dense lists at shuffled offsets with gaps, holding random physical pages.
  std::vector<int32_t> row_offset(rows), pages;
  for (int32_t r = 0; r < rows; ++r) {
    pages.resize(pages.size() + rng.next_u64() % 3, -7);
    row_offset[r] = static_cast<int32_t>(pages.size());
    for (int32_t i = 0; i < num_pages_of(c.row_tokens[r], c.page_size); ++i)
      pages.push_back(static_cast<int32_t>(rng.next_u64() % 1000000));
  }
  const int32_t chunks_per_row = (c.max_pages + c.chunk_pages - 1) / c.chunk_pages;
  const size_t item_capacity = static_cast<size_t>(rows) * chunks_per_row;

  DeviceArray<int32_t> d_tokens(c.row_tokens), d_offset(row_offset), d_pages(pages),
      d_mode(c.row_mode);
  DeviceArray<float> d_scores(c.scores);
  std::vector<cuda::DevicePagePolicy> row_policies;
  for (const flow::BudgetPolicy& p : c.row_policies) row_policies.push_back(to_device_policy(p));
  DeviceArray<cuda::DevicePagePolicy> d_row_policies(row_policies);
  DeviceArray<int32_t> d_first(rows), d_count(rows), d_k(rows), d_recent(rows);
  DeviceArray<int32_t> d_item_row(item_capacity), d_item_begin(item_capacity), d_num_items(1);
  DeviceArray<int32_t> d_out(static_cast<size_t>(rows) * c.max_pages), d_out_tokens(rows);

  cuda::PlanRowsArgs pa;
  pa.row_num_tokens = d_tokens.get();
  pa.row_mode = c.row_mode.empty() ? nullptr : d_mode.get();
  pa.num_rows = rows;
  pa.page_size = c.page_size;
  pa.max_pages = c.max_pages;
  pa.policy = to_device_policy(c.policy);
  pa.row_policy = row_policies.empty() ? nullptr : d_row_policies.get();
  pa.row_first = d_first.get();
  pa.row_count = d_count.get();
  pa.row_k = d_k.get();
  pa.row_recent_begin = d_recent.get();
  pa.chunk_pages = c.chunk_pages;
  pa.item_row = d_item_row.get();
  pa.item_begin = d_item_begin.get();
  pa.num_items = d_num_items.get();
  ASSERT_EQ(cuda::plan_rows(pa, nullptr), cudaSuccess);

  cuda::SelectPagesArgs sa;
  sa.num_rows = rows;
  sa.page_size = c.page_size;
  sa.max_pages = c.max_pages;
  sa.row_page_offset = d_offset.get();
  sa.pages = d_pages.get();
  sa.row_num_tokens = d_tokens.get();
  sa.row_first = d_first.get();
  sa.row_count = d_count.get();
  sa.row_k = d_k.get();
  sa.row_recent_begin = d_recent.get();
  sa.scores = d_scores.get();
  sa.out_pages = d_out.get();
  sa.out_num_tokens = d_out_tokens.get();
  ASSERT_EQ(cuda::select_pages(sa, nullptr), cudaSuccess);

  const std::vector<int32_t> first = d_first.download(), count = d_count.download(),
                             k = d_k.download(), recent = d_recent.download(),
                             item_row = d_item_row.download(), item_begin = d_item_begin.download(),
                             num_items = d_num_items.download(), out = d_out.download(),
                             out_tokens = d_out_tokens.download();

  std::vector<int32_t> want_item_row, want_item_begin;
  int failures = 0;
  for (int32_t r = 0; r < rows && failures < 5; ++r) {
    const int32_t n = num_pages_of(c.row_tokens[r], c.page_size);
    flow::RowPlan plan = flow::plan_row(c.row_policies.empty() ? c.policy : c.row_policies[r], n);
    const int32_t mode = c.row_mode.empty() ? cuda::kRowPlan : c.row_mode[r];
    if (mode != cuda::kRowPlan) {
      plan.read_all = true;
      plan.k = 0;
    }
    const bool skipped = mode == cuda::kRowSkip;
    const std::string row = "row " + std::to_string(r) + " (n " + std::to_string(n) + ", B " +
                            std::to_string(plan.budget) + ")";
    EXPECT_EQ(first[r], plan.sink_end) << row;
    EXPECT_EQ(count[r], plan.num_scoreable()) << row;
    EXPECT_EQ(k[r], skipped ? -1 : plan.k) << row;
    EXPECT_EQ(recent[r], plan.recent_begin) << row;
    for (int32_t b = 0; b < plan.num_scoreable(); b += c.chunk_pages) {
      want_item_row.push_back(r);
      want_item_begin.push_back(b);
    }

    const std::span<const float> row_scores(c.scores.data() + static_cast<size_t>(r) * c.max_pages,
                                            static_cast<size_t>(plan.num_scoreable()));
    // A skipped row is another flow's: nothing of it is written (both keep the poison, -1).
    const std::vector<int32_t> positions =
        skipped ? std::vector<int32_t>{} : flow::select_pages(plan, row_scores);
    std::vector<int32_t> want(c.max_pages, -1);  // unwritten entries keep the poison
    int64_t want_tokens = skipped ? -1 : 0;
    for (size_t j = 0; j < positions.size(); ++j) {
      const int32_t p = positions[j];
      want[j] = pages[row_offset[r] + p];
      want_tokens += p == n - 1 ? c.row_tokens[r] - (n - 1) * c.page_size : c.page_size;
    }
    const std::vector<int32_t> got(out.begin() + static_cast<size_t>(r) * c.max_pages,
                                   out.begin() + static_cast<size_t>(r + 1) * c.max_pages);
    EXPECT_EQ(got, want) << row << ": k " << plan.k << ", " << positions.size() << " selected";
    EXPECT_EQ(out_tokens[r], want_tokens) << row;
    if (got != want || out_tokens[r] != want_tokens || first[r] != plan.sink_end ||
        count[r] != plan.num_scoreable() || k[r] != (skipped ? -1 : plan.k))
      ++failures;
  }
  if (failures > 0) return;
  ASSERT_EQ(num_items[0], static_cast<int32_t>(want_item_row.size()));
  EXPECT_EQ(std::vector<int32_t>(item_row.begin(), item_row.begin() + num_items[0]), want_item_row);
  EXPECT_EQ(std::vector<int32_t>(item_begin.begin(), item_begin.begin() + num_items[0]),
            want_item_begin);
}

TEST(CudaPageSelection, ToDevicePolicyKeepsTheBudgetArithmetic) {
  flow::BudgetPolicy p;
  cuda::DevicePagePolicy d = to_device_policy(p);
  EXPECT_EQ(d.pages, -1);
  EXPECT_EQ(d.ratio, 1.0 / 16.0);
  EXPECT_EQ(d.cap, -1);
  EXPECT_EQ(d.sink, 1);
  EXPECT_EQ(d.recent, 2);
  p.pages = int64_t{1} << 40;
  p.cap = int64_t{1} << 41;
  p.floor = 3;
  d = to_device_policy(p);
  EXPECT_EQ(d.pages, INT32_MAX);
  EXPECT_EQ(d.cap, INT32_MAX);
  EXPECT_EQ(d.floor, 3);
}

TEST(CudaPageSelection, RandomRowsAndPoliciesEqualCpu) {
  VORTEX_REQUIRE_GPU();
  Rng rng(20261126);
  const int32_t page_sizes[] = {1, 16, 64};
  for (int trial = 0; trial < 160; ++trial) {
    const int32_t rows = 1 + static_cast<int32_t>(rng.next_u64() % 24);
    const int32_t max_n = trial % 4 == 0 ? 12 : trial % 4 == 1 ? 300 : 3000;
    std::vector<int32_t> row_pages(rows);
    for (int32_t& n : row_pages) n = 1 + static_cast<int32_t>(rng.next_u64() % max_n);
    SelectionCase c =
        make_case(row_pages, page_sizes[trial % 3], random_policy(max_n, rng), -1, rng);
    c.chunk_pages = trial % 5 == 0 ? 7 : 128;
    if (trial % 3 == 0)
      for (int32_t r = 0; r < rows; ++r)
        c.row_mode.push_back(static_cast<int32_t>(rng.next_u64() % 3));  // plan, read all, skip
    expect_equal_to_cpu(c, rng);
    if (HasFailure()) return;
  }
}

// Rows with policies of their own (requests with their own budget), in one plan.
TEST(CudaPageSelection, RowPoliciesEqualCpu) {
  VORTEX_REQUIRE_GPU();
  Rng rng(20261207);
  for (int trial = 0; trial < 60; ++trial) {
    const int32_t rows = 1 + static_cast<int32_t>(rng.next_u64() % 24);
    const int32_t max_n = trial % 2 == 0 ? 40 : 2000;
    std::vector<int32_t> row_pages(rows);
    std::vector<flow::BudgetPolicy> policies;
    for (int32_t& n : row_pages) {
      n = 1 + static_cast<int32_t>(rng.next_u64() % max_n);
      policies.push_back(random_policy(max_n, rng));
    }
    SelectionCase c =
        make_case(row_pages, trial % 2 == 0 ? 4 : 16, random_policy(max_n, rng), -1, rng, policies);
    if (trial % 3 == 0)
      for (int32_t r = 0; r < rows; ++r)
        c.row_mode.push_back(static_cast<int32_t>(rng.next_u64() % 3));  // plan, read all, skip
    expect_equal_to_cpu(c, rng);
    if (HasFailure()) return;
  }
}

TEST(CudaPageSelection, EveryScoreKindEqualsCpu) {
  VORTEX_REQUIRE_GPU();
  Rng rng(7);
  flow::BudgetPolicy p;
  p.ratio = 0.3;
  p.sink = 2;
  p.recent = 3;
  for (int kind = 0; kind < kNumScoreKinds; ++kind) {
    SCOPED_TRACE("score kind " + std::to_string(kind));
    std::vector<int32_t> row_pages;
    for (int i = 0; i < 12; ++i)
      row_pages.push_back(1 + static_cast<int32_t>(rng.next_u64() % 3000));
    expect_equal_to_cpu(make_case(row_pages, 16, p, kind, rng), rng);
  }
}

TEST(CudaPageSelection, RatioTimesPagesNearAnIntegerCountsAsThatInteger) {
  VORTEX_REQUIRE_GPU();
  Rng rng(11);
  for (double ratio : {0.1, 0.3, 0.7, 0.05, 0.15}) {
    flow::BudgetPolicy p;
    p.ratio = ratio;
    p.sink = 0;
    p.recent = 0;
    std::vector<int32_t> row_pages;
    for (int32_t n = 20; n <= 3000; n += 20) row_pages.push_back(n);
    expect_equal_to_cpu(make_case(row_pages, 1, p, -1, rng), rng);
  }
}

TEST(CudaPageSelection, ReservedPagesWithoutScoredPages) {
  VORTEX_REQUIRE_GPU();
  Rng rng(3);
  flow::BudgetPolicy p;
  p.pages = 0;  // k = 0 wherever the row is longer than its reserved pages
  p.sink = 3;
  p.recent = 4;
  expect_equal_to_cpu(make_case({1, 2, 7, 8, 9, 100, 2999}, 64, p, -1, rng), rng);
  p.recent = 0;  // the last page is still read
  p.sink = 0;
  expect_equal_to_cpu(make_case({1, 2, 50, 3000}, 16, p, -1, rng), rng);
}

TEST(CudaPageSelection, ManyRowsSpanSeveralPlanTiles) {
  VORTEX_REQUIRE_GPU();
  Rng rng(5);
  std::vector<int32_t> row_pages(5000);
  for (int32_t& n : row_pages) n = 1 + static_cast<int32_t>(rng.next_u64() % 400);
  flow::BudgetPolicy p;
  p.pages = 24;
  SelectionCase c = make_case(row_pages, 16, p, -1, rng);
  expect_equal_to_cpu(c, rng);
  // Rows that are not generating read all; other flows' rows are skipped.
  for (size_t r = 0; r < row_pages.size(); ++r)
    c.row_mode.push_back(r % 7 == 3   ? cuda::kRowReadAll
                         : r % 5 == 1 ? cuda::kRowSkip
                                      : cuda::kRowPlan);
  expect_equal_to_cpu(c, rng);
}

TEST(CudaPageSelection, RowsLongerThanTheSharedKeyCache) {
  VORTEX_REQUIRE_GPU();
  Rng rng(9);
  flow::BudgetPolicy p;
  p.ratio = 0.25;
  for (int kind = 0; kind < kNumScoreKinds; ++kind)
    expect_equal_to_cpu(make_case({9000, 4097, 4100, 6000}, 16, p, kind, rng), rng);
}

TEST(CudaPageSelection, NoRowsGiveAnEmptyWorklist) {
  VORTEX_REQUIRE_GPU();
  DeviceArray<int32_t> d_num_items(1);
  cuda::PlanRowsArgs pa;
  pa.page_size = 16;
  pa.max_pages = 8;
  pa.num_items = d_num_items.get();
  ASSERT_EQ(cuda::plan_rows(pa, nullptr), cudaSuccess);
  EXPECT_EQ(d_num_items.download()[0], 0);
  cuda::SelectPagesArgs sa;
  sa.page_size = 16;
  EXPECT_EQ(cuda::select_pages(sa, nullptr), cudaSuccess);
}

TEST(CudaPageSelection, LargeBatchEqualsCpu) {
  VORTEX_REQUIRE_GPU();
  Rng rng(256);
  const std::vector<int32_t> row_pages(256, 2048);
  expect_equal_to_cpu(make_case(row_pages, 16, flow::BudgetPolicy{}, -1, rng), rng);
  flow::BudgetPolicy p;
  p.pages = 300;
  p.sink = 4;
  p.recent = 16;
  expect_equal_to_cpu(make_case(row_pages, 64, p, static_cast<int>(ScoreKind::kFewValues), rng),
                      rng);
}

// copy_dense_rows writes exactly the kRowReadAll rows, each as select_pages writes a read_all
// row, and leaves the others untouched.
TEST(CudaPageSelection, CopyDenseRowsCopiesOnlyReadAllRows) {
  VORTEX_REQUIRE_GPU();
  Rng rng(20261208);
  const int32_t rows = 37, page_size = 16, max_pages = 700;
  std::vector<int32_t> tokens(rows), offset(rows), mode(rows), pages;
  for (int32_t r = 0; r < rows; ++r) {
    tokens[r] = 1 + static_cast<int32_t>(rng.next_u64() % (max_pages * page_size));
    mode[r] = static_cast<int32_t>(rng.next_u64() % 3);
    pages.resize(pages.size() + rng.next_u64() % 3, -7);
    offset[r] = static_cast<int32_t>(pages.size());
    for (int32_t i = 0; i < num_pages_of(tokens[r], page_size); ++i)
      pages.push_back(static_cast<int32_t>(rng.next_u64() % 1000000));
  }
  DeviceArray<int32_t> d_tokens(tokens), d_offset(offset), d_mode(mode), d_pages(pages);
  DeviceArray<int32_t> d_out(static_cast<size_t>(rows) * max_pages), d_out_tokens(rows);
  cuda::CopyDenseRowsArgs a;
  a.num_rows = rows;
  a.max_pages = max_pages;
  a.page_size = page_size;
  a.row_mode = d_mode.get();
  a.row_page_offset = d_offset.get();
  a.pages = d_pages.get();
  a.row_num_tokens = d_tokens.get();
  a.out_pages = d_out.get();
  a.out_num_tokens = d_out_tokens.get();
  ASSERT_EQ(cuda::copy_dense_rows(a, nullptr), cudaSuccess);
  const std::vector<int32_t> out = d_out.download(), out_tokens = d_out_tokens.download();
  for (int32_t r = 0; r < rows; ++r) {
    std::vector<int32_t> want(max_pages, -1);  // the poison, where nothing is written
    int32_t want_tokens = -1;
    if (mode[r] == cuda::kRowReadAll) {
      const int32_t n = num_pages_of(tokens[r], page_size);
      std::copy_n(pages.begin() + offset[r], n, want.begin());
      want_tokens = tokens[r];
    }
    const std::vector<int32_t> got(out.begin() + static_cast<size_t>(r) * max_pages,
                                   out.begin() + static_cast<size_t>(r + 1) * max_pages);
    EXPECT_EQ(got, want) << "row " << r << " mode " << mode[r];
    EXPECT_EQ(out_tokens[r], want_tokens) << "row " << r << " mode " << mode[r];
  }
}

}  // namespace
}  // namespace vortex
