#include "eval/tasks/prompt_encoder.h"

#include "eval/tasks/word_lists.h"

namespace vortex::eval {

PromptEncoder::PromptEncoder(Tokenizer tokenizer, std::optional<ChatTemplate> chat,
                             bool enable_thinking)
    : tokenizer_(std::move(tokenizer)), chat_(std::move(chat)), enable_thinking_(enable_thinking) {
  // A letter keeps the body's first pre-token apart from the template around it, so the
  // difference is the template's own cost.
  const std::string probe = "Answer";
  overhead_ = static_cast<int32_t>(encode(probe).size()) - count(probe);
  for (auto list : {nouns(), adjectives(), verbs_past(), places()}) {
    for (std::string_view w : list) {
      std::string spaced(" ");
      spaced += w;
      word_costs_.emplace_back(std::string(w), count(spaced));
    }
  }
}

std::string PromptEncoder::render(const std::string& body) const {
  if (!chat_) return body;
  return chat_->apply({{"user", body}}, /*add_generation_prompt=*/true, enable_thinking_);
}

std::vector<int32_t> PromptEncoder::encode(const std::string& body) const {
  if (!chat_) return tokenizer_.encode(body, /*add_special_tokens=*/true);
  return tokenizer_.encode(render(body), /*add_special_tokens=*/false);
}

int32_t PromptEncoder::count(std::string_view piece) const {
  return static_cast<int32_t>(tokenizer_.encode(piece, /*add_special_tokens=*/false).size());
}

}  // namespace vortex::eval
