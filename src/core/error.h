// Errors that reach the user. Every message names what is wrong and where (file, tensor, field),
// so the user can act on it; the CLI prints it and exits with exit_code() (never a crash).
#pragma once

#include <cstddef>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vortex {

enum class ExitCode : int { kInput = 1, kUsage = 2 };

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ExitCode code = ExitCode::kInput)
      : std::runtime_error(message), code_(code) {}
  int exit_code() const { return static_cast<int>(code_); }

 private:
  ExitCode code_;
};

// Concatenates anything that streams into a string: str_cat("layer ", 3, ": ", name).
template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// `text` (a name or value taken from an input file) made safe to put in a one-line message:
// control characters are escaped ("\n", "\x01") and anything past `max_bytes` is cut at a
// character boundary and replaced by "...", so a hostile tensor name or token cannot flood the
// terminal or split the message over lines.
inline std::string printable(std::string_view text, size_t max_bytes = 80) {
  std::string out;
  size_t end = text.size();
  if (end > max_bytes) {
    end = max_bytes;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  }
  for (size_t i = 0; i < end; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (end < text.size()) out += "...";
  return out;
}

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(str_cat(args...));
}

template <class... Args>
[[noreturn]] void fail_usage(const Args&... args) {
  throw Error(str_cat(args...), ExitCode::kUsage);
}

}  // namespace vortex

// Internal invariant: a failure here is a bug in Vortex, not bad input.
#define VORTEX_ASSERT(cond)                                                                  \
  do {                                                                                       \
    if (!(cond))                                                                             \
      throw ::vortex::Error(::vortex::str_cat("internal error: ", #cond, " failed at ",      \
                                              __FILE__, ":", __LINE__));                     \
  } while (0)
