// Temporary files for tokenizer tests: each test writes its own JSON beside the others in a
// per-process folder under the system temp directory.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/json_file.h"
#include "tokenizer/tokenizer.h"

namespace vortex::testing {

inline std::string write_temp_file(const std::string& name, const std::string& content) {
  static std::atomic<int> counter{0};
  const auto dir = std::filesystem::temp_directory_path() /
                   ("vortex_tokenizer_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / (std::to_string(counter++) + "_" + name);
  std::ofstream(path, std::ios::binary) << content;
  return path.string();
}

inline std::string write_temp_json(const std::string& name, const Json& json) {
  return write_temp_file(name, json.dump());
}

// The message of the vortex::Error that loading `path` throws, or "<no error>".
inline std::string error_of_load(const std::string& path) {
  try {
    Tokenizer::load(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

// The real Qwen3 tokenizer's folder as the build unpacks it: its tokenizer.json is committed
// packed (VORTEX_PACKED_TEST_DATA in CMakeLists.txt), so the source folder lacks it.
inline std::string qwen3_dir() {
  return std::string(VORTEX_TEST_DATA_BUILD_DIR) + "/tokenizers/qwen3";
}

}  // namespace vortex::testing
