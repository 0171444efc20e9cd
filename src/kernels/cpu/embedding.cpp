#include "kernels/cpu/embedding.h"

#include "core/error.h"
#include "kernels/cpu/weight_checks.h"

namespace vortex::cpu {

void embedding(const int32_t* ids, int64_t n, const Tensor& table, float* out) {
  require_float_weight(table, "embedding");
  if (table.dim() != 2)
    fail("embedding: table has shape ", shape_str(table.shape()), ", expected [vocab, hidden]");
  const int64_t vocab = table.size(0);
  const int64_t hidden = table.size(1);
  const size_t row_bytes = static_cast<size_t>(hidden) * dtype_size(table.dtype());
  const auto* base = static_cast<const unsigned char*>(table.data());
  // Check every id before writing anything, so a bad batch leaves `out` untouched.
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab)
      fail("embedding: token id ", ids[i], " at position ", i,
           " is out of range for a vocabulary of ", vocab, " tokens");
  }
  for (int64_t i = 0; i < n; ++i) {
    convert_to_f32(table.dtype(), base + static_cast<size_t>(ids[i]) * row_bytes, out + i * hidden,
                   static_cast<size_t>(hidden));
  }
}

}  // namespace vortex::cpu
