// Chat templates rendered natively (no Jinja): the family is recognised from the
// `chat_template` string of tokenizer_config.json and reproduced in C++.
//
// Families: "qwen3" (ChatML with Qwen3's <think> handling), "chatml" (Qwen2/2.5 and other
// ChatML templates; a default system prompt written literally in the template is kept),
// "llama3" (Llama-3.0) and "llama3.1" (Llama-3.1/3.2: the system block with "Cutting Knowledge
// Date" and "Today Date").
// Not reproduced: tools and tool_calls, reasoning_content fields, Qwen2.5's wrapping of "tool"
// messages in the chatml family. In qwen3, roles other than system/user/assistant/tool are
// dropped, as the real template drops them.
//
// The rendered text holds the special tokens (Llama's bos included): encode it with
// Tokenizer::encode(text, /*add_special_tokens=*/false), as HF apply_chat_template does.
#pragma once

#include <string>
#include <vector>

#include "core/json_file.h"

namespace vortex {

struct ChatMessage {
  std::string role;
  std::string content;
};

class ChatTemplate {
 public:
  // Reads tokenizer_config.json; throws when it has no chat template or one of no supported
  // family (the error lists the families).
  static ChatTemplate load(const std::string& tokenizer_config_path);
  // A family by name; `bos_token` defaults to the family's own ("<|begin_of_text|>" for Llama).
  static ChatTemplate from_family(const std::string& family, const std::string& bos_token = "");

  // The prompt text for `messages`; with add_generation_prompt it ends with the opening of an
  // assistant turn. enable_thinking=false makes Qwen3 start that turn with an empty <think>.
  std::string apply(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true,
                    bool enable_thinking = true) const;

  std::string family() const { return family_; }

 private:
  static ChatTemplate load_config(const Json& config, const std::string& path);
  std::string render_chatml(const std::vector<ChatMessage>& messages,
                            bool add_generation_prompt) const;
  std::string render_qwen3(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                           bool enable_thinking) const;
  std::string render_llama3(const std::vector<ChatMessage>& messages,
                            bool add_generation_prompt) const;

  std::string family_;
  std::string bos_token_;
  std::string default_system_;  // chatml: system prompt used when none is given
  std::string knowledge_date_;  // llama3.1: "December 2023"
  std::string today_date_;      // llama3.1: fixed date, or empty for today's
};

}  // namespace vortex
