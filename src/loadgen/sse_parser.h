// Server-sent events as they arrive over a streaming HTTP response: bytes in any split, events
// out. Follows the WHATWG rules the servers rely on: lines end in LF, CRLF or CR; a line
// starting with ':' is a comment; "data:" lines (one optional space after the colon) join with
// '\n'; a blank line ends the event. Other fields (event, id, retry) are ignored.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace vortex::loadgen {

class SseParser {
 public:
  // Called with the data of each complete event; returning false stops the stream.
  using OnData = std::function<bool(std::string_view data)>;

  // A line or event longer than this fails the stream: a server that never ends a line must not
  // grow the benchmark's memory without bound.
  static constexpr size_t kMaxLineBytes = size_t{16} << 20;

  // Consumes `bytes`. Returns false when on_data returned false or a line is over the limit
  // (error() says which).
  bool feed(std::string_view bytes, const OnData& on_data);
  // The end of the stream: an event whose blank line never came is delivered (servers that
  // close right after their last data line). Returns as feed.
  bool finish(const OnData& on_data);

  const std::string& error() const { return error_; }
  // Events delivered so far.
  size_t events() const { return events_; }

 private:
  bool end_line(const OnData& on_data);
  bool dispatch(const OnData& on_data);

  std::string line_, data_;
  bool has_data_ = false;
  bool after_cr_ = false;  // the last byte was CR: an LF right after it is the same line end
  bool stopped_ = false;
  size_t events_ = 0;
  std::string error_;
};

}  // namespace vortex::loadgen
