// Reading JSON files with errors that name the file and the position of a syntax error.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace vortex {

using Json = nlohmann::json;

// Throws vortex::Error "PATH: cannot open" / "PATH: invalid JSON at byte N: ...".
Json read_json_file(const std::string& path);
Json parse_json(const std::string& text, const std::string& what);

}  // namespace vortex
