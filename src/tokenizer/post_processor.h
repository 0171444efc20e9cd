// Post-processors from tokenizer.json, for single sequences: ByteLevel (changes no ids),
// TemplateProcessing, RobertaProcessing/BertProcessing (cls + ids + sep) and Sequence.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json_file.h"

namespace vortex::tok {

class PostProcessor {
 public:
  // Reads `spec` (the JSON value of "post_processor"; null means none).
  PostProcessor(const Json& spec, const std::string& file);
  PostProcessor() = default;

  // Wraps the ids of one encoded sequence with the template's special tokens.
  std::vector<int32_t> apply(std::vector<int32_t> ids) const;

 private:
  void parse(const Json& spec, const std::string& file, const std::string& field);

  // The ids a template puts before and after the sequence.
  struct Step {
    std::vector<int32_t> before, after;
  };
  std::vector<Step> steps_;
};

}  // namespace vortex::tok
