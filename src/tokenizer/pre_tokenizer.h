// Pre-tokenizers from tokenizer.json: Split (regex or literal pattern, every HF behavior,
// invert), ByteLevel (add_prefix_space, use_regex with the GPT-2 pattern) and Sequence.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/json_file.h"

namespace vortex::tok {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces every piece with the pieces it splits into; empty pieces are dropped.
  virtual void apply(std::vector<std::string>& pieces) const = 0;
};

// Builds the pre-tokenizer described by `spec`; null gives nullptr. Unsupported types, bad
// patterns and Sequences past the limits of sequence_limits.h throw naming `file` and the field.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& spec, const std::string& file,
                                                 const std::string& field = "pre_tokenizer");

}  // namespace vortex::tok
