// A model ready to serve: its config and weights, and its tokenizer and chat template when the
// model directory has them. `--model` takes a Hugging Face directory or a built-in preset.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/model_config.h"
#include "model/model_weights.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace vortex {

struct LoadedModel {
  std::string source;  // the directory or preset name it came from
  ModelConfig config;
  ModelWeights weights;
  std::optional<Tokenizer> tokenizer;         // tokenizer.json
  std::optional<ChatTemplate> chat_template;  // tokenizer_config.json's chat_template

  // The tokenizer, or an error telling the user to pass token ids instead.
  const Tokenizer& require_tokenizer() const;
};

struct LoadOptions {
  bool random_weights = false;  // ignore stored weights (presets always need this)
  uint64_t seed = 0;            // for random weights
};

// `model` is a directory with config.json (+ safetensors) or a preset name (see preset_names()).
LoadedModel load_model(const std::string& model, const LoadOptions& options);

// Reads only what `vortex tokenize` needs: tokenizer.json of a model directory.
Tokenizer load_tokenizer_of(const std::string& model_dir);

}  // namespace vortex
