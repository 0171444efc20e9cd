#include "server/request_fields.h"

#include <algorithm>
#include <climits>
#include <cmath>

#include "server/error_response.h"

namespace vortex::server {

void check_prompt_length(size_t tokens, const ServedModel& m, const std::string& param) {
  if (tokens == 0) fail_field(param, "the prompt is empty: give at least one token");
  if (tokens >= static_cast<size_t>(m.context_length)) {
    fail_field(param, "the prompt has ", tokens, " tokens but the model's context is ",
               m.context_length, " tokens: no room to generate");
  }
}

std::vector<int32_t> tokenize_prompt(const std::string& text, const ServedModel& m,
                                     const std::string& param, bool add_special_tokens) {
  if (!m.tokenizer) {
    fail_field(param, "model '", m.name,
               "' has no tokenizer (tokenizer.json): send the prompt as token ids");
  }
  std::vector<int32_t> ids;
  try {
    ids = m.tokenizer->encode(text, add_special_tokens);
  } catch (const Error& e) {  // invalid UTF-8, a pathological pre-tokenizer input
    fail_field(param, e.what());
  }
  check_prompt_length(ids.size(), m, param);
  return ids;
}

std::vector<int32_t> read_token_ids(const Json& ids, const ServedModel& m,
                                    const std::string& param) {
  if (!ids.is_array())
    fail_field(param, "expected an array of token ids, got ", json_type_name(ids));
  std::vector<int32_t> out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const Json& v = ids[i];
    if (!v.is_number_integer()) {
      fail_field(param + "[" + std::to_string(i) + "]", "expected a token id, got ",
                 json_excerpt(v));
    }
    const int64_t id = v.get<int64_t>();
    if (id < 0 || id >= m.vocab_size) {
      fail_field(param + "[" + std::to_string(i) + "]", "token id ", id,
                 " is outside the vocabulary [0, ", m.vocab_size, ")");
    }
    out.push_back(static_cast<int32_t>(id));
  }
  check_prompt_length(out.size(), m, param);
  return out;
}

void read_sampling_fields(const FieldReader& r, const ServedModel& m, GenerationParams& p,
                          std::optional<int64_t>& seed) {
  if (auto t = r.get_number("temperature")) {
    if (!(*t >= 0) || *t > 1e6) {
      fail_field(r.path_of("temperature"), "must be >= 0 (0 means greedy), got ", *t);
    }
    p.sampling.temperature = static_cast<float>(*t);
  }
  if (auto t = r.get_number("top_p")) {
    if (!(*t > 0 && *t <= 1)) fail_field(r.path_of("top_p"), "must be in (0, 1], got ", *t);
    p.sampling.top_p = static_cast<float>(*t);
  }
  if (auto k = r.get_int("top_k", -1, INT32_MAX)) {
    p.sampling.top_k = *k < 0 ? 0 : static_cast<int32_t>(*k);  // -1 (vLLM, SGLang): off
  }
  if (auto t = r.get_number("min_p")) {
    if (!(*t >= 0 && *t <= 1)) fail_field(r.path_of("min_p"), "must be in [0, 1], got ", *t);
    p.sampling.min_p = static_cast<float>(*t);
  }
  if (auto s = r.get_int("seed", INT64_MIN, INT64_MAX)) seed = *s;
  if (auto b = r.get_bool("ignore_eos")) p.ignore_eos = *b;
  if (const Json* stop = r.find("stop")) {
    const std::string param = r.path_of("stop");
    std::vector<std::string> stops;
    if (stop->is_string()) {
      stops.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      if (stop->size() > kMaxStopStrings) {
        fail_field(param, "at most ", kMaxStopStrings, " stop strings, got ", stop->size());
      }
      for (size_t i = 0; i < stop->size(); ++i) {
        if (!(*stop)[i].is_string()) {
          fail_field(param + "[" + std::to_string(i) + "]", "expected a string, got ",
                     json_type_name((*stop)[i]));
        }
        stops.push_back((*stop)[i].get<std::string>());
      }
    } else {
      fail_field(param, "expected a string or a list of strings, got ", json_type_name(*stop));
    }
    for (const std::string& s : stops) {
      if (s.empty()) fail_field(param, "a stop string is empty");
      if (s.size() > kMaxStopBytes) {
        fail_field(param, "a stop string is ", s.size(), " bytes, over the limit of ",
                   kMaxStopBytes);
      }
    }
    if (!stops.empty() && !m.tokenizer) {
      fail_field(param, "stop strings need a tokenizer, and model '", m.name, "' has none");
    }
    p.stop = std::move(stops);
  }
}

void read_vortex_fields(const FieldReader& top, const ServedModel& m,
                        const std::string& flow_of_model_name, GenerationParams& p) {
  p.flow = flow_of_model_name;
  std::optional<FieldReader> v = top.get_object("vortex");
  if (v) read_vortex_object(*v, m, flow_of_model_name, p);
}

bool has_flat_vortex_fields(const FieldReader& r) {
  for (const char* key : {"flow", "topk_ratio", "topk_pages", "topk_floor", "topk_cap",
                          "sink_pages", "recent_pages"}) {
    if (r.find(key)) return true;
  }
  return false;
}

flow::BudgetOverrides read_budget_fields(const FieldReader& v) {
  auto count = [&](const char* key) { return v.get_int(key, 0, INT32_MAX); };
  flow::BudgetOverrides b;
  if (auto r = v.get_number("topk_ratio")) {
    if (!(*r > 0 && *r <= 1)) fail_field(v.path_of("topk_ratio"), "must be in (0, 1], got ", *r);
    b.ratio = *r;
  }
  if (auto x = count("topk_pages")) b.pages = *x;
  if (auto x = count("topk_floor")) b.floor = *x;
  if (auto x = count("topk_cap")) b.cap = *x;
  if (auto x = count("sink_pages")) b.sink = *x;
  if (auto x = count("recent_pages")) b.recent = *x;
  if (b.pages && b.ratio) {
    fail_field(v.path_of("topk_pages"), "give topk_pages or topk_ratio, not both");
  }
  if (b.floor && b.cap && *b.floor > *b.cap) {
    fail_field(v.path_of("topk_floor"), "(", *b.floor, ") must not exceed topk_cap (", *b.cap, ")");
  }
  return b;
}

void read_vortex_object(const FieldReader& object, const ServedModel& m,
                        const std::string& flow_of_model_name, GenerationParams& p) {
  p.flow = flow_of_model_name;
  const FieldReader* v = &object;
  if (auto flow = v->get_string("flow")) {
    const std::string param = v->path_of("flow");
    const bool loaded = std::find(m.flows.begin(), m.flows.end(), *flow) != m.flows.end();
    if (!flow->empty() && *flow != "dense" && !loaded) {
      std::string known = "'dense'";
      for (const std::string& f : m.flows) known += ", '" + f + "'";
      throw HttpError(400,
                      str_cat(param, ": no flow named '", printable(*flow, 80),
                              "' is loaded; this server runs ", known,
                              " (start it with --flow FILE to load one)"),
                      param, "flow_not_found");
    }
    if (!flow_of_model_name.empty() && *flow != flow_of_model_name) {
      fail_field(param, "'", printable(*flow, 80), "' disagrees with the model's flow '",
                 flow_of_model_name, "' (model \"", m.name, ":", flow_of_model_name, "\")");
    }
    p.flow = *flow;
  }
  p.budget = read_budget_fields(*v);
  const flow::BudgetOverrides& b = p.budget;
  const bool any_budget = b.pages || b.ratio || b.floor || b.cap || b.sink || b.recent;
  const bool dense = p.flow == "dense" || (p.flow.empty() && m.flows.empty());
  if (any_budget && dense) {
    fail_field(v->path(),
               "budget overrides need a sparse flow, and this request runs dense attention",
               m.flows.empty() ? " (no flow is loaded: start the server with --flow FILE)" : "");
  }
}

uint64_t engine_seed(int64_t seed, int32_t choice) {
  const uint64_t s = static_cast<uint64_t>(seed) + static_cast<uint64_t>(choice);
  return s != 0 ? s : 0x9E3779B97F4A7C15ull;
}

std::vector<ChoiceJob> expand_choices(std::vector<std::vector<int32_t>> prompts,
                                      const std::vector<GenerationParams>& params, int32_t n,
                                      const std::optional<int64_t>& seed,
                                      const std::string& n_param) {
  const size_t total = prompts.size() * static_cast<size_t>(n);
  if (total > static_cast<size_t>(kMaxChoicesPerRequest)) {
    fail_field(n_param, prompts.size(), " prompts x n = ", n, " make ", total,
               " completions, over the limit of ", kMaxChoicesPerRequest, " per request");
  }
  std::vector<ChoiceJob> jobs;
  jobs.reserve(total);
  for (size_t p = 0; p < prompts.size(); ++p) {
    for (int32_t s = 0; s < n; ++s) {
      ChoiceJob j;
      j.index = static_cast<int32_t>(jobs.size());
      j.prompt_index = static_cast<int32_t>(p);
      j.prompt = s + 1 < n ? prompts[p] : std::move(prompts[p]);
      j.params = params.size() == 1 ? params[0] : params.at(p);
      if (seed) j.params.sampling.seed = engine_seed(*seed, j.index);
      jobs.push_back(std::move(j));
    }
  }
  return jobs;
}

}  // namespace vortex::server
