// Split-KV paged decode attention. A block (128 threads) owns one (sequence, KV head) row and one
// chunk of its tokens; tiles of 32 tokens of K and V are gathered through the page list into
// shared memory by cp.async, kStages deep, so that enough bytes are in flight to keep HBM busy
// while the block computes on earlier tiles. Scores and the softmax-weighted sum of V use f32.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/mma.cuh"

namespace vortex::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kMaxGroup = 8;
constexpr int kMaxHeadDim = 256;
constexpr int kMinTile = 32;  // splits are multiples of this many tokens

struct SmemLayout {
  int ld;           // elements per K/V row in shared memory (padded against bank conflicts)
  size_t kv_bytes;  // K and V stages; reused for the final reduction
  size_t q_offset, p_offset, stat_offset, total;
};

// kTile tokens per pipeline stage, kStages stages.
template <int kTile, int kStages>
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

// A thread copies the same rows of every tile: rows (threadIdx.x + k * kThreads) / chunks.
// Their page numbers are read one tile ahead into registers, so that issuing a tile's copies
// never waits on a page-table load.
template <int kTile>
struct TileRows {
  static constexpr int kMaxIters = kTile * (kMaxHeadDim / 8) / kThreads;
  int32_t page[kMaxIters];

  __device__ __forceinline__ void fetch(const int32_t* pages, int chunks, int P, int t0,
                                        int t_end) {
#pragma unroll
    for (int k = 0; k < kMaxIters; ++k) {
      const int idx = threadIdx.x + k * kThreads;
      const int t = t0 + idx / chunks;
      page[k] = idx < kTile * chunks && t < t_end ? __ldg(pages + t / P) : -1;
    }
  }

  __device__ __forceinline__ void copy(uint16_t* ks, uint16_t* vs, int ld, const DevicePagedKv& kv,
                                       int kvh, int t0) const {
    const int D = kv.head_dim, chunks = D / 8, P = kv.page_size;
#pragma unroll
    for (int k = 0; k < kMaxIters; ++k) {
      const int idx = threadIdx.x + k * kThreads;
      if (idx < kTile * chunks) {
        const int r = idx / chunks, c = idx - r * chunks;
        const bool valid = page[k] >= 0;
        const int64_t off = valid ? int64_t{page[k]} * kv.page_stride + kvh * kv.head_stride +
                                        int64_t{(t0 + r) % P} * D + c * 8
                                  : 0;
        cp_async_16(ks + r * ld + c * 8, kv.k + off, valid ? 16 : 0);
        cp_async_16(vs + r * ld + c * 8, kv.v + off, valid ? 16 : 0);
      }
    }
  }
};

template <int kTile, int kStages>
__global__ void __launch_bounds__(kThreads)
    decode_split_kernel(DecodeAttentionArgs a, DevicePagedKv kv) {
  constexpr int kThreadsPerToken = kThreads / kTile;
  constexpr int kPerLane = kTile / 32;
  extern __shared__ __align__(16) unsigned char smem[];
  const int D = kv.head_dim, Hkv = kv.num_kv_heads, G = a.num_q_heads / Hkv;
  const SmemLayout L = smem_layout<kTile, kStages>(D, G);
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
  const int chunk = (per_split + kMinTile - 1) / kMinTile * kMinTile;
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
  TileRows<kTile> rows;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < num_tiles) {
      rows.fetch(pages, D / 8, kv.page_size, t_begin + s * kTile, t_end);
      rows.copy(ks + s * kTile * L.ld, vs + s * kTile * L.ld, L.ld, kv, kvh, t_begin + s * kTile);
    }
    cp_async_commit();
  }
  rows.fetch(pages, D / 8, kv.page_size, t_begin + (kStages - 1) * kTile, t_end);
  const uint16_t* q = a.q + (int64_t{a.q_rows[seq]} * a.num_q_heads + kvh * G) * D;
  for (int i = threadIdx.x; i < G * D; i += kThreads) q_s[i] = bf16_bits_to_float(q[i]) * a.scale;
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
    if (ahead < num_tiles) {
      rows.copy(ks + (ahead % kStages) * kTile * L.ld, vs + (ahead % kStages) * kTile * L.ld, L.ld,
                kv, kvh, t_begin + ahead * kTile);
      rows.fetch(pages, D / 8, kv.page_size, t_begin + (ahead + 1) * kTile, t_end);
    }
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
    // Online softmax: one warp per head, kPerLane tokens per lane.
    for (int g = warp; g < G; g += kThreads / 32) {
      float sc[kPerLane];
      float mx = -INFINITY;
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) {
        sc[j] = p_s[g * kTile + j * 32 + lane];
        mx = fmaxf(mx, sc[j]);
      }
      const float m_old = m_s[g];
      const float m_new = fmaxf(m_old, warp_max(mx));
      float part = 0.0f;
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) {
        const float p = __expf(sc[j] - m_new);
        p_s[g * kTile + j * 32 + lane] = p;
        part += p;
      }
      const float sum = warp_sum(part);
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

// The tensor-core variant (head_dim <= 128, G <= 16): the G query heads of the row are the rows
// of one m16 fragment (zero-padded), shared by the 4 warps; each warp takes 16 of the tile's 64
// keys and keeps its own online-softmax state, merged across warps at the end. One barrier per
// tile; K/V tiles of 64 tokens are gathered kStages deep as above.
template <int kD>
struct MmaTileRows {
  static constexpr int kChunks = kD / 8;
  static constexpr int kIters = 64 * kChunks / kThreads;
  int32_t page[kIters];

  __device__ __forceinline__ void fetch(const int32_t* pages, int P, int t0, int t_end) {
#pragma unroll
    for (int k = 0; k < kIters; ++k) {
      const int t = t0 + (threadIdx.x + k * kThreads) / kChunks;
      page[k] = t < t_end ? __ldg(pages + t / P) : -1;
    }
  }

  __device__ __forceinline__ void copy(uint16_t* ks, uint16_t* vs, const DevicePagedKv& kv, int kvh,
                                       int t0) const {
    constexpr int kLd = kD + 8;
    const int D = kv.head_dim, P = kv.page_size;
#pragma unroll
    for (int k = 0; k < kIters; ++k) {
      const int idx = threadIdx.x + k * kThreads;
      const int r = idx / kChunks, c = idx % kChunks;
      const bool valid = page[k] >= 0 && c * 8 < D;
      const int64_t off = valid ? int64_t{page[k]} * kv.page_stride + kvh * kv.head_stride +
                                      int64_t{(t0 + r) & (P - 1)} * D + c * 8
                                : 0;
      cp_async_16(ks + r * kLd + c * 8, kv.k + off, valid ? 16 : 0);
      cp_async_16(vs + r * kLd + c * 8, kv.v + off, valid ? 16 : 0);
    }
  }
};

template <int kD, int kStages>
constexpr size_t mma_smem_bytes() {
  return size_t{2} * kStages * 64 * (kD + 8) * sizeof(uint16_t);
}

template <int kD, int kStages>
__global__ void __launch_bounds__(kThreads)
    decode_mma_kernel(DecodeAttentionArgs a, DevicePagedKv kv) {
  constexpr int kTileKeys = 64, kLd = kD + 8, kKc = kD / 16, kNt = kD / 8;
  extern __shared__ __align__(16) unsigned char smem[];
  uint16_t* ks = reinterpret_cast<uint16_t*>(smem);
  uint16_t* vs = ks + kStages * kTileKeys * kLd;
  const int D = kv.head_dim, Hkv = kv.num_kv_heads, G = a.num_q_heads / Hkv;
  const int row = blockIdx.y, split = blockIdx.x;
  const int seq = row / Hkv, kvh = row - seq * Hkv;
  const int n_tok = a.row_num_tokens[row];
  const int per_split = (n_tok + a.num_splits - 1) / a.num_splits;
  const int chunk = (per_split + kMinTile - 1) / kMinTile * kMinTile;
  const int t_begin = split * chunk;
  const int t_end = min(n_tok, t_begin + chunk);
  const int64_t part = int64_t{row} * a.num_splits + split;
  float* part_o = a.workspace + part * G * D;
  float* part_ml = a.workspace + int64_t{gridDim.y} * a.num_splits * G * D + part * G * 2;
  if (t_begin >= t_end) {
    if (a.num_splits == 1) {  // a row without tokens: zeros, as the merge writes
      uint16_t* out = a.out + (int64_t{a.q_rows[seq]} * a.num_q_heads + kvh * G) * D;
      for (int i = threadIdx.x; i < G * D; i += kThreads) out[i] = 0;
      return;
    }
    for (int g = threadIdx.x; g < G; g += kThreads) {
      part_ml[2 * g] = -INFINITY;
      part_ml[2 * g + 1] = 0.0f;
    }
    return;
  }
  const int32_t* pages = a.pages + a.row_page_offset[row];
  const int num_tiles = (t_end - t_begin + kTileKeys - 1) / kTileKeys;
  MmaTileRows<kD> rows;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < num_tiles) {
      rows.fetch(pages, kv.page_size, t_begin + s * kTileKeys, t_end);
      rows.copy(ks + s * kTileKeys * kLd, vs + s * kTileKeys * kLd, kv, kvh,
                t_begin + s * kTileKeys);
    }
    cp_async_commit();
  }
  rows.fetch(pages, kv.page_size, t_begin + (kStages - 1) * kTileKeys, t_end);

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int gid = lane >> 2, tid4 = lane & 3;
  // Q fragment: rows gid and gid + 8 are heads of the group (rows >= G are zero).
  uint32_t qf[kKc][4];
  {
    const uint16_t* q = a.q + (int64_t{a.q_rows[seq]} * a.num_q_heads + kvh * G) * D;
#pragma unroll
    for (int kc = 0; kc < kKc; ++kc) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int r = gid + (j & 1) * 8, col = kc * 16 + tid4 * 2 + (j >> 1) * 8;
        qf[kc][j] = r < G && col < D ? *reinterpret_cast<const uint32_t*>(q + r * D + col) : 0u;
      }
    }
  }
  const float scale_log2 = a.scale * 1.4426950408889634f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
  float o[kNt][4];
#pragma unroll
  for (int n = 0; n < kNt; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;

  for (int tile = 0; tile < num_tiles; ++tile) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    // Every warp is past the previous tile: its buffer can be refilled.
    const int ahead = tile + kStages - 1;
    if (ahead < num_tiles) {
      rows.copy(ks + (ahead % kStages) * kTileKeys * kLd, vs + (ahead % kStages) * kTileKeys * kLd,
                kv, kvh, t_begin + ahead * kTileKeys);
      rows.fetch(pages, kv.page_size, t_begin + (ahead + 1) * kTileKeys, t_end);
    }
    cp_async_commit();
    const uint16_t* kt = ks + (tile % kStages) * kTileKeys * kLd + warp * 16 * kLd;
    const uint16_t* vt = vs + (tile % kStages) * kTileKeys * kLd + warp * 16 * kLd;
    const int key0 = t_begin + tile * kTileKeys + warp * 16;
    if (key0 >= t_end) continue;  // this warp's keys are all past the end

    float s[2][4];
#pragma unroll
    for (int n = 0; n < 2; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kc = 0; kc < kKc; ++kc) {
      uint32_t b0, b1, b2, b3;
      ldmatrix_x4(b0, b1, b2, b3,
                  kt + ((lane & 7) + (lane >> 4) * 8) * kLd + kc * 16 + ((lane >> 3) & 1) * 8);
      mma_bf16(s[0], qf[kc], b0, b1);
      mma_bf16(s[1], qf[kc], b2, b3);
    }
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int n = 0; n < 2; ++n) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const bool valid = key0 + n * 8 + tid4 * 2 + j < t_end;
        s[n][j] = valid ? s[n][j] * scale_log2 : -INFINITY;
        s[n][2 + j] = valid ? s[n][2 + j] * scale_log2 : -INFINITY;
        mx0 = fmaxf(mx0, s[n][j]);
        mx1 = fmaxf(mx1, s[n][2 + j]);
      }
    }
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, off));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, off));
    }
    // key0 < t_end, so every row has a finite maximum here.
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    const float alpha0 = exp2f(m0 - mn0), alpha1 = exp2f(m1 - mn1);
    m0 = mn0;
    m1 = mn1;
    float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
    for (int n = 0; n < 2; ++n) {
      s[n][0] = exp2f(s[n][0] - mn0);
      s[n][1] = exp2f(s[n][1] - mn0);
      s[n][2] = exp2f(s[n][2] - mn1);
      s[n][3] = exp2f(s[n][3] - mn1);
      sum0 += s[n][0] + s[n][1];
      sum1 += s[n][2] + s[n][3];
    }
    l0 = l0 * alpha0 + sum0;
    l1 = l1 * alpha1 + sum1;
    uint32_t pa[4];
    pa[0] = float2_to_bf16x2(s[0][0], s[0][1]);
    pa[1] = float2_to_bf16x2(s[0][2], s[0][3]);
    pa[2] = float2_to_bf16x2(s[1][0], s[1][1]);
    pa[3] = float2_to_bf16x2(s[1][2], s[1][3]);
#pragma unroll
    for (int n = 0; n < kNt; n += 2) {
      o[n][0] *= alpha0;
      o[n][1] *= alpha0;
      o[n][2] *= alpha1;
      o[n][3] *= alpha1;
      o[n + 1][0] *= alpha0;
      o[n + 1][1] *= alpha0;
      o[n + 1][2] *= alpha1;
      o[n + 1][3] *= alpha1;
      uint32_t b0, b1, b2, b3;
      ldmatrix_x4_trans(b0, b1, b2, b3, vt + (lane & 15) * kLd + n * 8 + (lane >> 4) * 8);
      mma_bf16(o[n], pa, b0, b1);
      mma_bf16(o[n + 1], pa, b2, b3);
    }
  }
  cp_async_wait<0>();
  __syncthreads();

  // Merge the 4 warps (each row's state in log2 units) through shared memory.
#pragma unroll
  for (int off = 1; off <= 2; off <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, off);
    l1 += __shfl_xor_sync(0xffffffffu, l1, off);
  }
  float* o_w = reinterpret_cast<float*>(smem);  // [4][16][kD]
  float* m_w = o_w + 4 * 16 * kD;               // [4][16]
  float* l_w = m_w + 4 * 16;                    // [4][16]
  if (tid4 == 0) {
    m_w[warp * 16 + gid] = m0;
    m_w[warp * 16 + gid + 8] = m1;
    l_w[warp * 16 + gid] = l0;
    l_w[warp * 16 + gid + 8] = l1;
  }
#pragma unroll
  for (int n = 0; n < kNt; ++n) {
    const int d = n * 8 + tid4 * 2;
    o_w[(warp * 16 + gid) * kD + d] = o[n][0];
    o_w[(warp * 16 + gid) * kD + d + 1] = o[n][1];
    o_w[(warp * 16 + gid + 8) * kD + d] = o[n][2];
    o_w[(warp * 16 + gid + 8) * kD + d + 1] = o[n][3];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < G * D; i += kThreads) {
    const int g = i / D, d = i - g * D;
    float m = -INFINITY;
    for (int w = 0; w < 4; ++w) m = fmaxf(m, m_w[w * 16 + g]);
    float acc = 0.0f, l = 0.0f;
    for (int w = 0; w < 4; ++w) {
      const float f = m_w[w * 16 + g] == -INFINITY ? 0.0f : exp2f(m_w[w * 16 + g] - m);
      acc += o_w[(w * 16 + g) * kD + d] * f;
      l += l_w[w * 16 + g] * f;
    }
    if (a.num_splits == 1) {
      // The only split: normalize here and write the output (no merge kernel is launched);
      // acc * (1 / l) rounds as the merge's would.
      uint16_t* out = a.out + (int64_t{a.q_rows[seq]} * a.num_q_heads + kvh * G + g) * D;
      out[d] = float_to_bf16_bits(l > 0.0f ? acc * (1.0f / l) : 0.0f);
      continue;
    }
    part_o[i] = acc;
    if (d == 0) {
      part_ml[2 * g] = m * 0.6931471805599453f;  // natural-log units, as the merge expects
      part_ml[2 * g + 1] = l;
    }
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
  const float inv = total > 0.0f ? 1.0f / total : 0.0f;  // a row without tokens: zeros
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

// Raises a kernel's dynamic shared memory limit when needed, so that inside a graph capture
// (which replays a size already run) no attribute call is made.
template <class Kernel>
cudaError_t allow_smem(Kernel kernel, size_t bytes, size_t& allowed) {
  if (bytes <= allowed) return cudaSuccess;
  const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(bytes));
  if (err == cudaSuccess) allowed = bytes;
  return err;
}

// The kernel for a shape: tensor cores (3 stages) unless head_dim > 128 or G > 16. The
// environment variable VORTEX_DECODE_VARIANT=scalar or mma4 picks another (benchmarks).
struct Launch {
  const void* kernel;
  size_t smem;
  bool writes_single_split;  // with num_splits 1 the kernel writes the output (no merge)
  cudaError_t (*run)(const DecodeAttentionArgs&, const DevicePagedKv&, dim3, size_t, cudaStream_t);
};

template <class K>
cudaError_t run_kernel(K kernel, const DecodeAttentionArgs& a, const DevicePagedKv& kv, dim3 grid,
                       size_t smem, cudaStream_t stream) {
  kernel<<<grid, kThreads, smem, stream>>>(a, kv);
  return cudaGetLastError();
}

template <int kD, int kStages>
Launch mma_launch() {
  static size_t allowed = 48 * 1024;
  const size_t smem = mma_smem_bytes<kD, kStages>();
  allow_smem(decode_mma_kernel<kD, kStages>, smem, allowed);
  return {reinterpret_cast<const void*>(decode_mma_kernel<kD, kStages>), smem, true,
          [](const DecodeAttentionArgs& a, const DevicePagedKv& kv, dim3 grid, size_t smem,
             cudaStream_t stream) {
            return run_kernel(decode_mma_kernel<kD, kStages>, a, kv, grid, smem, stream);
          }};
}

Launch pick(int D, int G, DecodeKernel kernel) {
  if (kernel != DecodeKernel::kScalar && D <= 128 && G <= 16) {
    const bool four = kernel == DecodeKernel::kMma4;
    if (D <= 16) return four ? mma_launch<16, 4>() : mma_launch<16, 3>();
    if (D <= 32) return four ? mma_launch<32, 4>() : mma_launch<32, 3>();
    if (D <= 64) return four ? mma_launch<64, 4>() : mma_launch<64, 3>();
    return four ? mma_launch<128, 4>() : mma_launch<128, 3>();
  }
  static size_t allowed = 48 * 1024;
  const size_t smem = smem_layout<32, 4>(D, G).total;
  allow_smem(decode_split_kernel<32, 4>, smem, allowed);
  return {reinterpret_cast<const void*>(decode_split_kernel<32, 4>), smem, false,
          [](const DecodeAttentionArgs& a, const DevicePagedKv& kv, dim3 grid, size_t smem,
             cudaStream_t stream) {
            return run_kernel(decode_split_kernel<32, 4>, a, kv, grid, smem, stream);
          }};
}

int occupancy(int D, int G, DecodeKernel kernel) {
  const Launch l = pick(D, G, kernel);
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&blocks, l.kernel, kThreads, l.smem,
                                                             cudaOccupancyDefault) != cudaSuccess)
    blocks = 1;
  return std::max(blocks, 1);
}

}  // namespace

int decode_attention_num_splits(int64_t num_rows, int64_t max_row_tokens, int head_dim,
                                int group_size, DecodeKernel kernel) {
  int device = 0, sms = 1;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t slots = int64_t{sms} * occupancy(head_dim, group_size, kernel);
  const int64_t max_useful = std::max<int64_t>(1, (max_row_tokens + 255) / 256);
  // The fewest splits that fill the machine in whole waves to 90% (fewer splits: longer runs of
  // pipelined tiles per block and less merging); else the best filling.
  int best = 1;
  double best_eff = -1.0;
  for (int s = 1; s <= 64 && s <= max_useful; ++s) {
    const int64_t ctas = num_rows * s;
    const int64_t waves = (ctas + slots - 1) / slots;
    double eff = static_cast<double>(ctas) / static_cast<double>(waves * slots);
    if (eff >= 0.9) return s;
    if (ctas < slots) eff *= 0.5;  // well under one wave leaves SMs idle
    if (eff > best_eff + 1e-9) {
      best_eff = eff;
      best = s;
    }
  }
  return best;
}

size_t decode_attention_workspace_bytes(int64_t num_seqs, int num_q_heads, int head_dim,
                                        int num_splits) {
  return static_cast<size_t>(num_seqs) * num_q_heads * num_splits * (head_dim + 2) * sizeof(float);
}

cudaError_t decode_attention(const DecodeAttentionArgs& a, const DevicePagedKv& kv,
                             cudaStream_t stream) {
  const int D = kv.head_dim, Hkv = kv.num_kv_heads;
  if (D % 8 != 0 || D > kMaxHeadDim || Hkv <= 0 || a.num_q_heads % Hkv != 0 ||
      a.num_q_heads / Hkv > (D <= 128 ? 16 : kMaxGroup) || a.num_splits < 1)
    return cudaErrorInvalidValue;
  if (a.num_seqs == 0) return cudaGetLastError();
  const int G = a.num_q_heads / Hkv;
  const Launch l = pick(D, G, a.kernel);
  const cudaError_t err = l.run(a, kv, dim3(a.num_splits, a.num_seqs * Hkv), l.smem, stream);
  if (err != cudaSuccess) return err;
  if (a.num_splits == 1 && l.writes_single_split) return cudaSuccess;
  decode_merge_kernel<<<a.num_seqs * a.num_q_heads, D >= 128 ? 128 : 64, 0, stream>>>(a, Hkv, D);
  return cudaGetLastError();
}

}  // namespace vortex::cuda
