// Split-KV paged decode attention. A block (128 threads) owns one (sequence, KV head) row and one
// chunk of its tokens; tiles of 32 tokens of K and V are gathered through the page list into
// shared memory by cp.async, kStages deep, so that enough bytes are in flight to keep HBM busy
// while the block computes on earlier tiles. Scores and the softmax-weighted sum of V use f32.
#include <algorithm>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/common.cuh"

namespace vortex::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kTile = 32;  // tokens per pipeline stage
constexpr int kStages = 4;
constexpr int kMaxGroup = 8;
constexpr int kMaxHeadDim = 256;
constexpr int kThreadsPerToken = kThreads / kTile;

struct SmemLayout {
  int ld;             // elements per K/V row in shared memory (padded against bank conflicts)
  size_t kv_bytes;    // K and V stages; reused for the final reduction
  size_t q_offset, p_offset, stat_offset, total;
};

__host__ __device__ inline SmemLayout smem_layout(int D, int G) {
  SmemLayout s;
  s.ld = D + 8;
  const size_t stages = static_cast<size_t>(2 * kStages * kTile * s.ld) * sizeof(uint16_t);
  const int chunks = D / 8;
  const int groups = min(kThreads / chunks, kTile);
  const size_t reduce = static_cast<size_t>(groups * G * D) * sizeof(float);
  s.kv_bytes = (stages > reduce ? stages : reduce + 15) / 16 * 16;
  s.q_offset = s.kv_bytes;
  s.p_offset = s.q_offset + static_cast<size_t>(G * D) * sizeof(float);
  s.stat_offset = s.p_offset + static_cast<size_t>(G * kTile) * sizeof(float);
  s.total = s.stat_offset + 3 * kMaxGroup * sizeof(float);
  return s;
}

__device__ __forceinline__ void load_tile(uint16_t* ks, uint16_t* vs, int ld, const DevicePagedKv& kv,
                                          const int32_t* pages, int kvh, int t0, int t_end) {
  const int D = kv.head_dim, chunks = D / 8, P = kv.page_size;
  for (int idx = threadIdx.x; idx < kTile * chunks; idx += kThreads) {
    const int r = idx / chunks, c = idx - r * chunks;
    const int t = t0 + r;
    const bool valid = t < t_end;
    int64_t off = 0;
    if (valid) {
      const int64_t page = pages[t / P];
      off = page * kv.page_stride + kvh * kv.head_stride + int64_t{t % P} * D + c * 8;
    }
    cp_async_16(ks + r * ld + c * 8, kv.k + off, valid ? 16 : 0);
    cp_async_16(vs + r * ld + c * 8, kv.v + off, valid ? 16 : 0);
  }
}

__global__ void __launch_bounds__(kThreads) decode_split_kernel(DecodeAttentionArgs a,
                                                                DevicePagedKv kv) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int D = kv.head_dim, Hkv = kv.num_kv_heads, G = a.num_q_heads / Hkv;
  const SmemLayout L = smem_layout(D, G);
  uint16_t* ks = reinterpret_cast<uint16_t*>(smem);
  uint16_t* vs = ks + kStages * kTile * L.ld;
  float* q_s = reinterpret_cast<float*>(smem + L.q_offset);
  float* p_s = reinterpret_cast<float*>(smem + L.p_offset);
  float* m_s = reinterpret_cast<float*>(smem + L.stat_offset);
  float* l_s = m_s + kMaxGroup;
  float* alpha_s = l_s + kMaxGroup;

  const int row = blockIdx.y, split = blockIdx.x;
  const int seq = row / Hkv, kvh = row - seq * Hkv;
  const int n_tok = a.row_num_tokens[row];
  const int per_split = (n_tok + a.num_splits - 1) / a.num_splits;
  const int chunk = (per_split + kTile - 1) / kTile * kTile;
  const int t_begin = split * chunk;
  const int t_end = min(n_tok, t_begin + chunk);
  const int64_t part = int64_t{row} * a.num_splits + split;
  float* part_o = a.workspace + part * G * D;
  float* part_ml = a.workspace + int64_t{gridDim.y} * a.num_splits * G * D + part * G * 2;
  if (t_begin >= t_end) {
    for (int g = threadIdx.x; g < G; g += kThreads) {
      part_ml[2 * g] = -INFINITY;
      part_ml[2 * g + 1] = 0.0f;
    }
    return;
  }
  const int32_t* pages = a.pages + a.row_page_offset[row];
  const int num_tiles = (t_end - t_begin + kTile - 1) / kTile;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < num_tiles)
      load_tile(ks + s * kTile * L.ld, vs + s * kTile * L.ld, L.ld, kv, pages, kvh,
                t_begin + s * kTile, t_end);
    cp_async_commit();
  }
  const uint16_t* q = a.q + (int64_t{a.q_rows[seq]} * a.num_q_heads + kvh * G) * D;
  for (int i = threadIdx.x; i < G * D; i += kThreads)
    q_s[i] = bf16_bits_to_float(q[i]) * a.scale;
  if (threadIdx.x < kMaxGroup) {
    m_s[threadIdx.x] = -INFINITY;
    l_s[threadIdx.x] = 0.0f;
  }

  const int chunks = D / 8;
  const int groups = min(kThreads / chunks, kTile);
  const int my_chunk = threadIdx.x % chunks, my_group = threadIdx.x / chunks;
  const bool pv_active = my_group < groups;
  float o[kMaxGroup][8];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g)
#pragma unroll
    for (int j = 0; j < 8; ++j) o[g][j] = 0.0f;

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int tile = 0; tile < num_tiles; ++tile) {
    const int ahead = tile + kStages - 1;
    if (ahead < num_tiles)
      load_tile(ks + (ahead % kStages) * kTile * L.ld, vs + (ahead % kStages) * kTile * L.ld,
                L.ld, kv, pages, kvh, t_begin + ahead * kTile, t_end);
    cp_async_commit();
    cp_async_wait<kStages - 1>();
    __syncthreads();
    const uint16_t* kt = ks + (tile % kStages) * kTile * L.ld;
    const uint16_t* vt = vs + (tile % kStages) * kTile * L.ld;
    const int t0 = t_begin + tile * kTile;

    // Scores: kThreadsPerToken threads per token, each over every kThreadsPerToken-th chunk.
    {
      const int r = threadIdx.x / kThreadsPerToken, part_idx = threadIdx.x % kThreadsPerToken;
      float acc[kMaxGroup];
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) acc[g] = 0.0f;
      for (int c = part_idx; c < chunks; c += kThreadsPerToken) {
        const uint4 raw = *reinterpret_cast<const uint4*>(kt + r * L.ld + c * 8);
        const float2 k01 = bf16x2_to_float2(raw.x), k23 = bf16x2_to_float2(raw.y);
        const float2 k45 = bf16x2_to_float2(raw.z), k67 = bf16x2_to_float2(raw.w);
#pragma unroll
        for (int g = 0; g < kMaxGroup; ++g) {
          if (g < G) {
            const float4 qa = *reinterpret_cast<const float4*>(q_s + g * D + c * 8);
            const float4 qb = *reinterpret_cast<const float4*>(q_s + g * D + c * 8 + 4);
            acc[g] += qa.x * k01.x + qa.y * k01.y + qa.z * k23.x + qa.w * k23.y + qb.x * k45.x +
                      qb.y * k45.y + qb.z * k67.x + qb.w * k67.y;
          }
        }
      }
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
#pragma unroll
        for (int o2 = kThreadsPerToken / 2; o2 > 0; o2 >>= 1)
          acc[g] += __shfl_xor_sync(0xffffffffu, acc[g], o2);
      }
      if (part_idx == 0) {
        const bool valid = t0 + r < t_end;
#pragma unroll
        for (int g = 0; g < kMaxGroup; ++g)
          if (g < G) p_s[g * kTile + r] = valid ? acc[g] : -INFINITY;
      }
    }
    __syncthreads();
    // Online softmax: one warp per head, one token per lane (kTile == 32).
    for (int g = warp; g < G; g += kThreads / 32) {
      const float s = p_s[g * kTile + lane];
      const float m_old = m_s[g];
      const float m_new = fmaxf(m_old, warp_max(s));
      const float p = __expf(s - m_new);
      const float sum = warp_sum(p);
      p_s[g * kTile + lane] = p;
      __syncwarp();
      if (lane == 0) {
        const float alpha = __expf(m_old - m_new);
        alpha_s[g] = alpha;
        l_s[g] = l_s[g] * alpha + sum;
        m_s[g] = m_new;
      }
    }
    __syncthreads();
    if (pv_active) {
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g < G) {
          const float alpha = alpha_s[g];
#pragma unroll
          for (int j = 0; j < 8; ++j) o[g][j] *= alpha;
        }
      }
      for (int r = my_group; r < kTile; r += groups) {
        const uint4 raw = *reinterpret_cast<const uint4*>(vt + r * L.ld + my_chunk * 8);
        const float2 v01 = bf16x2_to_float2(raw.x), v23 = bf16x2_to_float2(raw.y);
        const float2 v45 = bf16x2_to_float2(raw.z), v67 = bf16x2_to_float2(raw.w);
#pragma unroll
        for (int g = 0; g < kMaxGroup; ++g) {
          if (g < G) {
            const float p = p_s[g * kTile + r];
            o[g][0] += p * v01.x;
            o[g][1] += p * v01.y;
            o[g][2] += p * v23.x;
            o[g][3] += p * v23.y;
            o[g][4] += p * v45.x;
            o[g][5] += p * v45.y;
            o[g][6] += p * v67.x;
            o[g][7] += p * v67.y;
          }
        }
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();
  __syncthreads();
  // Merge the token groups in a fixed order (deterministic), through the stage memory.
  float* red = reinterpret_cast<float*>(smem);
  if (pv_active) {
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g)
      if (g < G)
#pragma unroll
        for (int j = 0; j < 8; ++j) red[(my_group * G + g) * D + my_chunk * 8 + j] = o[g][j];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < G * D; i += kThreads) {
    float s = 0.0f;
    for (int grp = 0; grp < groups; ++grp) s += red[grp * G * D + i];
    part_o[i] = s;
  }
  for (int g = threadIdx.x; g < G; g += kThreads) {
    part_ml[2 * g] = m_s[g];
    part_ml[2 * g + 1] = l_s[g];
  }
}

// One block per (sequence, query head): merges the splits' partial sums.
__global__ void decode_merge_kernel(DecodeAttentionArgs a, int Hkv, int D) {
  const int Hq = a.num_q_heads, G = Hq / Hkv;
  const int seq = blockIdx.x / Hq, h = blockIdx.x - seq * Hq;
  const int row = seq * Hkv + h / G, g = h % G;
  const int S = a.num_splits;
  const float* ml = a.workspace + int64_t{a.num_seqs} * Hkv * S * G * D;
  float m = -INFINITY;
  for (int s = 0; s < S; ++s) {
    const float* e = ml + ((int64_t{row} * S + s) * G + g) * 2;
    if (e[1] > 0.0f) m = fmaxf(m, e[0]);
  }
  float total = 0.0f;
  for (int s = 0; s < S; ++s) {
    const float* e = ml + ((int64_t{row} * S + s) * G + g) * 2;
    if (e[1] > 0.0f) total += e[1] * __expf(e[0] - m);
  }
  const float inv = 1.0f / total;
  uint16_t* out = a.out + (int64_t{a.q_rows[seq]} * Hq + h) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.0f;
    for (int s = 0; s < S; ++s) {
      const float* e = ml + ((int64_t{row} * S + s) * G + g) * 2;
      if (e[1] > 0.0f)
        acc += a.workspace[((int64_t{row} * S + s) * G + g) * D + d] * __expf(e[0] - m);
    }
    out[d] = float_to_bf16_bits(acc * inv);
  }
}

// Raises the kernel's dynamic shared memory limit when needed, so that inside a graph capture
// (which replays a size already run) no attribute call is made.
cudaError_t allow_smem(size_t bytes) {
  static size_t allowed = 48 * 1024;
  if (bytes <= allowed) return cudaSuccess;
  const cudaError_t err = cudaFuncSetAttribute(
      decode_split_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err == cudaSuccess) allowed = bytes;
  return err;
}

int occupancy(int D, int G) {
  const SmemLayout L = smem_layout(D, G);
  int blocks = 0;
  allow_smem(L.total);
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
          &blocks, decode_split_kernel, kThreads, L.total, cudaOccupancyDefault) != cudaSuccess)
    blocks = 1;
  return std::max(blocks, 1);
}

}  // namespace

int decode_attention_num_splits(int64_t num_rows, int64_t max_row_tokens, int head_dim,
                                int group_size) {
  int device = 0, sms = 1;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t slots = int64_t{sms} * occupancy(head_dim, group_size);
  const int64_t max_useful = std::max<int64_t>(1, (max_row_tokens + kTile - 1) / kTile);
  // The split count that fills whole waves best, among those with at least one wave.
  int best = 1;
  double best_eff = -1.0;
  for (int s = 1; s <= 64 && s <= max_useful; ++s) {
    const int64_t ctas = num_rows * s;
    const int64_t waves = (ctas + slots - 1) / slots;
    double eff = static_cast<double>(ctas) / static_cast<double>(waves * slots);
    if (ctas < slots) eff *= 0.5;  // less than one wave leaves SMs idle
    if (eff > best_eff + 1e-9) {
      best_eff = eff;
      best = s;
    }
  }
  return best;
}

size_t decode_attention_workspace_bytes(int64_t num_seqs, int num_q_heads, int head_dim,
                                        int num_splits) {
  return static_cast<size_t>(num_seqs) * num_q_heads * num_splits * (head_dim + 2) *
         sizeof(float);
}

cudaError_t decode_attention(const DecodeAttentionArgs& a, const DevicePagedKv& kv,
                             cudaStream_t stream) {
  const int D = kv.head_dim, Hkv = kv.num_kv_heads;
  if (D % 8 != 0 || D > kMaxHeadDim || Hkv <= 0 || a.num_q_heads % Hkv != 0 ||
      a.num_q_heads / Hkv > kMaxGroup || a.num_splits < 1)
    return cudaErrorInvalidValue;
  if (a.num_seqs == 0) return cudaGetLastError();
  const int G = a.num_q_heads / Hkv;
  const SmemLayout L = smem_layout(D, G);
  const cudaError_t err = allow_smem(L.total);
  if (err != cudaSuccess) return err;
  const dim3 grid(a.num_splits, a.num_seqs * Hkv);
  decode_split_kernel<<<grid, kThreads, L.total, stream>>>(a, kv);
  decode_merge_kernel<<<a.num_seqs * a.num_q_heads, D >= 128 ? 128 : 64, 0, stream>>>(a, Hkv,
                                                                                       D);
  return cudaGetLastError();
}

}  // namespace vortex::cuda
