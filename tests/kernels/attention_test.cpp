#include "kernels/cpu/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/kernel_test_util.h"

namespace vortex {
namespace {

using testing::bit_equal;
using testing::random_floats;

struct SeqSpec {
  int32_t q_len, kv_len;
};

// A batch of sequences with their keys and values in a paged cache whose pages are handed out
// in a shuffled order (so block tables are not contiguous), plus the same keys and values kept
// per sequence in plain [kv_len, Hkv, D] arrays for the reference.
struct Batch {
  int32_t hq, hkv, d, page_size;
  std::vector<SeqSpec> specs;
  std::vector<std::vector<float>> keys, values;  // per sequence
  std::vector<std::vector<int32_t>> block_tables;
  std::vector<float> k_cache, v_cache;
  cpu::PagedKv kv{};
  std::vector<cpu::AttentionSeq> seqs;
  std::vector<float> q;
  int32_t total_q = 0;

  Batch(int32_t hq_, int32_t hkv_, int32_t d_, int32_t page_size_, std::vector<SeqSpec> specs_,
        uint64_t seed, int64_t stride_padding = 0)
      : hq(hq_), hkv(hkv_), d(d_), page_size(page_size_), specs(std::move(specs_)) {
    Rng rng(seed);
    int32_t pages_needed = 0;
    for (const SeqSpec& s : specs) pages_needed += (s.kv_len + page_size - 1) / page_size;
    const int32_t pool_pages = pages_needed + 3;
    std::vector<int32_t> free_pages(static_cast<size_t>(pool_pages));
    std::iota(free_pages.begin(), free_pages.end(), 0);
    for (size_t i = free_pages.size(); i > 1; --i)
      std::swap(free_pages[i - 1], free_pages[rng.next_u64() % i]);

    const int64_t head_stride = int64_t{page_size} * d + stride_padding;
    const int64_t page_stride = head_stride * hkv + stride_padding;
    k_cache.assign(static_cast<size_t>(page_stride * pool_pages), NAN);
    v_cache.assign(k_cache.size(), NAN);
    kv = {k_cache.data(), v_cache.data(), page_size, hkv, d, page_stride, head_stride};

    size_t next_page = 0;
    for (const SeqSpec& s : specs) {
      keys.push_back(random_floats(rng, int64_t{s.kv_len} * hkv * d));
      values.push_back(random_floats(rng, int64_t{s.kv_len} * hkv * d));
      std::vector<int32_t> table;
      for (int32_t j = 0; j < s.kv_len; j += page_size) table.push_back(free_pages[next_page++]);
      std::vector<int32_t> pages, slots;
      for (int32_t j = 0; j < s.kv_len; ++j) {
        pages.push_back(table[static_cast<size_t>(j / page_size)]);
        slots.push_back(j % page_size);
      }
      cpu::write_kv(kv, keys.back().data(), values.back().data(), s.kv_len, pages.data(),
                    slots.data());
      block_tables.push_back(std::move(table));
    }
    for (size_t i = 0; i < specs.size(); ++i) {
      seqs.push_back({total_q, specs[i].q_len, specs[i].kv_len, block_tables[i].data(),
                      static_cast<int32_t>(block_tables[i].size())});
      total_q += specs[i].q_len;
    }
    q = random_floats(rng, int64_t{total_q} * hq * d);
  }

  float scale() const { return 1.0f / std::sqrt(static_cast<float>(d)); }

  std::vector<float> run() const {
    std::vector<float> out(q.size(), NAN);
    cpu::paged_attention(q.data(), hq, kv, seqs.data(), static_cast<int32_t>(seqs.size()),
                         scale(), out.data());
    return out;
  }

  // Straight causal softmax attention in double.
  std::vector<double> reference() const {
    std::vector<double> out(q.size());
    const int32_t group = hq / hkv;
    for (size_t s = 0; s < specs.size(); ++s) {
      for (int32_t i = 0; i < specs[s].q_len; ++i) {
        const int64_t t = seqs[s].q_begin + i;
        const int32_t keys_seen = specs[s].kv_len - specs[s].q_len + i + 1;
        for (int32_t h = 0; h < hq; ++h) {
          const float* qh = q.data() + (t * hq + h) * d;
          const int32_t kvh = h / group;
          std::vector<double> p(static_cast<size_t>(keys_seen));
          double max = -INFINITY, sum = 0;
          for (int32_t j = 0; j < keys_seen; ++j) {
            const float* kj = keys[s].data() + (int64_t{j} * hkv + kvh) * d;
            double dot = 0;
            for (int32_t e = 0; e < d; ++e) dot += double{qh[e]} * kj[e];
            p[j] = dot * scale();
            max = std::max(max, p[j]);
          }
          for (double& v : p) sum += (v = std::exp(v - max));
          for (int32_t e = 0; e < d; ++e) {
            double acc = 0;
            for (int32_t j = 0; j < keys_seen; ++j)
              acc += p[j] * values[s][(int64_t{j} * hkv + kvh) * d + e];
            out[(t * hq + h) * d + e] = acc / sum;
          }
        }
      }
    }
    return out;
  }
};

// Ragged batch: a whole prefill, a decode step, a chunk of a longer prefill, a one-token
// sequence, a decode at a page boundary.
std::vector<SeqSpec> ragged_specs() { return {{23, 23}, {1, 37}, {5, 40}, {1, 1}, {1, 32}}; }

class PagedAttentionMatchesReference
    : public ::testing::TestWithParam<std::tuple<int, int, int>> {};  // group, page size, D

TEST_P(PagedAttentionMatchesReference, OnARaggedBatch) {
  const auto [group, page_size, d] = GetParam();
  const int32_t hkv = 2;
  Batch batch(hkv * group, hkv, d, page_size, ragged_specs(),
              static_cast<uint64_t>(group * 100 + page_size * 10 + d));
  std::vector<float> out = batch.run();
  std::vector<double> ref = batch.reference();
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref[i], 2e-6) << "element " << i;
}

INSTANTIATE_TEST_SUITE_P(GroupsPagesDims, PagedAttentionMatchesReference,
                         ::testing::Combine(::testing::Values(1, 2, 4, 8),
                                            ::testing::Values(1, 4, 16),
                                            ::testing::Values(32, 20)));

TEST(PagedAttention, HandlesHeadDim128AndPaddedStrides) {
  Batch batch(8, 2, 128, 16, {{40, 70}, {1, 100}, {17, 17}}, 99, /*stride_padding=*/5);
  std::vector<float> out = batch.run();
  std::vector<double> ref = batch.reference();
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref[i], 2e-6) << "element " << i;
}

TEST(PagedAttention, FirstPrefillTokenReturnsItsOwnValue) {
  Batch batch(4, 4, 16, 4, {{6, 6}}, 5);
  std::vector<float> out = batch.run();
  // Token 0 sees only key 0: softmax weight 1, so the output is exactly value 0 of its head.
  for (int32_t h = 0; h < 4; ++h) {
    for (int32_t e = 0; e < 16; ++e)
      EXPECT_EQ(out[h * 16 + e], batch.values[0][h * 16 + e]) << h << ", " << e;
  }
}

class PagedAttentionBatchInvariance : public ::testing::Test {
 protected:
  void TearDown() override { ThreadPool::set_global_threads(0); }
};

TEST_F(PagedAttentionBatchInvariance, ASequenceAloneEqualsItInABatchBitForBit) {
  Batch batch(8, 2, 64, 4, ragged_specs(), 21);
  std::vector<float> together = batch.run();
  const int64_t row = int64_t{batch.hq} * batch.d;
  for (size_t s = 0; s < batch.seqs.size(); ++s) {
    cpu::AttentionSeq alone = batch.seqs[s];
    alone.q_begin = 0;
    const float* q = batch.q.data() + batch.seqs[s].q_begin * row;
    std::vector<float> out(static_cast<size_t>(alone.q_len * row));
    cpu::paged_attention(q, batch.hq, batch.kv, &alone, 1, batch.scale(), out.data());
    EXPECT_TRUE(bit_equal(out.data(), together.data() + batch.seqs[s].q_begin * row,
                          alone.q_len * row))
        << "sequence " << s;
  }
}

TEST_F(PagedAttentionBatchInvariance, ResultDoesNotDependOnTheThreadCount) {
  Batch batch(8, 2, 64, 16, ragged_specs(), 22);
  ThreadPool::set_global_threads(1);
  std::vector<float> one = batch.run();
  ThreadPool::set_global_threads(3);
  std::vector<float> three = batch.run();
  EXPECT_TRUE(bit_equal(one.data(), three.data(), static_cast<int64_t>(one.size())));
}

TEST(WriteKv, PutsEachTokensHeadsAtPageHeadSlot) {
  const int32_t P = 4, H = 3, D = 5, pages = 6;
  const int64_t head_stride = P * D, page_stride = H * head_stride;
  std::vector<float> k(static_cast<size_t>(pages * page_stride), 0.0f), v(k.size(), 0.0f);
  cpu::PagedKv kv{k.data(), v.data(), P, H, D, page_stride, head_stride};
  const int64_t T = 3;
  std::vector<float> k_new(T * H * D), v_new(T * H * D);
  for (size_t i = 0; i < k_new.size(); ++i) k_new[i] = static_cast<float>(i + 1);
  for (size_t i = 0; i < v_new.size(); ++i) v_new[i] = -static_cast<float>(i + 1);
  std::vector<int32_t> page_of = {5, 0, 5}, slot_of = {3, 0, 1};
  cpu::write_kv(kv, k_new.data(), v_new.data(), T, page_of.data(), slot_of.data());
  int64_t written = 0;
  for (int64_t t = 0; t < T; ++t) {
    for (int32_t h = 0; h < H; ++h) {
      for (int32_t e = 0; e < D; ++e) {
        const int64_t at = page_of[t] * page_stride + h * head_stride + slot_of[t] * D + e;
        ASSERT_EQ(k[at], k_new[(t * H + h) * D + e]);
        ASSERT_EQ(v[at], v_new[(t * H + h) * D + e]);
        ++written;
      }
    }
  }
  EXPECT_EQ(std::count(k.begin(), k.end(), 0.0f), static_cast<long>(k.size()) - written);
}

TEST(WriteKv, RejectsASlotOutsideThePage) {
  std::vector<float> k(64), v(64), row(4);
  cpu::PagedKv kv{k.data(), v.data(), 4, 1, 4, 16, 16};
  std::vector<int32_t> page = {0}, slot = {4};
  EXPECT_THROW(cpu::write_kv(kv, row.data(), row.data(), 1, page.data(), slot.data()), Error);
}

TEST(PagedAttention, RejectsMoreQueriesThanKeys) {
  Batch batch(2, 1, 8, 4, {{3, 3}}, 1);
  cpu::AttentionSeq bad = batch.seqs[0];
  bad.q_len = 4;
  std::vector<float> out(4 * 2 * 8);
  std::vector<float> q(out.size());
  EXPECT_THROW(cpu::paged_attention(q.data(), 2, batch.kv, &bad, 1, 1.0f, out.data()), Error);
}

TEST(PagedAttention, RejectsABlockTableTooShortForTheKeys) {
  Batch batch(2, 1, 8, 4, {{1, 9}}, 2);
  cpu::AttentionSeq bad = batch.seqs[0];
  bad.num_pages = 2;  // 8 slots for 9 keys
  std::vector<float> out(2 * 8);
  EXPECT_THROW(cpu::paged_attention(batch.q.data(), 2, batch.kv, &bad, 1, 1.0f, out.data()),
               Error);
}

TEST(PagedAttention, RejectsQueryHeadsThatDoNotGroupEvenly) {
  Batch batch(3, 2, 8, 4, {{1, 1}}, 3);
  std::vector<float> out(3 * 8);
  EXPECT_THROW(cpu::paged_attention(batch.q.data(), 3, batch.kv, batch.seqs.data(), 1, 1.0f,
                                    out.data()),
               Error);
}

}  // namespace
}  // namespace vortex
