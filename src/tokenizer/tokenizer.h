// A Hugging Face tokenizer.json for byte-level BPE models (Qwen2/Qwen3, Llama-3, GPT-2) that
// produces the ids HF `tokenizers` produces.
//
// Supported: normalizer none/NFC/NFD/NFKC/NFKD/Sequence; pre_tokenizer Split (Regex or String
// pattern, all behaviors, invert), ByteLevel, Sequence; model BPE (merges as pairs or strings,
// ignore_merges, unk_token, fuse_unk, byte_fallback; no dropout or subword prefixes);
// added_tokens with lstrip, rstrip, single_word and normalized (always recognized in the text,
// like HF with split_special_tokens=false); post_processor ByteLevel, TemplateProcessing (single
// sequence), Roberta/BertProcessing, Sequence; decoder ByteLevel, Fuse, Sequence or none.
// Anything else fails at load with the file and the field named.
//
// Text rendered by a chat template already holds its special tokens (bos included): encode it
// with add_special_tokens=false, as HF apply_chat_template does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vortex {

// Limits on what a tokenizer.json may hold (besides the JSON limits of core/json_file.h), far
// above real tokenizers (vocabularies of up to 262,144 tokens, a few thousand short added tokens,
// patterns of a few hundred bytes, Sequences one level deep):
// token ids and vocab entries stay below this, so id tables are bounded;
inline constexpr int32_t kMaxTokenizerVocabSize = 1 << 20;
// an added token's content is at most this long, and all of them together at most the next;
inline constexpr size_t kMaxAddedTokenBytes = 4096;
inline constexpr size_t kMaxAddedTokensTotalBytes = size_t{4} << 20;
// a Split pattern is at most this long;
inline constexpr size_t kMaxRegexPatternBytes = 64 * 1024;
// Sequence normalizers, pre-tokenizers, decoders and post-processors nest at most this deep,
// and each of the four is made of at most this many parts in all;
inline constexpr int kMaxSequenceDepth = 16;
inline constexpr int kMaxSequenceParts = 256;
// and a regex gives up (an error, not a hang) after this many backtracking steps in one search,
// or after kRegexStepsBase + kRegexStepsPerByte * (bytes searched) steps over one encode.
inline constexpr uint32_t kRegexMatchLimit = 10'000'000;
inline constexpr uint64_t kRegexStepsBase = 50'000'000;
inline constexpr uint64_t kRegexStepsPerByte = 256;

class Tokenizer {
 public:
  // Reads tokenizer.json; errors name the file and the field at fault.
  static Tokenizer load(const std::string& tokenizer_json_path);

  // Ids of `text` (valid UTF-8, else vortex::Error). With add_special_tokens the
  // post-processor's template is applied (e.g. Llama-3's <|begin_of_text|>).
  // Safe to call from several threads at once.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;

  // Text of `ids`; incomplete or invalid UTF-8 comes out as U+FFFD like HF. Throws
  // vortex::Error for an id outside the vocabulary.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  int32_t vocab_size() const;  // 1 + largest id of the vocab and the added tokens
  std::optional<int32_t> token_to_id(std::string_view token) const;  // added tokens first
  std::string id_to_token(int32_t id) const;  // raw stored token; throws for an unknown id
  bool is_special(int32_t id) const;          // an added token flagged "special"

 private:
  friend class StreamDecoder;
  struct Impl;
  static std::shared_ptr<const Impl> build(const std::string& path);
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;  // immutable and shared: copies are cheap
};

// Decodes ids one at a time for streaming output: push() returns only text whose UTF-8 is
// complete, holding back a character split across tokens until its last byte arrives, so
// the concatenation of every push() and flush() equals Tokenizer::decode of all the ids.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);

  std::string push(int32_t id);
  // Emits what is held back (an unfinished character as U+FFFD) and starts afresh.
  std::string flush();

 private:
  Tokenizer tokenizer_;
  bool skip_special_;
  bool first_ = true;
  std::string pending_;  // bytes of an incomplete trailing character
};

}  // namespace vortex
