#include "bodies/temp_input.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace vortex::fuzz {
namespace {

namespace fs = std::filesystem;

class ScratchDir {
 public:
  ScratchDir() {
    std::error_code ec;
    // /dev/shm keeps millions of small writes off the disk; the system temp folder otherwise.
    fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm")
                                                     : fs::temp_directory_path();
    path_ = (base / ("vortex_fuzz_" + std::to_string(::getpid()))).string();
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

const std::string& scratch_dir() {
  static ScratchDir dir;
  return dir.path();
}

std::string write_scratch_file(const std::string& name, std::string_view content) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  // The harness, not the input, failed: not a vortex::Error, so it is never taken for a refusal.
  if (!out) throw std::runtime_error("fuzz harness: cannot write " + path);
  return path;
}

void remove_scratch_file(const std::string& name) {
  std::error_code ignored;
  fs::remove(scratch_dir() + "/" + name, ignored);
}

}  // namespace vortex::fuzz
