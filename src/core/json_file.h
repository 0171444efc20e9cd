// Reading JSON files with errors that name the file and the position of a syntax error.
//
// Model directories come from anywhere, so every file is read under fixed limits: a hostile
// file ends in a vortex::Error, never in a stack overflow or an unbounded allocation. The limits
// sit far above what real Hugging Face files need (the largest tokenizer.json files are about
// 35 MB with some 2M values, and nothing nests deeper than about 10 levels).
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace vortex {

using Json = nlohmann::json;

// A JSON file larger than this is refused before it is read.
inline constexpr uint64_t kMaxJsonFileBytes = uint64_t{64} << 20;
// Arrays and objects nested deeper than this are refused: code that walks a parsed value
// (copies, dump(), the tokenizer's Sequence builders) recurses once per level.
inline constexpr int kMaxJsonDepth = 128;
// Values (scalars, arrays, objects, and object keys) in one document: bounds the memory and time
// of building the tree, about 100 bytes a value for a file of empty objects (so at most about
// 420 MB); Qwen3's tokenizer.json holds 0.76M values.
inline constexpr uint64_t kMaxJsonValues = uint64_t{4} << 20;

// Throws vortex::Error "PATH: cannot open" / "PATH: invalid JSON at byte N: ..." /
// "PATH: is not a regular file" / "PATH: is N bytes, over the limit of ..." and the limit errors
// of parse_json. Never blocks on a FIFO.
Json read_json_file(const std::string& path);

// Parses `text` under the limits above; also refuses an object with a repeated key (which JSON
// parsers resolve differently, so the file is ambiguous). Errors start with `what`.
Json parse_json(std::string_view text, const std::string& what);

// `value` serialized as dump() does, cut to `max_chars` ("[1,2,3,..." for a long array), for
// error messages: never the whole of a value that a file can make arbitrarily large.
std::string json_excerpt(const Json& value, size_t max_chars = 60);

}  // namespace vortex
