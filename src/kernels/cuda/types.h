// Element types shared by the CUDA launchers and their (plain C++) callers.
#pragma once

#include <cstdint>

namespace vortex::cuda {

// bf16 values are passed as their raw 16 bits, as core/dtype.h stores them on the host.
using bf16_t = uint16_t;

}  // namespace vortex::cuda
