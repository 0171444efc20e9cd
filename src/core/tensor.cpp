#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace vortex {

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Tensor Tensor::empty(DType dtype, Shape shape) {
  for (int64_t d : shape) {
    if (d < 0) fail("tensor shape ", shape_str(shape), " has a negative dimension");
  }
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  size_t bytes = t.nbytes();
  // 64-byte alignment for vector loads; at least one byte so data() is never null.
  size_t alloc = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, alloc ? alloc : 64);
  if (!p) fail("out of host memory allocating ", bytes, " bytes for a tensor ", shape_str(t.shape_));
  t.owner_ = std::shared_ptr<void>(p, std::free);
  t.data_ = p;
  return t;
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  Tensor t = empty(dtype, std::move(shape));
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::view(void* data, DType dtype, Shape shape, std::shared_ptr<void> owner) {
  Tensor t;
  t.data_ = data;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.owner_ = std::move(owner);
  return t;
}

Tensor Tensor::to_f32(bool share) const {
  if (dtype_ == DType::kF32 && share) return *this;
  Tensor out = empty(DType::kF32, shape_);
  convert_to_f32(dtype_, data_, out.data_as<float>(), static_cast<size_t>(numel()));
  return out;
}

}  // namespace vortex
