#include "engine/cuda/gemm.h"

#include "core/error.h"
#include "kernels/cuda/skinny_gemm.h"

namespace vortex {
namespace {

// k-split partials of the skinny kernel: enough for every split the configuration chooser wants
// at the projection sizes of current models (it uses fewer splits when this is short).
constexpr size_t kWorkspaceFloats = size_t{4} << 20;

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

}  // namespace

Gemm::Gemm(bool skinny) : skinny_(skinny) {
  if (skinny_) workspace_ = DeviceBuffer(kWorkspaceFloats * sizeof(float), "GEMM workspace");
}

void Gemm::f32_out(const cuda::bf16_t* x, int64_t M, int64_t K, const cuda::bf16_t* w, int64_t N,
                   float* y, cudaStream_t stream) {
  if (M == 0) return;
  if (skinny_ && cuda::skinny_gemm_supported(M, N, K) && aligned16(x) && aligned16(w)) {
    check_cuda(
        cuda::skinny_gemm(x, M, K, w, N, y, workspace_.as<float>(), kWorkspaceFloats, stream),
        "skinny GEMM");
    return;
  }
  blas_.gemm(x, M, K, w, N, y, /*y_f32=*/true, stream);
}

}  // namespace vortex
