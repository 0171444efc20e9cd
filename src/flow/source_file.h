// Reading a flow file from disk for the compiler: only a regular file of at most
// kMaxSourceBytes is read, so a directory, a FIFO, a device such as /dev/zero or a huge file is
// refused with a message that names the path, before anything blocks or fills memory.
#pragma once

#include <string>

#include "core/error.h"

namespace vortex::flow {

// What read_flow_source_file throws: what() is "PATH: detail"; detail() is the part after the
// path, for callers that print the path their own way.
class FlowFileError : public Error {
 public:
  FlowFileError(const std::string& path, const std::string& detail)
      : Error(path + ": " + detail), detail_(detail) {}
  const std::string& detail() const { return detail_; }

 private:
  std::string detail_;
};

// The contents of the flow file at `path`. Throws FlowFileError ("PATH: ...", exit code 1)
// when it does not exist or cannot be read, is not a regular file (a directory, FIFO, socket or
// device), or holds more than kMaxSourceBytes bytes. Never blocks on a FIFO.
std::string read_flow_source_file(const std::string& path);

}  // namespace vortex::flow
