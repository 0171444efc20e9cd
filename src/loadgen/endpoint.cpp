#include "loadgen/endpoint.h"

#include "core/error.h"

namespace vortex::loadgen {

Endpoint parse_endpoint(const std::string& path) {
  if (path == "/v1/completions") return Endpoint::kCompletions;
  if (path == "/v1/chat/completions") return Endpoint::kChat;
  if (path == "/generate") return Endpoint::kGenerate;
  fail_usage("--endpoint: '", printable(path),
             "' is not one of /v1/completions, /v1/chat/completions, /generate");
}

const char* endpoint_path(Endpoint e) {
  switch (e) {
    case Endpoint::kCompletions:
      return "/v1/completions";
    case Endpoint::kChat:
      return "/v1/chat/completions";
    case Endpoint::kGenerate:
      return "/generate";
  }
  return "";
}

bool endpoint_takes_ids(Endpoint e) {
  return e != Endpoint::kChat;
}

void check_endpoint_accepts(Endpoint e, const BenchRequest& r) {
  if (r.kind == PromptKind::kMessages && e != Endpoint::kChat) {
    fail(r.where, ": has \"messages\", which ", endpoint_path(e),
         " does not take (use --endpoint /v1/chat/completions)");
  }
  if (r.kind == PromptKind::kIds && !endpoint_takes_ids(e)) {
    fail(r.where, ": the prompt is token ids, which ", endpoint_path(e),
         " does not take (use --endpoint /v1/completions or /generate)");
  }
}

Json request_body(Endpoint e, const BenchRequest& r, const BodyOptions& o) {
  check_endpoint_accepts(e, r);
  Json prompt;
  if (r.kind == PromptKind::kIds) {
    prompt = r.prompt_ids;
  } else if (r.kind == PromptKind::kText) {
    prompt = r.prompt_text;
  }
  if (e == Endpoint::kGenerate) {
    Json sampling = {{"max_new_tokens", r.max_tokens}, {"temperature", 0.0}};
    if (o.ignore_eos) sampling["ignore_eos"] = true;
    if (!o.vortex.is_null()) sampling["vortex"] = o.vortex;
    // No "model": SGLang's native API has none, and refuses fields it does not know.
    return {{r.kind == PromptKind::kIds ? "input_ids" : "text", prompt},
            {"sampling_params", sampling},
            {"stream", true}};
  }
  Json body = {{"max_tokens", r.max_tokens},
               {"temperature", 0.0},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (!o.model.empty()) body["model"] = o.model;
  if (e == Endpoint::kChat) {
    // A text prompt goes to a chat endpoint as one user message.
    body["messages"] = r.kind == PromptKind::kMessages
                           ? r.messages
                           : Json::array({{{"role", "user"}, {"content", r.prompt_text}}});
  } else {
    body["prompt"] = prompt;
  }
  if (o.ignore_eos) body["ignore_eos"] = true;
  if (!o.vortex.is_null()) body["vortex"] = o.vortex;
  return body;
}

}  // namespace vortex::loadgen
