#include "kv/page_pool.h"

#include <gtest/gtest.h>

#include <set>

#include "core/error.h"

namespace vortex {
namespace {

TEST(PagePool, HandsOutEveryPageOnceThenNothing) {
  PagePool pool(5);
  std::set<int32_t> seen;
  for (int i = 0; i < 5; ++i) {
    std::optional<int32_t> page = pool.allocate();
    ASSERT_TRUE(page.has_value());
    EXPECT_GE(*page, 0);
    EXPECT_LT(*page, 5);
    EXPECT_TRUE(seen.insert(*page).second) << "page " << *page << " handed out twice";
    EXPECT_EQ(pool.refcount(*page), 1);
  }
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_FALSE(pool.allocate().has_value());
}

TEST(PagePool, PageReturnsToFreeListOnlyWhenLastOwnerReleases) {
  PagePool pool(2);
  int32_t page = *pool.allocate();
  pool.retain(page);
  pool.retain(page);
  EXPECT_EQ(pool.refcount(page), 3);
  EXPECT_EQ(pool.num_free(), 1);
  pool.release(page);
  pool.release(page);
  EXPECT_EQ(pool.refcount(page), 1);
  EXPECT_EQ(pool.num_free(), 1);
  pool.release(page);
  EXPECT_EQ(pool.refcount(page), 0);
  EXPECT_EQ(pool.num_free(), 2);
}

TEST(PagePool, ReleasedPageIsReusable) {
  PagePool pool(1);
  int32_t page = *pool.allocate();
  EXPECT_FALSE(pool.allocate().has_value());
  pool.release(page);
  std::optional<int32_t> again = pool.allocate();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, page);
  EXPECT_EQ(pool.refcount(page), 1);
}

TEST(PagePool, RetainOrReleaseOfFreePageIsAnError) {
  PagePool pool(3);
  EXPECT_THROW(pool.retain(0), Error);
  EXPECT_THROW(pool.release(1), Error);
  int32_t page = *pool.allocate();
  pool.release(page);
  EXPECT_THROW(pool.release(page), Error);  // double release
  EXPECT_EQ(pool.num_free(), 3);
}

TEST(PagePool, OutOfRangePageIsAnError) {
  PagePool pool(3);
  EXPECT_THROW(pool.retain(3), Error);
  EXPECT_THROW(pool.release(-1), Error);
  EXPECT_THROW(pool.refcount(7), Error);
}

TEST(PagePool, RejectsEmptyPool) {
  EXPECT_THROW(PagePool(0), Error);
  EXPECT_THROW(PagePool(-4), Error);
}

}  // namespace
}  // namespace vortex

namespace vortex {
namespace {

TEST(PagePool, CountsPagesOnlyThePrefixCacheHoldsAsAvailable) {
  PagePool pool(3);
  int32_t page = *pool.allocate();
  EXPECT_EQ(pool.num_available(), 2);
  pool.cache(page);  // the request and the cache hold it
  EXPECT_TRUE(pool.is_cached(page));
  EXPECT_EQ(pool.num_cached_only(), 0);
  pool.release(page);  // the request ends: only the cache is left
  EXPECT_EQ(pool.num_cached_only(), 1);
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_EQ(pool.num_available(), 3);
  pool.retain(page);  // another request matches it
  EXPECT_EQ(pool.num_cached_only(), 0);
  pool.release(page);
  pool.uncache(page);  // evicted
  EXPECT_FALSE(pool.is_cached(page));
  EXPECT_EQ(pool.num_cached_only(), 0);
  EXPECT_EQ(pool.num_free(), 3);
}

}  // namespace
}  // namespace vortex
