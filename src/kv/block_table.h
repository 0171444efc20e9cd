// The pages of one sequence, in order: token t lives in pages()[t / P] at slot t % P.
#pragma once

#include <cstdint>
#include <vector>

#include "kv/page_pool.h"

namespace vortex {

// Pages that hold num_tokens tokens: ceil(num_tokens / page_size).
int32_t pages_for_tokens(int32_t num_tokens, int32_t page_size);

class BlockTable {
 public:
  const std::vector<int32_t>& pages() const { return pages_; }
  // Tokens the pages held now can store: pages().size() * page_size.
  int32_t capacity(int32_t page_size) const;
  // Extra pages needed so that num_tokens fit (0 when they already do).
  int32_t pages_needed(int32_t num_tokens, int32_t page_size) const;
  // Grows the table so that num_tokens fit. All or nothing: false (and the pool untouched) when
  // the pool has too few free pages.
  bool reserve(PagePool& pool, int32_t num_tokens, int32_t page_size);
  // Starts an empty table with pages the caller already holds a reference on (a prefix matched
  // in the prefix cache); the table now owns those references.
  void adopt(std::vector<int32_t> pages);
  // Drops this table's hold on every page (shared pages stay with their other owners).
  void release_all(PagePool& pool);

 private:
  std::vector<int32_t> pages_;
};

}  // namespace vortex
