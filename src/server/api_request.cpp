#include "server/api_request.h"

#include <random>
#include <set>

namespace vortex::server {

void ChoiceOutput::add(const RequestEvent& e) {
  if (e.kind == RequestEvent::Kind::kToken) {
    if (e.token >= 0) {
      token_ids.push_back(e.token);
      logprobs.push_back(e.logprob);
      top_logprobs.push_back(e.top_logprobs);
    }
    text += e.text;
    return;
  }
  // The final result is the reference: it holds everything, also when no token event came.
  const GenerationResult& r = e.result;
  prompt_tokens = r.prompt_tokens;
  token_ids = r.token_ids;
  logprobs = r.logprobs;
  if (!r.top_logprobs.empty()) top_logprobs = r.top_logprobs;
  top_logprobs.resize(token_ids.size());
  text = r.text;
  finished = true;
  finish_reason = finish_reason_name(r.finish_reason);
  abort_reason = e.abort_reason;
  error = e.error;
}

Json usage_json(const ApiRequest& request, const std::vector<ChoiceOutput>& choices) {
  int64_t prompt = 0, completion = 0;
  std::set<int32_t> prompts_seen;
  for (size_t i = 0; i < choices.size() && i < request.jobs.size(); ++i) {
    if (prompts_seen.insert(request.jobs[i].prompt_index).second) {
      prompt += static_cast<int64_t>(request.jobs[i].prompt.size());
    }
    completion += static_cast<int64_t>(choices[i].token_ids.size());
  }
  return {{"prompt_tokens", prompt},
          {"completion_tokens", completion},
          {"total_tokens", prompt + completion}};
}

std::string dump_json(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string sse_data(const Json& value) {
  return "data: " + dump_json(value) + "\n\n";
}

std::string new_response_id(const std::string& prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kHex[rng() & 15];
  return id;
}

}  // namespace vortex::server
