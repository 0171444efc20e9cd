#include "eval/jsonl.h"

#include <fstream>

#include "core/error.h"

namespace vortex::eval {

int64_t read_jsonl(const std::string& path,
                   const std::function<void(const Json& value, const std::string& where)>& row) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the file");
  std::string text;
  int64_t rows = 0;
  for (int64_t line = 1; std::getline(in, text); ++line) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line);
    Json value;
    try {
      value = Json::parse(text);
    } catch (const Json::parse_error& e) {
      // nlohmann prefixes "[json.exception.parse_error.101] "; the rest is the useful part.
      std::string what = e.what();
      const size_t bracket = what.find("] ");
      if (bracket != std::string::npos) what = what.substr(bracket + 2);
      fail(where, ": not valid JSON (", what, ")");
    }
    row(value, where);
    ++rows;
  }
  return rows;
}

}  // namespace vortex::eval
