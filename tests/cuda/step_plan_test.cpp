// The CUDA runner's host-side step planning, which needs no GPU (these tests run everywhere the
// CUDA backend is built): a step's work flattened into the kernels' arrays, graph padding, the
// metadata layout and the graph buckets.
#include "engine/cuda/step_plan.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "engine/cuda/graph_cache.h"
#include "engine/request.h"
#include "kernels/cuda/attention.h"

namespace vortex {
namespace {

ModelConfig tiny_config() {
  ModelConfig c;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 32;
  c.hidden_size = 128;
  c.vocab_size = 100;
  c.max_position_embeddings = 1024;
  return c;
}

// A request of `tokens` prompt tokens (ids 10, 11, ...) holding `pages` (page size 4).
Request request(int32_t tokens, std::vector<int32_t> pages) {
  Request r;
  for (int32_t i = 0; i < tokens; ++i) r.prompt.push_back(10 + i);
  r.blocks.adopt(std::move(pages));
  return r;
}

TEST(StepPlan, FlattensPrefillChunksAndDecodeRows) {
  const ModelConfig cfg = tiny_config();
  const KvGeometry geo{cfg.num_layers, cfg.num_kv_heads, cfg.head_dim, 4};
  Request decoding = request(6, {7, 3});     // its 6th token (position 5) is decoded
  Request prefill = request(10, {1, 2, 9});  // a chunk of positions 4..9, then it samples
  SamplingParams greedy;
  Rng rng(1);
  const std::vector<ScheduledWork> work = {{&decoding, 5, 1}, {&prefill, 4, 6}};
  const std::vector<SamplingRow> rows = {{&greedy, &rng}, {&greedy, &rng, 0, 42}};
  const StepPlan p = build_step_plan(work, rows, cfg, geo, nullptr);

  EXPECT_EQ(p.tokens, (std::vector<int32_t>{15, 14, 15, 16, 17, 18, 19}));
  EXPECT_EQ(p.positions, (std::vector<int32_t>{5, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(p.kv_pages, (std::vector<int32_t>{3, 2, 2, 2, 2, 9, 9}));
  EXPECT_EQ(p.kv_slots, (std::vector<int32_t>{1, 0, 1, 2, 3, 0, 1}));
  // The page lists of both sequences, back to back: 2 pages, then 3.
  EXPECT_EQ(p.pages, (std::vector<int32_t>{7, 3, 1, 2, 9}));
  // One decode row per KV head, reading its sequence's pages and tokens.
  EXPECT_EQ(p.q_rows, (std::vector<int32_t>{0}));
  EXPECT_EQ(p.row_page_offset, (std::vector<int32_t>{0, 0}));
  EXPECT_EQ(p.row_num_tokens, (std::vector<int32_t>{6, 6}));
  EXPECT_EQ(p.max_row_tokens, 6);
  // One prefill sequence: queries from row 1, 6 of them, over 10 tokens in pages from offset 2.
  EXPECT_EQ(p.seq_q_begin, (std::vector<int32_t>{1}));
  EXPECT_EQ(p.seq_q_len, (std::vector<int32_t>{6}));
  EXPECT_EQ(p.seq_kv_len, (std::vector<int32_t>{10}));
  EXPECT_EQ(p.seq_page_offset, (std::vector<int32_t>{2}));
  EXPECT_EQ(p.block_seq.size(), p.block_q_start.size());
  EXPECT_FALSE(p.block_seq.empty());
  // Both items end at their sequence's last token: both sample, the second teacher-forced.
  EXPECT_EQ(p.sample_rows, (std::vector<int32_t>{0, 6}));
  ASSERT_EQ(p.params.size(), 2u);
  EXPECT_EQ(p.params[0].forced_token, -1);
  EXPECT_EQ(p.params[1].forced_token, 42);
  EXPECT_EQ(p.params[1].counter, 10u);
}

TEST(StepPlan, GraphPaddingRowsReadOnlyTheScratchPage) {
  const ModelConfig cfg = tiny_config();
  const KvGeometry geo{cfg.num_layers, cfg.num_kv_heads, cfg.head_dim, 4};
  Request a = request(3, {5});
  SamplingParams greedy;
  Rng rng(1);
  StepPlan p = build_step_plan({{&a, 2, 1}}, {{&greedy, &rng}}, cfg, geo, nullptr);
  pad_step_plan(4, /*scratch_page=*/99, cfg.num_kv_heads, nullptr, p);
  EXPECT_EQ(p.tokens.size(), 4u);
  EXPECT_EQ(p.sample_rows, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(p.pages, (std::vector<int32_t>{5, 99}));
  EXPECT_EQ(p.kv_pages, (std::vector<int32_t>{5, 99, 99, 99}));
  // Every padding row reads one token of the scratch page, from its offset in the page lists.
  EXPECT_EQ(p.row_page_offset, (std::vector<int32_t>{0, 0, 1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(p.row_num_tokens, (std::vector<int32_t>{3, 3, 1, 1, 1, 1, 1, 1}));
}

TEST(StepPlan, MetadataArraysAreAlignedAndDisjointWithThePagesLast) {
  const MetaLayout l(/*t_cap=*/37, /*s_cap=*/5, /*rows=*/74, /*pages_cap=*/300, /*mode_lists=*/3);
  const std::vector<size_t> offsets = {l.tokens,          l.positions,       l.kv_pages,
                                       l.kv_slots,        l.sample_rows,     l.q_rows,
                                       l.row_page_offset, l.row_num_tokens,  l.block_seq,
                                       l.block_q_start,   l.seq_q_begin,     l.seq_q_len,
                                       l.seq_kv_len,      l.seq_page_offset, l.params,
                                       l.summarize_pages, l.reset_pages,     l.sparse_counts,
                                       l.row_mode,        l.row_policy,      l.pages};
  for (size_t i = 0; i < offsets.size(); ++i) {
    EXPECT_EQ(offsets[i] % 16, 0u) << i;
    if (i > 0) {
      EXPECT_GT(offsets[i], offsets[i - 1]) << i;
    }
  }
  EXPECT_LE(l.row_mode + 3 * 74 * 4, l.row_policy);  // the three row-mode lists fit
  EXPECT_GE(l.total, l.pages + 300 * 4);
  EXPECT_EQ(l.rows_cap, 74);
}

TEST(GraphCache, BucketsCoverEveryBatchUpToTheLimit) {
  EXPECT_EQ(GraphCache::bucket_for(0, 256), 0);
  EXPECT_EQ(GraphCache::bucket_for(1, 256), 1);
  EXPECT_EQ(GraphCache::bucket_for(3, 256), 4);
  EXPECT_EQ(GraphCache::bucket_for(33, 256), 40);
  EXPECT_EQ(GraphCache::bucket_for(256, 256), 256);
  EXPECT_EQ(GraphCache::bucket_for(257, 256), 0);  // above the graph limit: eager
  for (int32_t n = 1; n <= 512; ++n) {
    const int32_t b = GraphCache::bucket_for(n, 512);
    EXPECT_GE(b, n);
    EXPECT_EQ(GraphCache::bucket_for(b, 512), b);  // a bucket is its own bucket
  }
  EXPECT_EQ(GraphCache::buckets_up_to(5, 256), (std::vector<int32_t>{1, 2, 4, 8}));
  EXPECT_EQ(GraphCache::buckets_up_to(0, 256), std::vector<int32_t>{});
  EXPECT_EQ(GraphCache::buckets_up_to(1000, 48).back(), 48);
}

}  // namespace
}  // namespace vortex
