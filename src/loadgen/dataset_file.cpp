#include "loadgen/dataset_file.h"

#include <fstream>
#include <limits>

#include "core/error.h"

namespace vortex::loadgen {
namespace {

bool is_int32(const Json& v, int64_t min) {
  if (!v.is_number_integer()) return false;
  if (v.is_number_unsigned()) {
    const auto x = v.get<uint64_t>();
    return x <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max()) &&
           static_cast<int64_t>(x) >= min;
  }
  const auto x = v.get<int64_t>();
  return x >= min && x <= std::numeric_limits<int32_t>::max();
}

BenchRequest parse_row(const Json& row, const std::string& where, int32_t default_max_tokens) {
  if (!row.is_object()) fail(where, ": expected a JSON object with \"prompt\" or \"messages\"");
  BenchRequest r;
  r.where = where;
  const bool has_prompt = row.contains("prompt"), has_messages = row.contains("messages");
  if (has_prompt == has_messages) {
    fail(where, has_prompt ? ": has both \"prompt\" and \"messages\"; give one"
                           : ": has neither \"prompt\" nor \"messages\"");
  }
  if (has_prompt) {
    const Json& p = row["prompt"];
    if (p.is_string()) {
      r.kind = PromptKind::kText;
      r.prompt_text = p.get<std::string>();
      if (r.prompt_text.empty()) fail(where, ": \"prompt\" is empty");
    } else if (p.is_array() && !p.empty()) {
      r.kind = PromptKind::kIds;
      for (size_t i = 0; i < p.size(); ++i) {
        if (!is_int32(p[i], 0)) {
          fail(where, ": \"prompt\"[", i, "] is ", json_excerpt(p[i]),
               ", not a token id (an integer >= 0)");
        }
        r.prompt_ids.push_back(p[i].get<int32_t>());
      }
    } else {
      fail(where, ": \"prompt\" must be a non-empty string or list of token ids, got ",
           json_excerpt(p));
    }
  } else {
    const Json& m = row["messages"];
    if (!m.is_array() || m.empty()) fail(where, ": \"messages\" must be a non-empty array");
    for (size_t i = 0; i < m.size(); ++i) {
      if (!m[i].is_object() || !m[i].contains("role") || !m[i]["role"].is_string() ||
          !m[i].contains("content") ||
          !(m[i]["content"].is_string() || m[i]["content"].is_array())) {
        fail(where, ": \"messages\"[", i, "] must be an object with a string \"role\" and a ",
             "\"content\"");
      }
    }
    r.kind = PromptKind::kMessages;
    r.messages = m;
  }
  if (row.contains("max_tokens") && row.contains("output_len")) {
    fail(where, ": has both \"max_tokens\" and \"output_len\"; give one");
  }
  r.max_tokens = default_max_tokens;
  for (const char* key : {"max_tokens", "output_len"}) {
    if (!row.contains(key)) continue;
    if (!is_int32(row[key], 1)) {
      fail(where, ": \"", key, "\" must be an integer >= 1, got ", json_excerpt(row[key]));
    }
    r.max_tokens = row[key].get<int32_t>();
  }
  return r;
}

}  // namespace

std::vector<BenchRequest> read_dataset_file(const std::string& path, int32_t default_max_tokens) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open the file");
  std::vector<BenchRequest> rows;
  std::string text;
  for (int64_t line = 1; std::getline(in, text); ++line) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = str_cat(path, ":", line);
    // parse_json's message starts with `where` and says at which byte the line is malformed.
    rows.push_back(parse_row(parse_json(text, where), where, default_max_tokens));
  }
  if (in.bad()) fail(path, ": read error");
  if (rows.empty()) fail(path, ": no requests (the file has no non-blank line)");
  return rows;
}

std::vector<BenchRequest> take_requests(const std::vector<BenchRequest>& rows, int64_t n) {
  VORTEX_ASSERT(!rows.empty());
  std::vector<BenchRequest> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.push_back(rows[static_cast<size_t>(i) % rows.size()]);
  return out;
}

}  // namespace vortex::loadgen
