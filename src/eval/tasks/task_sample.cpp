#include "eval/tasks/task_sample.h"

#include "core/error.h"

namespace vortex::eval {

Json task_sample_to_json(const TaskSample& s, bool with_ids) {
  Json j = {{"task", s.task},
            {"index", s.index},
            {"seed", std::to_string(s.seed)},
            {"context", s.context},
            {"prompt", s.prompt},
            {"target", s.target},
            {"answers", s.answers},
            {"prompt_tokens", s.prompt_tokens},
            {"max_new_tokens", s.max_new_tokens},
            {"chat", s.chat}};
  if (with_ids) {
    j["prompt_ids"] = s.prompt_ids;
    j["target_ids"] = s.target_ids;
  }
  return j;
}

TaskSample task_sample_from_json(const Json& j, const std::string& where) {
  if (!j.is_object()) fail(where, ": expected a JSON object");
  auto field = [&](const char* name, Json::value_t type, const char* type_name) -> const Json& {
    auto it = j.find(name);
    if (it == j.end()) fail(where, ": missing field '", name, "'");
    bool ok = it->type() == type || (type == Json::value_t::number_integer &&
                                     it->type() == Json::value_t::number_unsigned);
    if (!ok) fail(where, ": field '", name, "' must be ", type_name);
    return *it;
  };
  TaskSample s;
  s.task = field("task", Json::value_t::string, "a string").get<std::string>();
  s.index = field("index", Json::value_t::number_integer, "an integer").get<int64_t>();
  const std::string seed = field("seed", Json::value_t::string, "a string").get<std::string>();
  try {
    size_t used = 0;
    s.seed = std::stoull(seed, &used);
    if (used != seed.size()) throw std::invalid_argument(seed);
  } catch (const std::exception&) {
    fail(where, ": field 'seed' must be a decimal integer, got '", seed, "'");
  }
  s.context = field("context", Json::value_t::number_integer, "an integer").get<int32_t>();
  s.prompt = field("prompt", Json::value_t::string, "a string").get<std::string>();
  s.target = field("target", Json::value_t::string, "a string").get<std::string>();
  for (const Json& a : field("answers", Json::value_t::array, "an array of strings")) {
    if (!a.is_string()) fail(where, ": field 'answers' must be an array of strings");
    s.answers.push_back(a.get<std::string>());
  }
  s.prompt_tokens =
      field("prompt_tokens", Json::value_t::number_integer, "an integer").get<int32_t>();
  s.max_new_tokens =
      field("max_new_tokens", Json::value_t::number_integer, "an integer").get<int32_t>();
  s.chat = field("chat", Json::value_t::boolean, "true or false").get<bool>();
  auto read_ids = [&](const char* name, std::vector<int32_t>& ids) {
    if (!j.contains(name)) return;
    for (const Json& id : field(name, Json::value_t::array, "an array of token ids")) {
      if (!id.is_number_integer())
        fail(where, ": field '", name, "' must be an array of token ids");
      ids.push_back(id.get<int32_t>());
    }
  };
  read_ids("prompt_ids", s.prompt_ids);
  read_ids("target_ids", s.target_ids);
  return s;
}

}  // namespace vortex::eval
