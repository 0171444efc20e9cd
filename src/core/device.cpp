#include "core/device.h"

#include "core/error.h"

namespace vortex {

std::string_view device_name(Device d) { return d == Device::kCpu ? "cpu" : "cuda"; }

Device parse_device(std::string_view s) {
  if (s == "cpu") return Device::kCpu;
  if (s == "cuda") return Device::kCuda;
  fail_usage("unknown device '", s, "': expected cpu or cuda");
}

}  // namespace vortex
