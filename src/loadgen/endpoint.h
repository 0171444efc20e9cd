// The three APIs the benchmark speaks, and each one's request body: OpenAI's completions and
// chat completions, and SGLang's native /generate.
#pragma once

#include <string>

#include "core/json_file.h"
#include "loadgen/workload.h"

namespace vortex::loadgen {

enum class Endpoint { kCompletions, kChat, kGenerate };

// "/v1/completions", "/v1/chat/completions" or "/generate"; a usage error naming --endpoint
// for anything else.
Endpoint parse_endpoint(const std::string& path);
const char* endpoint_path(Endpoint e);
// Whether prompts can be sent as token ids (completions `prompt: [ids]`, /generate
// `input_ids`); chat takes text only.
bool endpoint_takes_ids(Endpoint e);

struct BodyOptions {
  std::string model;  // "" = not sent (/generate needs none)
  bool ignore_eos = false;
  // Vortex's extension object ({"flow": ..., "topk_ratio": ...}); null = not sent, so other
  // servers see a plain request.
  Json vortex;
};

// Throws vortex::Error naming r.where when the endpoint cannot take the prompt (messages on a
// completions endpoint, for example).
void check_endpoint_accepts(Endpoint e, const BenchRequest& r);

// The streaming request body: greedy sampling, max_tokens (max_new_tokens for /generate), usage
// asked for in the stream (OpenAI endpoints).
Json request_body(Endpoint e, const BenchRequest& r, const BodyOptions& o);

}  // namespace vortex::loadgen
