// Host-side CUDA plumbing for the runner: error checks that throw vortex::Error, the GPU probe,
// and owning buffers of device and pinned host memory.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

namespace vortex {

// Throws vortex::Error "CUDA error in WHAT: <message>" unless err is cudaSuccess.
void check_cuda(cudaError_t err, const char* what);

// Selects GPU 0 and returns its name, or throws vortex::Error "no CUDA GPU found: ..." naming
// the cause (no driver, no device) so the user can fall back to --device cpu.
std::string require_cuda_device();

// Bytes read + written per second by device-to-device copies of `bytes` on the current GPU:
// the median of `runs` timed copies after warm-up.
double measure_copy_bandwidth(size_t bytes = size_t{1} << 30, int runs = 10);

// Device memory, freed on destruction. Allocation failure throws vortex::Error with the size.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes, const char* what = "buffer");
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Page-locked host memory (for asynchronous copies), freed on destruction.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(size_t bytes);
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& o) noexcept;
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void* data() const { return data_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace vortex
