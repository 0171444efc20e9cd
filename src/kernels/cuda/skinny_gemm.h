// Weight-streaming bf16 GEMM for decode-sized batches: y[M, N] (f32) = x[M, K] · w[N, K]ᵀ with
// bf16 inputs and f32 accumulation, row-major as the rest of the engine, for M <= 64.
//
// At decode sizes the GEMM reads each weight once and does little arithmetic per weight, so its
// time is the weight bytes over memory bandwidth. The kernel computes yᵀ = w · xᵀ on tensor cores
// (mma.sync m16n8k16): 16 rows of w are the MMA's A operand, 8 tokens of x its B operand. The
// order of k inside a dot product is free, so A and B use the same permutation of k within each
// 32-wide chunk, which lets every lane fetch 16 contiguous bytes of a weight row straight from
// global memory into registers (no shared memory for w, two chunks in flight per warp). x, the
// small operand, is staged through shared memory by cp.async and shared by the warps of a block
// that cover different rows. Warps of a block may also split k (summed in shared memory) and
// blocks may split k (partials in a workspace, summed by a second kernel); every sum runs in a
// fixed order, so results are bitwise reproducible run to run.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/types.h"

namespace vortex::cuda {

constexpr int64_t kSkinnyGemmMaxM = 64;

// How a call is split over the GPU. Blocks have row_groups * k_groups warps (at most 8); a warp
// owns rows_per_warp (16 or 32) rows of w and 1/k_groups of every pipeline stage's k range;
// k_splits blocks share the rows of w and split k between them.
struct SkinnyGemmConfig {
  int rows_per_warp = 16;
  int row_groups = 8;
  int k_groups = 1;
  int k_splits = 1;
};

// True when skinny_gemm handles the shape: 0 <= M <= 64, N >= 1, K >= 8 and a multiple of 8.
bool skinny_gemm_supported(int64_t M, int64_t N, int64_t K);

// Workspace floats a call with this config needs (0 when k_splits == 1).
size_t skinny_gemm_workspace_floats(const SkinnyGemmConfig& config, int64_t M, int64_t N);

// The config skinny_gemm uses on the current GPU when workspace_floats floats of workspace are
// available (chosen once per shape and cached).
SkinnyGemmConfig skinny_gemm_choose_config(int64_t M, int64_t N, int64_t K,
                                           size_t workspace_floats);

// y = x · wᵀ as above. x and w must be 16-byte aligned. `workspace` (workspace_floats floats,
// may be null with 0) holds k-split partials; a shape gets fewer splits when it is small. No
// allocation and no synchronization, so the call can be captured in a CUDA graph. Returns
// cudaErrorInvalidValue for an unsupported shape or misaligned pointer (callers fall back to
// another GEMM), else the launch's error code.
cudaError_t skinny_gemm(const bf16_t* x, int64_t M, int64_t K, const bf16_t* w, int64_t N, float* y,
                        float* workspace, size_t workspace_floats, cudaStream_t stream);

// The same with an explicit config (for tests and tuning); the config must be valid for the
// shape (row_groups * k_groups <= 8, rows_per_warp 16 or 32, enough workspace).
cudaError_t skinny_gemm_with_config(const bf16_t* x, int64_t M, int64_t K, const bf16_t* w,
                                    int64_t N, float* y, float* workspace,
                                    const SkinnyGemmConfig& config, cudaStream_t stream);

}  // namespace vortex::cuda
