// A read-only memory map of a whole file (safetensors weights are used in place, not copied).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace vortex {

class MappedFile {
 public:
  // Throws vortex::Error naming the path if it cannot be opened or mapped.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace vortex
