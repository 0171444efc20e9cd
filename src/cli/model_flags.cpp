#include "cli/model_flags.h"

namespace vortex::cli {

LoadedModel ModelFlags::load_model() const {
  LoadOptions options;
  options.random_weights = random_weights;
  options.seed = weights_seed;
  return vortex::load_model(model, options);
}

void add_model_flags(CLI::App* cmd, ModelFlags& flags) {
  cmd->add_option("--model", flags.model, "Model directory (Hugging Face layout) or preset name")
      ->required();
  cmd->add_flag("--random-weights", flags.random_weights,
                "Use deterministic random weights (required for presets)");
  cmd->add_option("--weights-seed", flags.weights_seed, "Seed of --random-weights")
      ->capture_default_str();
}

}  // namespace vortex::cli
