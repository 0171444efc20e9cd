// The fuzz targets' bodies: plain functions that take one input and exercise one parser the way
// Vortex uses it. libFuzzer drives them from fuzz/<name>_fuzz.cpp; tests/fuzz runs every
// committed regression input and seed through the same functions without libFuzzer.
//
// The contract every body checks: bad input throws vortex::Error and nothing else. A crash, a
// sanitizer report, any other exception, or a broken promise of the API under test (which a body
// reports as FuzzInvariantError) is a bug.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/error.h"

namespace vortex::fuzz {

// Thrown by a body when the code under test breaks a promise its header makes, e.g. a flow that
// failed to compile with no diagnostic. Deliberately not a vortex::Error.
class FuzzInvariantError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Flow source through the pipeline of `vortex check --target cuda`: compile symbolically and for
// a model's geometry, render the diagnostics, and generate the CUDA source (not compiled).
void fuzz_flow_check(std::string_view data);
// A whole safetensors file (length prefix, JSON header, data), or a shard index and its one
// shard (an input starting with '{': index, NUL, shard), opened and read tensor by tensor.
void fuzz_safetensors(std::string_view data);
// config.json text; with a NUL byte, the part after it is generation_config.json.
void fuzz_model_config(std::string_view data);
// tokenizer.json text, loaded, then used to encode, decode and stream-decode a few strings.
void fuzz_tokenizer(std::string_view data);
// tokenizer_config.json text, then NUL-separated role, content pairs: the template is loaded
// and the messages rendered by it and by every family.
void fuzz_chat_template(std::string_view data);

struct FuzzTarget {
  const char* name;  // folder name under fuzz/corpus and tests/data/fuzz_regressions
  void (*body)(std::string_view);
};

inline constexpr FuzzTarget kFuzzTargets[] = {
    {"flow_check", fuzz_flow_check},       {"safetensors", fuzz_safetensors},
    {"model_config", fuzz_model_config},   {"tokenizer", fuzz_tokenizer},
    {"chat_template", fuzz_chat_template},
};

// What a libFuzzer entry point does with one input: vortex::Error is the expected way to refuse
// it; anything else escapes, and libFuzzer reports it as a crash.
inline int run_fuzz_input(void (*body)(std::string_view), const uint8_t* data, size_t size) {
  try {
    body(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const Error&) {
  }
  return 0;
}

}  // namespace vortex::fuzz
