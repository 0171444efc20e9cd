// Full KV pages of token prefixes kept after their requests end, so that a later request whose
// prompt starts with the same tokens reuses them instead of computing them again.
//
// The cache is a tree of full pages: a node is one page of P tokens under the node of the page
// before it, so a page is found only under the exact same prefix (its KV depends on every token
// before it). Nodes are looked up by (parent, the page's tokens): the tokens are compared in
// full, so a hash collision can never hand out the wrong KV.
//
// Only full pages are shared. A request never writes into a page it matched: match() stops at
// least one token short of the prompt, so the last prompt token (whose logits give the first
// generated token) is computed, and the request's first partial page is its own. This is
// copy-on-write in the simplest form: the page that would be written is recomputed instead of
// copied (at most P - 1 extra tokens per request).
//
// The cache holds one reference on each page it keeps (PagePool::cache). A page only the
// cache holds is evictable (PagePool counts them); since a request holds every page of the prefix
// it matched, no page under an evictable page is held by a request either, so eviction takes least
// recently used leaves first and never breaks a chain that is in use.
#pragma once

#include <cstdint>
#include <set>
#include <unordered_map>
#include <vector>

#include "kv/page_pool.h"

namespace vortex {

struct PrefixCacheStats {
  int64_t queries = 0;  // full prompt pages looked up by match()
  int64_t hits = 0;     // of those, found in the cache
  int64_t inserted = 0;
  int64_t evicted = 0;
};

class PrefixCache {
 public:
  explicit PrefixCache(int32_t page_size);

  // The pages of the longest cached prefix of `tokens`, at most max_pages of them, in order. Each
  // returned page is retained once for the caller, who releases it like any page it owns. Marks
  // the pages as recently used and counts the lookup (up to max_pages full pages) in the stats.
  std::vector<int32_t> match(const std::vector<int32_t>& tokens, int32_t max_pages, PagePool& pool);

  // Offers the first num_full_pages pages of a sequence to the cache: pages[i] holds tokens
  // [i * P, (i + 1) * P) of `tokens`. Pages already cached under the same prefix are kept as
  // they are (the caller's copy stays the caller's); the others are retained and added.
  void insert(const std::vector<int32_t>& tokens, const std::vector<int32_t>& pages,
              int32_t num_full_pages, PagePool& pool);

  // Frees up to `count` pages that only the cache holds, least recently used first. Returns how
  // many it freed.
  int32_t evict(int32_t count, PagePool& pool);
  // Pages evict() could free now: PagePool::num_cached_only().
  // Drops every page the cache holds (pages in use stay with their requests).
  void clear(PagePool& pool);

  int32_t size() const { return static_cast<int32_t>(nodes_.size()); }
  const PrefixCacheStats& stats() const { return stats_; }

 private:
  struct Key {
    int64_t parent;               // node id, -1 for the first page
    std::vector<int32_t> tokens;  // the page's P tokens
    bool operator==(const Key& other) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& key) const;
  };
  struct Node {
    Key key;
    int32_t page = 0;
    int32_t children = 0;
    uint64_t last_used = 0;
  };

  // The node of page `index` of `tokens` under `parent`, or -1.
  int64_t find(int64_t parent, const std::vector<int32_t>& tokens, int32_t index) const;
  void touch(int64_t id);
  void remove_leaf(int64_t id, PagePool& pool);

  int32_t page_size_;
  std::unordered_map<Key, int64_t, KeyHash> index_;
  std::unordered_map<int64_t, Node> nodes_;
  std::set<std::pair<uint64_t, int64_t>> leaves_;  // (last_used, id) of childless nodes
  int64_t next_id_ = 0;
  uint64_t clock_ = 0;
  PrefixCacheStats stats_;
};

}  // namespace vortex
