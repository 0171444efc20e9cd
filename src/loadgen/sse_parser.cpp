#include "loadgen/sse_parser.h"

#include "core/error.h"

namespace vortex::loadgen {

bool SseParser::feed(std::string_view bytes, const OnData& on_data) {
  if (stopped_) return false;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (c == '\n' && after_cr_) {
      after_cr_ = false;
      continue;
    }
    after_cr_ = c == '\r';
    if (c == '\n' || c == '\r') {
      if (!end_line(on_data)) return false;
      continue;
    }
    // Append the run of ordinary bytes at once; per-byte appends would dominate long streams.
    size_t end = i;
    while (end < bytes.size() && bytes[end] != '\n' && bytes[end] != '\r') ++end;
    if (line_.size() + (end - i) > kMaxLineBytes) {
      error_ = str_cat("SSE line over ", kMaxLineBytes >> 20, " MiB");
      stopped_ = true;
      return false;
    }
    line_.append(bytes.data() + i, end - i);
    i = end - 1;
  }
  return true;
}

bool SseParser::finish(const OnData& on_data) {
  if (stopped_) return false;
  if (!line_.empty() && !end_line(on_data)) return false;
  return dispatch(on_data);
}

bool SseParser::end_line(const OnData& on_data) {
  std::string_view line = line_;
  bool ok = true;
  if (line.empty()) {
    ok = dispatch(on_data);
  } else if (line[0] != ':') {
    const size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      if (data_.size() + value.size() + 1 > kMaxLineBytes) {
        error_ = str_cat("SSE event over ", kMaxLineBytes >> 20, " MiB");
        stopped_ = true;
        return false;
      }
      if (has_data_) data_ += '\n';
      data_.append(value);
      has_data_ = true;
    }
  }
  line_.clear();
  return ok;
}

bool SseParser::dispatch(const OnData& on_data) {
  if (!has_data_) return true;
  ++events_;
  const bool go_on = on_data(data_);
  data_.clear();
  has_data_ = false;
  if (!go_on) stopped_ = true;
  return go_on;
}

}  // namespace vortex::loadgen
