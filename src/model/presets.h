// Built-in configs with the real geometries of well-known checkpoints, so benchmarks and tests can
// run a model of the right shape with random weights and no files.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/model_config.h"

namespace vortex {

// The config for a preset name ("qwen3-1.7b", "llama-3.1-8b", ...), or nullopt if unknown.
std::optional<ModelConfig> preset_config(std::string_view name);

// All preset names, in a stable order (smallest Qwen3 first, then Llama).
std::vector<std::string> preset_names();

}  // namespace vortex
