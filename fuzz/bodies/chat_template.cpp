#include <string>
#include <vector>

#include "bodies/temp_input.h"
#include "fuzz_targets.h"
#include "tokenizer/chat_template.h"

namespace vortex::fuzz {
namespace {

std::vector<std::string_view> split_nul(std::string_view data) {
  std::vector<std::string_view> parts;
  size_t begin = 0;
  for (size_t nul; (nul = data.find('\0', begin)) != std::string_view::npos; begin = nul + 1)
    parts.push_back(data.substr(begin, nul - begin));
  parts.push_back(data.substr(begin));
  return parts;
}

void render_all_ways(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  for (bool add_generation_prompt : {true, false})
    for (bool enable_thinking : {true, false})
      (void)t.apply(messages, add_generation_prompt, enable_thinking);
}

}  // namespace

void fuzz_chat_template(std::string_view data) {
  const std::vector<std::string_view> parts = split_nul(data);
  std::vector<ChatMessage> messages;
  for (size_t i = 1; i + 1 < parts.size(); i += 2)
    messages.push_back({std::string(parts[i]), std::string(parts[i + 1])});
  if (parts.size() % 2 == 0) messages.push_back({"user", std::string(parts.back())});

  // The messages through every family first, so they are covered even when the config is bad.
  for (const char* family : {"qwen3", "chatml", "llama3", "llama3.1"})
    render_all_ways(ChatTemplate::from_family(family), messages);

  // ChatTemplate::load reads a path: there is no in-memory loader.
  const ChatTemplate t =
      ChatTemplate::load(write_scratch_file("tokenizer_config.json", parts.front()));
  render_all_ways(t, messages);
}

}  // namespace vortex::fuzz
