// Reads the events of one streaming response for its endpoint: which carry generated content,
// the token counts the server reports (OpenAI's usage chunk, SGLang's meta_info), the end
// ("[DONE]") and errors sent inside the stream.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "loadgen/endpoint.h"

namespace vortex::loadgen {

class StreamReader {
 public:
  enum class Event {
    kContent,  // new generated text or tokens
    kOther,    // role-only deltas, finish chunks, the usage chunk, ...
    kDone,     // data: [DONE]
    kError,    // malformed data or an error object; error() says which
  };

  explicit StreamReader(Endpoint endpoint) : endpoint_(endpoint) {}

  Event on_data(std::string_view data);

  bool done() const { return done_; }
  const std::string& error() const { return error_; }
  // Token counts the server reported (the last seen), if any.
  std::optional<int64_t> completion_tokens() const { return completion_tokens_; }
  std::optional<int64_t> prompt_tokens() const { return prompt_tokens_; }

 private:
  Event fail_with(std::string message);
  Event on_openai(const Json& j);
  Event on_generate(const Json& j);
  void read_counts(const Json& counts);

  Endpoint endpoint_;
  bool done_ = false;
  std::string error_;
  std::optional<int64_t> completion_tokens_, prompt_tokens_;
  size_t generate_text_bytes_ = 0;  // /generate streams the whole text so far in each event
};

}  // namespace vortex::loadgen
