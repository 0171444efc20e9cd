// RoPE settings shared by the model config (which parses them) and the kernels (which apply
// them). Types follow Hugging Face's `rope_type` names.
#pragma once

#include <string>

namespace vortex {

struct RopeParams {
  double theta = 10000.0;
  std::string type = "default";  // "default", "linear" or "llama3"
  double factor = 1.0;                       // linear, llama3
  double low_freq_factor = 1.0;              // llama3
  double high_freq_factor = 4.0;             // llama3
  int original_max_position_embeddings = 8192;  // llama3
};

}  // namespace vortex
