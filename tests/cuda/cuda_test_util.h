// Helpers for the CUDA tests: skip without a GPU, device arrays, random bf16 data.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/rng.h"
#include "core/cuda/cuda_util.h"

namespace vortex::test {

inline bool have_gpu() {
  int n = 0;
  const bool ok = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
  cudaGetLastError();
  return ok;
}

#define VORTEX_REQUIRE_GPU() \
  if (!::vortex::test::have_gpu()) GTEST_SKIP() << "no CUDA GPU on this machine"

template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) : buf_(std::max<size_t>(n, 1) * sizeof(T)), n_(n) {
    // Poison: every output element must be written by the kernel under test.
    check_cuda(cudaMemset(buf_.data(), 0xff, buf_.bytes()), "poison");
  }
  explicit DeviceArray(const std::vector<T>& v) : DeviceArray(v.size()) {
    if (!v.empty())
      check_cuda(cudaMemcpy(buf_.data(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice),
                 "upload");
  }
  T* get() const { return buf_.as<T>(); }
  std::vector<T> download() const {
    std::vector<T> v(n_);
    check_cuda(cudaDeviceSynchronize(), "kernel");
    if (n_)
      check_cuda(cudaMemcpy(v.data(), buf_.data(), n_ * sizeof(T), cudaMemcpyDeviceToHost),
                 "download");
    return v;
  }

 private:
  DeviceBuffer buf_;
  size_t n_ = 0;
};

// n random bf16 values ~ N(0, sigma^2), and the same values as f32.
inline std::vector<uint16_t> random_bf16(size_t n, Rng& rng, float sigma,
                                         std::vector<float>* as_f32) {
  std::vector<uint16_t> v(n);
  as_f32->resize(n);
  for (size_t i = 0; i < n; ++i) {
    v[i] = f32_to_bf16(rng.normal() * sigma);
    (*as_f32)[i] = bf16_to_f32(v[i]);
  }
  return v;
}

inline std::vector<float> to_f32(const std::vector<uint16_t>& b) {
  std::vector<float> f(b.size());
  for (size_t i = 0; i < b.size(); ++i) f[i] = bf16_to_f32(b[i]);
  return f;
}

// ‖a − b‖ / ‖b‖ (NaN anywhere gives +inf).
inline double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

}  // namespace vortex::test
