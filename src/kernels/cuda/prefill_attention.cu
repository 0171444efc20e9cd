// Causal paged prefill attention with bf16 tensor cores (mma.sync m16n8k16, f32 accumulation),
// flash-attention style: a block of 4 warps owns 64 query rows of one KV head, i.e. 64 / G query
// tokens times the G heads that share the KV head, so each K/V tile is read once for all of
// them. K/V tiles of 64 keys are gathered through the page list into shared memory by cp.async,
// double-buffered; softmax is online, in registers.
#include "kernels/cuda/attention.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/mma.cuh"

namespace vortex::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kRows = 64;
constexpr int kKeys = 64;

template <int kD>
__device__ __forceinline__ void load_kv_tile(uint16_t* ks, uint16_t* vs, const DevicePagedKv& kv,
                                             const int32_t* pages, int kvh, int key0, int kv_len) {
  constexpr int kLd = kD + 8, kChunks = kD / 8;
  const int D = kv.head_dim, P = kv.page_size;
  for (int idx = threadIdx.x; idx < kKeys * kChunks; idx += kThreads) {
    const int r = idx / kChunks, c = idx % kChunks;
    const int key = key0 + r;
    const bool valid = key < kv_len && c * 8 < D;
    int64_t off = 0;
    if (valid) {
      const int64_t page = pages[key / P];
      off = page * kv.page_stride + kvh * kv.head_stride + int64_t{key % P} * D + c * 8;
    }
    cp_async_16(ks + r * kLd + c * 8, kv.k + off, valid ? 16 : 0);
    cp_async_16(vs + r * kLd + c * 8, kv.v + off, valid ? 16 : 0);
  }
}

template <int kD>
__global__ void __launch_bounds__(kThreads)
    prefill_kernel(PrefillAttentionArgs a, DevicePagedKv kv) {
  constexpr int kLd = kD + 8, kChunks = kD / 8, kKc = kD / 16, kNt = kD / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint16_t* qs = reinterpret_cast<uint16_t*>(smem_raw);
  uint16_t* ks = qs + kRows * kLd;
  uint16_t* vs = ks + 2 * kKeys * kLd;

  const int D = kv.head_dim, Hkv = kv.num_kv_heads, Hq = a.num_q_heads, G = Hq / Hkv;
  const int b = blockIdx.x, kvh = blockIdx.y;
  const int seq = a.block_seq[b], q_start = a.block_q_start[b];
  const int q_begin = a.seq_q_begin[seq], q_len = a.seq_q_len[seq], kv_len = a.seq_kv_len[seq];
  const int32_t* pages = a.pages + a.seq_page_offset[seq];
  const int tpb = kRows / G;
  const int n_tok = min(tpb, q_len - q_start);
  const int pos0 = kv_len - q_len + q_start;
  const int last_pos = pos0 + n_tok - 1;

  // Q rows r = t * G + g; rows past the block's tokens are zero.
  for (int idx = threadIdx.x; idx < kRows * kChunks; idx += kThreads) {
    const int r = idx / kChunks, c = idx % kChunks;
    const int t = r / G, g = r % G;
    const bool valid = t < n_tok && c * 8 < D;
    const uint16_t* src =
        valid ? a.q + (int64_t{q_begin + q_start + t} * Hq + kvh * G + g) * D + c * 8 : a.q;
    cp_async_16(qs + r * kLd + c * 8, src, valid ? 16 : 0);
  }
  load_kv_tile<kD>(ks, vs, kv, pages, kvh, 0, kv_len);
  cp_async_commit();

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int gid = lane >> 2, tid4 = lane & 3;
  const int r0 = warp * 16 + gid, r1 = r0 + 8;
  // Rows past the tokens behave as the last token (their output is not written).
  const int pos_r0 = pos0 + min(r0 / G, n_tok - 1);
  const int pos_r1 = pos0 + min(r1 / G, n_tok - 1);
  const float scale_log2 = a.scale * 1.4426950408889634f;

  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
  float o[kNt][4];
#pragma unroll
  for (int n = 0; n < kNt; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  uint32_t qf[kKc][4];

  const int num_tiles = last_pos / kKeys + 1;
  for (int tile = 0; tile < num_tiles; ++tile) {
    if (tile + 1 < num_tiles) {
      const int nb = (tile + 1) & 1;
      load_kv_tile<kD>(ks + nb * kKeys * kLd, vs + nb * kKeys * kLd, kv, pages, kvh,
                       (tile + 1) * kKeys, kv_len);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (tile == 0) {
#pragma unroll
      for (int kc = 0; kc < kKc; ++kc) {
        const int col = kc * 16 + tid4 * 2;
        qf[kc][0] = *reinterpret_cast<const uint32_t*>(qs + r0 * kLd + col);
        qf[kc][1] = *reinterpret_cast<const uint32_t*>(qs + r1 * kLd + col);
        qf[kc][2] = *reinterpret_cast<const uint32_t*>(qs + r0 * kLd + col + 8);
        qf[kc][3] = *reinterpret_cast<const uint32_t*>(qs + r1 * kLd + col + 8);
      }
    }
    const uint16_t* kt = ks + (tile & 1) * kKeys * kLd;
    const uint16_t* vt = vs + (tile & 1) * kKeys * kLd;

    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) {
      s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
      for (int kc = 0; kc < kKc; ++kc) {
        uint32_t b0, b1;
        ldmatrix_x2(b0, b1, kt + (n * 8 + (lane & 7)) * kLd + kc * 16 + ((lane >> 3) & 1) * 8);
        mma_bf16(s[n], qf[kc], b0, b1);
      }
    }
    // Scale (in log2 units), causal mask, online softmax over the tile.
    const int key_base = tile * kKeys + tid4 * 2;
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int key = key_base + n * 8 + j;
        s[n][j] = key <= pos_r0 ? s[n][j] * scale_log2 : -INFINITY;
        s[n][2 + j] = key <= pos_r1 ? s[n][2 + j] * scale_log2 : -INFINITY;
        mx0 = fmaxf(mx0, s[n][j]);
        mx1 = fmaxf(mx1, s[n][2 + j]);
      }
    }
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, off));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, off));
    }
    const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
    const float alpha0 = exp2f(m0 - mn0), alpha1 = exp2f(m1 - mn1);
    m0 = mn0;
    m1 = mn1;
    float sum0 = 0.0f, sum1 = 0.0f;
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) {
      s[n][0] = exp2f(s[n][0] - mn0);
      s[n][1] = exp2f(s[n][1] - mn0);
      s[n][2] = exp2f(s[n][2] - mn1);
      s[n][3] = exp2f(s[n][3] - mn1);
      sum0 += s[n][0] + s[n][1];
      sum1 += s[n][2] + s[n][3];
    }
    l0 = l0 * alpha0 + sum0;  // per-thread partial; summed across the quad at the end
    l1 = l1 * alpha1 + sum1;
#pragma unroll
    for (int n = 0; n < kNt; ++n) {
      o[n][0] *= alpha0;
      o[n][1] *= alpha0;
      o[n][2] *= alpha1;
      o[n][3] *= alpha1;
    }
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      uint32_t pa[4];
      pa[0] = float2_to_bf16x2(s[2 * kk][0], s[2 * kk][1]);
      pa[1] = float2_to_bf16x2(s[2 * kk][2], s[2 * kk][3]);
      pa[2] = float2_to_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pa[3] = float2_to_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int n = 0; n < kNt; ++n) {
        uint32_t b0, b1;
        ldmatrix_x2_trans(b0, b1, vt + (kk * 16 + (lane & 15)) * kLd + n * 8);
        mma_bf16(o[n], pa, b0, b1);
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();

#pragma unroll
  for (int off = 1; off <= 2; off <<= 1) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, off);
    l1 += __shfl_xor_sync(0xffffffffu, l1, off);
  }
  const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
  const int t0 = r0 / G, g0 = r0 % G, t1 = r1 / G, g1 = r1 % G;
  const bool w0 = r0 < tpb * G && t0 < n_tok, w1 = r1 < tpb * G && t1 < n_tok;
  uint16_t* out0 = a.out + (int64_t{q_begin + q_start + t0} * Hq + kvh * G + g0) * D;
  uint16_t* out1 = a.out + (int64_t{q_begin + q_start + t1} * Hq + kvh * G + g1) * D;
#pragma unroll
  for (int n = 0; n < kNt; ++n) {
    const int d = n * 8 + tid4 * 2;
    if (d < D) {
      if (w0)
        *reinterpret_cast<uint32_t*>(out0 + d) = float2_to_bf16x2(o[n][0] * inv0, o[n][1] * inv0);
      if (w1)
        *reinterpret_cast<uint32_t*>(out1 + d) = float2_to_bf16x2(o[n][2] * inv1, o[n][3] * inv1);
    }
  }
}

template <int kD>
cudaError_t launch(const PrefillAttentionArgs& a, const DevicePagedKv& kv, cudaStream_t stream) {
  constexpr int kLd = kD + 8;
  const size_t smem = size_t{kRows + 4 * kKeys} * kLd * sizeof(uint16_t);
  static bool allowed = false;
  if (!allowed) {
    const cudaError_t err = cudaFuncSetAttribute(
        prefill_kernel<kD>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (err != cudaSuccess) return err;
    allowed = true;
  }
  prefill_kernel<kD><<<dim3(a.num_blocks, kv.num_kv_heads), kThreads, smem, stream>>>(a, kv);
  return cudaGetLastError();
}

}  // namespace

int prefill_attention_block_tokens(int group_size) {
  return group_size >= 1 && group_size <= kRows ? kRows / group_size : 0;
}

cudaError_t prefill_attention(const PrefillAttentionArgs& a, const DevicePagedKv& kv,
                              cudaStream_t stream) {
  const int D = kv.head_dim, Hkv = kv.num_kv_heads;
  if (D % 8 != 0 || D > 128 || Hkv <= 0 || a.num_q_heads % Hkv != 0 || a.num_q_heads / Hkv > kRows)
    return cudaErrorInvalidValue;
  if (a.num_blocks == 0) return cudaGetLastError();
  if (D <= 16) return launch<16>(a, kv, stream);
  if (D <= 32) return launch<32>(a, kv, stream);
  if (D <= 64) return launch<64>(a, kv, stream);
  return launch<128>(a, kv, stream);
}

}  // namespace vortex::cuda
