// A contiguous, row-major n-d buffer on the host: either owned, or a view into memory kept alive
// by `owner` (an mmap of a safetensors file, say). Kernels take raw pointers; Tensor is for
// loading, checking and passing weights and activations around.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace vortex {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "[64, 160]"
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(DType dtype, Shape shape);
  static Tensor zeros(DType dtype, Shape shape);
  // A view of `data`, kept alive by `owner` (may be null if the caller guarantees lifetime).
  static Tensor view(void* data, DType dtype, Shape shape, std::shared_ptr<void> owner);

  bool defined() const { return data_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int dim() const { return static_cast<int>(shape_.size()); }
  int64_t size(int i) const { return shape_.at(i < 0 ? i + dim() : i); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  void* data() { return data_; }
  const void* data() const { return data_; }
  template <class T> T* data_as() { return static_cast<T*>(data_); }
  template <class T> const T* data_as() const { return static_cast<const T*>(data_); }

  // A copy converted to f32 (a view of itself if it already is f32 and `share` is true).
  Tensor to_f32(bool share = true) const;

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::kF32;
  Shape shape_;
  std::shared_ptr<void> owner_;
};

}  // namespace vortex
