#include "kv/block_table.h"

#include <gtest/gtest.h>

namespace vortex {
namespace {

TEST(BlockTable, PagesForTokensRoundsUp) {
  EXPECT_EQ(pages_for_tokens(0, 16), 0);
  EXPECT_EQ(pages_for_tokens(1, 16), 1);
  EXPECT_EQ(pages_for_tokens(16, 16), 1);
  EXPECT_EQ(pages_for_tokens(17, 16), 2);
  EXPECT_EQ(pages_for_tokens(5, 1), 5);
}

TEST(BlockTable, ReserveGrowsToHoldTheTokens) {
  PagePool pool(8);
  BlockTable table;
  EXPECT_EQ(table.capacity(4), 0);
  EXPECT_EQ(table.pages_needed(9, 4), 3);
  ASSERT_TRUE(table.reserve(pool, 9, 4));
  EXPECT_EQ(table.pages().size(), 3u);
  EXPECT_EQ(table.capacity(4), 12);
  EXPECT_EQ(pool.num_free(), 5);
  // Already fits: nothing more is taken.
  EXPECT_EQ(table.pages_needed(12, 4), 0);
  ASSERT_TRUE(table.reserve(pool, 12, 4));
  EXPECT_EQ(pool.num_free(), 5);
  ASSERT_TRUE(table.reserve(pool, 13, 4));
  EXPECT_EQ(table.pages().size(), 4u);
  EXPECT_EQ(pool.num_free(), 4);
}

TEST(BlockTable, ReserveIsAllOrNothing) {
  PagePool pool(4);
  BlockTable first;
  ASSERT_TRUE(first.reserve(pool, 8, 4));  // 2 pages, 2 left
  BlockTable second;
  ASSERT_TRUE(second.reserve(pool, 1, 4));  // 1 page, 1 left
  std::vector<int32_t> before = second.pages();
  EXPECT_FALSE(second.reserve(pool, 12, 4));  // needs 2 more, only 1 free
  EXPECT_EQ(second.pages(), before);
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_TRUE(second.reserve(pool, 8, 4));  // needs exactly the one left
  EXPECT_EQ(pool.num_free(), 0);
}

TEST(BlockTable, ReleaseAllReturnsOnlyUnsharedPages) {
  PagePool pool(4);
  BlockTable table;
  ASSERT_TRUE(table.reserve(pool, 3, 1));
  int32_t shared = table.pages()[1];
  pool.retain(shared);  // another owner, as prefix reuse would do
  table.release_all(pool);
  EXPECT_TRUE(table.pages().empty());
  EXPECT_EQ(table.capacity(1), 0);
  EXPECT_EQ(pool.num_free(), 3);
  EXPECT_EQ(pool.refcount(shared), 1);
}

}  // namespace
}  // namespace vortex
