#include "kv/prefix_cache.h"

#include <algorithm>

#include "core/error.h"

namespace vortex {

PrefixCache::PrefixCache(int32_t page_size) : page_size_(page_size) {
  if (page_size < 1) fail("prefix cache: page size must be at least 1, got ", page_size);
}

size_t PrefixCache::KeyHash::operator()(const Key& key) const {
  // FNV-1a over the parent id and the tokens: cheap, and collisions only cost a comparison.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) {
    for (int byte = 0; byte < 8; ++byte) {
      h ^= (v >> (8 * byte)) & 0xff;
      h *= 1099511628211ull;
    }
  };
  mix(static_cast<uint64_t>(key.parent));
  for (int32_t t : key.tokens) mix(static_cast<uint32_t>(t));
  return static_cast<size_t>(h);
}

int64_t PrefixCache::find(int64_t parent, const std::vector<int32_t>& tokens, int32_t index) const {
  const auto begin = tokens.begin() + static_cast<ptrdiff_t>(index) * page_size_;
  Key key{parent, std::vector<int32_t>(begin, begin + page_size_)};
  auto it = index_.find(key);
  return it == index_.end() ? -1 : it->second;
}

void PrefixCache::touch(int64_t id) {
  Node& node = nodes_.at(id);
  if (node.children == 0) leaves_.erase({node.last_used, id});
  node.last_used = ++clock_;
  if (node.children == 0) leaves_.insert({node.last_used, id});
}

std::vector<int32_t> PrefixCache::match(const std::vector<int32_t>& tokens, int32_t max_pages,
                                        PagePool& pool) {
  const int32_t full = static_cast<int32_t>(tokens.size() / static_cast<size_t>(page_size_));
  const int32_t limit = std::max(0, std::min(max_pages, full));
  stats_.queries += limit;
  std::vector<int32_t> pages;
  int64_t parent = -1;
  for (int32_t i = 0; i < limit; ++i) {
    int64_t id = find(parent, tokens, i);
    if (id < 0) break;
    touch(id);
    const int32_t page = nodes_.at(id).page;
    pool.retain(page);
    pages.push_back(page);
    parent = id;
  }
  stats_.hits += static_cast<int64_t>(pages.size());
  return pages;
}

void PrefixCache::insert(const std::vector<int32_t>& tokens, const std::vector<int32_t>& pages,
                         int32_t num_full_pages, PagePool& pool) {
  VORTEX_ASSERT(num_full_pages >= 0 && static_cast<size_t>(num_full_pages) <= pages.size());
  VORTEX_ASSERT(static_cast<int64_t>(num_full_pages) * page_size_ <=
                static_cast<int64_t>(tokens.size()));
  int64_t parent = -1;
  for (int32_t i = 0; i < num_full_pages; ++i) {
    int64_t id = find(parent, tokens, i);
    if (id < 0) {
      id = next_id_++;
      const auto begin = tokens.begin() + static_cast<ptrdiff_t>(i) * page_size_;
      Node node{Key{parent, std::vector<int32_t>(begin, begin + page_size_)},
                pages[static_cast<size_t>(i)], 0, ++clock_};
      pool.cache(node.page);
      index_.emplace(node.key, id);
      if (parent >= 0) {
        Node& p = nodes_.at(parent);
        if (p.children++ == 0) leaves_.erase({p.last_used, parent});
      }
      leaves_.insert({node.last_used, id});
      nodes_.emplace(id, std::move(node));
      ++stats_.inserted;
    } else {
      touch(id);
    }
    parent = id;
  }
}

void PrefixCache::remove_leaf(int64_t id, PagePool& pool) {
  auto it = nodes_.find(id);
  VORTEX_ASSERT(it != nodes_.end() && it->second.children == 0);
  Node& node = it->second;
  leaves_.erase({node.last_used, id});
  if (node.key.parent >= 0) {
    Node& p = nodes_.at(node.key.parent);
    if (--p.children == 0) leaves_.insert({p.last_used, node.key.parent});
  }
  pool.uncache(node.page);
  index_.erase(node.key);
  nodes_.erase(it);
}

int32_t PrefixCache::evict(int32_t count, PagePool& pool) {
  int32_t freed = 0;
  // Walk the leaves oldest first; a leaf a request still holds is skipped (its chain is in use),
  // and a parent that becomes a leaf joins the set with its own (older or newer) time.
  auto it = leaves_.begin();
  while (freed < count && it != leaves_.end()) {
    const int64_t id = it->second;
    const Node& node = nodes_.at(id);
    if (pool.refcount(node.page) != 1) {
      ++it;
      continue;
    }
    remove_leaf(id, pool);
    ++freed;
    ++stats_.evicted;
    // The parent may now be a leaf older than where the walk is: start again from the oldest.
    it = leaves_.begin();
  }
  return freed;
}

void PrefixCache::clear(PagePool& pool) {
  for (const auto& [id, node] : nodes_) pool.uncache(node.page);
  nodes_.clear();
  index_.clear();
  leaves_.clear();
}

}  // namespace vortex
