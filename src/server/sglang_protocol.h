// SGLang's native API: POST /generate and GET /get_model_info (also /model_info), so clients
// written for an SGLang server (requests.post(url + "/generate", json=...)) work unchanged.
//
// /generate takes `text` (a string or a list) or `input_ids` (a list of ids or a list of such
// lists), `sampling_params` (an object, or a list with one per prompt: max_new_tokens (default
// 128), temperature (default 1), top_p, top_k (-1: off), min_p, stop, ignore_eos, n, seed or
// sampling_seed, and "vortex" (flow and budget; it may also sit at the top level, or its keys
// straight in sampling_params)), `stream`,
// `return_logprob`, `top_logprobs_num` and `rid`. The answer is {"text", "output_ids",
// "meta_info": {"id", "finish_reason": {"type": "stop", "matched"} | {"type": "length",
// "length"} | {"type": "abort", "message"}, "prompt_tokens", "completion_tokens",
// "cached_tokens", and with return_logprob "output_token_logprobs" ([logprob, id, text]) and
// "output_top_logprobs"}}, or a list of them for list input or n > 1 (prompt-major). A stream
// sends that object after every token with the text and ids so far (cumulative, as SGLang
// does; "index" names the item of a batch), then "data: [DONE]".
#pragma once

#include <memory>
#include <string>

#include "server/api_request.h"
#include "server/served_model.h"

namespace vortex::server {

ApiRequest parse_generate_request(const Json& body, const ServedModel& model);

// Answers for `request`; items without a client rid get `id` (plus "-INDEX" in a batch).
std::unique_ptr<ResponseFormatter> make_sglang_formatter(const ApiRequest& request,
                                                         const ServedModel& model, std::string id);

// GET /get_model_info: {"model_path", "tokenizer_path", "is_generation": true,
// "preferred_sampling_params": null, "weight_version", "has_image_understanding": false,
// "has_audio_understanding": false, "model_type", "architectures", "served_model_name"}.
Json model_info_json(const ServedModel& model);

}  // namespace vortex::server
