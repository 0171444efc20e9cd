#include "server/served_model.h"

#include <algorithm>

#include "server/error_response.h"

namespace vortex::server {

ServedModel served_model_of(const LoadedModel& m, const std::string& name,
                            std::vector<std::string> flows) {
  ServedModel s;
  s.name = name;
  s.path = m.source;
  s.context_length = m.config.max_position_embeddings;
  s.vocab_size = m.config.vocab_size;
  s.eos_token_ids = m.config.eos_token_ids;
  s.model_type = std::string(arch_name(m.config.arch));
  s.architecture = m.config.architecture;
  s.tokenizer = m.tokenizer ? &*m.tokenizer : nullptr;
  s.chat_template = m.chat_template ? &*m.chat_template : nullptr;
  s.flows = std::move(flows);
  return s;
}

std::string default_served_model_name(const std::string& source) {
  std::string s = source;
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  const size_t slash = s.rfind('/');
  return slash == std::string::npos || slash + 1 == s.size() ? s : s.substr(slash + 1);
}

std::string flow_of_model(const std::string& requested, const ServedModel& m) {
  if (requested.empty() || requested == m.name) return "";
  const std::string prefix = m.name + ":";
  if (requested.compare(0, prefix.size(), prefix) == 0) {
    const std::string flow = requested.substr(prefix.size());
    if (std::find(m.flows.begin(), m.flows.end(), flow) != m.flows.end()) return flow;
  }
  std::string known = "'" + m.name + "'";
  for (const std::string& f : m.flows) known += ", '" + m.name + ":" + f + "'";
  throw HttpError(404,
                  str_cat("model: the model '", printable(requested, 120),
                          "' does not exist; this server serves ", known, " (GET /v1/models)"),
                  "model", "model_not_found");
}

Json models_json(const ServedModel& m) {
  Json data = Json::array();
  data.push_back({{"id", m.name},
                  {"object", "model"},
                  {"created", m.created},
                  {"owned_by", "vortex"},
                  {"root", m.path},
                  {"parent", nullptr},
                  {"max_model_len", m.context_length}});
  for (const std::string& f : m.flows) {
    data.push_back({{"id", m.name + ":" + f},
                    {"object", "model"},
                    {"created", m.created},
                    {"owned_by", "vortex"},
                    {"root", m.path},
                    {"parent", m.name},
                    {"max_model_len", m.context_length},
                    {"flow", f}});
  }
  return {{"object", "list"}, {"data", data}};
}

}  // namespace vortex::server
