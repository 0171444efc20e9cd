// Request fields every endpoint shares: prompts as text or token ids (checked against the
// vocabulary and the context), the sampling fields (temperature, top_p, top_k, min_p, seed,
// stop, ignore_eos: the same names in OpenAI's API, vLLM's extensions and SGLang's
// sampling_params), the "vortex" extension object (flow and budget), and the expansion of
// prompts x n into engine requests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/api_request.h"
#include "server/field_reader.h"
#include "server/served_model.h"

namespace vortex::server {

// Token ids of `text`; the model needs a tokenizer (else a 400 naming `param`). An empty result
// or one that leaves no room in the context is a 400 naming `param`.
std::vector<int32_t> tokenize_prompt(const std::string& text, const ServedModel& model,
                                     const std::string& param, bool add_special_tokens);

// A JSON array of token ids, each in the vocabulary, non-empty, shorter than the context.
std::vector<int32_t> read_token_ids(const Json& ids, const ServedModel& model,
                                    const std::string& param);

// Checks a prompt's length against the context: the prompt must leave room for one token.
void check_prompt_length(size_t tokens, const ServedModel& model, const std::string& param);

// temperature, top_p, top_k (-1 or 0: off), min_p, stop (a string or a list of strings) and
// ignore_eos from `r` into `params`; "seed" (any integer) into `seed`.
void read_sampling_fields(const FieldReader& r, const ServedModel& model, GenerationParams& params,
                          std::optional<int64_t>& seed);

// The flow a request runs: from its model name ("NAME:FLOW") and the "vortex" object of `top`
// ({"flow", "topk_ratio", "topk_pages", "topk_floor", "topk_cap", "sink_pages",
// "recent_pages"}) into params.flow and params.budget. A flow that is not loaded is a 400
// naming vortex.flow; budget overrides need a flow.
void read_vortex_fields(const FieldReader& top, const ServedModel& model,
                        const std::string& flow_of_model_name, GenerationParams& params);
// The same keys read from `object` itself (SGLang bodies may put them straight into
// sampling_params); has_flat_vortex_fields says whether `r` holds any of them.
void read_vortex_object(const FieldReader& object, const ServedModel& model,
                        const std::string& flow_of_model_name, GenerationParams& params);
bool has_flat_vortex_fields(const FieldReader& r);
// The budget keys alone ("topk_ratio", "topk_pages", "topk_floor", "topk_cap", "sink_pages",
// "recent_pages"), each checked (a 400 naming it).
flow::BudgetOverrides read_budget_fields(const FieldReader& r);

// The engine seed of choice `choice` of a request seeded with `seed` (seed + choice, as
// `vortex generate --seed` numbers its prompts; 0 means "random" to the engine, so it is mapped
// to a fixed non-zero value).
uint64_t engine_seed(int64_t seed, int32_t choice);

// prompts x n choices, numbered prompt-major (choice = prompt * n + sample) as OpenAI numbers
// them; params[p] applies to prompt p; seeded requests give each choice engine_seed(seed, i).
// More than kMaxChoicesPerRequest is a 400 naming `n_param`.
std::vector<ChoiceJob> expand_choices(std::vector<std::vector<int32_t>> prompts,
                                      const std::vector<GenerationParams>& params, int32_t n,
                                      const std::optional<int64_t>& seed,
                                      const std::string& n_param);

}  // namespace vortex::server
