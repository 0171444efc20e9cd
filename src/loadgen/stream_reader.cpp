#include "loadgen/stream_reader.h"

#include <algorithm>

#include "core/error.h"

namespace vortex::loadgen {
namespace {

bool non_empty_string(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() && !it->get_ref<const std::string&>().empty();
}

// vLLM's return_token_ids extension, which Vortex also sends for a model without a tokenizer:
// a chunk whose ids are not empty carries tokens even when its text is empty.
bool has_token_ids(const Json& choice) {
  auto it = choice.find("token_ids");
  return it != choice.end() && it->is_array() && !it->empty();
}

std::optional<int64_t> count_field(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
  const auto v = it->get<int64_t>();
  if (v < 0) return std::nullopt;
  return v;
}

}  // namespace

StreamReader::Event StreamReader::fail_with(std::string message) {
  error_ = std::move(message);
  return Event::kError;
}

StreamReader::Event StreamReader::on_data(std::string_view data) {
  if (data == "[DONE]") {
    done_ = true;
    return Event::kDone;
  }
  if (done_) return fail_with("malformed stream: data after [DONE]");
  Json j;
  try {
    j = parse_json(data, "event");
  } catch (const Error&) {
    return fail_with(str_cat("malformed stream: event data is not JSON: ", printable(data)));
  }
  if (!j.is_object()) {
    return fail_with(str_cat("malformed stream: event data is not an object: ", json_excerpt(j)));
  }
  if (auto it = j.find("error"); it != j.end() && !it->is_null()) {
    const Json& e = *it;
    std::string message = e.is_object() && e.contains("message") && e["message"].is_string()
                              ? e["message"].get<std::string>()
                              : json_excerpt(e, 200);
    return fail_with(str_cat("server error in stream: ", printable(message, 200)));
  }
  return endpoint_ == Endpoint::kGenerate ? on_generate(j) : on_openai(j);
}

void StreamReader::read_counts(const Json& counts) {
  if (!counts.is_object()) return;
  if (auto n = count_field(counts, "completion_tokens")) completion_tokens_ = n;
  if (auto n = count_field(counts, "prompt_tokens")) prompt_tokens_ = n;
}

StreamReader::Event StreamReader::on_openai(const Json& j) {
  // vLLM sends "usage": null in every chunk but the last; SGLang and OpenAI only in the last.
  if (auto it = j.find("usage"); it != j.end()) read_counts(*it);
  auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array() || choices->empty()) return Event::kOther;
  const Json& c = (*choices)[0];
  if (!c.is_object()) return fail_with("malformed stream: choices[0] is not an object");
  if (endpoint_ == Endpoint::kCompletions) {
    return non_empty_string(c, "text") || has_token_ids(c) ? Event::kContent : Event::kOther;
  }
  if (has_token_ids(c)) return Event::kContent;
  auto delta = c.find("delta");
  if (delta == c.end() || !delta->is_object()) return Event::kOther;
  // Reasoning models stream their thinking apart from the answer; both are generated tokens.
  return non_empty_string(*delta, "content") || non_empty_string(*delta, "reasoning_content")
             ? Event::kContent
             : Event::kOther;
}

StreamReader::Event StreamReader::on_generate(const Json& j) {
  const std::optional<int64_t> before = completion_tokens_;
  if (auto it = j.find("meta_info"); it != j.end()) read_counts(*it);
  size_t text_bytes = generate_text_bytes_;
  if (auto it = j.find("text"); it != j.end() && it->is_string()) {
    text_bytes = it->get_ref<const std::string&>().size();
  }
  const bool more_text = text_bytes > generate_text_bytes_;
  generate_text_bytes_ = std::max(generate_text_bytes_, text_bytes);
  // Tokens counted by the server decide when it says them; text can lag a token (a character
  // split over tokens), and some events repeat the text so far.
  if (completion_tokens_) {
    return completion_tokens_.value() > before.value_or(0) ? Event::kContent : Event::kOther;
  }
  return more_text ? Event::kContent : Event::kOther;
}

}  // namespace vortex::loadgen
