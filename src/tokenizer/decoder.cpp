#include "tokenizer/decoder.h"

#include "core/error.h"
#include "tokenizer/byte_level.h"

namespace vortex::tok {

Decoder::Decoder(const Json& spec, const std::string& file) {
  parse(spec, file, "decoder");
}

void Decoder::parse(const Json& spec, const std::string& file, const std::string& field) {
  if (spec.is_null()) return;
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    fail(file, ": field '", field, "' must be an object with a string 'type'");
  }
  const std::string type = spec["type"];
  if (type == "ByteLevel") {
    byte_level_ = true;
    return;
  }
  if (type == "Fuse") return;  // joining tokens into one string changes nothing here
  if (type == "Sequence") {
    const auto& list = spec.value("decoders", Json());
    if (!list.is_array()) fail(file, ": field '", field, ".decoders' must be an array");
    for (size_t i = 0; i < list.size(); ++i) {
      parse(list[i], file, str_cat(field, ".decoders[", i, "]"));
    }
    return;
  }
  fail(file, ": field '", field, ".type': unsupported decoder '", type,
       "' (supported: ByteLevel, Fuse, Sequence)");
}

std::string Decoder::token_bytes(std::string_view token) const {
  return byte_level_ ? byte_level_to_bytes(token) : std::string(token);
}

}  // namespace vortex::tok
