// A progress line on stderr for long commands (bench, bench-serve): redrawn in place on a
// terminal, else printed every 10% so logs stay short.
#pragma once

#include <cstdint>

namespace vortex::cli {

class Progress {
 public:
  Progress(const char* what, int64_t total);
  // `done` of `total` units are finished. Not thread-safe: callers serialise.
  void update(int64_t done);

 private:
  const char* what_;
  int64_t total_;
  bool tty_;
  int last_ = -1;
};

}  // namespace vortex::cli
