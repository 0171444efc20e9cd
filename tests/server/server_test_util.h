// The tiny test checkpoints as the server sees them, for the protocol and server tests.
#pragma once

#include <string>
#include <vector>

#include "engine/loaded_model.h"
#include "server/served_model.h"

namespace vortex::server::testing {

inline const LoadedModel& tiny_model(const std::string& name = "tiny-qwen3") {
  static const LoadedModel qwen =
      load_model(std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3", {});
  static const LoadedModel llama =
      load_model(std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-llama", {});
  return name == "tiny-llama" ? llama : qwen;
}

// tiny-qwen3 served as "tiny", with `flows` loaded.
inline ServedModel served(std::vector<std::string> flows = {}) {
  return served_model_of(tiny_model(), "tiny", std::move(flows));
}

}  // namespace vortex::server::testing

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "in: " << (haystack)
