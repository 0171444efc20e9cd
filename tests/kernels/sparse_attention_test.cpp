// Sparse decode attention: a row that selects pages computes exactly dense attention restricted
// to the tokens of those pages, per KV head; selecting every page is bit-identical to dense.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "kernels/cpu/attention.h"
#include "kernel_test_util.h"

namespace vortex::cpu {
namespace {

using vortex::testing::random_floats;

struct Row {
  int32_t kv_len;
  std::vector<int32_t> pages;                 // physical pages of the block table
  std::vector<std::vector<int32_t>> selected; // per KV head, logical page indices
};

struct PagedCache {
  int32_t P, Hkv, G, D, num_pages;
  std::vector<float> k, v;
  PagedKv kv() { return {k.data(), v.data(), P, Hkv, D, int64_t{Hkv} * P * D, int64_t{P} * D}; }
};

// Straight reference: for each KV head, the keys of the selected pages in order, softmax in
// double, weighted sum of values.
std::vector<double> reference(PagedCache& s, const std::vector<Row>& rows, const std::vector<float>& q,
                              float scale) {
  const int32_t Hq = s.Hkv * s.G;
  std::vector<double> out(rows.size() * Hq * s.D);
  for (size_t r = 0; r < rows.size(); ++r) {
    for (int32_t h = 0; h < Hq; ++h) {
      const int32_t kvh = h / s.G;
      std::vector<double> logits;
      std::vector<const float*> vals;
      for (int32_t lp : rows[r].selected[kvh]) {
        int32_t n = std::min(s.P, rows[r].kv_len - lp * s.P);
        for (int32_t slot = 0; slot < n; ++slot) {
          int64_t at = int64_t{rows[r].pages[lp]} * s.Hkv * s.P * s.D + int64_t{kvh} * s.P * s.D +
                       int64_t{slot} * s.D;
          double dot = 0;
          for (int32_t d = 0; d < s.D; ++d) dot += double{q[(r * Hq + h) * s.D + d]} * s.k[at + d];
          logits.push_back(dot * scale);
          vals.push_back(s.v.data() + at);
        }
      }
      double mx = *std::max_element(logits.begin(), logits.end()), sum = 0;
      for (double& l : logits) sum += (l = std::exp(l - mx));
      for (int32_t d = 0; d < s.D; ++d) {
        double acc = 0;
        for (size_t j = 0; j < logits.size(); ++j) acc += logits[j] / sum * vals[j][d];
        out[(r * Hq + h) * s.D + d] = acc;
      }
    }
  }
  return out;
}

void run(PagedCache& s, std::vector<Row>& rows, const std::vector<float>& q, float scale,
         std::vector<float>& out, bool use_selection) {
  std::vector<std::vector<const int32_t*>> ptrs(rows.size());
  std::vector<std::vector<int32_t>> counts(rows.size());
  std::vector<AttentionSeq> seqs;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (auto& sel : rows[r].selected) {
      ptrs[r].push_back(sel.data());
      counts[r].push_back(static_cast<int32_t>(sel.size()));
    }
    AttentionSeq a{static_cast<int32_t>(r), 1, rows[r].kv_len, rows[r].pages.data(),
                   static_cast<int32_t>(rows[r].pages.size())};
    if (use_selection) {
      a.selected = ptrs[r].data();
      a.num_selected = counts[r].data();
    }
    seqs.push_back(a);
  }
  out.assign(q.size(), 0.0f);
  paged_attention(q.data(), s.Hkv * s.G, s.kv(), seqs.data(), static_cast<int32_t>(seqs.size()),
                  scale, out.data());
}

class SparseAttention : public ::testing::TestWithParam<std::tuple<int, int, int>> {};

TEST_P(SparseAttention, EqualsDenseAttentionRestrictedToTheSelectedPages) {
  const auto [G, P, D] = GetParam();
  Rng rng(static_cast<uint64_t>(G * 1000 + P * 10 + D));
  PagedCache s{P, 3, G, D, 64, {}, {}};
  s.k = random_floats(rng, int64_t{s.num_pages} * s.Hkv * P * D);
  s.v = random_floats(rng, int64_t{s.num_pages} * s.Hkv * P * D);
  std::vector<int32_t> perm(s.num_pages);
  std::iota(perm.begin(), perm.end(), 0);
  std::vector<Row> rows;
  int32_t next = 0;
  for (int32_t kv_len : {1, P, P + 1, 5 * P - 2, 9 * P}) {
    Row row{kv_len, {}, {}};
    const int32_t n = (kv_len + P - 1) / P;
    for (int32_t i = 0; i < n; ++i) row.pages.push_back(perm[(next++ * 7) % s.num_pages]);
    for (int32_t h = 0; h < s.Hkv; ++h) {
      std::vector<int32_t> sel;
      for (int32_t i = 0; i + 1 < n; ++i) {
        if (rng.uniform() < 0.4f) sel.push_back(i);
      }
      sel.push_back(n - 1);  // the last page is always read
      row.selected.push_back(sel);
    }
    rows.push_back(row);
  }
  std::vector<float> q = random_floats(rng, int64_t(rows.size()) * s.Hkv * G * D);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  std::vector<float> out;
  run(s, rows, q, scale, out, true);
  std::vector<double> ref = reference(s, rows, q, scale);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref[i], 2e-5) << i;
}

INSTANTIATE_TEST_SUITE_P(GroupsPagesDims, SparseAttention,
                         ::testing::Combine(::testing::Values(1, 2, 5, 8),
                                            ::testing::Values(1, 4, 16), ::testing::Values(8, 64)));

TEST(SparseAttention, SelectingEveryPageIsBitIdenticalToDense) {
  Rng rng(3);
  PagedCache s{16, 2, 4, 64, 20, {}, {}};
  s.k = random_floats(rng, int64_t{s.num_pages} * s.Hkv * s.P * s.D);
  s.v = random_floats(rng, int64_t{s.num_pages} * s.Hkv * s.P * s.D);
  std::vector<Row> rows = {{150, {}, {}}, {33, {}, {}}};
  int32_t next = 0;
  for (Row& row : rows) {
    const int32_t n = (row.kv_len + s.P - 1) / s.P;
    std::vector<int32_t> all(n);
    std::iota(all.begin(), all.end(), 0);
    for (int32_t i = 0; i < n; ++i) row.pages.push_back(next++);
    row.selected.assign(s.Hkv, all);
  }
  std::vector<float> q = random_floats(rng, 2 * s.Hkv * s.G * s.D), sparse, dense;
  run(s, rows, q, 0.125f, sparse, true);
  run(s, rows, q, 0.125f, dense, false);
  EXPECT_TRUE(vortex::testing::bit_equal(sparse.data(), dense.data(), int64_t(dense.size())));
}

TEST(SparseAttention, RejectsASelectionWithoutTheLastPage) {
  Rng rng(4);
  PagedCache s{4, 1, 1, 8, 4, {}, {}};
  s.k = random_floats(rng, 4 * 4 * 8);
  s.v = s.k;
  std::vector<Row> rows = {{10, {0, 1, 2}, {{0, 1}}}};
  std::vector<float> q = random_floats(rng, 8), out;
  EXPECT_THROW(run(s, rows, q, 1.0f, out, true), Error);
  rows[0].selected = {{1, 0, 2}};
  EXPECT_THROW(run(s, rows, q, 1.0f, out, true), Error);
}

}  // namespace
}  // namespace vortex::cpu
