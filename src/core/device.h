// Where the engine computes: the CPU backend (reference, runs anywhere) or one CUDA GPU.
#pragma once

#include <string>
#include <string_view>

namespace vortex {

enum class Device { kCpu, kCuda };

std::string_view device_name(Device d);  // "cpu", "cuda"
// Parses "cpu" / "cuda"; throws a usage error naming the accepted values otherwise.
Device parse_device(std::string_view s);

}  // namespace vortex
