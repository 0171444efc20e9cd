// Argument checks shared by the CPU kernels' entry points.
#pragma once

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"

namespace vortex::cpu {

// Kernels accept weights in f32, bf16 or f16; anything else is a loader bug or a bad checkpoint.
inline void require_float_weight(const Tensor& t, const char* what) {
  DType d = t.dtype();
  if (d != DType::kF32 && d != DType::kBF16 && d != DType::kF16)
    fail(what, ": weight has dtype ", dtype_name(d), ", expected f32, bf16 or f16");
}

}  // namespace vortex::cpu
