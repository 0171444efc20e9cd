#include "kv/prefix_cache.h"

#include <gtest/gtest.h>

#include <numeric>

#include "kv/block_table.h"

namespace vortex {
namespace {

constexpr int32_t P = 4;

std::vector<int32_t> iota_tokens(int32_t n, int32_t start = 100) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

// A request that computed `tokens` in freshly allocated pages, as the engine would.
std::vector<int32_t> fill(PagePool& pool, int32_t num_tokens) {
  BlockTable table;
  EXPECT_TRUE(table.reserve(pool, num_tokens, P));
  return table.pages();
}

void release(PagePool& pool, const std::vector<int32_t>& pages) {
  for (int32_t p : pages) pool.release(p);
}

TEST(PrefixCache, MatchesTheLongestCachedPrefixOfFullPages) {
  PagePool pool(16);
  PrefixCache cache(P);
  std::vector<int32_t> a = iota_tokens(10);  // 2 full pages and a partial one
  std::vector<int32_t> pages = fill(pool, 10);
  cache.insert(a, pages, 2, pool);
  EXPECT_EQ(cache.size(), 2);
  release(pool, pages);  // the request ends: the cache keeps its two full pages
  EXPECT_EQ(pool.num_free(), 14);

  std::vector<int32_t> b = a;
  b[9] = 7;  // differs only in the partial page
  std::vector<int32_t> got = cache.match(b, 10, pool);
  EXPECT_EQ(got, std::vector<int32_t>(pages.begin(), pages.begin() + 2));
  for (int32_t p : got) EXPECT_EQ(pool.refcount(p), 2);  // the cache's and the caller's
  EXPECT_EQ(cache.stats().queries, 2);
  EXPECT_EQ(cache.stats().hits, 2);
  release(pool, got);

  std::vector<int32_t> c = a;
  c[5] = 0;  // differs in the second page: only the first matches
  got = cache.match(c, 10, pool);
  EXPECT_EQ(got.size(), 1u);
  release(pool, got);

  std::vector<int32_t> d = a;
  d[0] = 0;  // same second page under another first page: nothing matches
  EXPECT_TRUE(cache.match(d, 10, pool).empty());
}

TEST(PrefixCache, MatchStopsAtMaxPages) {
  PagePool pool(8);
  PrefixCache cache(P);
  std::vector<int32_t> a = iota_tokens(8);
  std::vector<int32_t> pages = fill(pool, 8);
  cache.insert(a, pages, 2, pool);
  // The engine asks for at most (len - 1) / P pages, so the last token is always computed.
  std::vector<int32_t> got = cache.match(a, (8 - 1) / P, pool);
  EXPECT_EQ(got.size(), 1u);
  release(pool, got);
  EXPECT_TRUE(cache.match(a, 0, pool).empty());
}

TEST(PrefixCache, InsertKeepsTheFirstCopyOfAPage) {
  PagePool pool(8);
  PrefixCache cache(P);
  std::vector<int32_t> a = iota_tokens(8);
  std::vector<int32_t> first = fill(pool, 8), second = fill(pool, 8);
  cache.insert(a, first, 2, pool);
  cache.insert(a, second, 2, pool);  // two requests prefilled the same prompt together
  EXPECT_EQ(cache.size(), 2);
  for (int32_t p : second) EXPECT_EQ(pool.refcount(p), 1);  // still only its request's
  release(pool, second);
  release(pool, first);
  EXPECT_EQ(pool.num_free(), 6);
}

TEST(PrefixCache, EvictsLeastRecentlyUsedLeavesThatNoRequestHolds) {
  PagePool pool(8);
  PrefixCache cache(P);
  std::vector<int32_t> a = iota_tokens(8, 0), b = iota_tokens(8, 50);
  std::vector<int32_t> pa = fill(pool, 8), pb = fill(pool, 8);
  cache.insert(a, pa, 2, pool);
  cache.insert(b, pb, 2, pool);
  release(pool, pa);
  release(pool, pb);
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_EQ(pool.num_cached_only(), 4);

  // Use a again: b is now the least recently used chain, and goes first, leaf before parent.
  std::vector<int32_t> held = cache.match(a, 2, pool);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(pool.num_cached_only(), 2);
  EXPECT_EQ(cache.evict(1, pool), 1);
  EXPECT_EQ(pool.refcount(pb[1]), 0);
  EXPECT_EQ(pool.refcount(pb[0]), 1);
  // a's pages are held by a request: asking for more frees only what is free to take.
  EXPECT_EQ(cache.evict(10, pool), 1);
  EXPECT_EQ(pool.refcount(pb[0]), 0);
  EXPECT_EQ(cache.size(), 2);
  release(pool, held);
  EXPECT_EQ(cache.evict(10, pool), 2);
  EXPECT_EQ(cache.size(), 0);
  EXPECT_EQ(pool.num_free(), 8);
  EXPECT_EQ(cache.stats().evicted, 4);
}

TEST(PrefixCache, AParentOutlivesItsUsedChild) {
  PagePool pool(8);
  PrefixCache cache(P);
  std::vector<int32_t> a = iota_tokens(8);
  std::vector<int32_t> pages = fill(pool, 8);
  cache.insert(a, pages, 2, pool);
  release(pool, pages);
  // Only the first page is matched (a prompt of 5 tokens): the child stays a leaf and is the
  // one to go; the parent cannot go before it.
  std::vector<int32_t> held = cache.match(iota_tokens(5), (5 - 1) / P, pool);
  ASSERT_EQ(held.size(), 1u);
  release(pool, held);
  EXPECT_EQ(cache.evict(1, pool), 1);
  EXPECT_EQ(pool.refcount(pages[1]), 0);
  EXPECT_EQ(pool.refcount(pages[0]), 1);
}

TEST(PrefixCache, ClearLeavesPagesInUseWithTheirRequests) {
  PagePool pool(4);
  PrefixCache cache(P);
  std::vector<int32_t> a = iota_tokens(8);
  std::vector<int32_t> pages = fill(pool, 8);
  cache.insert(a, pages, 2, pool);
  cache.clear(pool);
  EXPECT_EQ(cache.size(), 0);
  for (int32_t p : pages) EXPECT_EQ(pool.refcount(p), 1);
  release(pool, pages);
  EXPECT_EQ(pool.num_free(), 4);
}

}  // namespace
}  // namespace vortex
