#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

namespace vortex::cli {

Progress::Progress(const char* what, int64_t total)
    : what_(what), total_(total), tty_(isatty(2) != 0) {}

void Progress::update(int64_t done) {
  if (total_ <= 0) return;
  int pct = static_cast<int>(100 * done / total_);
  if (pct == last_) return;
  if (tty_) {
    int bar = pct / 4;
    std::fprintf(stderr, "\r%-8s [%.*s%*s] %3d%% (%lld/%lld)", what_, bar,
                 "=========================", 25 - bar, "", pct, static_cast<long long>(done),
                 static_cast<long long>(total_));
    if (done >= total_) std::fprintf(stderr, "\n");
  } else if (pct / 10 != last_ / 10 || pct == 100) {
    std::fprintf(stderr, "%s: %d%% (%lld/%lld)\n", what_, pct, static_cast<long long>(done),
                 static_cast<long long>(total_));
  }
  last_ = pct;
}

}  // namespace vortex::cli
