#include "kernels/cuda/common.cuh"
#include "kernels/cuda/sampling.h"

namespace vortex::cuda {
namespace {

constexpr int kThreads = 1024;

__host__ __device__ inline uint32_t mulhi32(uint32_t a, uint32_t b) {
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
}

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"); first word.
__host__ __device__ inline uint32_t philox_first(uint64_t key, uint64_t counter) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int i = 0; i < 10; ++i) {
    const uint32_t hi0 = mulhi32(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    const uint32_t hi1 = mulhi32(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c0;
}

__host__ __device__ inline float uniform24(uint32_t x) {
  return static_cast<float>(x >> 8) * (1.0f / 16777216.0f);
}

struct Best {
  float v;
  int i;
};

__device__ __forceinline__ Best better(Best a, Best b) {
  if (b.v > a.v || (b.v == a.v && b.i < a.i) || (a.i < 0 && b.i >= 0)) return b;
  return a;
}

__device__ Best block_argmax(Best b, float* sv, int* si) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Best other{__shfl_xor_sync(0xffffffffu, b.v, o), __shfl_xor_sync(0xffffffffu, b.i, o)};
    b = better(b, other);
  }
  if (lane == 0) {
    sv[warp] = b.v;
    si[warp] = b.i;
  }
  __syncthreads();
  Best r{-INFINITY, -1};
  for (int w = 0; w < kThreads / 32; ++w) r = better(r, Best{sv[w], si[w]});
  __syncthreads();
  return r;
}

// Σ w over w >= tau, and how many, over the row (every thread gets both).
__device__ void mass_above(const float* w, int vocab, float tau, float* scratch, float* mass,
                           float* count) {
  float m = 0.0f, c = 0.0f;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const float x = w[i];
    if (x >= tau) {
      m += x;
      c += 1.0f;
    }
  }
  *mass = block_sum(m, scratch);
  *count = block_sum(c, scratch);
}

// Calls f(i, l[i]) for every logit of the row this thread owns: the row's 16-byte-aligned body
// in float4 loads, four of them in flight per thread (one block per row has to keep enough
// bytes in flight on its own SM), and the unaligned head and tail one by one.
template <class F>
__device__ __forceinline__ void for_each_logit(const float* l, int vocab, F f) {
  const int head =
      min(vocab, static_cast<int>((16 - (reinterpret_cast<uintptr_t>(l) & 15)) & 15) / 4);
  if (static_cast<int>(threadIdx.x) < head) f(threadIdx.x, l[threadIdx.x]);
  const float4* body = reinterpret_cast<const float4*>(l + head);
  const int n4 = (vocab - head) / 4;
  constexpr int kUnroll = 4;
  int q = threadIdx.x;
  for (; q + (kUnroll - 1) * kThreads < n4; q += kUnroll * kThreads) {
    float4 x[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) x[u] = body[q + u * kThreads];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = head + 4 * (q + u * kThreads);
      f(i, x[u].x);
      f(i + 1, x[u].y);
      f(i + 2, x[u].z);
      f(i + 3, x[u].w);
    }
  }
  for (; q < n4; q += kThreads) {
    const float4 x = body[q];
    const int i = head + 4 * q;
    f(i, x.x);
    f(i + 1, x.y);
    f(i + 2, x.z);
    f(i + 3, x.w);
  }
  for (int i = head + 4 * n4 + threadIdx.x; i < vocab; i += kThreads) f(i, l[i]);
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* logits, int32_t vocab, const SampleParams* params,
                  float* scratch_all, SampleResult* out) {
  __shared__ float red[32];
  __shared__ float sv[32];
  __shared__ int si[32];
  const int64_t row = blockIdx.x;
  const float* l = logits + row * vocab;
  const SampleParams p = params[row];

  Best b{-INFINITY, -1};
  for_each_logit(l, vocab, [&](int i, float x) { b = better(b, Best{x, i}); });
  b = block_argmax(b, sv, si);
  const float mx = b.v;
  float se = 0.0f;
  for_each_logit(l, vocab, [&](int, float x) { se += expf(x - mx); });
  const float log_z = mx + logf(block_sum(se, red));

  int token = b.i;
  if (p.forced_token >= 0 && p.forced_token < vocab) {
    token = p.forced_token;
  } else if (p.temperature > 0.0f) {
    float* w = scratch_all + row * vocab;
    const float inv_t = 1.0f / p.temperature;
    const float mxt = mx * inv_t;
    for (int i = threadIdx.x; i < vocab; i += kThreads) w[i] = expf(l[i] * inv_t - mxt);
    __syncthreads();
    float tau = 0.0f, mass, count;
    if (p.top_k > 0 && p.top_k < vocab) {
      // Largest tau with at least k weights >= tau: the k-th largest weight. Weights are in
      // [0, 1], where float order is the order of the bit patterns.
      uint32_t lo = 0, hi = 0x3f800000u;
      while (lo < hi) {
        const uint32_t mid = lo + (hi - lo + 1) / 2;
        mass_above(w, vocab, __uint_as_float(mid), red, &mass, &count);
        if (count >= static_cast<float>(p.top_k))
          lo = mid;
        else
          hi = mid - 1;
      }
      tau = __uint_as_float(lo);
    }
    if (p.top_p < 1.0f) {
      mass_above(w, vocab, tau, red, &mass, &count);
      const float need = p.top_p * mass;
      uint32_t lo = __float_as_uint(tau), hi = 0x3f800000u;
      while (lo < hi) {
        const uint32_t mid = lo + (hi - lo + 1) / 2;
        float m2, c2;
        mass_above(w, vocab, __uint_as_float(mid), red, &m2, &c2);
        if (m2 >= need)
          lo = mid;
        else
          hi = mid - 1;
      }
      tau = __uint_as_float(lo);
    }
    if (p.min_p > 0.0f) tau = fmaxf(tau, p.min_p);  // the largest weight is exactly 1
    // The draw: the first token (in id order) where the running kept mass passes u * total.
    const int per = (vocab + kThreads - 1) / kThreads;
    const int begin = min(vocab, static_cast<int>(threadIdx.x) * per);
    const int end = min(vocab, begin + per);
    float local = 0.0f;
    for (int i = begin; i < end; ++i) local += w[i] >= tau ? w[i] : 0.0f;
    // Inclusive scan of the thread sums (warp scan, then the warp totals).
    float inc = local;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const float n = __shfl_up_sync(0xffffffffu, inc, o);
      if (lane >= o) inc += n;
    }
    if (lane == 31) red[warp] = inc;
    __syncthreads();
    float before = 0.0f, total = 0.0f;
    for (int wi = 0; wi < kThreads / 32; ++wi) {
      if (wi < warp) before += red[wi];
      total += red[wi];
    }
    __syncthreads();
    const float target = uniform24(philox_first(p.key, p.counter)) * total;
    float run = before + inc - local;
    int chosen = -1, last_kept = -1;
    for (int i = begin; i < end; ++i) {
      if (w[i] >= tau) {
        last_kept = i;
        run += w[i];
        if (chosen < 0 && run > target) chosen = i;
      }
    }
    // The lowest chosen index wins; with none (rounding), the highest kept token.
    Best c{chosen >= 0 ? -static_cast<float>(chosen) : -INFINITY, chosen};
    c = block_argmax(c, sv, si);
    Best k{static_cast<float>(last_kept), last_kept};
    k = block_argmax(k, sv, si);
    token = c.i >= 0 ? c.i : k.i;
  }
  if (threadIdx.x == 0) out[row] = SampleResult{token, l[token] - log_z};
}

}  // namespace

float philox_uniform(uint64_t key, uint64_t counter) {
  return uniform24(philox_first(key, counter));
}

cudaError_t sample_tokens(const float* logits, int64_t rows, int32_t vocab,
                          const SampleParams* params, float* scratch, SampleResult* out,
                          cudaStream_t stream) {
  if (rows > 0)
    sample_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(logits, vocab, params,
                                                                        scratch, out);
  return cudaGetLastError();
}

}  // namespace vortex::cuda
