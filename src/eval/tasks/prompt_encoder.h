// How a task's prompt body becomes model input: as plain text (encoded with the tokenizer's
// special tokens, e.g. Llama's bos) or wrapped as one user turn of the model's chat template.
// The generators measure text with it, so the token counts they target are the model's own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace vortex::eval {

class PromptEncoder {
 public:
  // With `chat`, bodies become one user message followed by the assistant's generation prompt
  // (thinking off where the template has it, so the answer comes first).
  PromptEncoder(Tokenizer tokenizer, std::optional<ChatTemplate> chat,
                bool enable_thinking = false);

  // The model input text of `body`: the body itself or its chat rendering.
  std::string render(const std::string& body) const;
  // The model input ids of `body`.
  std::vector<int32_t> encode(const std::string& body) const;
  // Tokens of `piece` inside a body (no special tokens added).
  int32_t count(std::string_view piece) const;
  // Tokens the input adds around a body (specials, chat template).
  int32_t overhead() const { return overhead_; }
  bool chat() const { return chat_.has_value(); }
  // Every word of the task word lists with its tokens after a space (" word"), in list order;
  // the generators pad prompts to an exact length with them.
  const std::vector<std::pair<std::string, int32_t>>& word_costs() const { return word_costs_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  Tokenizer tokenizer_;
  std::optional<ChatTemplate> chat_;
  bool enable_thinking_;
  int32_t overhead_ = 0;
  std::vector<std::pair<std::string, int32_t>> word_costs_;
};

}  // namespace vortex::eval
