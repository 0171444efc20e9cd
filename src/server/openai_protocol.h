// OpenAI's /v1/chat/completions and /v1/completions: request bodies into ApiRequests, and the
// answers (whole, or as a stream of chunks) in OpenAI's shapes, so its SDKs work unchanged.
//
// Requests: chat takes `messages` (content a string or a list of {"type": "text", "text"}
// parts; roles system, developer (read as system), user, assistant, tool) rendered with the
// model's chat template (`chat_template_kwargs.enable_thinking` is passed on); completions take
// `prompt` as a string, a list of strings (one choice list each), a list of token ids or a list
// of such lists. Both take max_tokens (chat also max_completion_tokens), temperature (default
// 1), top_p, n (up to kMaxN), stop, seed, logprobs (chat: true plus top_logprobs; completions:
// the number of alternatives), stream, stream_options.include_usage, and the extensions top_k,
// min_p, ignore_eos, return_token_ids (vLLM's: token ids in each choice) and "vortex" (flow and
// budget; request_fields.h). A model served without a tokenizer (random weights) answers as if
// return_token_ids were set: its text is empty, and a stream has one chunk per token. Unknown
// fields are ignored; fields that would change the answer in ways this server does not
// implement (penalties, logit_bias, tools, echo, suffix, response_format other than text) are
// refused unless they hold their "off" value.
// Default max_tokens: 16 for completions (OpenAI's), the rest of the context for chat.
// finish_reason is "stop", "length", or "abort" for a request the server ended (its deadline
// passed, or it shut down).
#pragma once

#include <memory>
#include <string>

#include "server/api_request.h"
#include "server/served_model.h"

namespace vortex::server {

ApiRequest parse_chat_request(const Json& body, const ServedModel& model);
ApiRequest parse_completion_request(const Json& body, const ServedModel& model);

// Chat or completions answers for `request` (request.api picks), under response id `id` (e.g.
// "chatcmpl-..."; new_response_id) created at unix time `created`.
std::unique_ptr<ResponseFormatter> make_openai_formatter(const ApiRequest& request,
                                                         const ServedModel& model, std::string id,
                                                         int64_t created);

}  // namespace vortex::server
