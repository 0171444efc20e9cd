#include "server/openai_protocol.h"

#include <climits>

#include "server/error_response.h"
#include "server/field_reader.h"
#include "server/request_fields.h"
#include "server/token_text.h"

namespace vortex::server {

namespace {

// Fields both endpoints read the same way, after the prompt.
struct CommonFields {
  std::string model_name;
  GenerationParams params;
  std::optional<int64_t> seed;
  int32_t n = 1;
};

CommonFields read_common(const FieldReader& r, const ServedModel& m, ApiRequest& req) {
  CommonFields c;
  c.model_name = r.get_string("model").value_or("");
  const std::string flow = flow_of_model(c.model_name, m);
  req.model = c.model_name.empty() ? m.name : c.model_name;
  c.n = static_cast<int32_t>(r.get_int("n", 1, kMaxN).value_or(1));
  req.stream = r.get_bool("stream").value_or(false);
  if (std::optional<FieldReader> so = r.get_object("stream_options")) {
    req.include_usage = so->get_bool("include_usage").value_or(false);
  }
  req.return_token_ids = r.get_bool("return_token_ids").value_or(false);
  c.params.sampling.temperature = 1.0f;  // OpenAI's default
  read_sampling_fields(r, m, c.params, c.seed);
  read_vortex_fields(r, m, flow, c.params);
  r.reject_unless("frequency_penalty", 0);
  r.reject_unless("presence_penalty", 0);
  r.reject_unless("repetition_penalty", 1);
  r.reject_unless("logit_bias", Json::object());
  r.reject_unless("min_tokens", 0);
  r.reject_unless("stop_token_ids", Json::array());
  r.reject_unless("guided_json", nullptr);
  r.reject_unless("guided_regex", nullptr);
  return c;
}

ChatMessage read_message(const Json& msg, const std::string& path) {
  FieldReader r(msg, path);
  std::optional<std::string> role = r.get_string("role");
  if (!role) fail_field(r.path_of("role"), "is required");
  if (*role == "developer") *role = "system";  // OpenAI's newer name for system messages
  if (*role != "system" && *role != "user" && *role != "assistant" && *role != "tool") {
    fail_field(r.path_of("role"), "unknown role '", printable(*role, 40),
               "' (expected system, developer, user, assistant or tool)");
  }
  ChatMessage out{*role, ""};
  const Json* content = r.find("content");
  const std::string cpath = r.path_of("content");
  if (!content) {
    if (*role != "assistant") fail_field(cpath, "is required for a ", *role, " message");
  } else if (content->is_string()) {
    out.content = content->get<std::string>();
  } else if (content->is_array()) {
    for (size_t i = 0; i < content->size(); ++i) {
      FieldReader part((*content)[i], cpath + "[" + std::to_string(i) + "]");
      const std::string type = part.get_string("type").value_or("");
      if (type != "text") {
        fail_field(part.path_of("type"), "only text parts are supported, got '",
                   printable(type, 40), "'");
      }
      std::optional<std::string> text = part.get_string("text");
      if (!text) fail_field(part.path_of("text"), "is required");
      out.content += *text;
    }
  } else {
    fail_field(cpath, "expected a string or a list of content parts, got ",
               json_type_name(*content));
  }
  if (const Json* calls = r.find("tool_calls"); calls && !calls->empty()) {
    fail_field(r.path_of("tool_calls"), "tool calls are not supported by this server");
  }
  return out;
}

// --- answers ---------------------------------------------------------------------------------

Json bytes_json(const std::string& bytes) {
  Json out = Json::array();
  for (unsigned char c : bytes) out.push_back(static_cast<int>(c));
  return out;
}

// One entry of a chat answer's logprobs.content.
Json chat_logprob(const Tokenizer* tok, int32_t token, double logprob,
                  const std::vector<TokenLogprob>& top) {
  Json alternatives = Json::array();
  for (const TokenLogprob& t : top) {
    alternatives.push_back({{"token", token_text(tok, t.token)},
                            {"logprob", finite_logprob(t.logprob)},
                            {"bytes", bytes_json(token_bytes(tok, t.token))}});
  }
  return {{"token", token_text(tok, token)},
          {"logprob", finite_logprob(logprob)},
          {"bytes", bytes_json(token_bytes(tok, token))},
          {"top_logprobs", alternatives}};
}

// The legacy completions logprobs object for tokens [from, to) of `c`; `offset` is the text
// offset of token `from` and moves past the tokens.
Json completion_logprobs(const Tokenizer* tok, const ChoiceOutput& c, size_t from, size_t to,
                         int64_t& offset) {
  Json tokens = Json::array(), lps = Json::array(), tops = Json::array(), offsets = Json::array();
  for (size_t i = from; i < to && i < c.token_ids.size(); ++i) {
    const std::string text = token_text(tok, c.token_ids[i]);
    tokens.push_back(text);
    lps.push_back(finite_logprob(c.logprobs[i]));
    Json top = Json::object();
    for (const TokenLogprob& t : c.top_logprobs[i]) {
      top[token_text(tok, t.token)] = finite_logprob(t.logprob);
    }
    tops.push_back(top);
    offsets.push_back(offset);
    offset += static_cast<int64_t>(text.size());
  }
  return {{"tokens", tokens},
          {"token_logprobs", lps},
          {"top_logprobs", tops},
          {"text_offset", offsets}};
}

class OpenAiFormatter : public ResponseFormatter {
 public:
  OpenAiFormatter(const ApiRequest& req, const ServedModel& m, std::string id, int64_t created)
      : req_(req),
        tok_(m.tokenizer),
        id_(std::move(id)),
        created_(created),
        chat_(req.api == Api::kChatCompletions),
        // A model without a tokenizer has no text to send: its answers carry the token ids
        // instead, and a stream still has one chunk per token (clients time tokens by chunks).
        token_ids_(req.return_token_ids || m.tokenizer == nullptr),
        offsets_(req.jobs.size(), 0) {}

  Json response(const std::vector<ChoiceOutput>& choices) override {
    Json list = Json::array();
    for (size_t i = 0; i < choices.size(); ++i) {
      const ChoiceOutput& c = choices[i];
      Json choice = {{"index", i}};
      if (chat_) {
        choice["message"] = {{"role", "assistant"}, {"content", c.text}};
      } else {
        choice["text"] = c.text;
      }
      choice["logprobs"] = nullptr;
      if (req_.logprobs) {
        if (chat_) {
          Json content = Json::array();
          for (size_t t = 0; t < c.token_ids.size(); ++t) {
            content.push_back(chat_logprob(tok_, c.token_ids[t], c.logprobs[t], c.top_logprobs[t]));
          }
          choice["logprobs"] = {{"content", content}, {"refusal", nullptr}};
        } else {
          int64_t offset = 0;
          choice["logprobs"] = completion_logprobs(tok_, c, 0, c.token_ids.size(), offset);
        }
      }
      choice["finish_reason"] = c.finish_reason;
      if (token_ids_) {
        choice["token_ids"] = c.token_ids;
        choice["prompt_token_ids"] = req_.jobs.at(i).prompt;
      }
      list.push_back(std::move(choice));
    }
    return {{"id", id_},           {"object", chat_ ? "chat.completion" : "text_completion"},
            {"created", created_}, {"model", req_.model},
            {"choices", list},     {"usage", usage_json(req_, choices)}};
  }

  std::string start() override {
    if (!chat_) return "";
    // Chat streams open every choice with the assistant role.
    std::string out;
    for (size_t i = 0; i < req_.jobs.size(); ++i) {
      out += chunk({{"index", i},
                    {"delta", {{"role", "assistant"}, {"content", ""}}},
                    {"logprobs", nullptr},
                    {"finish_reason", nullptr}});
    }
    return out;
  }

  std::string token(int32_t index, const ChoiceOutput& so_far, const RequestEvent& event) override {
    const bool has_token = event.token >= 0;
    if (event.text.empty() && !(has_token && (req_.logprobs || token_ids_))) {
      return "";  // text held back (a stop string may still match): nothing to say yet
    }
    Json choice = {{"index", index}};
    if (chat_) {
      choice["delta"] = {{"content", event.text}};
    } else {
      choice["text"] = event.text;
    }
    choice["logprobs"] = nullptr;
    if (req_.logprobs && has_token) {
      if (chat_) {
        choice["logprobs"] = {
            {"content",
             Json::array({chat_logprob(tok_, event.token, event.logprob, event.top_logprobs)})},
            {"refusal", nullptr}};
      } else {
        const size_t last = so_far.token_ids.size();
        choice["logprobs"] = completion_logprobs(tok_, so_far, last - 1, last, offsets_.at(index));
      }
    }
    choice["finish_reason"] = nullptr;
    if (token_ids_) {
      choice["token_ids"] = has_token ? Json::array({event.token}) : Json::array();
    }
    return chunk(std::move(choice));
  }

  std::string finish(int32_t index, const ChoiceOutput& done) override {
    Json choice = {{"index", index}};
    if (chat_) {
      choice["delta"] = Json::object();
    } else {
      choice["text"] = "";
    }
    choice["logprobs"] = nullptr;
    choice["finish_reason"] = done.finish_reason;
    return chunk(std::move(choice));
  }

  std::string end(const std::vector<ChoiceOutput>& choices) override {
    std::string out;
    if (req_.include_usage) {
      Json last = header();
      last["choices"] = Json::array();
      last["usage"] = usage_json(req_, choices);
      out += sse_data(last);
    }
    return out + kSseDone;
  }

 private:
  Json header() const {
    return {{"id", id_},
            {"object", chat_ ? "chat.completion.chunk" : "text_completion"},
            {"created", created_},
            {"model", req_.model}};
  }

  std::string chunk(Json choice) const {
    Json j = header();
    j["choices"] = Json::array({std::move(choice)});
    // With include_usage every chunk carries "usage": null but the last (OpenAI's shape).
    if (req_.include_usage) j["usage"] = nullptr;
    return sse_data(j);
  }

  ApiRequest req_;
  const Tokenizer* tok_;
  std::string id_;
  int64_t created_;
  bool chat_;
  bool token_ids_;
  std::vector<int64_t> offsets_;  // completions logprobs: text offset per choice so far
};

}  // namespace

ApiRequest parse_chat_request(const Json& body, const ServedModel& m) {
  FieldReader r(body, "");
  ApiRequest req;
  req.api = Api::kChatCompletions;
  r.reject_unless("tools", Json::array());
  r.reject_unless("response_format", {{"type", "text"}});
  CommonFields c = read_common(r, m, req);  // first: an unknown model is a 404 before all else
  const Json* messages = r.find("messages");
  if (!messages) fail_field("messages", "is required");
  if (!messages->is_array() || messages->empty()) {
    fail_field("messages", "expected a non-empty list of messages");
  }
  std::vector<ChatMessage> chat;
  for (size_t i = 0; i < messages->size(); ++i) {
    chat.push_back(read_message((*messages)[i], "messages[" + std::to_string(i) + "]"));
  }
  bool enable_thinking = true;
  if (std::optional<FieldReader> kw = r.get_object("chat_template_kwargs")) {
    enable_thinking = kw->get_bool("enable_thinking").value_or(true);
  }
  if (!m.chat_template) {
    fail_field("messages", "model '", m.name,
               "' has no chat template (tokenizer_config.json): use /v1/completions");
  }
  const std::string text =
      m.chat_template->apply(chat, /*add_generation_prompt=*/true, enable_thinking);
  std::vector<int32_t> prompt = tokenize_prompt(text, m, "messages", /*add_special_tokens=*/false);

  // max_completion_tokens is the newer name; without either, the rest of the context (the
  // engine never generates past it).
  std::optional<int64_t> max_tokens = r.get_int("max_completion_tokens", 1, INT32_MAX);
  if (!max_tokens) max_tokens = r.get_int("max_tokens", 1, INT32_MAX);
  c.params.max_tokens = static_cast<int32_t>(max_tokens.value_or(m.context_length));
  req.logprobs = r.get_bool("logprobs").value_or(false);
  if (auto top = r.get_int("top_logprobs", 0, kMaxTopLogprobs)) {
    if (!req.logprobs) fail_field("top_logprobs", "needs \"logprobs\": true");
    c.params.top_logprobs = static_cast<int32_t>(*top);
  }
  std::vector<std::vector<int32_t>> prompts;
  prompts.push_back(std::move(prompt));
  req.jobs = expand_choices(std::move(prompts), {c.params}, c.n, c.seed, "n");
  return req;
}

ApiRequest parse_completion_request(const Json& body, const ServedModel& m) {
  FieldReader r(body, "");
  ApiRequest req;
  req.api = Api::kCompletions;
  CommonFields c = read_common(r, m, req);  // first: an unknown model is a 404 before all else
  r.reject_unless("echo", false);
  r.reject_unless("suffix", "");
  const Json* prompt = r.find("prompt");
  if (!prompt) fail_field("prompt", "is required");

  std::vector<std::vector<int32_t>> prompts;
  if (prompt->is_string()) {
    prompts.push_back(tokenize_prompt(prompt->get<std::string>(), m, "prompt", true));
  } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number_integer()) {
    prompts.push_back(read_token_ids(*prompt, m, "prompt"));
  } else if (prompt->is_array() && !prompt->empty()) {
    if (prompt->size() > static_cast<size_t>(kMaxChoicesPerRequest)) {
      fail_field("prompt", "at most ", kMaxChoicesPerRequest, " prompts per request, got ",
                 prompt->size());
    }
    for (size_t i = 0; i < prompt->size(); ++i) {
      const Json& p = (*prompt)[i];
      const std::string param = "prompt[" + std::to_string(i) + "]";
      if (p.is_string()) {
        prompts.push_back(tokenize_prompt(p.get<std::string>(), m, param, true));
      } else if (p.is_array()) {
        prompts.push_back(read_token_ids(p, m, param));
      } else {
        fail_field(param, "expected a string or a list of token ids, got ", json_type_name(p));
      }
    }
  } else {
    fail_field("prompt",
               "expected a string, a list of strings, a list of token ids or a list of such "
               "lists (not empty), got ",
               json_excerpt(*prompt));
  }
  c.params.max_tokens = static_cast<int32_t>(r.get_int("max_tokens", 1, INT32_MAX).value_or(16));
  if (auto lp = r.get_int("logprobs", 0, kMaxTopLogprobs)) {
    req.logprobs = true;
    c.params.top_logprobs = static_cast<int32_t>(*lp);
  }
  req.jobs = expand_choices(std::move(prompts), {c.params}, c.n, c.seed, "n");
  return req;
}

std::unique_ptr<ResponseFormatter> make_openai_formatter(const ApiRequest& request,
                                                         const ServedModel& model, std::string id,
                                                         int64_t created) {
  return std::make_unique<OpenAiFormatter>(request, model, std::move(id), created);
}

}  // namespace vortex::server
