#include "tokenizer/post_processor.h"

#include "core/error.h"

namespace vortex::tok {

PostProcessor::PostProcessor(const Json& spec, const std::string& file) {
  parse(spec, file, "post_processor");
}

void PostProcessor::parse(const Json& spec, const std::string& file, const std::string& field) {
  if (spec.is_null()) return;
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    fail(file, ": field '", field, "' must be an object with a string 'type'");
  }
  const std::string type = spec["type"];
  if (type == "ByteLevel") return;  // it only adjusts offsets
  if (type == "Sequence") {
    const auto& list = spec.value("processors", Json());
    if (!list.is_array()) fail(file, ": field '", field, ".processors' must be an array");
    for (size_t i = 0; i < list.size(); ++i) {
      parse(list[i], file, str_cat(field, ".processors[", i, "]"));
    }
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto token_id = [&](const char* key) {
      const auto& pair = spec.value(key, Json());
      if (!pair.is_array() || pair.size() != 2 || !pair[1].is_number_integer()) {
        fail(file, ": field '", field, ".", key, "' must be [token, id]");
      }
      return pair[1].get<int32_t>();
    };
    steps_.push_back({{token_id("cls")}, {token_id("sep")}});
    return;
  }
  if (type == "TemplateProcessing") {
    const auto& single = spec.value("single", Json());
    const auto& special = spec.value("special_tokens", Json::object());
    if (!single.is_array()) fail(file, ": field '", field, ".single' must be an array");
    Step step;
    bool seen_sequence = false;
    for (size_t i = 0; i < single.size(); ++i) {
      const Json& piece = single[i];
      const std::string where = str_cat(field, ".single[", i, "]");
      if (piece.contains("Sequence")) {
        if (seen_sequence) fail(file, ": field '", where, "': the sequence appears twice");
        seen_sequence = true;
        continue;
      }
      if (!piece.contains("SpecialToken") || !piece["SpecialToken"].contains("id")) {
        fail(file, ": field '", where, "' must be a Sequence or a SpecialToken");
      }
      const std::string name = piece["SpecialToken"]["id"].get<std::string>();
      if (!special.contains(name) || !special[name].contains("ids") ||
          !special[name]["ids"].is_array()) {
        fail(file, ": field '", field, ".special_tokens' has no ids for '", name, "'");
      }
      auto& target = seen_sequence ? step.after : step.before;
      for (const auto& id : special[name]["ids"]) target.push_back(id.get<int32_t>());
    }
    steps_.push_back(std::move(step));
    return;
  }
  fail(file, ": field '", field, ".type': unsupported post-processor '", type,
       "' (supported: ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing, "
       "Sequence)");
}

std::vector<int32_t> PostProcessor::apply(std::vector<int32_t> ids) const {
  for (const auto& step : steps_) {
    std::vector<int32_t> out;
    out.reserve(step.before.size() + ids.size() + step.after.size());
    out.insert(out.end(), step.before.begin(), step.before.end());
    out.insert(out.end(), ids.begin(), ids.end());
    out.insert(out.end(), step.after.begin(), step.after.end());
    ids = std::move(out);
  }
  return ids;
}

}  // namespace vortex::tok
