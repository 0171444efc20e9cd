#include "flow/source_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "flow/limits.h"

namespace vortex::flow {
namespace {

// What kind of non-regular file `st` is, for the message.
const char* file_kind(const struct stat& st) {
  if (S_ISDIR(st.st_mode)) return "a directory";
  if (S_ISFIFO(st.st_mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(st.st_mode)) return "a character device";
  if (S_ISBLK(st.st_mode)) return "a block device";
  if (S_ISSOCK(st.st_mode)) return "a socket";
  return "a special file";
}

[[noreturn]] void refuse(const std::string& path, const std::string& detail) {
  throw FlowFileError(path, detail);
}

[[noreturn]] void refuse_kind(const std::string& path, const struct stat& st) {
  refuse(path, str_cat("is ", file_kind(st), ", not a flow file (a flow is a regular .py file)"));
}

[[noreturn]] void refuse_size(const std::string& path, const std::string& size) {
  refuse(path, str_cat("the flow file is ", size, " bytes; flow files are limited to ",
                       kMaxSourceBytes, " bytes (1 MiB)"));
}

[[noreturn]] void refuse_errno(const std::string& path) {
  refuse(path, str_cat("cannot read the flow file: ", std::strerror(errno)));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

std::string read_flow_source_file(const std::string& path) {
  // stat first: a FIFO or device is refused without opening it, so nothing can block.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) refuse_errno(path);
  if (!S_ISREG(st.st_mode)) refuse_kind(path, st);
  if (st.st_size > kMaxSourceBytes) refuse_size(path, std::to_string(st.st_size));
  // O_NONBLOCK keeps the open from blocking should the path be swapped for a FIFO meanwhile;
  // fstat then checks what was actually opened.
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) refuse_errno(path);
  if (::fstat(fd.get(), &st) != 0) refuse_errno(path);
  if (!S_ISREG(st.st_mode)) refuse_kind(path, st);
  // Read at most one byte past the cap, so a file that grows while read is still refused.
  std::string out;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      refuse_errno(path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<int64_t>(out.size()) > kMaxSourceBytes)
      refuse_size(path, "more than " + std::to_string(kMaxSourceBytes));
  }
  return out;
}

}  // namespace vortex::flow
