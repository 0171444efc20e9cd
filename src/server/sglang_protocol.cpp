#include "server/sglang_protocol.h"

#include <algorithm>
#include <climits>

#include "server/error_response.h"
#include "server/field_reader.h"
#include "server/request_fields.h"
#include "server/token_text.h"

namespace vortex::server {

namespace {

struct PromptParams {
  GenerationParams params;
  std::optional<int64_t> seed;
  int32_t n = 1;
};

PromptParams read_sampling_params(const Json& sp, const std::string& path, const FieldReader& top,
                                  const ServedModel& m) {
  FieldReader r(sp, path);
  PromptParams out;
  GenerationParams& p = out.params;
  p.sampling.temperature = 1.0f;  // SGLang's default
  p.max_tokens = static_cast<int32_t>(r.get_int("max_new_tokens", 1, INT32_MAX).value_or(128));
  read_sampling_fields(r, m, p, out.seed);
  if (auto s = r.get_int("sampling_seed", INT64_MIN, INT64_MAX)) out.seed = *s;
  out.n = static_cast<int32_t>(r.get_int("n", 1, kMaxN).value_or(1));
  // The flow and budget: sampling_params.vortex, or the same keys straight in sampling_params,
  // or a "vortex" object beside sampling_params.
  if (r.find("vortex")) {
    if (has_flat_vortex_fields(r)) {
      fail_field(r.path_of("vortex"), "give the flow and budget either in ", r.path_of("vortex"),
                 " or straight in ", r.path(), ", not both");
    }
    read_vortex_fields(r, m, "", p);
  } else if (has_flat_vortex_fields(r)) {
    read_vortex_object(r, m, "", p);
  } else {
    read_vortex_fields(top, m, "", p);
  }
  r.reject_unless("frequency_penalty", 0);
  r.reject_unless("presence_penalty", 0);
  r.reject_unless("repetition_penalty", 1);
  r.reject_unless("min_new_tokens", 0);
  r.reject_unless("stop_token_ids", Json::array());
  r.reject_unless("skip_special_tokens", true);
  r.reject_unless("regex", nullptr);
  r.reject_unless("json_schema", nullptr);
  r.reject_unless("ebnf", nullptr);
  r.reject_unless("logit_bias", Json::object());
  return out;
}

Json finish_reason_json(const ChoiceOutput& c, const ServedModel& m,
                        const std::vector<std::string>& stops) {
  if (c.finish_reason == "length") {
    return {{"type", "length"}, {"length", c.token_ids.size()}};
  }
  if (c.finish_reason == "abort") {
    return {{"type", "abort"}, {"message", c.abort_reason.empty() ? "aborted" : c.abort_reason}};
  }
  // A stop: an eos token (the last one generated) or one of the stop strings.
  Json matched = nullptr;
  if (!c.token_ids.empty() && std::find(m.eos_token_ids.begin(), m.eos_token_ids.end(),
                                        c.token_ids.back()) != m.eos_token_ids.end()) {
    matched = c.token_ids.back();
  } else if (stops.size() == 1) {
    matched = stops[0];
  }
  return {{"type", "stop"}, {"matched", matched}};
}

class SglangFormatter : public ResponseFormatter {
 public:
  SglangFormatter(const ApiRequest& req, const ServedModel& m, std::string id)
      : req_(req), model_(m), id_(std::move(id)) {}

  Json response(const std::vector<ChoiceOutput>& choices) override {
    if (!req_.batch) return item(0, choices.at(0), true);
    Json list = Json::array();
    for (size_t i = 0; i < choices.size(); ++i) {
      list.push_back(item(static_cast<int32_t>(i), choices[i], true));
    }
    return list;
  }

  std::string start() override { return ""; }

  std::string token(int32_t index, const ChoiceOutput& so_far, const RequestEvent& event) override {
    if (event.token < 0 && event.text.empty()) return "";
    return sse_data(item(index, so_far, false));
  }

  std::string finish(int32_t index, const ChoiceOutput& done) override {
    return sse_data(item(index, done, true));
  }

  std::string end(const std::vector<ChoiceOutput>&) override { return kSseDone; }

 private:
  Json item(int32_t index, const ChoiceOutput& c, bool finished) const {
    const ChoiceJob& job = req_.jobs.at(static_cast<size_t>(index));
    std::string rid;
    if (!req_.rids.empty()) {
      rid = req_.rids.at(static_cast<size_t>(job.prompt_index));
      const size_t n = req_.jobs.size() / req_.rids.size();
      if (n > 1) rid += str_cat("-", static_cast<size_t>(index) % n);  // one per sample
    } else {
      rid = req_.batch ? str_cat(id_, "-", index) : id_;
    }
    Json meta = {{"id", rid},
                 {"finish_reason",
                  finished ? finish_reason_json(c, model_, job.params.stop) : Json(nullptr)},
                 {"prompt_tokens", job.prompt.size()},
                 {"completion_tokens", c.token_ids.size()},
                 {"cached_tokens", 0}};
    if (req_.logprobs) {
      const Tokenizer* tok = model_.tokenizer;
      Json lps = Json::array(), tops = Json::array();
      for (size_t t = 0; t < c.token_ids.size(); ++t) {
        lps.push_back(
            {finite_logprob(c.logprobs[t]), c.token_ids[t], token_text(tok, c.token_ids[t])});
        Json alternatives = Json::array();
        for (const TokenLogprob& a : c.top_logprobs[t]) {
          alternatives.push_back({finite_logprob(a.logprob), a.token, token_text(tok, a.token)});
        }
        tops.push_back(std::move(alternatives));
      }
      meta["output_token_logprobs"] = std::move(lps);
      if (job.params.top_logprobs > 0) meta["output_top_logprobs"] = std::move(tops);
    }
    Json out = {{"text", c.text}, {"output_ids", c.token_ids}, {"meta_info", meta}};
    if (req_.batch && req_.stream) out["index"] = index;
    return out;
  }

  ApiRequest req_;
  const ServedModel& model_;
  std::string id_;
};

}  // namespace

ApiRequest parse_generate_request(const Json& body, const ServedModel& m) {
  FieldReader r(body, "");
  ApiRequest req;
  req.api = Api::kGenerate;
  req.model = m.name;
  r.reject_unless("image_data", nullptr);
  r.reject_unless("audio_data", nullptr);
  r.reject_unless("input_embeds", nullptr);
  req.stream = r.get_bool("stream").value_or(false);
  req.logprobs = r.get_bool("return_logprob").value_or(false);
  const int32_t top =
      static_cast<int32_t>(r.get_int("top_logprobs_num", 0, kMaxTopLogprobs).value_or(0));

  const Json* text = r.find("text");
  const Json* ids = r.find("input_ids");
  if (text && ids) fail_field("input_ids", "give either text or input_ids, not both");
  if (!text && !ids) fail_field("text", "is required (or input_ids)");
  std::vector<std::vector<int32_t>> prompts;
  bool list_input = false;
  if (text) {
    if (text->is_string()) {
      prompts.push_back(tokenize_prompt(text->get<std::string>(), m, "text", true));
    } else if (text->is_array() && !text->empty()) {
      list_input = true;
      if (text->size() > static_cast<size_t>(kMaxChoicesPerRequest)) {
        fail_field("text", "at most ", kMaxChoicesPerRequest, " prompts per request, got ",
                   text->size());
      }
      for (size_t i = 0; i < text->size(); ++i) {
        const std::string param = "text[" + std::to_string(i) + "]";
        if (!(*text)[i].is_string()) {
          fail_field(param, "expected a string, got ", json_type_name((*text)[i]));
        }
        prompts.push_back(tokenize_prompt((*text)[i].get<std::string>(), m, param, true));
      }
    } else {
      fail_field("text", "expected a string or a non-empty list of strings, got ",
                 json_excerpt(*text));
    }
  } else if (ids->is_array() && !ids->empty() && (*ids)[0].is_array()) {
    list_input = true;
    if (ids->size() > static_cast<size_t>(kMaxChoicesPerRequest)) {
      fail_field("input_ids", "at most ", kMaxChoicesPerRequest, " prompts per request, got ",
                 ids->size());
    }
    for (size_t i = 0; i < ids->size(); ++i) {
      prompts.push_back(read_token_ids((*ids)[i], m, "input_ids[" + std::to_string(i) + "]"));
    }
  } else {
    prompts.push_back(read_token_ids(*ids, m, "input_ids"));
  }

  // One sampling_params for all prompts, or a list with one per prompt.
  std::vector<PromptParams> per_prompt;
  const Json* sp = r.find("sampling_params");
  if (sp && sp->is_array()) {
    if (sp->size() != prompts.size()) {
      fail_field("sampling_params", "has ", sp->size(), " entries for ", prompts.size(),
                 " prompts (give one object, or one per prompt)");
    }
    for (size_t i = 0; i < sp->size(); ++i) {
      per_prompt.push_back(
          read_sampling_params((*sp)[i], "sampling_params[" + std::to_string(i) + "]", r, m));
    }
  } else {
    per_prompt.push_back(read_sampling_params(sp ? *sp : Json::object(), "sampling_params", r, m));
  }
  const int32_t n = per_prompt[0].n;
  for (const PromptParams& p : per_prompt) {
    if (p.n != n) fail_field("sampling_params", "every entry must ask for the same n");
    if (p.seed.has_value() != per_prompt[0].seed.has_value()) {
      fail_field("sampling_params", "give a seed in every entry or in none");
    }
  }
  std::vector<GenerationParams> params;
  for (PromptParams& p : per_prompt) {
    p.params.top_logprobs = top;
    params.push_back(p.params);
  }
  req.batch = list_input || n > 1;
  std::vector<ChoiceJob> jobs =
      expand_choices(std::move(prompts), params, n, per_prompt[0].seed, "sampling_params.n");
  // A per-prompt seed list: each prompt's own seed, plus the sample's index.
  if (per_prompt.size() > 1 && per_prompt[0].seed) {
    for (ChoiceJob& j : jobs) {
      j.params.sampling.seed =
          engine_seed(*per_prompt[static_cast<size_t>(j.prompt_index)].seed, j.index % n);
    }
  }
  req.jobs = std::move(jobs);

  if (const Json* rid = r.find("rid")) {
    const size_t want = req.jobs.size() / static_cast<size_t>(n);
    if (rid->is_string() && want == 1) {
      req.rids.push_back(rid->get<std::string>());
    } else if (rid->is_array() && rid->size() == want) {
      for (size_t i = 0; i < rid->size(); ++i) {
        if (!(*rid)[i].is_string()) {
          fail_field("rid[" + std::to_string(i) + "]", "expected a string, got ",
                     json_type_name((*rid)[i]));
        }
        req.rids.push_back((*rid)[i].get<std::string>());
      }
    } else {
      fail_field("rid", "expected ",
                 want == 1 ? "a string" : str_cat("a list of ", want, " strings"),
                 " (one per prompt), got ", json_excerpt(*rid));
    }
  }
  return req;
}

std::unique_ptr<ResponseFormatter> make_sglang_formatter(const ApiRequest& request,
                                                         const ServedModel& model, std::string id) {
  return std::make_unique<SglangFormatter>(request, model, std::move(id));
}

Json model_info_json(const ServedModel& m) {
  return {{"model_path", m.path},
          {"tokenizer_path", m.tokenizer ? Json(m.path) : Json(nullptr)},
          {"is_generation", true},
          {"preferred_sampling_params", nullptr},
          {"weight_version", "default"},
          {"has_image_understanding", false},
          {"has_audio_understanding", false},
          {"model_type", m.model_type},
          {"architectures", Json::array({m.architecture})},
          {"served_model_name", m.name},
          {"max_context_length", m.context_length}};
}

}  // namespace vortex::server
