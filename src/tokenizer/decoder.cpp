#include "tokenizer/decoder.h"

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/sequence_limits.h"

namespace vortex::tok {

Decoder::Decoder(const Json& spec, const std::string& file) {
  int parts = 0;
  parse(spec, file, "decoder", 0, parts);
}

void Decoder::parse(const Json& spec, const std::string& file, const std::string& field, int depth,
                    int& parts) {
  if (spec.is_null()) return;
  count_sequence_part(file, field, parts);
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    fail(file, ": field '", field, "' must be an object with a string 'type'");
  }
  const std::string& type = spec["type"].get_ref<const std::string&>();
  if (type == "ByteLevel") {
    byte_level_ = true;
    return;
  }
  if (type == "Fuse") return;  // joining tokens into one string changes nothing here
  if (type == "Sequence") {
    check_sequence_depth(file, field, depth);
    const auto it = spec.find("decoders");
    if (it == spec.end() || !it->is_array()) {
      fail(file, ": field '", field, ".decoders' must be an array");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      parse((*it)[i], file, str_cat(field, ".decoders[", i, "]"), depth + 1, parts);
    }
    return;
  }
  fail(file, ": field '", field, ".type': unsupported decoder '", printable(type),
       "' (supported: ByteLevel, Fuse, Sequence)");
}

std::string Decoder::token_bytes(std::string_view token) const {
  return byte_level_ ? byte_level_to_bytes(token) : std::string(token);
}

}  // namespace vortex::tok
