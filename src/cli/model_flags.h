// The flags that name the model, shared by every command that runs one.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "engine/loaded_model.h"

namespace vortex::cli {

struct ModelFlags {
  std::string model;
  bool random_weights = false;
  uint64_t weights_seed = 0;

  LoadedModel load_model() const;
};

// Registers --model (required), --random-weights and --weights-seed.
void add_model_flags(CLI::App* cmd, ModelFlags& flags);

}  // namespace vortex::cli
