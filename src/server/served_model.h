// What the HTTP front knows of the model it serves: the name clients must use, its context, its
// tokenizer and chat template, and the flows loaded. The protocol code reads only this, so it
// is tested without an engine.
//
// Flows in model names: /v1/models lists the model ("NAME") and one entry per loaded flow
// ("NAME:FLOW"). A request may pick a flow either way: "model": "NAME:FLOW" or
// "vortex": {"flow": "FLOW"} (both given must agree).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "engine/loaded_model.h"

namespace vortex::server {

struct ServedModel {
  std::string name;            // what `model` must say (--served-model-name)
  std::string path;            // the model directory or preset it was loaded from
  int32_t context_length = 0;  // max_position_embeddings: prompt tokens must be fewer
  int32_t vocab_size = 0;
  std::vector<int32_t> eos_token_ids;
  std::string model_type;                       // "qwen3", "llama"
  std::string architecture;                     // "Qwen3ForCausalLM"
  const Tokenizer* tokenizer = nullptr;         // null: prompts must be token ids
  const ChatTemplate* chat_template = nullptr;  // null: no chat completions
  std::vector<std::string> flows;  // names of the loaded flows; empty: dense attention only
  int64_t created = 0;             // unix time the server started (the models' "created")
};

// `name` as clients see it; flows as the engine names them.
ServedModel served_model_of(const LoadedModel& model, const std::string& name,
                            std::vector<std::string> flows);

// The default --served-model-name: the last part of the model directory's path (trailing
// slashes ignored), or the preset's name.
std::string default_served_model_name(const std::string& model_source);

// The flow a request's `model` selects: "" for the served name or an absent model, FLOW for
// "NAME:FLOW" with FLOW loaded; anything else is a 404 model_not_found naming it.
std::string flow_of_model(const std::string& requested, const ServedModel& model);

// GET /v1/models: {"object": "list", "data": [{"id", "object": "model", "created", "owned_by",
// "root", "max_model_len"}, one per "NAME:FLOW" with "parent" and "flow"]}.
Json models_json(const ServedModel& model);

}  // namespace vortex::server
