// Post-processors from tokenizer.json, for single sequences: ByteLevel (changes no ids),
// TemplateProcessing, RobertaProcessing/BertProcessing (cls + ids + sep) and Sequence.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
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

  // Every id the post-processor adds, with the field that gives it (for checking them against
  // the vocabulary once it is known).
  const std::vector<std::pair<int32_t, std::string>>& ids() const { return ids_; }

 private:
  // `depth` counts the Sequences around `spec`; `parts` the parts read so far.
  void parse(const Json& spec, const std::string& file, const std::string& field, int depth,
             int& parts);

  // The ids a template puts before and after the sequence.
  struct Step {
    std::vector<int32_t> before, after;
  };
  std::vector<Step> steps_;
  std::vector<std::pair<int32_t, std::string>> ids_;
};

}  // namespace vortex::tok
