// What every endpoint turns its body into, and what it builds its answer from. An ApiRequest is
// a list of engine requests (one per choice: prompts x n); a ChoiceOutput collects one choice's
// events; a ResponseFormatter writes the endpoint's JSON answer or its SSE stream from them.
// The HTTP layer only moves these between the socket and the EngineLoop.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "engine/engine_loop.h"

namespace vortex::server {

enum class Api { kChatCompletions, kCompletions, kGenerate };

// The most engine requests one HTTP request may start (prompts x n).
inline constexpr int32_t kMaxChoicesPerRequest = 64;
// The largest n.
inline constexpr int32_t kMaxN = 16;
// The most stop strings, and the longest one.
inline constexpr size_t kMaxStopStrings = 16;
inline constexpr size_t kMaxStopBytes = 1024;

// One engine request: choice `index` of the response, for prompt `prompt_index`.
struct ChoiceJob {
  int32_t index = 0;
  int32_t prompt_index = 0;
  std::vector<int32_t> prompt;
  GenerationParams params;
};

struct ApiRequest {
  Api api = Api::kCompletions;
  std::string model;  // echoed in answers: as the client named it, else the served name
  std::vector<ChoiceJob> jobs;
  bool stream = false;
  bool include_usage = false;     // OpenAI stream_options.include_usage
  bool logprobs = false;          // answer with the sampled tokens' logprobs
  bool return_token_ids = false;  // OpenAI endpoints: also the token ids (vLLM's extension)
  bool batch = false;             // /generate: the answer is a list (list input or n > 1)
  std::vector<std::string> rids;  // /generate: ids the client chose, one per job (or none)
};

// One choice as its events arrive: what has been generated so far, then how it ended.
struct ChoiceOutput {
  int32_t prompt_tokens = 0;
  std::vector<int32_t> token_ids;
  std::vector<double> logprobs;
  std::vector<std::vector<TokenLogprob>> top_logprobs;
  std::string text;
  bool finished = false;
  std::string finish_reason;  // "stop", "length" or "abort" once finished
  std::string abort_reason;   // "cancelled", "deadline", "shutdown" or "error" for "abort"
  std::string error;          // abort_reason "error": the engine's message (a server error)

  // Adds a kToken event (token -1: text released at the end) or takes the final result.
  void add(const RequestEvent& event);
};

// The usage object of OpenAI answers over all choices (prompt tokens counted once per prompt).
Json usage_json(const ApiRequest& request, const std::vector<ChoiceOutput>& choices);

class ResponseFormatter {
 public:
  virtual ~ResponseFormatter() = default;
  // The whole answer of a non-streaming request, every choice finished.
  virtual Json response(const std::vector<ChoiceOutput>& choices) = 0;
  // Streaming, in order: start(), then per event token() (after ChoiceOutput::add) or, for the
  // event that ends a choice, finish(); then end(). Each returns SSE text to send (maybe "").
  virtual std::string start() = 0;
  virtual std::string token(int32_t choice, const ChoiceOutput& so_far,
                            const RequestEvent& event) = 0;
  virtual std::string finish(int32_t choice, const ChoiceOutput& done) = 0;
  virtual std::string end(const std::vector<ChoiceOutput>& choices) = 0;
};

// One Server-Sent Events message: "data: JSON\n\n". Invalid UTF-8 is replaced, never thrown.
std::string sse_data(const Json& value);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

// JSON text of a response body (invalid UTF-8 replaced).
std::string dump_json(const Json& value);

// A fresh id such as "chatcmpl-3f2a..." (random, 24 hex digits after the prefix).
std::string new_response_id(const std::string& prefix);

}  // namespace vortex::server
