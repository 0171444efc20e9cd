// Decoders from tokenizer.json: ByteLevel (tokens back to bytes), Sequence of ByteLevel and
// Fuse, or none (HF then joins the tokens with spaces).
#pragma once

#include <string>
#include <string_view>

#include "core/json_file.h"

namespace vortex::tok {

class Decoder {
 public:
  Decoder() = default;
  // Reads `spec` (the JSON value of "decoder"); unsupported types throw naming `file`.
  Decoder(const Json& spec, const std::string& file);

  // Bytes one token contributes; the decoded text is the lossy UTF-8 of their concatenation,
  // with separator() between consecutive tokens.
  std::string token_bytes(std::string_view token) const;
  std::string_view separator() const { return byte_level_ ? "" : " "; }

 private:
  // `depth` counts the Sequences around `spec`; `parts` the parts read so far.
  void parse(const Json& spec, const std::string& file, const std::string& field, int depth,
             int& parts);
  bool byte_level_ = false;
};

}  // namespace vortex::tok
