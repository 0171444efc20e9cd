#include "kernels/cuda/common.cuh"
#include "kernels/cuda/elementwise.h"

namespace vortex::cuda {
namespace {

__global__ void embedding_kernel(const int32_t* ids, const uint16_t* table, int64_t vocab,
                                 int64_t hidden, float* out) {
  const int64_t i = blockIdx.x;
  const int32_t id = ids[i];
  const bool ok = id >= 0 && id < vocab;
  const uint16_t* row = table + (ok ? id : 0) * hidden;
  for (int64_t j = threadIdx.x; j < hidden; j += blockDim.x) {
    out[i * hidden + j] = ok ? bf16_bits_to_float(row[j]) : __int_as_float(0x7fc00000);
  }
}

// At most this many elements per thread are kept in registers; wider rows take the loop form.
constexpr int kNormPerThread = 8;

// One block per row. Every load of the row (x, delta, bias, weight) is issued before the first
// use, so that the row costs one memory latency before its reduction rather than one per pass.
__global__ void residual_rms_norm_kernel(float* x, const float* delta, const uint16_t* bias,
                                         const int32_t* rows, int64_t dim, const uint16_t* weight,
                                         float eps, uint16_t* out) {
  __shared__ float scratch[32];
  const int64_t r = blockIdx.x;
  const int64_t s = rows ? rows[r] : r;
  float* xr = x + s * dim;
  const float* dr = delta ? delta + s * dim : nullptr;
  const int64_t step = blockDim.x;
  if (dim <= kNormPerThread * step) {
    float v[kNormPerThread], w[kNormPerThread];
#pragma unroll
    for (int k = 0; k < kNormPerThread; ++k) {
      const int64_t j = threadIdx.x + k * step;
      v[k] = 0.0f;
      w[k] = 0.0f;
      if (j < dim) {
        v[k] = xr[j];
        w[k] = bf16_bits_to_float(weight[j]);
        if (dr) {
          float d = dr[j];
          if (bias) d += bf16_bits_to_float(bias[j]);
          v[k] += d;
        }
      }
    }
    float sq = 0.0f;
#pragma unroll
    for (int k = 0; k < kNormPerThread; ++k) {
      const int64_t j = threadIdx.x + k * step;
      if (j < dim) {
        if (dr) xr[j] = v[k];
        sq += v[k] * v[k];
      }
    }
    const float total = block_sum(sq, scratch);
    const float inv_rms = 1.0f / sqrtf(total / static_cast<float>(dim) + eps);
#pragma unroll
    for (int k = 0; k < kNormPerThread; ++k) {
      const int64_t j = threadIdx.x + k * step;
      if (j < dim) out[r * dim + j] = float_to_bf16_bits(w[k] * (v[k] * inv_rms));
    }
    return;
  }
  float sq = 0.0f;
  for (int64_t j = threadIdx.x; j < dim; j += step) {
    float v = xr[j];
    if (dr) {
      float d = dr[j];
      if (bias) d += bf16_bits_to_float(bias[j]);
      v += d;
      xr[j] = v;
    }
    sq += v * v;
  }
  const float total = block_sum(sq, scratch);
  const float inv_rms = 1.0f / sqrtf(total / static_cast<float>(dim) + eps);
  for (int64_t j = threadIdx.x; j < dim; j += step) {
    out[r * dim + j] = float_to_bf16_bits(bf16_bits_to_float(weight[j]) * (xr[j] * inv_rms));
  }
}

__device__ __forceinline__ float silu_mul(float g, float u) {
  return g / (1.0f + expf(-g)) * u;
}

__global__ void swiglu_kernel(const float* gate_up, int64_t T, int64_t inter, uint16_t* out) {
  const int64_t n = T * inter;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t t = i / inter, j = i - t * inter;
    const float* row = gate_up + t * 2 * inter;
    out[i] = float_to_bf16_bits(silu_mul(row[j], row[inter + j]));
  }
}

// The same, 4 consecutive outputs per thread with 16-byte loads (inter a multiple of 4 and
// gate_up 16-byte aligned).
__global__ void swiglu4_kernel(const float* gate_up, int64_t T, int64_t inter, uint16_t* out) {
  const int64_t n4 = T * inter / 4;
  for (int64_t q = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; q < n4;
       q += int64_t{gridDim.x} * blockDim.x) {
    const int64_t i = q * 4, t = i / inter, j = i - t * inter;
    const float* row = gate_up + t * 2 * inter;
    const float4 g = *reinterpret_cast<const float4*>(row + j);
    const float4 u = *reinterpret_cast<const float4*>(row + inter + j);
    ushort4 o;
    o.x = float_to_bf16_bits(silu_mul(g.x, u.x));
    o.y = float_to_bf16_bits(silu_mul(g.y, u.y));
    o.z = float_to_bf16_bits(silu_mul(g.z, u.z));
    o.w = float_to_bf16_bits(silu_mul(g.w, u.w));
    *reinterpret_cast<ushort4*>(out + i) = o;
  }
}

}  // namespace

cudaError_t embedding(const int32_t* ids, int64_t n, const bf16_t* table, int64_t vocab,
                      int64_t hidden, float* out, cudaStream_t stream) {
  if (n > 0)
    embedding_kernel<<<static_cast<unsigned>(n), 256, 0, stream>>>(ids, table, vocab, hidden, out);
  return cudaGetLastError();
}

cudaError_t residual_rms_norm(float* x, const float* delta, const bf16_t* bias, const int32_t* rows,
                              int64_t n_rows, int64_t dim, const bf16_t* weight, float eps,
                              bf16_t* out, cudaStream_t stream) {
  if (n_rows > 0) {
    const int threads = dim >= 4096 ? 1024 : dim >= 1024 ? 512 : dim >= 256 ? 256 : 64;
    residual_rms_norm_kernel<<<static_cast<unsigned>(n_rows), threads, 0, stream>>>(
        x, delta, bias, rows, dim, weight, eps, out);
  }
  return cudaGetLastError();
}

cudaError_t swiglu(const float* gate_up, int64_t T, int64_t inter, bf16_t* out,
                   cudaStream_t stream) {
  const int64_t n = T * inter;
  const bool vec4 = inter % 4 == 0 && reinterpret_cast<uintptr_t>(gate_up) % 16 == 0 &&
                    reinterpret_cast<uintptr_t>(out) % 8 == 0;
  if (n > 0 && vec4) {
    const int64_t blocks = (n / 4 + 255) / 256;
    swiglu4_kernel<<<static_cast<unsigned>(blocks < 65536 ? blocks : 65536), 256, 0, stream>>>(
        gate_up, T, inter, out);
  } else if (n > 0) {
    const int64_t blocks = (n + 255) / 256;
    swiglu_kernel<<<static_cast<unsigned>(blocks < 65536 ? blocks : 65536), 256, 0, stream>>>(
        gate_up, T, inter, out);
  }
  return cudaGetLastError();
}

}  // namespace vortex::cuda
