#include "core/json_file.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace vortex {

Json parse_json(const std::string& text, const std::string& what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    fail(what, ": invalid JSON at byte ", e.byte, ": ", e.what());
  }
}

Json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open (does it exist?)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_json(ss.str(), path);
}

}  // namespace vortex
