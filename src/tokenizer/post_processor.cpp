#include "tokenizer/post_processor.h"

#include "core/error.h"
#include "tokenizer/sequence_limits.h"

namespace vortex::tok {
namespace {

// A token id of a post-processor: an integer in [0, kMaxTokenizerVocabSize). Whether the
// vocabulary holds it is checked once the whole tokenizer is read.
int32_t token_id(const Json& v, const std::string& file, const std::string& where) {
  uint64_t id = static_cast<uint64_t>(kMaxTokenizerVocabSize);
  if (v.is_number_unsigned()) {
    id = v.get<uint64_t>();
  } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    id = static_cast<uint64_t>(v.get<int64_t>());
  }
  if (id >= static_cast<uint64_t>(kMaxTokenizerVocabSize)) {
    fail(file, ": field '", where, "' must be a token id below ", kMaxTokenizerVocabSize, ", got ",
         json_excerpt(v));
  }
  return static_cast<int32_t>(id);
}

const Json* member(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

}  // namespace

PostProcessor::PostProcessor(const Json& spec, const std::string& file) {
  int parts = 0;
  parse(spec, file, "post_processor", 0, parts);
}

void PostProcessor::parse(const Json& spec, const std::string& file, const std::string& field,
                          int depth, int& parts) {
  if (spec.is_null()) return;
  count_sequence_part(file, field, parts);
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    fail(file, ": field '", field, "' must be an object with a string 'type'");
  }
  const std::string& type = spec["type"].get_ref<const std::string&>();
  if (type == "ByteLevel") return;  // it only adjusts offsets
  if (type == "Sequence") {
    check_sequence_depth(file, field, depth);
    const Json* list = member(spec, "processors");
    if (!list || !list->is_array()) fail(file, ": field '", field, ".processors' must be an array");
    for (size_t i = 0; i < list->size(); ++i) {
      parse((*list)[i], file, str_cat(field, ".processors[", i, "]"), depth + 1, parts);
    }
    return;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto special = [&](const char* key) {
      const Json* pair = member(spec, key);
      if (!pair || !pair->is_array() || pair->size() != 2) {
        fail(file, ": field '", field, ".", key, "' must be [token, id]");
      }
      const std::string where = str_cat(field, ".", key, "[1]");
      const int32_t id = token_id((*pair)[1], file, where);
      ids_.emplace_back(id, where);
      return id;
    };
    steps_.push_back({{special("cls")}, {special("sep")}});
    return;
  }
  if (type == "TemplateProcessing") {
    const Json* single = member(spec, "single");
    const Json* special = member(spec, "special_tokens");
    if (!single || !single->is_array()) fail(file, ": field '", field, ".single' must be an array");
    if (special && !special->is_object()) {
      fail(file, ": field '", field, ".special_tokens' must be an object");
    }
    Step step;
    bool seen_sequence = false;
    for (size_t i = 0; i < single->size(); ++i) {
      const Json& piece = (*single)[i];
      const std::string where = str_cat(field, ".single[", i, "]");
      if (member(piece, "Sequence")) {
        if (seen_sequence) fail(file, ": field '", where, "': the sequence appears twice");
        seen_sequence = true;
        continue;
      }
      const Json* name_json =
          member(piece, "SpecialToken") ? member(piece["SpecialToken"], "id") : nullptr;
      if (!name_json || !name_json->is_string()) {
        fail(file, ": field '", where, "' must be a Sequence or a SpecialToken with a string id");
      }
      const std::string& name = name_json->get_ref<const std::string&>();
      const Json* entry = special ? member(*special, name.c_str()) : nullptr;
      const Json* ids = entry ? member(*entry, "ids") : nullptr;
      if (!ids || !ids->is_array()) {
        fail(file, ": field '", field, ".special_tokens' has no ids for '", printable(name), "'");
      }
      auto& target = seen_sequence ? step.after : step.before;
      for (size_t k = 0; k < ids->size(); ++k) {
        const std::string id_where =
            str_cat(field, ".special_tokens.", printable(name, 40), ".ids[", k, "]");
        target.push_back(token_id((*ids)[k], file, id_where));
        ids_.emplace_back(target.back(), id_where);
      }
    }
    steps_.push_back(std::move(step));
    return;
  }
  fail(file, ": field '", field, ".type': unsupported post-processor '", printable(type),
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
