// Normalizers from tokenizer.json: none, NFC/NFD/NFKC/NFKD (utf8proc) and Sequence of those.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/json_file.h"

namespace vortex::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string_view text) const = 0;
};

// Builds the normalizer described by `spec` (the JSON value of "normalizer"); null gives
// nullptr. Unsupported types and Sequences past the limits of sequence_limits.h throw naming
// `file` and the field.
std::unique_ptr<Normalizer> make_normalizer(const Json& spec, const std::string& file,
                                            const std::string& field = "normalizer");

}  // namespace vortex::tok
