// Errors that reach the user. Every message names what is wrong and where (file, tensor, field),
// so the user can act on it; the CLI prints it and exits with exit_code() (never a crash).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

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
