// JSON-lines files: one JSON value per line, blank lines skipped; errors name file and line.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/json_file.h"

namespace vortex::eval {

// Calls `row(value, where)` for each non-blank line of `path`, `where` being "path:line" for
// the callee's own errors. Throws vortex::Error when the file cannot be opened or a line is
// not valid JSON ("data.jsonl:7: not valid JSON (parse error at column 12: ...)"). Returns the
// number of rows.
int64_t read_jsonl(const std::string& path,
                   const std::function<void(const Json& value, const std::string& where)>& row);

}  // namespace vortex::eval
