// Refcounted physical KV pages, numbered 0..num_pages-1. A page may be shared by several owners
// (prefix reuse); it goes back to the free list when its last owner releases it.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace vortex {

class PagePool {
 public:
  // Throws vortex::Error unless num_pages >= 1.
  explicit PagePool(int32_t num_pages);

  int32_t num_pages() const { return static_cast<int32_t>(refcounts_.size()); }
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }

  // A free page with refcount 1 (lowest indices first on a fresh pool); nullopt when none is free.
  std::optional<int32_t> allocate();
  // Adds an owner to a page in use. Retaining a free or out-of-range page is a bug (asserts).
  void retain(int32_t page);
  // Drops one owner; the page is free again when none is left. Asserts on a free page.
  void release(int32_t page);
  // 0 for a free page.
  int32_t refcount(int32_t page) const;

  // The prefix cache's own reference (kv/prefix_cache.h): cache() adds it to a page in use,
  // uncache() drops it. A page whose only owner is the cache can be evicted whenever pages run
  // short, so the scheduler counts it as available.
  void cache(int32_t page);
  void uncache(int32_t page);
  bool is_cached(int32_t page) const;
  int32_t num_cached_only() const { return cached_only_; }
  // Free pages plus pages only the prefix cache holds.
  int32_t num_available() const { return num_free() + cached_only_; }

 private:
  void check_in_range(int32_t page) const;

  std::vector<int32_t> refcounts_;
  std::vector<uint8_t> cached_;  // the prefix cache holds a reference
  int32_t cached_only_ = 0;      // pages with the cache's reference and no other
  std::vector<int32_t> free_;    // a stack: the next page handed out is free_.back()
};

}  // namespace vortex
