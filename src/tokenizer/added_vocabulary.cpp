#include "tokenizer/added_vocabulary.h"

#include <unordered_map>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace vortex::tok {
namespace {

// The code point that ends at byte `end` of valid UTF-8 text, and where it starts.
char32_t code_point_before(std::string_view text, size_t end, size_t& start) {
  start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  size_t pos = start;
  return next_code_point(text, pos);
}

bool ends_with_word_char(std::string_view text, size_t end) {
  if (end == 0) return false;
  size_t start;
  return is_word_char(code_point_before(text, end, start));
}

bool starts_with_word_char(std::string_view text, size_t begin) {
  if (begin >= text.size()) return false;
  return is_word_char(next_code_point(text, begin));
}

bool flag(const Json& token, const char* key, const std::string& file, size_t index) {
  if (!token.contains(key) || token[key].is_null()) return false;
  if (!token[key].is_boolean()) {
    fail(file, ": field 'added_tokens[", index, "].", key, "' must be a boolean");
  }
  return token[key].get<bool>();
}

}  // namespace

AddedVocabulary::AddedVocabulary(const Json& spec, const BpeModel& model,
                                 const Normalizer* normalizer, const std::string& file) {
  if (spec.is_null()) return;
  if (!spec.is_array()) fail(file, ": field 'added_tokens' must be an array");
  if (spec.size() > static_cast<size_t>(kMaxTokenizerVocabSize)) {
    fail(file, ": field 'added_tokens' has ", spec.size(), " entries, over the limit of ",
         kMaxTokenizerVocabSize);
  }
  std::unordered_map<std::string, size_t> index_of_content;
  int32_t max_added_id = -1;
  for (size_t i = 0; i < spec.size(); ++i) {
    const Json& t = spec[i];
    if (!t.is_object() || !t.contains("content") || !t["content"].is_string()) {
      fail(file, ": field 'added_tokens[", i, "]' needs a string 'content'");
    }
    AddedToken token;
    token.content = t["content"].get<std::string>();
    token.single_word = flag(t, "single_word", file, i);
    token.lstrip = flag(t, "lstrip", file, i);
    token.rstrip = flag(t, "rstrip", file, i);
    token.normalized = flag(t, "normalized", file, i);
    token.special = flag(t, "special", file, i);
    if (token.content.empty()) continue;  // HF ignores empty added tokens
    // Matching walks a byte trie as deep as the longest token at every position of the text.
    if (token.content.size() > kMaxAddedTokenBytes) {
      fail(file, ": field 'added_tokens[", i, "].content' is ", token.content.size(),
           " bytes, over the limit of ", kMaxAddedTokenBytes);
    }
    if (const auto it = index_of_content.find(token.content); it != index_of_content.end()) {
      // A repeated content keeps its id and takes the flags of the later entry.
      token.id = tokens_[it->second].id;
      tokens_[it->second] = std::move(token);
      continue;
    }
    if (const auto id = model.token_to_id(token.content)) {
      token.id = *id;
    } else {
      const auto model_size = static_cast<int32_t>(model.vocab_entries());
      token.id = max_added_id >= model_size ? max_added_id + 1 : model_size;
      if (token.id >= kMaxTokenizerVocabSize) {
        fail(file, ": field 'added_tokens[", i, "]' would get id ", token.id,
             ", over the limit of ", kMaxTokenizerVocabSize - 1);
      }
    }
    max_added_id = std::max(max_added_id, token.id);
    index_of_content.emplace(token.content, tokens_.size());
    tokens_.push_back(std::move(token));
  }
  size_t total_bytes = 0;  // of the trie: one node per byte at most
  for (size_t i = 0; i < tokens_.size(); ++i) {
    AddedToken& token = tokens_[i];
    if (token.normalized) {
      // HF keeps (and decodes) the normalized form of such a token.
      if (normalizer) token.content = normalizer->normalize(token.content);
    }
    total_bytes += token.content.size();
    if (total_bytes > kMaxAddedTokensTotalBytes) {
      fail(file, ": field 'added_tokens' holds more than ", kMaxAddedTokensTotalBytes,
           " bytes of token contents (the limit)");
    }
    if (token.normalized) {
      normalized_.add(token.content, static_cast<int32_t>(i));
    } else {
      raw_.add(token.content, static_cast<int32_t>(i));
    }
  }
}

void AddedVocabulary::Matcher::add(std::string_view content, int32_t token_index) {
  int32_t node = 0;
  for (char c : content) {
    const auto byte = static_cast<unsigned char>(c);
    int32_t child = -1;
    for (const auto& [b, n] : nodes_[static_cast<size_t>(node)].children) {
      if (b == byte) child = n;
    }
    if (child < 0) {
      child = static_cast<int32_t>(nodes_.size());
      nodes_[static_cast<size_t>(node)].children.emplace_back(byte, child);
      nodes_.emplace_back();
    }
    node = child;
  }
  // When two entries share a content, the first one listed wins.
  if (nodes_[static_cast<size_t>(node)].token_index < 0) {
    nodes_[static_cast<size_t>(node)].token_index = token_index;
  }
  empty_ = false;
}

std::pair<int32_t, size_t> AddedVocabulary::Matcher::longest_at(std::string_view text,
                                                                size_t pos) const {
  std::pair<int32_t, size_t> best{-1, 0};
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    int32_t child = -1;
    for (const auto& [b, n] : nodes_[static_cast<size_t>(node)].children) {
      if (b == byte) {
        child = n;
        break;
      }
    }
    if (child < 0) break;
    node = child;
    if (nodes_[static_cast<size_t>(node)].token_index >= 0) {
      best = {nodes_[static_cast<size_t>(node)].token_index, i + 1 - pos};
    }
  }
  return best;
}

std::vector<TextSegment> AddedVocabulary::Matcher::split(
    std::string_view text, const std::vector<AddedToken>& tokens) const {
  std::vector<TextSegment> segments;
  if (empty_) {
    if (!text.empty()) segments.push_back({-1, text});
    return segments;
  }
  size_t emitted = 0;  // end of what segments already cover
  size_t pos = 0;
  while (pos < text.size()) {
    const auto [index, len] = longest_at(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens[static_cast<size_t>(index)];
    size_t start = pos, stop = pos + len;
    pos = stop;  // matches never overlap, even one that is rejected below
    if (token.single_word &&
        (ends_with_word_char(text, start) || starts_with_word_char(text, stop))) {
      continue;
    }
    if (token.lstrip) {
      size_t cp_start = start;
      while (cp_start > emitted) {
        size_t prev;
        if (!is_unicode_whitespace(code_point_before(text, cp_start, prev))) break;
        cp_start = prev;
      }
      start = std::max(cp_start, emitted);
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        size_t next = stop;
        if (!is_unicode_whitespace(next_code_point(text, next))) break;
        stop = next;
      }
    }
    if (start > emitted) segments.push_back({-1, text.substr(emitted, start - emitted)});
    segments.push_back({token.id, text.substr(start, stop - start)});
    emitted = stop;
    pos = std::max(pos, stop);
  }
  if (emitted < text.size()) segments.push_back({-1, text.substr(emitted)});
  return segments;
}

}  // namespace vortex::tok
