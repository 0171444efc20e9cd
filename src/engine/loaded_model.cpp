#include "engine/loaded_model.h"

#include <filesystem>

#include "core/error.h"
#include "core/json_file.h"
#include "model/presets.h"
#include "model/safetensors.h"

namespace vortex {

namespace fs = std::filesystem;

namespace {

std::string preset_list() {
  std::string out;
  for (const std::string& name : preset_names()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

const Tokenizer& LoadedModel::require_tokenizer() const {
  if (!tokenizer) {
    fail("model '", source, "' has no tokenizer.json: pass token ids with --prompt-ids instead "
         "of text");
  }
  return *tokenizer;
}

LoadedModel load_model(const std::string& model, const LoadOptions& options) {
  LoadedModel out;
  out.source = model;
  std::error_code ec;
  if (fs::is_directory(model, ec)) {
    out.config = load_model_config(model);
    if (options.random_weights) {
      out.weights = random_model_weights(out.config, options.seed, out.config.dtype);
    } else {
      SafetensorsArchive archive = SafetensorsArchive::open_dir(model);
      out.weights = load_model_weights(archive, out.config);
    }
    fs::path tok = fs::path(model) / "tokenizer.json";
    if (fs::exists(tok)) out.tokenizer = Tokenizer::load(tok.string());
    fs::path tok_cfg = fs::path(model) / "tokenizer_config.json";
    if (fs::exists(tok_cfg)) {
      Json j = read_json_file(tok_cfg.string());
      if (j.is_object() && j.contains("chat_template")) {
        out.chat_template = ChatTemplate::load(tok_cfg.string());
      }
    }
    if (out.tokenizer && out.tokenizer->vocab_size() > out.config.vocab_size) {
      fail(tok.string(), ": the tokenizer has ", out.tokenizer->vocab_size(),
           " tokens but config.json says vocab_size ", out.config.vocab_size);
    }
    return out;
  }
  if (std::optional<ModelConfig> preset = preset_config(model)) {
    if (!options.random_weights) {
      fail_usage("'", model, "' is a preset without weights: add --random-weights to instantiate "
                 "it with deterministic random weights");
    }
    out.config = *preset;
    out.weights = random_model_weights(out.config, options.seed, out.config.dtype);
    return out;
  }
  if (fs::exists(model, ec)) fail(model, ": is not a directory (expected a model directory with config.json)");
  fail("'", model, "' is neither a model directory nor a preset (presets: ", preset_list(), ")");
}

Tokenizer load_tokenizer_of(const std::string& model_dir) {
  std::error_code ec;
  if (!fs::is_directory(model_dir, ec)) {
    if (preset_config(model_dir)) {
      fail("preset '", model_dir, "' has no tokenizer: pass a model directory with tokenizer.json");
    }
    fail(model_dir, ": not a model directory");
  }
  fs::path tok = fs::path(model_dir) / "tokenizer.json";
  if (!fs::exists(tok)) fail(model_dir, ": has no tokenizer.json");
  return Tokenizer::load(tok.string());
}

}  // namespace vortex
