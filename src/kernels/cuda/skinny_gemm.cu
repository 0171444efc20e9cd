// Weight-streaming GEMM for small M; see skinny_gemm.h for what it computes.
//
// Fragment layout. mma.sync m16n8k16 (bf16, .row.col) gives lane l (g = l / 4, t = l % 4) the A
// elements (row g, k 2t..2t+1), (row g+8, k 2t..2t+1), (row g, k 2t+8..2t+9), (row g+8, k
// 2t+8..2t+9) in a0..a3 and the B elements (k 2t..2t+1, col g), (k 2t+8..2t+9, col g) in b0, b1.
// A dot product does not care about the order of k, so within a 32-wide chunk of k the lane takes
// the physical k 8t..8t+7 as its share of two MMAs: one 16-byte load of a w row gives words
// w0..w3 = k (8t+0,1), (8t+2,3), (8t+4,5), (8t+6,7); MMA 0 uses w0 as logical k (2t, 2t+1) and w1
// as (2t+8, 2t+9), MMA 1 uses w2 and w3 the same way. B uses the identical map on the 16 bytes
// x[token][8t..8t+7], so both operands agree on every k. The accumulator c0, c1 is (row g,
// tokens 2t, 2t+1) and c2, c3 row g+8: row = output column n, column = token.
//
// Work split. A block's warps form row_groups x k_groups; a warp owns R row tiles of 16 rows
// (R = rows_per_warp / 16). The block walks its k range in stages of 32 * U * k_groups values
// (U = 4 / R chunks per warp, so 4 KB of w per warp per stage); the warp loads the next stage of
// w into registers before it computes the current one, and x comes from a three-stage cp.async
// ring in shared memory, swizzled so that the 16-byte fragment reads are conflict-free.
#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/skinny_gemm.h"

namespace vortex::cuda {
namespace {

constexpr int kStages = 3;
constexpr int kMaxWarps = 8;
constexpr size_t kMaxSmem = 112 * 1024;  // two blocks per SM still fit

struct Params {
  const uint16_t* x;
  const uint16_t* w;
  float* out;  // y, or the workspace ([splits][M][N]) when k is split over blocks
  int64_t M, N, K;
  int64_t k_per_split;  // a multiple of the stage width
  int row_groups, k_groups;
};

// 16 bytes of w, read once: no L1 allocation. Callers pass in-bounds addresses even for loads
// whose value they discard, since the compiler may issue this load speculatively.
__device__ __forceinline__ uint4 load_stream(const uint16_t* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

// Position of the 16-byte unit `unit` of x row `row` in a stage buffer of `width` elements per
// row: odd rows flip bit 2 of the unit index, so the two rows a quarter-warp reads (g = 2i, 2i+1,
// four units each) fall in different banks.
__device__ __forceinline__ int x_offset(int row, int unit, int width) {
  return row * width + ((unit ^ ((row & 1) << 2)) << 3);
}

template <int NT, int R>
__global__ void __launch_bounds__(kMaxWarps * 32, 2) skinny_gemm_kernel(Params p) {
  constexpr int U = 4 / R;
  constexpr int kRows = NT * 8;  // x rows staged (rows >= M are zeros)
  extern __shared__ __align__(16) uint16_t smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int rg = warp % p.row_groups, kw = warp / p.row_groups;
  const int width = 32 * U * p.k_groups;  // k values per stage
  const int64_t kb = int64_t{blockIdx.y} * p.k_per_split;
  const int64_t ke = min(kb + p.k_per_split, p.K);
  const int nst = static_cast<int>((ke - kb + width - 1) / width);
  const int64_t n0 = (int64_t{blockIdx.x} * p.row_groups + rg) * (16 * R);

  const uint16_t* wrow[R][2];
  bool row_ok[R][2];
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t n = n0 + 16 * r + 8 * h + g;
      row_ok[r][h] = n < p.N;
      wrow[r][h] = p.w + (row_ok[r][h] ? n : 0) * p.K;
    }
  }
  const int k_lane = kw * 32 * U + 8 * t;  // this lane's first k within a stage

  auto load_x = [&](int st) {
    if (st < nst) {
      uint16_t* buf = smem + (st % kStages) * kRows * width;
      const int units = width / 8;
      const int64_t k0 = kb + int64_t{st} * width;
      for (int i = threadIdx.x; i < kRows * units; i += blockDim.x) {
        const int row = i / units, unit = i - row * units;
        const int64_t k = k0 + unit * 8;
        const bool ok = row < p.M && k < ke;
        cp_async_16(buf + x_offset(row, unit, width), ok ? p.x + row * p.K + k : p.x, ok ? 16 : 0);
      }
    }
    cp_async_commit();  // possibly empty: keeps the group count in step with the stages
  };

  auto load_w = [&](uint4(&wr)[R][2][U], int st) {
    const int64_t k0 = kb + int64_t{st} * width + k_lane;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t k = k0 + 32 * u;
      const bool k_ok = st < nst && k < ke;
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const bool ok = k_ok && row_ok[r][h];
          const uint4 v = load_stream(wrow[r][h] + (ok ? k : 0));
          wr[r][h][u] = ok ? v : make_uint4(0, 0, 0, 0);
        }
      }
    }
  };

  float acc[R][NT][4];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[r][j][e] = 0.0f;

  auto step = [&](const uint4(&wr)[R][2][U], int st) {
    if (st >= nst) return;  // uniform over the block
    cp_async_wait<kStages - 2>();
    __syncthreads();  // stage st landed; everyone is done with stage st - 1's buffer
    load_x(st + kStages - 1);
    const uint16_t* buf = smem + (st % kStages) * kRows * width;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int unit = (k_lane >> 3) + 4 * u;
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const uint4 xv = *reinterpret_cast<const uint4*>(buf + x_offset(j * 8 + g, unit, width));
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const uint4& lo = wr[r][0][u];
          const uint4& hi = wr[r][1][u];
          const uint32_t a0[4] = {lo.x, hi.x, lo.y, hi.y};
          mma_bf16(acc[r][j], a0, xv.x, xv.y);
          const uint32_t a1[4] = {lo.z, hi.z, lo.w, hi.w};
          mma_bf16(acc[r][j], a1, xv.z, xv.w);
        }
      }
    }
  };

  for (int st = 0; st < kStages - 1; ++st) load_x(st);
  uint4 wa[R][2][U], wb[R][2][U];
  load_w(wa, 0);
  // Unrolled by two so that the register double buffer needs no copies (a copy would wait for
  // the loads in flight).
  for (int st = 0; st < nst; st += 2) {
    load_w(wb, st + 1);
    step(wa, st);
    load_w(wa, st + 2);
    step(wb, st + 1);
  }

  if (p.k_groups > 1) {
    // Warps 1.. of each row group hand their sums to warp 0, which adds them in k order.
    constexpr int E = R * NT * 4;
    cp_async_wait<0>();
    __syncthreads();
    float* red = reinterpret_cast<float*>(smem);
    if (kw > 0) {
      float* dst = red + ((kw - 1) * p.row_groups + rg) * E * 32;
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) dst[((r * NT + j) * 4 + e) * 32 + lane] = acc[r][j][e];
    }
    __syncthreads();
    if (kw > 0) return;
    for (int k2 = 1; k2 < p.k_groups; ++k2) {
      const float* src = red + ((k2 - 1) * p.row_groups + rg) * E * 32;
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[r][j][e] += src[((r * NT + j) * 4 + e) * 32 + lane];
    }
  }

  float* out = p.out + int64_t{blockIdx.y} * p.M * p.N;
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t n = n0 + 16 * r + 8 * h + g;
      if (n >= p.N) continue;
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const int64_t tok = j * 8 + 2 * t;
        if (tok < p.M) out[tok * p.N + n] = acc[r][j][2 * h];
        if (tok + 1 < p.M) out[(tok + 1) * p.N + n] = acc[r][j][2 * h + 1];
      }
    }
  }
}

// y[i] = the sum of the splits' partials in split order.
__global__ void sum_splits_kernel(const float* ws, int splits, int64_t count, float* y) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    float s = ws[i];
    for (int sp = 1; sp < splits; ++sp) s += ws[sp * count + i];
    y[i] = s;
  }
}

using KernelFn = void (*)(Params);

int tiles_for(int64_t M) {
  return M <= 8 ? 1 : M <= 16 ? 2 : M <= 32 ? 4 : 8;
}

template <int R>
KernelFn kernel_for_tiles(int nt) {
  switch (nt) {
    case 1:
      return skinny_gemm_kernel<1, R>;
    case 2:
      return skinny_gemm_kernel<2, R>;
    case 4:
      return skinny_gemm_kernel<4, R>;
    default:
      return skinny_gemm_kernel<8, R>;
  }
}

KernelFn kernel_for(int nt, int rows_per_warp) {
  return rows_per_warp == 32 ? kernel_for_tiles<2>(nt) : kernel_for_tiles<1>(nt);
}

// Lets every instantiation use up to kMaxSmem of dynamic shared memory (once per process).
void allow_smem() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int nt : {1, 2, 4, 8}) {
      for (int rpw : {16, 32}) {
        cudaFuncSetAttribute(kernel_for(nt, rpw), cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(kMaxSmem));
      }
    }
  });
}

int stage_width(const SkinnyGemmConfig& c) {
  return 32 * (4 / (c.rows_per_warp / 16)) * c.k_groups;
}

size_t smem_bytes(const SkinnyGemmConfig& c, int nt) {
  const size_t ring = size_t{kStages} * nt * 8 * stage_width(c) * sizeof(uint16_t);
  const size_t red =
      size_t(c.k_groups - 1) * c.row_groups * (c.rows_per_warp / 16) * nt * 4 * 32 * sizeof(float);
  return std::max(ring, red);
}

bool valid(const SkinnyGemmConfig& c, int nt) {
  // 32 rows per warp with 8 token tiles needs more than 128 registers (spills).
  return (c.rows_per_warp == 16 || (c.rows_per_warp == 32 && nt < 8)) && c.row_groups >= 1 &&
         c.k_groups >= 1 && c.row_groups * c.k_groups <= kMaxWarps && c.k_splits >= 1 &&
         smem_bytes(c, nt) <= kMaxSmem;
}

// k per split: ceil(K / splits) rounded up to whole stages; the grid then has ceil(K / that)
// splits (no more than asked).
int64_t k_per_split(const SkinnyGemmConfig& c, int64_t K) {
  const int64_t w = stage_width(c);
  const int64_t per = (K + c.k_splits - 1) / c.k_splits;
  return (per + w - 1) / w * w;
}

int64_t grid_splits(const SkinnyGemmConfig& c, int64_t K) {
  const int64_t per = k_per_split(c, K);
  return (K + per - 1) / per;
}

struct DeviceInfo {
  int sms = 1;
};

DeviceInfo device_info() {
  int device = 0;
  DeviceInfo d;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, device);
  d.sms = std::max(d.sms, 1);
  return d;
}

int blocks_per_sm(const SkinnyGemmConfig& c, int nt) {
  allow_smem();
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel_for(nt, c.rows_per_warp),
                                                    32 * c.row_groups * c.k_groups,
                                                    smem_bytes(c, nt)) != cudaSuccess) {
    cudaGetLastError();
    blocks = 1;
  }
  return std::max(blocks, 1);
}

// Estimated time of a config, in seconds, from a simple model of an H100-class GPU: the weight
// stream at full bandwidth only when every SM has warps streaming, whole waves of blocks, x
// reads and k-split partials through L2, and a fixed cost per pipeline start and per extra kernel.
double estimate_seconds(const SkinnyGemmConfig& c, int nt, int64_t M, int64_t N, int64_t K,
                        const DeviceInfo& dev) {
  constexpr double kDram = 3.0e12, kL2 = 8.0e12, kStart = 1.5e-6, kLaunch = 2.0e-6;
  const int warps = c.row_groups * c.k_groups;
  const int per_sm = blocks_per_sm(c, nt);
  const int64_t slots = int64_t{dev.sms} * per_sm;
  const int64_t rows_per_block = int64_t{c.rows_per_warp} * c.row_groups;
  const int64_t row_blocks = (N + rows_per_block - 1) / rows_per_block;
  const int64_t splits = grid_splits(c, K);
  const int64_t blocks = row_blocks * splits;
  const int64_t waves = (blocks + slots - 1) / slots;
  const double block_bytes = double(rows_per_block) * double(k_per_split(c, K)) * 2.0;
  // A full slot streams at its share of the bandwidth; warps resident per SM below 16 leave
  // bandwidth unused (too few bytes in flight).
  const double resident_warps = double(std::min<int64_t>(blocks, slots)) / dev.sms * warps;
  const double fill = std::min(1.0, resident_warps / 16.0);
  const double t_w =
      double(waves) * block_bytes * double(std::min<int64_t>(blocks, slots)) / (kDram * fill);
  const double x_bytes = double(blocks) * double(nt * 8) * double(k_per_split(c, K)) * 2.0;
  double t = t_w + 0.5 * x_bytes / kL2 + double(waves) * kStart;
  if (splits > 1) t += kLaunch + 2.0 * double(splits) * double(M) * double(N) * 4.0 / kL2;
  return t;
}

SkinnyGemmConfig choose(int64_t M, int64_t N, int64_t K, size_t workspace_floats) {
  const DeviceInfo dev = device_info();
  const int nt = tiles_for(M);
  SkinnyGemmConfig best;
  double best_t = -1.0;
  for (int rpw : {16, 32}) {
    for (int rg : {8, 4, 2, 1}) {
      for (int kg = 1; rg * kg <= kMaxWarps; kg *= 2) {
        for (int ks : {1, 2, 3, 4, 6, 8, 12, 16, 24, 32}) {
          SkinnyGemmConfig c{rpw, rg, kg, ks};
          if (!valid(c, nt)) continue;
          if (ks > 1 &&
              (grid_splits(c, K) != ks || skinny_gemm_workspace_floats(c, M, N) > workspace_floats))
            continue;
          const double t = estimate_seconds(c, nt, M, N, K, dev);
          if (best_t < 0 || t < best_t * 0.999) {
            best_t = t;
            best = c;
          }
        }
      }
    }
  }
  return best;
}

}  // namespace

bool skinny_gemm_supported(int64_t M, int64_t N, int64_t K) {
  return M >= 0 && M <= kSkinnyGemmMaxM && N >= 1 && K >= 8 && K % 8 == 0;
}

size_t skinny_gemm_workspace_floats(const SkinnyGemmConfig& config, int64_t M, int64_t N) {
  return config.k_splits > 1 ? size_t(config.k_splits) * size_t(M) * size_t(N) : 0;
}

SkinnyGemmConfig skinny_gemm_choose_config(int64_t M, int64_t N, int64_t K,
                                           size_t workspace_floats) {
  static std::mutex mu;
  static std::map<std::tuple<int, int64_t, int64_t, int64_t, size_t>, SkinnyGemmConfig> cache;
  int device = 0;
  cudaGetDevice(&device);
  const auto key = std::make_tuple(device, M, N, K, workspace_floats);
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  return cache[key] = choose(M, N, K, workspace_floats);
}

cudaError_t skinny_gemm_with_config(const bf16_t* x, int64_t M, int64_t K, const bf16_t* w,
                                    int64_t N, float* y, float* workspace,
                                    const SkinnyGemmConfig& config, cudaStream_t stream) {
  if (!skinny_gemm_supported(M, N, K)) return cudaErrorInvalidValue;
  if (M == 0) return cudaSuccess;
  if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(w)) % 16 != 0)
    return cudaErrorInvalidValue;
  const int nt = tiles_for(M);
  if (!valid(config, nt)) return cudaErrorInvalidValue;
  const int64_t splits = grid_splits(config, K);
  if (splits > 1 && workspace == nullptr) return cudaErrorInvalidValue;
  allow_smem();
  Params p;
  p.x = x;
  p.w = w;
  p.out = splits > 1 ? workspace : y;
  p.M = M;
  p.N = N;
  p.K = K;
  p.k_per_split = k_per_split(config, K);
  p.row_groups = config.row_groups;
  p.k_groups = config.k_groups;
  const int64_t rows_per_block = int64_t{config.rows_per_warp} * config.row_groups;
  const dim3 grid(static_cast<unsigned>((N + rows_per_block - 1) / rows_per_block),
                  static_cast<unsigned>(splits));
  const int threads = 32 * config.row_groups * config.k_groups;
  kernel_for(nt, config.rows_per_warp)<<<grid, threads, smem_bytes(config, nt), stream>>>(p);
  if (splits > 1) {
    const int64_t count = M * N;
    const int blocks = static_cast<int>(std::min<int64_t>((count + 255) / 256, 4096));
    sum_splits_kernel<<<blocks, 256, 0, stream>>>(workspace, static_cast<int>(splits), count, y);
  }
  return cudaGetLastError();
}

cudaError_t skinny_gemm(const bf16_t* x, int64_t M, int64_t K, const bf16_t* w, int64_t N, float* y,
                        float* workspace, size_t workspace_floats, cudaStream_t stream) {
  if (!skinny_gemm_supported(M, N, K)) return cudaErrorInvalidValue;
  if (M == 0) return cudaSuccess;
  const SkinnyGemmConfig c = skinny_gemm_choose_config(M, N, K, workspace ? workspace_floats : 0);
  return skinny_gemm_with_config(x, M, K, w, N, y, workspace, c, stream);
}

}  // namespace vortex::cuda
