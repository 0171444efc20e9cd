#include "kernels/cpu/linear.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/cpu/vec.h"

namespace vortex::cpu {
namespace {

// A tile is up to kTileRows rows of x times kTileCols weight rows, each output a register
// accumulator: 16 accumulators of 16 lanes fit the 32 AVX-512 registers with room for operands.
constexpr int kTileRows = 4;
constexpr int kTileCols = 4;
// Weight bytes per panel: a panel stays in L2 while every row tile of x passes over it. bf16/f16
// weights are widened in registers as they are loaded: measured faster than widening a panel to
// an f32 copy first, even for large M (the tiles are FMA-bound, the conversion rides along).
constexpr int64_t kPanelBytes = 192 * 1024;
// Rows of x per pass over a thread's weights, so that a long prefill's x block stays in L3.
constexpr int64_t kRowBlock = 256;

struct LoadF32 {
  using T = float;
  static F32x16 load(const float* p) { return load16(p); }
  static float at(const float* p) { return *p; }
};
struct LoadBf16 {
  using T = uint16_t;
  static F32x16 load(const uint16_t* p) { return bf16x16_to_f32(p); }
  static float at(const uint16_t* p) { return bf16_to_f32(*p); }
};
struct LoadF16 {
  using T = uint16_t;
  static F32x16 load(const uint16_t* p) { return f16x16_to_f32(p); }
  static float at(const uint16_t* p) { return f16_to_f32(*p); }
};

// y[r*ldy + c] = dot(x row r, w row c) (+ bias[c]) for an R x C tile, over the whole of K.
template <class Load, int R, int C>
void tile(const float* x, int64_t K, const typename Load::T* w, int64_t ldw, const float* bias,
          float* y, int64_t ldy) {
  F32x16 acc[R][C];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc[r][c] = F32x16{};
  int64_t k = 0;
  for (; k + kLanes <= K; k += kLanes) {
    F32x16 wv[C];
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      wv[c] = Load::load(w + c * ldw + k);
      keep_in_register(wv[c]);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      F32x16 xv = load16(x + r * K + k);
      keep_in_register(xv);
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[r][c] = madd(acc[r][c], xv, wv[c]);
    }
  }
  if (k < K) {
    int64_t n = K - k;
    F32x16 wv[C];
    for (int c = 0; c < C; ++c) {
      float buf[kLanes] = {};
      for (int64_t i = 0; i < n; ++i) buf[i] = Load::at(w + c * ldw + k + i);
      wv[c] = load16(buf);
    }
    for (int r = 0; r < R; ++r) {
      F32x16 xv = load16_partial(x + r * K + k, n);
      for (int c = 0; c < C; ++c) acc[r][c] = madd(acc[r][c], xv, wv[c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      float v = fold16(acc[r][c]);
      y[r * ldy + c] = bias ? v + bias[c] : v;
    }
  }
}

template <class Load, int R>
void tile_cols(int cols, const float* x, int64_t K, const typename Load::T* w, int64_t ldw,
               const float* bias, float* y, int64_t ldy) {
  static_assert(kTileCols == 4);
  switch (cols) {
    case 1: return tile<Load, R, 1>(x, K, w, ldw, bias, y, ldy);
    case 2: return tile<Load, R, 2>(x, K, w, ldw, bias, y, ldy);
    case 3: return tile<Load, R, 3>(x, K, w, ldw, bias, y, ldy);
    default: return tile<Load, R, 4>(x, K, w, ldw, bias, y, ldy);
  }
}

template <class Load>
void tile_any(int rows, int cols, const float* x, int64_t K, const typename Load::T* w,
              int64_t ldw, const float* bias, float* y, int64_t ldy) {
  static_assert(kTileRows == 4);
  switch (rows) {
    case 1: return tile_cols<Load, 1>(cols, x, K, w, ldw, bias, y, ldy);
    case 2: return tile_cols<Load, 2>(cols, x, K, w, ldw, bias, y, ldy);
    case 3: return tile_cols<Load, 3>(cols, x, K, w, ldw, bias, y, ldy);
    default: return tile_cols<Load, 4>(cols, x, K, w, ldw, bias, y, ldy);
  }
}

// All M rows against weight rows [n0, n1) (w points at row n0), row tile by row tile, so the
// panel's weights come from memory once and from cache for every further row tile.
template <class Load>
void panel(const float* x, int64_t M, int64_t K, const typename Load::T* w, const float* bias,
           float* y, int64_t N, int64_t n0, int64_t n1) {
  for (int64_t m0 = 0; m0 < M; m0 += kTileRows) {
    int rows = static_cast<int>(std::min<int64_t>(kTileRows, M - m0));
    for (int64_t n = n0; n < n1; n += kTileCols) {
      int cols = static_cast<int>(std::min<int64_t>(kTileCols, n1 - n));
      tile_any<Load>(rows, cols, x + m0 * K, K, w + (n - n0) * K, K, bias ? bias + n : nullptr,
                     y + m0 * N + n, N);
    }
  }
}

template <class Load>
void linear_typed(const float* x, int64_t M, int64_t K, const typename Load::T* w, int64_t N,
                  const float* bias, float* y) {
  const int64_t col_bytes = K * static_cast<int64_t>(sizeof(typename Load::T));
  const int64_t panel_groups =
      std::max<int64_t>(1, kPanelBytes / std::max<int64_t>(1, col_bytes * kTileCols));
  const int64_t groups = (N + kTileCols - 1) / kTileCols;
  ThreadPool::global().parallel_for(groups, 1, [&](int64_t g_begin, int64_t g_end) {
    for (int64_t m0 = 0; m0 < M; m0 += kRowBlock) {
      const int64_t rows = std::min(kRowBlock, M - m0);
      for (int64_t g = g_begin; g < g_end; g += panel_groups) {
        int64_t n0 = g * kTileCols;
        int64_t n1 = std::min(N, std::min(g_end, g + panel_groups) * kTileCols);
        panel<Load>(x + m0 * K, rows, K, w + n0 * K, bias, y + m0 * N, N, n0, n1);
      }
    }
  });
}

}  // namespace

void linear(const float* x, int64_t M, int64_t K, const Tensor& w, const Tensor* bias, float* y) {
  require_float_weight(w, "linear");
  if (w.dim() != 2 || w.size(1) != K)
    fail("linear: weight has shape ", shape_str(w.shape()), ", expected [N, ", K, "]");
  const int64_t N = w.size(0);
  std::vector<float> bias_f32;
  if (bias && bias->defined()) {
    require_float_weight(*bias, "linear bias");
    if (bias->dim() != 1 || bias->size(0) != N)
      fail("linear: bias has shape ", shape_str(bias->shape()), ", expected [", N, "]");
    bias_f32.resize(static_cast<size_t>(N));
    convert_to_f32(bias->dtype(), bias->data(), bias_f32.data(), static_cast<size_t>(N));
  }
  if (M <= 0 || N <= 0) return;
  const float* b = bias_f32.empty() ? nullptr : bias_f32.data();
  switch (w.dtype()) {
    case DType::kF32: return linear_typed<LoadF32>(x, M, K, w.data_as<float>(), N, b, y);
    case DType::kBF16: return linear_typed<LoadBf16>(x, M, K, w.data_as<uint16_t>(), N, b, y);
    default: return linear_typed<LoadF16>(x, M, K, w.data_as<uint16_t>(), N, b, y);
  }
}

}  // namespace vortex::cpu
