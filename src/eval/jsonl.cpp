#include "eval/jsonl.h"

#include <algorithm>
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
      // parse_json bounds nesting and size, which later walks of the value (dump) rely on.
      value = parse_json(text, where);
    } catch (const Error& e) {
      // Its message is "<where>: invalid JSON at byte N: <reason>" or "<where>: <limit>".
      std::string what = e.what();
      what.erase(0, std::min(what.size(), where.size() + 2));
      if (what.rfind("invalid JSON at byte ", 0) == 0) what.erase(0, what.find(": ") + 2);
      fail(where, ": not valid JSON (", what, ")");
    }
    row(value, where);
    ++rows;
  }
  return rows;
}

}  // namespace vortex::eval
