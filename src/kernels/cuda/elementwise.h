// Launchers of the per-token CUDA kernels of the forward pass: embedding lookup, RMSNorm with a
// fused residual add, and the SwiGLU activation. Each returns the launch's error code
// (cudaSuccess or the error of this or an earlier asynchronous failure); all run on `stream`.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/types.h"

namespace vortex::cuda {

// out[i, :] = table[ids[i], :] as f32 for n ids (table [vocab, hidden], bf16). Ids outside
// [0, vocab) give a row of NaN, so a bad id cannot pass unnoticed (the engine validates ids).
cudaError_t embedding(const int32_t* ids, int64_t n, const bf16_t* table, int64_t vocab,
                      int64_t hidden, float* out, cudaStream_t stream);

// For each output row r < n_rows, with s = rows ? rows[r] : r: first x[s] += delta[s] (+ bias)
// (when delta is given, in f32; bias [dim] may be null), then out[r] = bf16(weight * (x[s] /
// sqrt(mean(x[s]^2) + eps))). This is the residual add of one block fused with the RMSNorm in front
// of the next one.
cudaError_t residual_rms_norm(float* x, const float* delta, const bf16_t* bias, const int32_t* rows,
                              int64_t n_rows, int64_t dim, const bf16_t* weight, float eps,
                              bf16_t* out, cudaStream_t stream);

// out[t, i] = bf16(silu(g) * u) with g = gate_up[t, i], u = gate_up[t, inter + i] and
// silu(g) = g / (1 + e^-g): the fused gate|up projection [T, 2 * inter] in, [T, inter] out.
cudaError_t swiglu(const float* gate_up, int64_t T, int64_t inter, bf16_t* out,
                   cudaStream_t stream);

}  // namespace vortex::cuda
