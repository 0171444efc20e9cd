// Everything the kernel sources (*.inc) use, included by each kernels_<isa>.cpp before it
// switches the compiler to its instruction set, so that library and project code keeps the
// default target and only the kernels themselves are compiled for the ISA.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/cpu_kernels.h"

// Vectors wider than the default target's registers pass between the kernels' inline helpers,
// never across a translation unit, so the ABI note about them does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
