#include "tokenizer/bpe_model.h"

#include <cstdio>
#include <mutex>
#include <queue>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace vortex::tok {
namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

std::pair<std::string, std::string> parse_merge(const Json& merge, const std::string& file,
                                                size_t index) {
  if (merge.is_string()) {
    const std::string& s = merge.get_ref<const std::string&>();
    const size_t space = s.find(' ');
    if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
      fail(file, ": field 'model.merges[", index, "]': expected \"left right\", got \"",
           printable(s), "\"");
    }
    return {s.substr(0, space), s.substr(space + 1)};
  }
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
    return {merge[0].get<std::string>(), merge[1].get<std::string>()};
  }
  fail(file, ": field 'model.merges[", index, "]': expected a \"left right\" string or a pair of ",
       "strings, got ", json_excerpt(merge));
}

}  // namespace

BpeModel::BpeModel(const Json& spec, const std::string& file) {
  if (!spec.is_object()) fail(file, ": field 'model' must be an object");
  const std::string type = spec.value("type", std::string("BPE"));
  if (type != "BPE") {
    fail(file, ": field 'model.type': unsupported model '", printable(type), "' (supported: BPE)");
  }
  if (!spec.contains("vocab") || !spec["vocab"].is_object()) {
    fail(file, ": field 'model.vocab' must be an object of token -> id");
  }
  if (spec.contains("dropout") && spec["dropout"].is_number() &&
      spec["dropout"].get<double>() > 0) {
    fail(file, ": field 'model.dropout': BPE dropout is not supported (inference needs none)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (spec.contains(key) && spec[key].is_string() && !spec[key].get<std::string>().empty()) {
      fail(file, ": field 'model.", key, "': non-empty values are not supported");
    }
  }
  const Json& vocab = spec["vocab"];
  // Ids index a table, so they are bounded, and so is the number of entries (several tokens may
  // share an id): an id of 2e9 must not allocate a 2e9-entry table.
  if (vocab.size() > static_cast<size_t>(kMaxTokenizerVocabSize)) {
    fail(file, ": field 'model.vocab' has ", vocab.size(), " entries, over the limit of ",
         kMaxTokenizerVocabSize);
  }
  vocab_.reserve(vocab.size());
  for (const auto& [token, id_json] : vocab.get_ref<const Json::object_t&>()) {
    if (!id_json.is_number_integer() ||
        (!id_json.is_number_unsigned() && id_json.get<int64_t>() < 0)) {
      fail(file, ": field 'model.vocab': token '", printable(token), "' has invalid id ",
           json_excerpt(id_json), " (expected a non-negative integer)");
    }
    const uint64_t raw = id_json.is_number_unsigned()
                             ? id_json.get<uint64_t>()
                             : static_cast<uint64_t>(id_json.get<int64_t>());
    if (raw >= static_cast<uint64_t>(kMaxTokenizerVocabSize)) {
      fail(file, ": field 'model.vocab': token '", printable(token), "' has id ", raw,
           ", over the limit of ", kMaxTokenizerVocabSize - 1);
    }
    const auto id = id_json.get<int32_t>();
    vocab_[token] = id;
    max_id_ = std::max(max_id_, id);
  }
  id_to_token_.assign(static_cast<size_t>(max_id_ + 1), nullptr);
  for (const auto& [token, id] : vocab_) id_to_token_[static_cast<size_t>(id)] = &token;

  // Looked up in place: value() would copy what may be millions of merges.
  const Json empty = Json::array();
  const auto merges_it = spec.find("merges");
  const Json& merges = merges_it == spec.end() || merges_it->is_null() ? empty : *merges_it;
  if (!merges.is_array()) fail(file, ": field 'model.merges' must be an array");
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto [left, right] = parse_merge(merges[rank], file, rank);
    const auto l = vocab_.find(left), r = vocab_.find(right), m = vocab_.find(left + right);
    if (l == vocab_.end() || r == vocab_.end() || m == vocab_.end()) {
      fail(file, ": field 'model.merges[", rank, "]': merge \"", printable(left), " ",
           printable(right), "\" uses a token that is not in the vocab");
    }
    // A pair listed twice keeps its first (best) rank.
    merges_.emplace(pair_key(l->second, r->second),
                    (static_cast<uint64_t>(rank) << 32) | static_cast<uint32_t>(m->second));
  }

  if (spec.contains("unk_token") && spec["unk_token"].is_string()) {
    const auto it = vocab_.find(spec["unk_token"].get<std::string>());
    if (it == vocab_.end()) {
      fail(file, ": field 'model.unk_token': '", printable(spec["unk_token"].get<std::string>()),
           "' is not in the vocab");
    }
    unk_id_ = it->second;
  }
  auto flag = [&](const char* key) {
    return spec.contains(key) && spec[key].is_boolean() && spec[key].get<bool>();
  };
  fuse_unk_ = flag("fuse_unk");
  byte_fallback_ = flag("byte_fallback");
  ignore_merges_ = flag("ignore_merges");
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id > max_id_) return nullptr;
  return id_to_token_[static_cast<size_t>(id)];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) {
      cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + first, out.end()));
    }
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  // Symbols form a doubly linked list over the initial characters; a merge folds the right
  // symbol into the left one.
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  size_t pos = 0;
  bool last_was_unk = false;
  while (pos < word.size()) {
    const size_t len =
        std::min(utf8_char_len(static_cast<unsigned char>(word[pos])), word.size() - pos);
    const std::string_view ch = word.substr(pos, len);
    pos += len;
    std::vector<int32_t> ids;
    if (const auto it = vocab_.find(ch); it != vocab_.end()) {
      ids.push_back(it->second);
    } else if (byte_fallback_) {
      for (char byte : ch) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", static_cast<unsigned char>(byte));
        const auto b = vocab_.find(std::string_view(name));
        if (b == vocab_.end()) {
          ids.clear();
          break;
        }
        ids.push_back(b->second);
      }
    }
    if (ids.empty()) {
      // HF drops a character it cannot represent when the model has no unk token.
      if (!unk_id_) continue;
      if (fuse_unk_ && last_was_unk) continue;
      ids.push_back(*unk_id_);
      last_was_unk = true;
    } else {
      last_was_unk = false;
    }
    for (int32_t id : ids) {
      const auto n = static_cast<int32_t>(symbols.size());
      symbols.push_back({id, n - 1, n + 1, true});
    }
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  struct Candidate {
    uint32_t rank;
    int32_t pos;
    int32_t new_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto push_pair = [&](int32_t left) {
    if (left < 0) return;
    const int32_t right = symbols[static_cast<size_t>(left)].next;
    if (right < 0) return;
    const auto it = merges_.find(
        pair_key(symbols[static_cast<size_t>(left)].id, symbols[static_cast<size_t>(right)].id));
    if (it == merges_.end()) return;
    queue.push({static_cast<uint32_t>(it->second >> 32), left,
                static_cast<int32_t>(it->second & 0xFFFFFFFFu)});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_pair(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    // Entries go stale when a neighbour merged first; only act if the pair is still there.
    const auto it = merges_.find(pair_key(left.id, right.id));
    if (it == merges_.end() || static_cast<int32_t>(it->second & 0xFFFFFFFFu) != top.new_id) {
      continue;
    }
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
    out.push_back(symbols[static_cast<size_t>(i)].id);
  }
}

}  // namespace vortex::tok
