#include "kv/block_table.h"

#include <algorithm>

#include "core/error.h"

namespace vortex {

int32_t pages_for_tokens(int32_t num_tokens, int32_t page_size) {
  VORTEX_ASSERT(num_tokens >= 0 && page_size >= 1);
  return static_cast<int32_t>((static_cast<int64_t>(num_tokens) + page_size - 1) / page_size);
}

int32_t BlockTable::capacity(int32_t page_size) const {
  return static_cast<int32_t>(pages_.size()) * page_size;
}

int32_t BlockTable::pages_needed(int32_t num_tokens, int32_t page_size) const {
  return std::max(0, pages_for_tokens(num_tokens, page_size) - static_cast<int32_t>(pages_.size()));
}

bool BlockTable::reserve(PagePool& pool, int32_t num_tokens, int32_t page_size) {
  int32_t needed = pages_needed(num_tokens, page_size);
  if (needed > pool.num_free()) return false;
  for (int32_t i = 0; i < needed; ++i) {
    std::optional<int32_t> page = pool.allocate();
    VORTEX_ASSERT(page.has_value());  // num_free() promised enough
    pages_.push_back(*page);
  }
  return true;
}

void BlockTable::adopt(std::vector<int32_t> pages) {
  VORTEX_ASSERT(pages_.empty());
  pages_ = std::move(pages);
}

void BlockTable::release_all(PagePool& pool) {
  for (int32_t page : pages_) pool.release(page);
  pages_.clear();
}

}  // namespace vortex
