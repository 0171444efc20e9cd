#include "kv/page_pool.h"

#include "core/error.h"

namespace vortex {

PagePool::PagePool(int32_t num_pages) {
  if (num_pages < 1) fail("page pool: num_pages must be at least 1, got ", num_pages);
  refcounts_.assign(static_cast<size_t>(num_pages), 0);
  cached_.assign(static_cast<size_t>(num_pages), 0);
  free_.reserve(static_cast<size_t>(num_pages));
  for (int32_t page = num_pages - 1; page >= 0; --page) free_.push_back(page);
}

std::optional<int32_t> PagePool::allocate() {
  if (free_.empty()) return std::nullopt;
  int32_t page = free_.back();
  free_.pop_back();
  VORTEX_ASSERT(refcounts_[static_cast<size_t>(page)] == 0);
  refcounts_[static_cast<size_t>(page)] = 1;
  return page;
}

void PagePool::retain(int32_t page) {
  check_in_range(page);
  int32_t& count = refcounts_[static_cast<size_t>(page)];
  VORTEX_ASSERT(count > 0);
  if (cached_[static_cast<size_t>(page)] && count == 1) --cached_only_;
  ++count;
}

void PagePool::release(int32_t page) {
  check_in_range(page);
  int32_t& count = refcounts_[static_cast<size_t>(page)];
  VORTEX_ASSERT(count > 0);
  if (--count == 0) {
    VORTEX_ASSERT(!cached_[static_cast<size_t>(page)]);  // the cache lets go with uncache()
    free_.push_back(page);
  } else if (count == 1 && cached_[static_cast<size_t>(page)]) {
    ++cached_only_;
  }
}

void PagePool::cache(int32_t page) {
  check_in_range(page);
  VORTEX_ASSERT(!cached_[static_cast<size_t>(page)]);
  retain(page);
  cached_[static_cast<size_t>(page)] = 1;
}

void PagePool::uncache(int32_t page) {
  check_in_range(page);
  VORTEX_ASSERT(cached_[static_cast<size_t>(page)]);
  int32_t& count = refcounts_[static_cast<size_t>(page)];
  if (count == 1) --cached_only_;
  cached_[static_cast<size_t>(page)] = 0;
  release(page);
}

bool PagePool::is_cached(int32_t page) const {
  check_in_range(page);
  return cached_[static_cast<size_t>(page)] != 0;
}

int32_t PagePool::refcount(int32_t page) const {
  check_in_range(page);
  return refcounts_[static_cast<size_t>(page)];
}

void PagePool::check_in_range(int32_t page) const {
  VORTEX_ASSERT(page >= 0 && page < num_pages());
}

}  // namespace vortex
