// The BPE model of tokenizer.json: vocab, merges (as ["a","b"] pairs or "a b" strings),
// ignore_merges, unk_token/fuse_unk and byte_fallback. Words are merged by rank, lowest first
// and leftmost on ties, with a bounded cache of word -> ids shared by all threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/json_file.h"

namespace vortex::tok {

// Hash and equality that let unordered maps keyed by std::string be probed with string_views.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIdMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // Reads `spec` (the JSON value of "model"); errors name `file` and the field.
  BpeModel(const Json& spec, const std::string& file);

  // Appends the ids of one pre-token (already in the model's alphabet) to `out`.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;  // nullptr when not in the vocab
  int32_t max_id() const { return max_id_; }
  size_t vocab_entries() const { return vocab_.size(); }

 private:
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  StringIdMap vocab_;
  std::vector<const std::string*> id_to_token_;
  // (left id << 32 | right id) -> (rank << 32 | merged id)
  std::unordered_map<uint64_t, uint64_t> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  int32_t max_id_ = -1;

  static constexpr size_t kCacheCapacity = 100000;
  static constexpr size_t kCacheMaxWordBytes = 256;
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace vortex::tok
