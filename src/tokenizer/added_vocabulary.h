// The added tokens of tokenizer.json ("added_tokens"), matched in text before the model sees it.
// Matching is leftmost-longest over all tokens; the flags behave as in HF tokenizers:
// lstrip/rstrip swallow Unicode whitespace on that side into the token, single_word only matches
// when no word character (\w) touches the token, normalized=true tokens are matched in the
// normalized text and the others in the raw text. Ids follow HF too: the "id" fields of the file
// are ignored; a token whose content is in the model's vocab takes that id, and each other new
// token takes the next id after the model's vocab and the added tokens so far.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_file.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/normalizer.h"

namespace vortex::tok {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

// A piece of text: either an added token (id >= 0) or plain text to tokenize (id < 0).
struct TextSegment {
  int32_t id;
  std::string_view text;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // `spec` is the "added_tokens" array; `normalizer` (may be null) normalizes the contents of
  // tokens flagged normalized.
  AddedVocabulary(const Json& spec, const BpeModel& model, const Normalizer* normalizer,
                  const std::string& file);

  // Splits raw text around the non-normalized tokens.
  std::vector<TextSegment> split_raw(std::string_view text) const {
    return raw_.split(text, tokens_);
  }
  // Splits normalized text around the normalized tokens.
  std::vector<TextSegment> split_normalized(std::string_view text) const {
    return normalized_.split(text, tokens_);
  }

  // One entry per distinct added token, with its final id.
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie over token contents; each node's children are few, so a flat list suffices.
  class Matcher {
   public:
    void add(std::string_view content, int32_t token_index);
    std::vector<TextSegment> split(std::string_view text,
                                   const std::vector<AddedToken>& tokens) const;

   private:
    struct Node {
      std::vector<std::pair<unsigned char, int32_t>> children;
      int32_t token_index = -1;
    };
    // Longest token starting at `pos`: (token index, length), or index -1.
    std::pair<int32_t, size_t> longest_at(std::string_view text, size_t pos) const;
    std::vector<Node> nodes_{1};
    bool empty_ = true;
  };

  std::vector<AddedToken> tokens_;
  Matcher raw_, normalized_;
};

}  // namespace vortex::tok
