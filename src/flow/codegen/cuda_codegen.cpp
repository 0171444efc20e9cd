// CUDA code generation for flows (see cuda_codegen.h and the calling convention in
// cuda_flow_abi.h).
//
// How values become code. Every op value is addressed by an index per axis (an affine
// expression of loop variables), and is either computed inline where it is used (elementwise
// ops, transposes, reshapes, slices, constants, field loads) or materialized once and read back:
//  - summarize: one block per (page, KV head, layer); K and V staged in shared memory; reductions,
//    folds, softmax and matmul results in shared memory, threads striding over elements.
//  - score, per-page code: one thread per scoreable page. Values that depend on q and constants
//    only ("row-invariant") are computed once per worklist item into shared memory (the
//    prologue); per-page reductions go to small per-thread arrays, computed with the reduced
//    axis outermost and a tile of outputs innermost, so one chunk of a field (loaded 16 bytes
//    at a time) serves every output of the tile.
//    Cooperative form (the default where it applies): a group of L lanes per page. A per-page
//    reduction whose innermost reduced extent is a multiple of 8 * L is split over the group,
//    lane j taking the 8-wide chunks j, j + L, ... (so the group's 16-byte loads of a field row
//    are contiguous), and its partials are combined with shuffles within the group; everything
//    else is computed by every lane alike, and the group's lane 0 writes the outputs. A program
//    with no such reduction gets the one-thread-per-page kernel.
//  - score, cross-page ops (reductions and softmax over N): one block per row; each such op is
//    a pass over the row's pages with a block-wide reduction; per-page values before the first
//    pass that are costly to recompute come from page_scratch, written by the per-page kernel.
// Materializations are requested lazily while the code that uses them is generated, and land
// in the section that runs before it (prologue, passes, or the head of the per-page scope).
#include "flow/codegen/cuda_codegen.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>

#include "core/error.h"
#include "flow/codegen/cuda_flow_abi.h"
#include "flow/codegen/reduction_rewrite.h"
#include "flow/codegen/select_row_source.h"
#include "flow/cpu_executor.h"
#include "flow/shape_inference.h"
#include "flow/slice_range.h"

namespace vortex::flow {
namespace {

// ---- affine index expressions ----------------------------------------------------------------

// c + sum(coef * term): a term is a loop variable or an opaque expression in parentheses.
struct Affine {
  int64_t c = 0;
  std::vector<std::pair<std::string, int64_t>> terms;
};

Affine aff(int64_t c) {
  return Affine{c, {}};
}
Affine aff_var(const std::string& v) {
  return Affine{0, {{v, 1}}};
}

Affine operator+(Affine a, const Affine& b) {
  a.c += b.c;
  // A plain loop variable, not a structured binding: clang before 16 (the fuzz build's) cannot
  // capture a binding in a lambda.
  for (const auto& term : b.terms) {
    auto it = std::find_if(a.terms.begin(), a.terms.end(),
                           [&](const auto& t) { return t.first == term.first; });
    if (it == a.terms.end())
      a.terms.push_back(term);
    else
      it->second += term.second;
  }
  a.terms.erase(
      std::remove_if(a.terms.begin(), a.terms.end(), [](const auto& t) { return t.second == 0; }),
      a.terms.end());
  return a;
}

Affine operator*(Affine a, int64_t k) {
  if (k == 0) return aff(0);
  a.c *= k;
  for (auto& t : a.terms) t.second *= k;
  return a;
}

bool is_const(const Affine& a) {
  return a.terms.empty();
}

std::string str(const Affine& a) {
  std::string s;
  for (const auto& [name, coef] : a.terms) {
    if (!s.empty()) s += " + ";
    s += coef == 1 ? name : name + " * " + std::to_string(coef);
  }
  if (a.c != 0 || s.empty()) {
    if (!s.empty()) s += a.c < 0 ? " - " : " + ";
    s += std::to_string(!s.empty() && a.c < 0 ? -a.c : a.c);
  }
  return s;
}

// An opaque (non-affine) index expression.
Affine aff_opaque(const std::string& expr) {
  return aff_var("(" + expr + ")");
}

using Index = std::vector<Affine>;  // one entry per axis of a value (the N axis entry unused)

std::string index_key(const Index& idx) {
  std::string k;
  for (const Affine& a : idx) k += str(a) + ",";
  return k;
}

// ---- literals and source lines ---------------------------------------------------------------

std::string float_literal(double v) {
  const float f = static_cast<float>(v);
  if (std::isnan(f)) return "vx_nan()";
  if (std::isinf(f)) return f > 0 ? "vx_inf()" : "(-vx_inf())";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(f));
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  s += "f";
  return f < 0 ? "(" + s + ")" : s;
}

// Lines of generated code carry their origin: a flow source line, or none (generated). A line
// from an op starts with \x01<line>\x02; finish_lines turns origins into #line directives.
constexpr char kOriginStart = '\x01';
constexpr char kOriginEnd = '\x02';

std::string escape_path(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

std::string finish_lines(const std::string& text, const std::string& flow_file,
                         const std::string& generated_file) {
  std::istringstream in(text);
  std::string out, line;
  int out_lines = 0;
  int current = -1;  // flow line the next output line maps to, 0 = generated and in sync
  bool generated_in_sync = true;
  auto emit = [&](const std::string& l) {
    out += l;
    out += '\n';
    ++out_lines;
  };
  while (std::getline(in, line)) {
    int origin = 0;
    if (!line.empty() && line[0] == kOriginStart) {
      const size_t end = line.find(kOriginEnd);
      origin = std::atoi(line.substr(1, end - 1).c_str());
      line = line.substr(end + 1);
    }
    if (origin > 0) {
      emit("#line " + std::to_string(origin) + " \"" + escape_path(flow_file) + "\"");
      generated_in_sync = false;
      current = origin;
    } else if (!generated_in_sync) {
      emit("#line " + std::to_string(out_lines + 2) + " \"" + escape_path(generated_file) + "\"");
      generated_in_sync = true;
      current = 0;
    }
    emit(line);
  }
  (void)current;
  return out;
}

// ---- the device helpers every generated source starts with -----------------------------------

constexpr const char* kDeviceHelpers = R"(
// Unused helpers and page pointers are normal in generated code.
#pragma nv_diag_suppress 177
#pragma nv_diag_suppress 550
#define VX_OFFSETOF(T, m) __INTADDR__(&((T*)0)->m)
__device__ __forceinline__ float vx_nan() { return __int_as_float(0x7fffffff); }
__device__ __forceinline__ float vx_inf() { return __int_as_float(0x7f800000); }
__device__ __forceinline__ float vx_bf2f(vx_bf16 b) {
  return __uint_as_float(((unsigned)b) << 16);
}
// f32 -> bf16, round to nearest even; NaN stays NaN.
__device__ __forceinline__ vx_bf16 vx_f2bf(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (vx_bf16)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (vx_bf16)(u >> 16);
}
__device__ __forceinline__ float vx_max(float a, float b) {
  return (a != a || b != b) ? vx_nan() : fmaxf(a, b);
}
__device__ __forceinline__ float vx_min(float a, float b) {
  return (a != a || b != b) ? vx_nan() : fminf(a, b);
}
__device__ __forceinline__ float vx_relu(float x) { return x != x ? x : fmaxf(x, 0.0f); }
__device__ __forceinline__ float vx_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float vx_silu(float x) { return x * vx_sigmoid(x); }
__device__ __forceinline__ float vx_mod(float a, float b) {
  float r = fmodf(a, b);
  if (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) r += b;
  return r;
}
// Read-only loads of 8, 4 or 2 bf16 (16, 8 or 4 bytes, aligned) as f32.
__device__ __forceinline__ void vx_unpack2(unsigned w, float* out) {
  out[0] = __uint_as_float(w << 16);
  out[1] = __uint_as_float(w & 0xffff0000u);
}
__device__ __forceinline__ void vx_ld8(float* out, const vx_bf16* p) {
  unsigned a, b, c, d;
  asm("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(a), "=r"(b), "=r"(c), "=r"(d) : "l"(p));
  vx_unpack2(a, out); vx_unpack2(b, out + 2); vx_unpack2(c, out + 4); vx_unpack2(d, out + 6);
}
__device__ __forceinline__ void vx_ld4(float* out, const vx_bf16* p) {
  unsigned a, b;
  asm("ld.global.nc.v2.u32 {%0, %1}, [%2];" : "=r"(a), "=r"(b) : "l"(p));
  vx_unpack2(a, out); vx_unpack2(b, out + 2);
}
__device__ __forceinline__ void vx_ld2(float* out, const vx_bf16* p) {
  unsigned a;
  asm("ld.global.nc.u32 %0, [%1];" : "=r"(a) : "l"(p));
  vx_unpack2(a, out);
}
__device__ __forceinline__ float vx_ld1(const vx_bf16* p) { return vx_bf2f(__ldg(p)); }
// int8 Fields (flow/field_storage.h has the host's copy of this arithmetic). The exponent of a
// block's power-of-two scale: its largest magnitude m lands in (63.5, 127] units.
__device__ __forceinline__ int vx_int8_scale_exponent(float m) {
  if (!(m > 0.0f)) return 0;
  if (m == vx_inf()) return 104;
  int e;
  frexpf(m, &e);
  e -= 7;
  if (ldexpf(m, -e) > 127.0f) ++e;
  return min(max(e, -126), 104);
}
// The stored byte of x (x times 2^-e): round to nearest even, clamped to [-127, 127], plus 128.
__device__ __forceinline__ unsigned vx_int8_code(float x_scaled) {
  return x_scaled != x_scaled ? 128u : (unsigned)((int)fminf(fmaxf(rintf(x_scaled), -127.0f), 127.0f) + 128);
}
// Decode: the byte u placed under the f32 pattern of 2^23 is 2^23 + u, so
// fma(that, s, -(2^23 + 128) * s) = (u - 128) * s, exact: two instructions a value. c is
// (2^23 + 128) * s of the block.
__device__ __forceinline__ float vx_int8_value(unsigned w, unsigned selector, float s, float c) {
  return fmaf(__uint_as_float(__byte_perm(w, 0x4b000000u, selector)), s, -c);
}
// Read-only loads of 8, 4, 2 or 1 stored bytes (aligned) as f32.
__device__ __forceinline__ void vx_unpack_int8x4(unsigned w, float s, float c, float* out) {
  out[0] = vx_int8_value(w, 0x7650u, s, c);
  out[1] = vx_int8_value(w, 0x7651u, s, c);
  out[2] = vx_int8_value(w, 0x7652u, s, c);
  out[3] = vx_int8_value(w, 0x7653u, s, c);
}
__device__ __forceinline__ void vx_ld8_int8(float* out, const unsigned char* p, float s, float c) {
  unsigned a, b;
  asm("ld.global.nc.v2.u32 {%0, %1}, [%2];" : "=r"(a), "=r"(b) : "l"(p));
  vx_unpack_int8x4(a, s, c, out); vx_unpack_int8x4(b, s, c, out + 4);
}
__device__ __forceinline__ void vx_ld4_int8(float* out, const unsigned char* p, float s, float c) {
  unsigned a;
  asm("ld.global.nc.u32 %0, [%1];" : "=r"(a) : "l"(p));
  vx_unpack_int8x4(a, s, c, out);
}
__device__ __forceinline__ void vx_ld2_int8(float* out, const unsigned char* p, float s, float c) {
  unsigned short a;
  asm("ld.global.nc.u16 %0, [%1];" : "=h"(a) : "l"(p));
  out[0] = vx_int8_value(a, 0x7650u, s, c);
  out[1] = vx_int8_value(a, 0x7651u, s, c);
}
__device__ __forceinline__ float vx_ld1_int8(const unsigned char* p, float s, float c) {
  return vx_int8_value(__ldg(p), 0x7650u, s, c);
}
// Reductions over a group of L adjacent lanes (L a power of two, the group aligned in its warp;
// mask: the group's lanes). Butterfly order, so every lane of the group gets the same bits.
template <int L>
__device__ __forceinline__ float vx_lanes_sum(float v, unsigned mask) {
#pragma unroll
  for (int o = L / 2; o > 0; o >>= 1) v += __shfl_xor_sync(mask, v, o);
  return v;
}
template <int L>
__device__ __forceinline__ float vx_lanes_max(float v, unsigned mask) {
#pragma unroll
  for (int o = L / 2; o > 0; o >>= 1) v = vx_max(v, __shfl_xor_sync(mask, v, o));
  return v;
}
template <int L>
__device__ __forceinline__ float vx_lanes_min(float v, unsigned mask) {
#pragma unroll
  for (int o = L / 2; o > 0; o >>= 1) v = vx_min(v, __shfl_xor_sync(mask, v, o));
  return v;
}
// Block-wide reductions (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ __forceinline__ float vx_block_sum(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  v = (int)(threadIdx.x & 31) < (int)(blockDim.x >> 5) ? red[threadIdx.x & 31] : 0.0f;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float vx_block_max(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v = vx_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  v = (int)(threadIdx.x & 31) < (int)(blockDim.x >> 5) ? red[threadIdx.x & 31] : -vx_inf();
  for (int o = 16; o > 0; o >>= 1) v = vx_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float vx_block_min(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v = vx_min(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  v = (int)(threadIdx.x & 31) < (int)(blockDim.x >> 5) ? red[threadIdx.x & 31] : vx_inf();
  for (int o = 16; o > 0; o >>= 1) v = vx_min(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
)";

// The host's layout of the ABI structs, checked by the generated code.
std::string abi_asserts() {
  std::string s;
  auto size = [&](const char* type, size_t n) {
    s += str_cat("static_assert(sizeof(", type, ") == ", n, ", \"ABI drift: sizeof(", type,
                 ") differs between the host and the generated code\");\n");
  };
  auto offset = [&](const char* type, const char* member, size_t n) {
    s += str_cat("static_assert(VX_OFFSETOF(", type, ", ", member, ") == ", n,
                 ", \"ABI drift: offset of ", type, "::", member, "\");\n");
  };
#define VX_SUM_FIELD(m) offset("CudaSummarizeArgs", #m, offsetof(CudaSummarizeArgs, m))
#define VX_SCORE_FIELD(m) offset("CudaScoreArgs", #m, offsetof(CudaScoreArgs, m))
  size("CudaSummarizeArgs", sizeof(CudaSummarizeArgs));
  VX_SUM_FIELD(k);
  VX_SUM_FIELD(v);
  VX_SUM_FIELD(fields);
  VX_SUM_FIELD(field_scales);
  VX_SUM_FIELD(items);
  VX_SUM_FIELD(num_items);
  VX_SUM_FIELD(layers);
  VX_SUM_FIELD(page_stride);
  VX_SUM_FIELD(head_stride);
  VX_SUM_FIELD(kv_layer_stride);
  VX_SUM_FIELD(field_layer_stride);
  VX_SUM_FIELD(scale_layer_stride);
  VX_SUM_FIELD(num_kv_heads);
  VX_SUM_FIELD(field_stride);
  VX_SUM_FIELD(num_layers);
  VX_SUM_FIELD(num_pages);
  size("CudaScoreArgs", sizeof(CudaScoreArgs));
  VX_SCORE_FIELD(q);
  VX_SCORE_FIELD(q_rows);
  VX_SCORE_FIELD(row_page_offset);
  VX_SCORE_FIELD(pages);
  VX_SCORE_FIELD(row_first);
  VX_SCORE_FIELD(row_count);
  VX_SCORE_FIELD(item_row);
  VX_SCORE_FIELD(item_begin);
  VX_SCORE_FIELD(num_items);
  VX_SCORE_FIELD(fields);
  VX_SCORE_FIELD(field_scales);
  VX_SCORE_FIELD(state);
  VX_SCORE_FIELD(page_scratch);
  VX_SCORE_FIELD(row_scratch);
  VX_SCORE_FIELD(scores);
  VX_SCORE_FIELD(row_num_tokens);
  VX_SCORE_FIELD(row_k);
  VX_SCORE_FIELD(row_recent_begin);
  VX_SCORE_FIELD(out_pages);
  VX_SCORE_FIELD(out_num_tokens);
  VX_SCORE_FIELD(num_rows);
  VX_SCORE_FIELD(num_q_heads);
  VX_SCORE_FIELD(num_kv_heads);
  VX_SCORE_FIELD(max_pages);
  VX_SCORE_FIELD(field_stride);
  VX_SCORE_FIELD(state_stride);
  VX_SCORE_FIELD(num_pages);
  VX_SCORE_FIELD(page_size);
#undef VX_SUM_FIELD
#undef VX_SCORE_FIELD
  return s;
}

// ---- op classes ------------------------------------------------------------------------------

bool is_unary(OpKind k) {
  switch (k) {
    case OpKind::kNeg:
    case OpKind::kAbs:
    case OpKind::kExp:
    case OpKind::kLog:
    case OpKind::kSqrt:
    case OpKind::kRelu:
    case OpKind::kSigmoid:
    case OpKind::kSilu:
      return true;
    default:
      return false;
  }
}

bool is_binary(OpKind k) {
  switch (k) {
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
    case OpKind::kFloorDiv:
    case OpKind::kMod:
    case OpKind::kPow:
    case OpKind::kMaximum:
    case OpKind::kMinimum:
    case OpKind::kLt:
    case OpKind::kLe:
    case OpKind::kGt:
    case OpKind::kGe:
    case OpKind::kEq:
    case OpKind::kNe:
      return true;
    default:
      return false;
  }
}

bool is_elementwise(OpKind k) {
  return is_unary(k) || is_binary(k) || k == OpKind::kWhere;
}
bool is_remap(OpKind k) {
  return k == OpKind::kTranspose || k == OpKind::kReshape || k == OpKind::kSlice;
}
bool is_reduction(OpKind k) {
  return k == OpKind::kSum || k == OpKind::kMean || k == OpKind::kMax || k == OpKind::kMin ||
         k == OpKind::kL2Norm;
}
bool is_fold(OpKind k) {
  return k == OpKind::kFoldSum || k == OpKind::kFoldMean || k == OpKind::kFoldMax ||
         k == OpKind::kFoldMin;
}
// Ops computed by a loop over reduced indices per output element.
bool is_reduce_like(OpKind k) {
  return is_reduction(k) || is_fold(k) || k == OpKind::kMatMul;
}
bool needs_materialization(OpKind k) {
  return is_reduce_like(k) || k == OpKind::kSoftmax;
}

enum class Combine { kSum, kSumSq, kMax, kMin };

std::string elementwise_expr(OpKind k, const std::vector<std::string>& x) {
  auto bin = [&](const char* op) { return "(" + x[0] + " " + op + " " + x[1] + ")"; };
  auto call = [&](const char* fn) {
    std::string s = std::string(fn) + "(" + x[0];
    for (size_t i = 1; i < x.size(); ++i) s += ", " + x[i];
    return s + ")";
  };
  auto cmp = [&](const char* op) { return "(" + x[0] + " " + op + " " + x[1] + " ? 1.0f : 0.0f)"; };
  switch (k) {
    case OpKind::kNeg:
      return "(-" + x[0] + ")";
    case OpKind::kAbs:
      return call("fabsf");
    case OpKind::kExp:
      return call("expf");
    case OpKind::kLog:
      return call("logf");
    case OpKind::kSqrt:
      return call("sqrtf");
    case OpKind::kRelu:
      return call("vx_relu");
    case OpKind::kSigmoid:
      return call("vx_sigmoid");
    case OpKind::kSilu:
      return call("vx_silu");
    case OpKind::kAdd:
      return bin("+");
    case OpKind::kSub:
      return bin("-");
    case OpKind::kMul:
      return bin("*");
    case OpKind::kDiv:
      return bin("/");
    case OpKind::kFloorDiv:
      return "floorf(" + x[0] + " / " + x[1] + ")";
    case OpKind::kMod:
      return call("vx_mod");
    case OpKind::kPow:
      return call("powf");
    case OpKind::kMaximum:
      return call("vx_max");
    case OpKind::kMinimum:
      return call("vx_min");
    case OpKind::kLt:
      return cmp("<");
    case OpKind::kLe:
      return cmp("<=");
    case OpKind::kGt:
      return cmp(">");
    case OpKind::kGe:
      return cmp(">=");
    case OpKind::kEq:
      return cmp("==");
    case OpKind::kNe:
      return cmp("!=");
    case OpKind::kWhere:
      return "(" + x[0] + " != 0.0f ? " + x[1] + " : " + x[2] + ")";
    default:
      return "";
  }
}

// ---- concrete facts about one function's values ----------------------------------------------

struct ValueFacts {
  std::vector<int64_t> ext;      // per axis; -1 for the page axis N
  std::vector<int64_t> strides;  // row-major over the non-N axes; 0 for N
  bool has_n = false;            // leading axis is N
  int64_t numel = 1;             // elements per page (or in all, without N)
};

constexpr int kMaxTile = 32;               // outputs accumulated together per reduced index
constexpr int64_t kMaxUnrolledStore = 64;  // elements stored with constant indices
constexpr int64_t kMaxPerThreadFloats = 1024;
constexpr int64_t kMaxRowPartials = 64;
constexpr int64_t kMaxSharedBytes = 48 * 1024;
// Bytes of statements the generator may emit for one flow, all kernels and attempts together:
// values are inlined and re-indexed per use, so a hostile score (e.g. x = x + x.transpose(...)
// over and over) could otherwise generate without end.
constexpr int64_t kMaxGeneratedBytes = int64_t{4} << 20;
// Bytes of the source handed to NVRTC, whose time and memory grow faster than the source (on a
// loaded 2-core machine a 900 KB flow took 157 s and 1.2 GB; 200 KB of per-page softmaxes 30 s,
// 260 KB of subpage_quest at G = 8 4.4 s). The shipped flows generate 25-90 KB at G = 2 and at
// most 260 KB at G = 8.
constexpr int64_t kMaxCudaSourceBytes = int64_t{512} << 10;
// Shared memory of the selection in a fused score-and-select kernel (VxSelectShared of
// kernels/cuda/select_row.cuh: keys and pages of 4096 scoreable pages, a 256-bin histogram, 32
// warp totals, three ints; the generated code checks it).
constexpr int64_t kSelectSharedBytes = 2 * 4 * 4096 + 4 * 256 + 8 * 32 + 16;

// ---- the generator ---------------------------------------------------------------------------

enum class Context {
  kSummarize,  // block per (page, head), values in shared memory
  kPrologue,   // score, block-wide: row-invariant values
  kRowBlock,   // score row kernel, block-wide: row values after a cross-page pass
  kPage,       // score, one thread per page
};

enum class KernelKind { kSummarize, kScorePages, kScoreRows };

struct Storage {
  enum Kind { kShared, kSharedBf16, kScratch, kPerThread, kRowSoftmax } kind = kShared;
  std::string name;  // array name (softmax: the max array; name2 the sum array)
  std::string name2;
  int64_t offset = 0;  // scratch offset in floats
};

// One block of generated statements: a loop body or a scope. Loads that can be hoisted are
// placed in `hoisted`, which precedes `body`.
struct Block {
  std::string header;  // e.g. "for (...) {" ("" for the root of a section)
  std::string hoisted;
  std::string body;
  std::map<std::string, std::string> cse;
  std::map<std::string, std::string> vectors;  // hoisted vector loads: key -> array name
  int level = 0;
  int indent = 0;
};

class Generator {
 public:
  Generator(const FlowProgram& program, const FlowGeometry& geometry,
            const CudaCodegenOptions& options)
      : program_(program), geometry_(geometry), options_(options) {}

  CudaFlowSource run();

 private:
  // -- program facts --
  [[noreturn]] void unsupported(const Op& op, const std::string& what) const {
    throw CudaCodegenError(
        program_.filename, op.loc,
        str_cat("the CUDA generator cannot compile '", op_kind_name(op.kind), "' here: ", what));
  }
  void analyse(const Function& fn, std::vector<ValueFacts>& facts);
  void analyse_score();
  bool mixes_pages(ValueId id) const;

  // -- emission primitives --
  Block& top() { return stack_.back(); }
  void count_emitted(size_t bytes);
  void line(const std::string& s, const SourceLoc* loc = nullptr);
  void open(const std::string& header);
  void close();
  std::string take_root();  // text of the root block of the stack (which must be alone)
  std::string new_name(const char* prefix) { return prefix + std::to_string(counter_++); }
  struct OriginGuard {
    Generator& g;
    SourceLoc saved;
    OriginGuard(Generator& gen, SourceLoc loc) : g(gen), saved(gen.origin_) { g.origin_ = loc; }
    ~OriginGuard() { g.origin_ = saved; }
  };
  // Runs fn with a fresh emission stack whose root is at `level`, returns its text.
  std::string in_new_stack(int level, int indent, const std::function<void()>& fn);

  // -- values --
  const std::vector<ValueFacts>& facts() const {
    return fn_->phase == Phase::kSummarize ? sum_facts_ : score_facts_;
  }
  const ValueFacts& fact(ValueId id) const { return facts()[static_cast<size_t>(id)]; }
  Affine flat(ValueId id, const Index& idx) const;
  Index unflatten(ValueId id, const std::string& e) const;
  Index operand_index(const Op& op, size_t k, const Index& idx) const;  // elementwise broadcast
  Index remap_index(const Op& op, const Index& idx) const;
  std::string value(ValueId id, const Index& idx);
  std::string compute(ValueId id, const Index& idx);
  std::string read(const Storage& s, ValueId id, const Index& idx);
  std::string field_load(const Op& op, const Index& idx);
  std::string bind(const std::string& expr, const std::string& key);

  // -- reductions --
  struct ReduceSpec {
    Combine combine = Combine::kSum;
    std::vector<int64_t> extents;  // reduced loop extents
    double divisor = 1;            // mean-like: the count
    bool sqrt_result = false;
    // the value to combine for tile element t at reduced indices r
    std::function<std::string(size_t t, const std::vector<Affine>& r)> body;
  };
  std::vector<std::string> reduce_loops(const ReduceSpec& spec, size_t tiles);
  ReduceSpec reduce_spec(ValueId id, const std::vector<Index>& outs);
  void softmax_row(ValueId id, const Index& out_base, int axis, std::string* max_out,
                   std::string* sum_out);

  // -- materializations --
  void request_block_shared(ValueId id, Context ctx);
  void request_page_values(ValueId id);
  void request_state(ValueId id);
  void request_cross(ValueId id);
  void materialize_block_element(ValueId id, const std::string& target, const Index& idx);

  // -- kernels --
  std::string declare_shared(const std::string& name, int64_t count, bool bf16 = false);
  void begin_kernel(const Function* fn, KernelKind kind, Context ctx);
  void check_shared_bytes(const char* what) const;
  std::string q_pointer() const;
  std::string gen_summarize(const std::string& name);
  std::string page_kernel_body(bool write_outputs, int lanes);
  std::string lane_group_decls(int lanes) const;
  std::string gen_page_kernel(const std::string& name, bool write_outputs, int lanes);
  std::string gen_score_select_kernel(const std::string& name, int lanes);
  CudaScoreKernel add_page_kernel(const std::string& name, bool write_outputs,
                                  std::string& kernels);
  int auto_lanes() const;
  std::string gen_row_kernel(const std::string& name);
  void open_page_scope();
  void close_page_scope(std::string& head);
  void emit_outputs(bool to_scratch);
  void for_each_element(ValueId id, const std::function<void(const Index&)>& fn);

  const FlowProgram& program_;
  FlowGeometry geometry_;
  CudaCodegenOptions options_;
  FlowProgram rewritten_;
  const Function* fn_ = nullptr;
  std::vector<ValueFacts> sum_facts_, score_facts_;
  std::vector<int> level_;   // score: cross-page depth of each op
  std::vector<bool> cheap_;  // score: per-page value cheap to recompute (no reduction in cone)
  // Per FlowProgram field: offset in its block (a Field: in 16-bit units of the GPU block,
  // CudaFlowSource::fields; a State: in floats), values, and the scale slot of an int8 Field
  // (-1 otherwise).
  std::vector<int64_t> field_offset_;
  std::vector<int64_t> field_floats_;
  std::vector<int> field_scale_;
  int num_scales_ = 0;  // int8 Fields: scales per (page, KV head) block
  int64_t field_floats_total_ = 0, state_floats_total_ = 0;

  // Per kernel.
  KernelKind kernel_ = KernelKind::kSummarize;
  Context ctx_ = Context::kSummarize;
  std::vector<Block> stack_;
  std::map<ValueId, Storage> kernel_storage_;
  std::map<ValueId, Storage> page_storage_;  // per per-page scope
  std::string shared_decls_, prologue_, passes_;
  std::string* page_head_ = nullptr;  // where per-page materializations go
  int page_level_ = 0;
  int64_t shared_bytes_ = 0;
  std::map<std::string, std::pair<int, int>> vars_;  // loop var -> (level, alignment)
  SourceLoc origin_;
  int counter_ = 0;
  int64_t emitted_bytes_ = 0;  // against kMaxGeneratedBytes
  std::vector<ValueId> scratch_values_;
  int64_t scratch_floats_ = 0;
  // Cooperative per-page kernel: lanes per page (1: one thread per page), the reductions split
  // over the lanes so far, and the prefix of output stores (only the group's lane 0 writes).
  int lanes_ = 1;
  int lane_splits_ = 0;
  int64_t lane_loads_ = 0;  // 16-byte field loads per lane and page in the split reductions
  std::string store_guard_;
  bool fused_select_ = false;  // generating the fused score-and-select kernel
};

// ---- analysis --------------------------------------------------------------------------------

void Generator::analyse(const Function& fn, std::vector<ValueFacts>& facts) {
  facts.assign(fn.ops.size(), {});
  for (size_t i = 0; i < fn.ops.size(); ++i) {
    const Op& op = fn.ops[i];
    ValueFacts& f = facts[i];
    for (size_t a = 0; a < op.shape.size(); ++a) {
      const Dim& d = op.shape[a];
      if (is_page_dim(d)) {
        if (a != 0 || d.num != 1 || d.den != 1)
          unsupported(op, "the page axis N must be the leading axis, got shape " +
                              shape_to_string(op.shape));
        f.ext.push_back(-1);
        f.has_n = true;
        continue;
      }
      std::optional<int64_t> v = eval_dim(d, geometry_);
      if (!v || *v < 0) unsupported(op, "shape " + shape_to_string(op.shape) + " is not concrete");
      f.ext.push_back(*v);
    }
    f.strides.assign(f.ext.size(), 0);
    int64_t stride = 1;
    for (size_t a = f.ext.size(); a-- > 0;) {
      if (f.ext[a] < 0) continue;
      f.strides[a] = stride;
      stride *= f.ext[a];
    }
    f.numel = stride;
  }
}

bool Generator::mixes_pages(ValueId id) const {
  const Op& op = rewritten_.score.ops[static_cast<size_t>(id)];
  if (op.operands.empty()) return false;
  const ValueFacts& in = score_facts_[static_cast<size_t>(op.operands[0])];
  if (!in.has_n) return false;
  if (is_reduction(op.kind)) return std::find(op.axes.begin(), op.axes.end(), 0) != op.axes.end();
  if (op.kind == OpKind::kSoftmax || is_fold(op.kind)) return op.axis == 0;
  return false;
}

void Generator::analyse_score() {
  const Function& fn = rewritten_.score;
  analyse(fn, score_facts_);
  level_.assign(fn.ops.size(), 0);
  cheap_.assign(fn.ops.size(), true);
  for (size_t i = 0; i < fn.ops.size(); ++i) {
    const Op& op = fn.ops[i];
    const ValueFacts& f = score_facts_[i];
    int l = 0;
    bool cheap = !needs_materialization(op.kind);
    for (ValueId o : op.operands) {
      l = std::max(l, level_[static_cast<size_t>(o)]);
      if (score_facts_[static_cast<size_t>(o)].has_n)
        cheap = cheap && cheap_[static_cast<size_t>(o)];
    }
    if (mixes_pages(static_cast<ValueId>(i))) {
      ++l;
      if (is_fold(op.kind)) unsupported(op, "folds along the page axis N are not supported");
    }
    level_[i] = l;
    cheap_[i] = cheap;
    // Shapes the per-page code relies on.
    if (op.kind == OpKind::kMatMul) {
      // N may be a batch axis, or the row axis of a rank-2 left operand; never contracted.
      const ValueFacts& af = score_facts_[static_cast<size_t>(op.operands[0])];
      const ValueFacts& bf = score_facts_[static_cast<size_t>(op.operands[1])];
      if ((af.has_n && af.ext.size() == 1) || (bf.has_n && bf.ext.size() <= 2))
        unsupported(op,
                    "a matmul that contracts the page axis N is not supported; keep N as a "
                    "batch axis");
    }
    if (op.kind == OpKind::kTranspose && !op.axes.empty() &&
        score_facts_[static_cast<size_t>(op.operands[0])].has_n && op.axes[0] != 0)
      unsupported(op, "a transpose must keep the page axis N first");
    if (op.kind == OpKind::kSlice && score_facts_[static_cast<size_t>(op.operands[0])].has_n) {
      const SliceSpec& s = op.slices[0];
      if (s.index || s.start || s.stop || s.step != 1)
        unsupported(op, "the page axis N cannot be sliced or indexed");
    }
    if ((op.kind == OpKind::kReshape) &&
        score_facts_[static_cast<size_t>(op.operands[0])].has_n != f.has_n)
      unsupported(op, "a reshape must keep the page axis N");
    if (op.kind == OpKind::kLoadField && !f.has_n)
      unsupported(op, "a field load without the page axis");
    (void)f;
  }
}

// ---- emission primitives ---------------------------------------------------------------------

void Generator::count_emitted(size_t bytes) {
  emitted_bytes_ += static_cast<int64_t>(bytes);
  if (emitted_bytes_ <= kMaxGeneratedBytes) return;
  const SourceLoc where = origin_.line > 0 ? origin_ : fn_ ? fn_->loc : program_.loc;
  throw CudaCodegenError(
      program_.filename, where,
      str_cat("generating the CUDA code for this flow emits more than ", kMaxGeneratedBytes >> 20,
              " MiB (the generated code limit); simplify the flow"));
}

void Generator::line(const std::string& s, const SourceLoc* loc) {
  count_emitted(s.size());
  const SourceLoc& o = loc ? *loc : origin_;
  std::string l;
  if (o.line > 0) l = kOriginStart + std::to_string(o.line) + kOriginEnd;
  l += std::string(static_cast<size_t>(top().indent) * 2, ' ') + s + "\n";
  top().body += l;
}

void Generator::open(const std::string& header) {
  count_emitted(header.size());
  Block b;
  b.level = top().level + 1;
  b.indent = top().indent + 1;
  std::string h;
  if (origin_.line > 0) h = kOriginStart + std::to_string(origin_.line) + kOriginEnd;
  b.header = h + std::string(static_cast<size_t>(top().indent) * 2, ' ') + header + "\n";
  stack_.push_back(std::move(b));
}

void Generator::close() {
  Block b = std::move(stack_.back());
  stack_.pop_back();
  top().body += b.header + b.hoisted + b.body +
                std::string(static_cast<size_t>(top().indent) * 2, ' ') + "}\n";
}

std::string Generator::take_root() {
  VORTEX_ASSERT(stack_.size() == 1);
  std::string s = stack_.back().hoisted + stack_.back().body;
  stack_.clear();
  return s;
}

std::string Generator::in_new_stack(int level, int indent, const std::function<void()>& fn) {
  std::vector<Block> saved = std::move(stack_);
  stack_.clear();
  Block root;
  root.level = level;
  root.indent = indent;
  stack_.push_back(std::move(root));
  fn();
  std::string text = take_root();
  stack_ = std::move(saved);
  return text;
}

std::string Generator::bind(const std::string& expr, const std::string& key) {
  for (size_t b = stack_.size(); b-- > 0;) {
    auto it = stack_[b].cse.find(key);
    if (it != stack_[b].cse.end()) return it->second;
  }
  std::string t = new_name("t");
  line("const float " + t + " = " + expr + ";");
  top().cse[key] = t;
  return t;
}

std::string Generator::declare_shared(const std::string& name, int64_t count, bool bf16) {
  const int64_t bytes = std::max<int64_t>(count, 1) * (bf16 ? 2 : 4);
  shared_bytes_ += (bytes + 15) / 16 * 16;
  shared_decls_ += str_cat("  __shared__ __align__(16) ", bf16 ? "vx_bf16 " : "float ", name, "[",
                           std::max<int64_t>(count, 1), "];\n");
  return name;
}

// ---- indices ---------------------------------------------------------------------------------

Affine Generator::flat(ValueId id, const Index& idx) const {
  const ValueFacts& f = fact(id);
  Affine a = aff(0);
  for (size_t k = 0; k < f.ext.size(); ++k)
    if (f.ext[k] >= 0 && f.ext[k] != 1) a = a + idx[k] * f.strides[k];
  return a;
}

Index Generator::unflatten(ValueId id, const std::string& e) const {
  const ValueFacts& f = fact(id);
  Index idx(f.ext.size(), aff(0));
  bool first = true;
  for (size_t k = 0; k < f.ext.size(); ++k) {
    if (f.ext[k] < 0 || f.ext[k] == 1) continue;
    std::string x = f.strides[k] == 1 ? e : "(" + e + ") / " + std::to_string(f.strides[k]);
    if (!first) x = "(" + x + ") % " + std::to_string(f.ext[k]);
    first = false;
    idx[k] = aff_opaque(x);
  }
  return idx;
}

Index Generator::operand_index(const Op& op, size_t k, const Index& idx) const {
  const ValueFacts& of = fact(op.operands[k]);
  const size_t rank = idx.size(), orank = of.ext.size();
  Index out(orank, aff(0));
  for (size_t a = 0; a < orank; ++a) {
    const size_t r = a + rank - orank;
    out[a] = of.ext[a] == 1 ? aff(0) : idx[r];
  }
  return out;
}

Index Generator::remap_index(const Op& op, const Index& idx) const {
  const ValueId x = op.operands[0];
  const ValueFacts& of = fact(x);
  const ValueFacts& rf = fact(static_cast<ValueId>(&op - fn_->ops.data()));
  Index out(of.ext.size(), aff(0));
  switch (op.kind) {
    case OpKind::kTranspose:
      for (size_t i = 0; i < op.axes.size(); ++i) out[static_cast<size_t>(op.axes[i])] = idx[i];
      return out;
    case OpKind::kSlice: {
      size_t j = 0;
      for (size_t a = 0; a < of.ext.size(); ++a) {
        const SliceSpec& s = op.slices[a];
        if (of.ext[a] < 0) {  // the page axis, kept whole
          ++j;
          continue;
        }
        auto [start, count] = slice_range(s, of.ext[a]);
        (void)count;
        if (s.index) {
          out[a] = aff(start);
        } else {
          out[a] = aff(start) + idx[j] * s.step;
          ++j;
        }
      }
      return out;
    }
    case OpKind::kReshape: {
      // Adding or removing unit axes maps the other axes in order; anything else goes through
      // the flat (row-major) position.
      std::vector<size_t> rk, ok;
      for (size_t a = 0; a < rf.ext.size(); ++a)
        if (rf.ext[a] != 1) rk.push_back(a);
      for (size_t a = 0; a < of.ext.size(); ++a)
        if (of.ext[a] != 1) ok.push_back(a);
      bool same = rk.size() == ok.size();
      for (size_t i = 0; same && i < rk.size(); ++i) same = rf.ext[rk[i]] == of.ext[ok[i]];
      if (same) {
        for (size_t i = 0; i < rk.size(); ++i) out[ok[i]] = idx[rk[i]];
        return out;
      }
      const Affine f = flat(static_cast<ValueId>(&op - fn_->ops.data()), idx);
      const std::string fs = str(f);
      bool first = true;
      for (size_t a = 0; a < of.ext.size(); ++a) {
        if (of.ext[a] < 0 || of.ext[a] == 1) continue;
        if (is_const(f)) {
          out[a] = aff((f.c / of.strides[a]) % of.ext[a]);
          continue;
        }
        std::string e =
            of.strides[a] == 1 ? "(" + fs + ")" : "(" + fs + ") / " + std::to_string(of.strides[a]);
        if (!first) e = "(" + e + ") % " + std::to_string(of.ext[a]);
        first = false;
        out[a] = aff_opaque(e);
      }
      return out;
    }
    default:
      VORTEX_ASSERT(false);
  }
  return out;
}

// ---- values ----------------------------------------------------------------------------------

std::string Generator::read(const Storage& s, ValueId id, const Index& idx) {
  const std::string f = str(flat(id, idx));
  switch (s.kind) {
    case Storage::kShared:
    case Storage::kPerThread:
      return s.name + "[" + f + "]";
    case Storage::kSharedBf16:
      return "vx_bf2f(" + s.name + "[" + f + "])";
    case Storage::kScratch:
      return "ps[" + str(flat(id, idx) + aff(s.offset)) + "]";
    case Storage::kRowSoftmax:
      break;
  }
  VORTEX_ASSERT(false);
  return "";
}

std::string Generator::field_load(const Op& op, const Index& idx) {
  const ValueId id = static_cast<ValueId>(&op - fn_->ops.data());
  // An int8 Field is addressed in bytes from fld8 (its offset in 16-bit units is a multiple of
  // 8, so vector loads stay aligned) and decoded with its block's scale.
  const int scale = field_scale_[static_cast<size_t>(op.field)];
  const bool int8 = scale >= 0;
  const int64_t offset = field_offset_[static_cast<size_t>(op.field)] * (int8 ? 2 : 1);
  const std::string base_ptr = int8 ? "fld8" : "fld";
  const std::string scale_arg = int8 ? str_cat(", fsc", scale, ", fbias", scale) : std::string();
  const std::string suffix = int8 ? "_int8" : "";
  const Affine f = flat(id, idx) + aff(offset);
  // Hoist an aligned vector load to the outermost block where all its variables exist.
  int need = page_level_;
  int64_t align = 8;
  for (const auto& [name, coef] : f.terms) {
    auto it = vars_.find(name);
    if (it == vars_.end()) {
      align = 0;
      break;
    }
    need = std::max(need, it->second.first);
    const int64_t term_align = coef * it->second.second;
    while (align > 1 && term_align % align != 0) align /= 2;
  }
  if (align >= 2) {
    const int64_t width = align;
    const int64_t lane = ((f.c % width) + width) % width;
    Affine base = f;
    base.c -= lane;
    const std::string key = str(base) + "/" + std::to_string(width);
    Block* target = nullptr;
    for (Block& b : stack_)
      if (b.level == need) target = &b;
    if (target) {
      auto it = target->vectors.find(key);
      std::string arr;
      if (it != target->vectors.end()) {
        arr = it->second;
      } else {
        arr = new_name("fv");
        const std::string pad(static_cast<size_t>(target->indent) * 2, ' ');
        target->hoisted += pad + "float " + arr + "[" + std::to_string(width) + "];\n" + pad +
                           "vx_ld" + std::to_string(width) + suffix + "(" + arr + ", " + base_ptr +
                           " + " + str(base) + scale_arg + ");\n";
        target->vectors[key] = arr;
      }
      return arr + "[" + std::to_string(lane) + "]";
    }
  }
  return "vx_ld1" + suffix + "(" + base_ptr + " + " + str(f) + scale_arg + ")";
}

std::string Generator::value(ValueId id, const Index& idx) {
  if (auto it = kernel_storage_.find(id); it != kernel_storage_.end())
    if (it->second.kind != Storage::kRowSoftmax) return read(it->second, id, idx);
  if (auto it = page_storage_.find(id); it != page_storage_.end()) return read(it->second, id, idx);
  const Op& op = fn_->ops[static_cast<size_t>(id)];
  const ValueFacts& f = fact(id);
  const bool leaf =
      op.kind == OpKind::kConstant || op.kind == OpKind::kDimValue || op.kind == OpKind::kRowPages;
  if (fn_->phase == Phase::kSummarize) {
    if (op.kind == OpKind::kInput || needs_materialization(op.kind)) {
      request_block_shared(id, Context::kSummarize);
      return read(kernel_storage_.at(id), id, idx);
    }
    return compute(id, idx);
  }
  const int level = level_[static_cast<size_t>(id)];
  // Row-invariant values: in shared memory, computed once per row (remaps stay index maps;
  // elementwise ones are inlined within the prologue itself).
  if (!f.has_n && level == 0 && !leaf && !is_remap(op.kind) &&
      (ctx_ != Context::kPrologue || op.kind == OpKind::kInput || needs_materialization(op.kind))) {
    request_block_shared(id, Context::kPrologue);
    return read(kernel_storage_.at(id), id, idx);
  }
  if (mixes_pages(id)) {
    request_cross(id);
    if (op.kind != OpKind::kSoftmax) return read(kernel_storage_.at(id), id, idx);
    return compute(id, idx);
  }
  if (!f.has_n && level > 0 && !leaf && needs_materialization(op.kind)) {
    request_block_shared(id, Context::kRowBlock);
    return read(kernel_storage_.at(id), id, idx);
  }
  if (f.has_n && kernel_ == KernelKind::kScoreRows && level == 0 &&
      !cheap_[static_cast<size_t>(id)]) {
    Storage s;
    s.kind = Storage::kScratch;
    s.offset = scratch_floats_;
    scratch_floats_ += f.numel;
    scratch_values_.push_back(id);
    kernel_storage_[id] = s;
    return read(s, id, idx);
  }
  if (f.has_n && needs_materialization(op.kind)) {
    request_page_values(id);
    return read(page_storage_.at(id), id, idx);
  }
  if (op.kind == OpKind::kLoadField &&
      program_.fields[static_cast<size_t>(op.field)].kind == FieldKind::kState) {
    request_state(id);
    return read(page_storage_.at(id), id, idx);
  }
  return compute(id, idx);
}

std::string Generator::compute(ValueId id, const Index& idx) {
  const Op& op = fn_->ops[static_cast<size_t>(id)];
  OriginGuard origin(*this, op.loc);
  switch (op.kind) {
    case OpKind::kConstant:
      return float_literal(op.value);
    case OpKind::kDimValue: {
      if (op.dim.symbol == Symbol::kN) {
        std::string n = "(float)count";
        if (op.dim.num != 1 || op.dim.den != 1)
          n = "((float)(count * " + std::to_string(op.dim.num) + " / " +
              std::to_string(op.dim.den) + "))";
        return n;
      }
      std::optional<int64_t> v = eval_dim(op.dim, geometry_);
      if (!v) unsupported(op, "dim " + dim_to_string(op.dim) + " is not a whole number");
      return float_literal(static_cast<double>(*v));
    }
    case OpKind::kLoadField:
      if (ctx_ != Context::kPage) unsupported(op, "a field is read outside per-page code");
      return field_load(op, idx);
    case OpKind::kPageIndex:  // scoreable page i of the row (every score kernel's page loop)
      if (ctx_ != Context::kPage) unsupported(op, "page_index() is read outside per-page code");
      return "((float)(a.row_first[row] + i))";
    case OpKind::kRowPages:  // the row's pages, the partial last one included
      return str_cat("((float)((a.row_num_tokens[row] + ", geometry_.P - 1, ") / ", geometry_.P,
                     "))");
    case OpKind::kTranspose:
    case OpKind::kReshape:
    case OpKind::kSlice:
      return value(op.operands[0], remap_index(op, idx));
    case OpKind::kSoftmax: {  // over N: the row's max and sum are in shared memory
      const Storage& s = kernel_storage_.at(id);
      const std::string o = str(flat(id, idx));
      const std::string x = value(op.operands[0], idx);
      return bind("expf(" + x + " - " + s.name + "[" + o + "]) / " + s.name2 + "[" + o + "]",
                  "v" + std::to_string(id) + "@" + index_key(idx));
    }
    default:
      break;
  }
  if (!is_elementwise(op.kind)) unsupported(op, "no rule for this op in this position");
  const std::string key = "v" + std::to_string(id) + "@" + index_key(idx);
  for (size_t b = stack_.size(); b-- > 0;) {
    auto it = stack_[b].cse.find(key);
    if (it != stack_[b].cse.end()) return it->second;
  }
  std::vector<std::string> x;
  for (size_t k = 0; k < op.operands.size(); ++k)
    x.push_back(value(op.operands[k], operand_index(op, k, idx)));
  return bind(elementwise_expr(op.kind, x), key);
}

// ---- reductions ------------------------------------------------------------------------------

std::vector<std::string> Generator::reduce_loops(const ReduceSpec& in_spec, size_t tiles) {
  // Reduced axes of extent 1 need no loop: their index is 0.
  ReduceSpec spec = in_spec;
  std::vector<size_t> kept_axes;
  spec.extents.clear();
  for (size_t k = 0; k < in_spec.extents.size(); ++k)
    if (in_spec.extents[k] != 1) {
      kept_axes.push_back(k);
      spec.extents.push_back(in_spec.extents[k]);
    }
  if (kept_axes.size() != in_spec.extents.size()) {
    const size_t full = in_spec.extents.size();
    spec.body = [&in_spec, kept_axes, full](size_t t, const std::vector<Affine>& r) {
      std::vector<Affine> all(full, aff(0));
      for (size_t k = 0; k < kept_axes.size(); ++k) all[kept_axes[k]] = r[k];
      return in_spec.body(t, all);
    };
  }
  const std::vector<int64_t>& ext = spec.extents;
  const bool additive = spec.combine == Combine::kSum || spec.combine == Combine::kSumSq;
  const std::string init = additive                        ? "0.0f"
                           : spec.combine == Combine::kMax ? "-vx_inf()"
                                                           : "vx_inf()";
  const int64_t inner = ext.empty() ? 1 : ext.back();
  int64_t lanes = 1;  // source-unrolled iterations of the innermost reduced axis
  bool chunk_loop = false;
  // In the cooperative per-page kernel the group's lanes take interleaved 8-wide chunks.
  const bool lane_split = kernel_ == KernelKind::kScorePages && ctx_ == Context::kPage &&
                          lanes_ > 1 && !ext.empty() && inner % (8 * lanes_) == 0;
  if (lane_split) {
    lanes = 8;
    chunk_loop = true;
    ++lane_splits_;
  } else if (inner <= 8) {
    lanes = inner;
  } else {
    for (int64_t v : {8, 4, 2})
      if (inner % v == 0) {
        lanes = v;
        break;
      }
    chunk_loop = true;
  }
  const bool split = additive && lanes > 1 && static_cast<int64_t>(tiles) * lanes <= 16;
  const int64_t accs_per_tile = split ? lanes : 1;
  std::vector<std::string> acc(tiles * static_cast<size_t>(accs_per_tile));
  for (std::string& a : acc) {
    a = new_name("acc");
    line("float " + a + " = " + init + ";");
  }
  std::vector<Affine> r(ext.size(), aff(0));
  const size_t loops = ext.empty() ? 0 : ext.size() - 1;
  for (size_t k = 0; k < loops; ++k) {
    const std::string v = new_name("r");
    open("for (int " + v + " = 0; " + v + " < " + std::to_string(ext[k]) + "; ++" + v + ") {");
    vars_[v] = {top().level, 1};
    r[k] = aff_var(v);
  }
  Affine chunk_base = aff(0);
  if (chunk_loop) {
    const std::string v = new_name("c");
    // Unrolled (all its loads in flight at once) unless the code would grow too large.
    const int64_t step = lane_split ? lanes * lanes_ : lanes;
    const int64_t trips = inner / step;
    if (trips <= 16 && static_cast<int64_t>(tiles) * lanes * trips <= 1024 &&
        top().level <= page_level_)
      line("#pragma unroll");
    if (lane_split) {
      // Trip k covers chunk lane + k * L: a constant trip count, so the loop unrolls and all
      // of a lane's loads are in flight together.
      open("for (int " + v + " = 0; " + v + " < " + std::to_string(trips) + "; ++" + v + ") {");
      vars_[v] = {top().level, 1};
      vars_["lane"] = {0, 1};
      chunk_base = aff_var("lane") * lanes + aff_var(v) * step;
    } else {
      open("for (int " + v + " = 0; " + v + " < " + std::to_string(inner) + "; " + v +
           " += " + std::to_string(lanes) + ") {");
      vars_[v] = {top().level, static_cast<int>(lanes)};
      chunk_base = aff_var(v);
    }
  }
  for (int64_t j = 0; j < lanes; ++j) {
    if (!ext.empty()) r.back() = chunk_base + aff(j);
    for (size_t t = 0; t < tiles; ++t) {
      const std::string x = spec.body(t, r);
      const std::string& a =
          acc[t * static_cast<size_t>(accs_per_tile) + static_cast<size_t>(split ? j : 0)];
      switch (spec.combine) {
        case Combine::kSum:
          line(a + " += " + x + ";");
          break;
        case Combine::kSumSq:
          line(a + " += " + x + " * " + x + ";");
          break;
        case Combine::kMax:
          line(a + " = vx_max(" + a + ", " + x + ");");
          break;
        case Combine::kMin:
          line(a + " = vx_min(" + a + ", " + x + ");");
          break;
      }
    }
  }
  if (lane_split) {
    int64_t outer_trips = 1;
    for (size_t k = 0; k < loops; ++k) outer_trips *= ext[k];
    lane_loads_ +=
        static_cast<int64_t>(top().vectors.size()) * (inner / (lanes * lanes_)) * outer_trips;
  }
  if (chunk_loop) close();
  for (size_t k = 0; k < loops; ++k) close();
  std::vector<std::string> out;
  for (size_t t = 0; t < tiles; ++t) {
    std::vector<std::string> parts(acc.begin() + static_cast<long>(t * accs_per_tile),
                                   acc.begin() + static_cast<long>((t + 1) * accs_per_tile));
    while (parts.size() > 1) {  // pairwise, for a balanced sum
      std::vector<std::string> next;
      for (size_t i = 0; i + 1 < parts.size(); i += 2)
        next.push_back("(" + parts[i] + " + " + parts[i + 1] + ")");
      if (parts.size() % 2) next.push_back(parts.back());
      parts = std::move(next);
    }
    std::string e = parts[0];
    if (lane_split) {  // the group's partials, combined (the divisor and sqrt come after)
      const char* fn = additive                        ? "vx_lanes_sum"
                       : spec.combine == Combine::kMax ? "vx_lanes_max"
                                                       : "vx_lanes_min";
      const std::string g = new_name("grp");
      line(str_cat("const float ", g, " = ", fn, "<", lanes_, ">(", e, ", gmask);"));
      e = g;
    }
    if (spec.divisor != 1) e = "(" + e + " / " + float_literal(spec.divisor) + ")";
    if (spec.sqrt_result) e = "sqrtf(" + e + ")";
    const std::string name = new_name("red");
    line("const float " + name + " = " + e + ";");
    out.push_back(name);
  }
  return out;
}

// The reduction of op `id` at the output indices `outs` (all over the op's axes).
Generator::ReduceSpec Generator::reduce_spec(ValueId id, const std::vector<Index>& outs) {
  const Op& op = fn_->ops[static_cast<size_t>(id)];
  ReduceSpec spec;
  const ValueId x = op.operands[0];
  const ValueFacts& xf = fact(x);
  if (is_reduction(op.kind)) {
    spec.combine = op.kind == OpKind::kMax      ? Combine::kMax
                   : op.kind == OpKind::kMin    ? Combine::kMin
                   : op.kind == OpKind::kL2Norm ? Combine::kSumSq
                                                : Combine::kSum;
    int64_t n = 1;
    for (int a : op.axes) {
      if (xf.ext[static_cast<size_t>(a)] < 0) unsupported(op, "reduction over N in per-page code");
      spec.extents.push_back(xf.ext[static_cast<size_t>(a)]);
      n *= xf.ext[static_cast<size_t>(a)];
    }
    if (op.kind == OpKind::kMean) spec.divisor = static_cast<double>(n);
    spec.sqrt_result = op.kind == OpKind::kL2Norm;
    const std::vector<int> axes = op.axes;
    const bool keep = op.keepdims;
    spec.body = [this, x, axes, keep, outs, &xf](size_t t, const std::vector<Affine>& r) {
      const Index& o = outs[t];
      Index xi(xf.ext.size(), aff(0));
      size_t j = 0, kept = 0;
      for (size_t a = 0; a < xf.ext.size(); ++a) {
        if (j < axes.size() && axes[j] == static_cast<int>(a)) {
          xi[a] = r[j++];
          if (keep) ++kept;
        } else {
          xi[a] = o[kept++];
        }
      }
      return value(x, xi);
    };
    return spec;
  }
  if (is_fold(op.kind)) {
    spec.combine = op.kind == OpKind::kFoldMax   ? Combine::kMax
                   : op.kind == OpKind::kFoldMin ? Combine::kMin
                                                 : Combine::kSum;
    spec.extents = {op.group};
    if (op.kind == OpKind::kFoldMean) spec.divisor = static_cast<double>(op.group);
    const size_t axis = static_cast<size_t>(op.axis);
    const int64_t group = op.group;
    spec.body = [this, x, axis, group, outs](size_t t, const std::vector<Affine>& r) {
      Index xi = outs[t];
      xi[axis] = xi[axis] * group + r[0];
      return value(x, xi);
    };
    return spec;
  }
  VORTEX_ASSERT(op.kind == OpKind::kMatMul);
  const ValueId b = op.operands[1];
  const ValueFacts& bf = fact(b);
  const size_t ra = xf.ext.size(), rb = bf.ext.size(), ro = fact(id).ext.size();
  const bool a1 = ra == 1, b1 = rb == 1;
  const int64_t k = xf.ext.back();
  spec.combine = Combine::kSum;
  spec.extents = {k};
  spec.body = [this, x, b, a1, b1, ra, rb, ro, outs](size_t t, const std::vector<Affine>& r) {
    const Index& o = outs[t];
    const size_t batch = ro - (a1 ? 0 : 1) - (b1 ? 0 : 1);
    const ValueFacts& af = fact(x);
    const ValueFacts& bff = fact(b);
    Index ai(ra, aff(0)), bi(rb, aff(0));
    if (a1) {
      ai[0] = r[0];
    } else {
      const size_t abatch = ra - 2;
      for (size_t i = 0; i < abatch; ++i) ai[i] = af.ext[i] == 1 ? aff(0) : o[batch - abatch + i];
      ai[ra - 2] = o[batch];
      ai[ra - 1] = r[0];
    }
    if (b1) {
      bi[0] = r[0];
    } else {
      const size_t bbatch = rb - 2;
      for (size_t i = 0; i < bbatch; ++i) bi[i] = bff.ext[i] == 1 ? aff(0) : o[batch - bbatch + i];
      bi[rb - 2] = r[0];
      bi[rb - 1] = o[ro - 1];
    }
    const std::string av = value(x, ai), bv = value(b, bi);
    return bind("(" + av + " * " + bv + ")", "mm" + av + "*" + bv);
  };
  return spec;
}

// The max and the sum of exp(x - max) of softmax op `id` (over a non-N axis) along `axis` at
// out_base (whose entry for the axis is ignored).
void Generator::softmax_row(ValueId id, const Index& out_base, int axis, std::string* max_out,
                            std::string* sum_out) {
  const Op& op = fn_->ops[static_cast<size_t>(id)];
  const ValueId x = op.operands[0];
  const int64_t len = fact(x).ext[static_cast<size_t>(axis)];
  auto at = [&](const Affine& j) {
    Index i = out_base;
    i[static_cast<size_t>(axis)] = j;
    return i;
  };
  ReduceSpec mx;
  mx.combine = Combine::kMax;
  mx.extents = {len};
  mx.body = [&](size_t, const std::vector<Affine>& r) { return value(x, at(r[0])); };
  const std::string m = reduce_loops(mx, 1)[0];
  ReduceSpec sm;
  sm.combine = Combine::kSum;
  sm.extents = {len};
  sm.body = [&](size_t, const std::vector<Affine>& r) {
    return bind("expf(" + value(x, at(r[0])) + " - " + m + ")", "sx" + index_key(at(r[0])) + m);
  };
  const std::string z = reduce_loops(sm, 1)[0];
  *max_out = m;
  *sum_out = z;
}

// ---- materializations ------------------------------------------------------------------------

// Computes element idx of a materialized value into `target` (block contexts).
void Generator::materialize_block_element(ValueId id, const std::string& target, const Index& idx) {
  const Op& op = fn_->ops[static_cast<size_t>(id)];
  OriginGuard origin(*this, op.loc);
  if (is_reduce_like(op.kind)) {
    const std::string r = reduce_loops(reduce_spec(id, {idx}), 1)[0];
    line(target + " = " + r + ";");
  } else if (op.kind == OpKind::kSoftmax) {
    std::string m, z;
    softmax_row(id, idx, op.axis, &m, &z);
    line(target + " = expf(" + value(op.operands[0], idx) + " - " + m + ") / " + z + ";");
  } else if (op.kind == OpKind::kInput) {
    VORTEX_ASSERT(false);
  } else {
    line(target + " = " + compute(id, idx) + ";");
  }
}

// A value computed once per block into shared memory (summarize values, row-invariant values,
// row values), in the section that runs before the code being generated.
void Generator::request_block_shared(ValueId id, Context ctx) {
  if (kernel_storage_.count(id)) return;
  const Op& op = fn_->ops[static_cast<size_t>(id)];
  const ValueFacts& f = fact(id);
  Storage s;
  s.name = "s_v" + std::to_string(id);
  if (op.kind == OpKind::kInput) {
    s.name = op.input == 0 ? (fn_->phase == Phase::kScore ? "s_q" : "s_k") : "s_v";
    if (fn_->phase == Phase::kSummarize) {
      s.kind = Storage::kSharedBf16;
      declare_shared(s.name, f.numel, true);
      const std::string src = op.input == 0 ? "a.k" : "a.v";
      prologue_ += str_cat("  for (int e = threadIdx.x; e < ", f.numel, "; e += blockDim.x) ",
                           s.name, "[e] = ", src, "[kv_base + e];\n  __syncthreads();\n");
      kernel_storage_[id] = s;
      return;
    }
    declare_shared(s.name, f.numel);
    prologue_ += str_cat("    for (int e = threadIdx.x; e < ", f.numel, "; e += blockDim.x) ",
                         s.name, "[e] = vx_bf2f(qp[e]);\n    __syncthreads();\n");
    kernel_storage_[id] = s;
    return;
  }
  declare_shared(s.name, f.numel);
  const Context saved_ctx = ctx_;
  auto saved_page = std::move(page_storage_);
  page_storage_.clear();
  ctx_ = ctx;
  const int indent = ctx == Context::kPrologue && kernel_ == KernelKind::kScorePages ? 2 : 1;
  std::string text = in_new_stack(0, indent, [&] {
    OriginGuard origin(*this, op.loc);
    const std::string e = new_name("e");
    open(str_cat("for (int ", e, " = threadIdx.x; ", e, " < ", f.numel, "; ", e,
                 " += blockDim.x) {"));
    materialize_block_element(id, s.name + "[" + e + "]", unflatten(id, e));
    close();
    line("__syncthreads();");
  });
  ctx_ = saved_ctx;
  page_storage_ = std::move(saved_page);
  std::string& section = ctx == Context::kRowBlock ? passes_ : prologue_;
  section += text;
  kernel_storage_[id] = s;
}

// A per-page value computed once at the head of the current per-page scope, into a per-thread
// array: the reduced axes outermost, a tile of outputs innermost.
void Generator::request_page_values(ValueId id) {
  if (page_storage_.count(id)) return;
  const Op& op = fn_->ops[static_cast<size_t>(id)];
  const ValueFacts& f = fact(id);
  if (!page_head_) unsupported(op, "a per-page value outside per-page code");
  if (f.numel > kMaxPerThreadFloats)
    unsupported(op, str_cat("a per-page intermediate of ", f.numel, " values (at most ",
                            kMaxPerThreadFloats, " per page are supported)"));
  Storage s;
  s.kind = Storage::kPerThread;
  s.name = "pv" + std::to_string(id);
  std::string text = in_new_stack(page_level_, stack_.front().indent, [&] {
    OriginGuard origin(*this, op.loc);
    line("float " + s.name + "[" + std::to_string(f.numel) + "];");
    // Output axes: a tile of up to kMaxTile elements (leading axes first), loops over the rest.
    std::vector<size_t> axes;
    for (size_t a = 0; a < f.ext.size(); ++a)
      if (f.ext[a] > 1) axes.push_back(a);
    std::vector<size_t> tile, outer;
    int64_t tile_size = 1;
    int softmax_axis = op.kind == OpKind::kSoftmax ? op.axis : -1;
    for (size_t a : axes) {
      if (static_cast<int>(a) != softmax_axis && tile_size * f.ext[a] <= kMaxTile &&
          outer.empty()) {
        tile.push_back(a);
        tile_size *= f.ext[a];
      } else if (static_cast<int>(a) != softmax_axis) {
        outer.push_back(a);
      }
    }
    Index base(f.ext.size(), aff(0));
    for (size_t a : outer) {
      const std::string v = new_name("o");
      open("for (int " + v + " = 0; " + v + " < " + std::to_string(f.ext[a]) + "; ++" + v + ") {");
      vars_[v] = {top().level, 1};
      base[a] = aff_var(v);
    }
    std::vector<Index> outs;
    for (int64_t t = 0; t < tile_size; ++t) {
      Index o = base;
      int64_t rem = t;
      for (size_t i = tile.size(); i-- > 0;) {
        o[tile[i]] = aff(rem % f.ext[tile[i]]);
        rem /= f.ext[tile[i]];
      }
      outs.push_back(o);
    }
    if (is_reduce_like(op.kind)) {
      std::vector<std::string> r = reduce_loops(reduce_spec(id, outs), outs.size());
      for (size_t t = 0; t < outs.size(); ++t)
        line(s.name + "[" + str(flat(id, outs[t])) + "] = " + r[t] + ";");
    } else {
      VORTEX_ASSERT(op.kind == OpKind::kSoftmax);
      const int64_t len = f.ext[static_cast<size_t>(op.axis)];
      for (const Index& o : outs) {
        std::string m, z;
        softmax_row(id, o, op.axis, &m, &z);
        for (int64_t j = 0; j < len; ++j) {
          Index e = o;
          e[static_cast<size_t>(op.axis)] = aff(j);
          line(s.name + "[" + str(flat(id, e)) + "] = expf(" + value(op.operands[0], e) + " - " +
               m + ") / " + z + ";");
        }
      }
    }
    for (size_t i = 0; i < outer.size(); ++i) close();
  });
  *page_head_ += text;
  page_storage_[id] = s;
}

// State values of the page, loaded at the head of the per-page scope (before any store).
void Generator::request_state(ValueId id) {
  if (page_storage_.count(id)) return;
  const Op& op = fn_->ops[static_cast<size_t>(id)];
  if (!page_head_) unsupported(op, "State read outside per-page code");
  const ValueFacts& f = fact(id);
  if (f.numel > kMaxPerThreadFloats)
    unsupported(op, str_cat("a State of ", f.numel, " values per page (at most ",
                            kMaxPerThreadFloats, " are supported)"));
  Storage s;
  s.kind = Storage::kPerThread;
  s.name = "sv" + std::to_string(id);
  const int64_t off = field_offset_[static_cast<size_t>(op.field)];
  const std::string pad(static_cast<size_t>(stack_.front().indent) * 2, ' ');
  std::string text = kOriginStart + std::to_string(op.loc.line) + kOriginEnd + pad + "float " +
                     s.name + "[" + std::to_string(f.numel) + "];\n";
  text += str_cat(pad, "for (int e = 0; e < ", f.numel, "; ++e) ", s.name, "[e] = st[", off,
                  " + e];\n");
  *page_head_ += text;
  page_storage_[id] = s;
}

// A reduction or softmax over N: passes over the row's pages with block-wide reductions, in
// the passes section of the row kernel.
void Generator::request_cross(ValueId id) {
  if (kernel_storage_.count(id)) return;
  const Op& op = fn_->ops[static_cast<size_t>(id)];
  if (kernel_ != KernelKind::kScoreRows) unsupported(op, "a cross-page op outside the row kernel");
  const ValueId x = op.operands[0];
  const ValueFacts& xf = fact(x);
  const bool softmax = op.kind == OpKind::kSoftmax;
  // Output elements o (over the non-reduced axes of x) and, per o, the reduced axes other than N.
  std::vector<size_t> out_axes, inner_axes;
  for (size_t a = 1; a < xf.ext.size(); ++a) {
    const bool reduced =
        !softmax && std::find(op.axes.begin(), op.axes.end(), static_cast<int>(a)) != op.axes.end();
    (reduced ? inner_axes : out_axes).push_back(a);
  }
  int64_t outs = 1, inner_count = 1;
  for (size_t a : out_axes) outs *= xf.ext[a];
  for (size_t a : inner_axes) inner_count *= xf.ext[a];
  if (outs > kMaxRowPartials)
    unsupported(op, str_cat("a reduction over N with ", outs, " outputs per row (at most ",
                            kMaxRowPartials, " are supported)"));
  // x index for output o and inner indices r.
  auto x_index = [&](int64_t o, const std::vector<Affine>& r) {
    Index xi(xf.ext.size(), aff(0));
    int64_t rem = o;
    for (size_t i = out_axes.size(); i-- > 0;) {
      xi[out_axes[i]] = aff(rem % xf.ext[out_axes[i]]);
      rem /= xf.ext[out_axes[i]];
    }
    for (size_t i = 0; i < inner_axes.size(); ++i) xi[inner_axes[i]] = r[i];
    return xi;
  };
  Storage s;
  s.kind = softmax ? Storage::kRowSoftmax : Storage::kShared;
  s.name = "s_r" + std::to_string(id);
  declare_shared(s.name, outs);
  if (softmax) {
    s.name2 = "s_z" + std::to_string(id);
    declare_shared(s.name2, outs);
  }
  Combine combine = Combine::kSum;
  if (!softmax)
    combine = op.kind == OpKind::kMax      ? Combine::kMax
              : op.kind == OpKind::kMin    ? Combine::kMin
              : op.kind == OpKind::kL2Norm ? Combine::kSumSq
                                           : Combine::kSum;
  // One pass: partial[o] over this thread's pages of f(x at o), then a block reduction.
  auto pass = [&](Combine partial_combine, const std::string& target,
                  const std::function<std::string(int64_t o, const std::string& xv)>& per_page,
                  const std::string& finalize_fmt) {
    const Context saved_ctx = ctx_;
    auto saved_page = std::move(page_storage_);
    std::string* saved_head = page_head_;
    const int saved_level = page_level_;
    std::string head;
    std::string text = in_new_stack(0, 1, [&] {
      OriginGuard origin(*this, op.loc);
      const bool additive = partial_combine == Combine::kSum || partial_combine == Combine::kSumSq;
      const std::string init = additive                           ? "0.0f"
                               : partial_combine == Combine::kMax ? "-vx_inf()"
                                                                  : "vx_inf()";
      std::vector<std::string> part(static_cast<size_t>(outs));
      for (std::string& p : part) {
        p = new_name("p");
        line("float " + p + " = " + init + ";");
      }
      open("for (int i = threadIdx.x; i < count; i += blockDim.x) {");
      ctx_ = Context::kPage;
      page_storage_.clear();
      page_head_ = &head;
      open_page_scope();
      // Inner reductions (over non-N axes) for every o at once, else the values directly.
      std::vector<std::string> vals;
      if (!inner_axes.empty()) {
        ReduceSpec spec;
        spec.combine = combine == Combine::kMax     ? Combine::kMax
                       : combine == Combine::kMin   ? Combine::kMin
                       : combine == Combine::kSumSq ? Combine::kSumSq
                                                    : Combine::kSum;
        for (size_t a : inner_axes) spec.extents.push_back(xf.ext[a]);
        spec.body = [&](size_t t, const std::vector<Affine>& r) {
          return value(x, x_index(static_cast<int64_t>(t), r));
        };
        vals = reduce_loops(spec, static_cast<size_t>(outs));
      } else {
        for (int64_t o = 0; o < outs; ++o) vals.push_back(value(x, x_index(o, {})));
      }
      for (int64_t o = 0; o < outs; ++o) {
        const std::string v = per_page(o, vals[static_cast<size_t>(o)]);
        const std::string& p = part[static_cast<size_t>(o)];
        switch (partial_combine) {
          case Combine::kSum:
            line(p + " += " + v + ";");
            break;
          case Combine::kSumSq:
            line(p + " += " + v + " * " + v + ";");
            break;
          case Combine::kMax:
            line(p + " = vx_max(" + p + ", " + v + ");");
            break;
          case Combine::kMin:
            line(p + " = vx_min(" + p + ", " + v + ");");
            break;
        }
      }
      close_page_scope(head);
      close();
      ctx_ = saved_ctx;
      const char* block = partial_combine == Combine::kMax   ? "vx_block_max"
                          : partial_combine == Combine::kMin ? "vx_block_min"
                                                             : "vx_block_sum";
      for (int64_t o = 0; o < outs; ++o) {
        const std::string r = new_name("b");
        line("const float " + r + " = " + block + "(" + part[static_cast<size_t>(o)] + ", s_red);");
        std::string fin = finalize_fmt;
        for (size_t pos; (pos = fin.find('@')) != std::string::npos;) fin.replace(pos, 1, r);
        line("if (threadIdx.x == 0) " + target + "[" + std::to_string(o) + "] = " + fin + ";");
      }
      line("__syncthreads();");
    });
    page_storage_ = std::move(saved_page);
    page_head_ = saved_head;
    page_level_ = saved_level;
    passes_ += "  {\n" + text + "  }\n";
  };
  if (softmax) {
    pass(
        Combine::kMax, s.name, [](int64_t, const std::string& v) { return v; }, "@");
    kernel_storage_[id] = s;  // the max is read by the second pass
    pass(
        Combine::kSum, s.name2,
        [&](int64_t o, const std::string& v) {
          return bind("expf(" + v + " - " + s.name + "[" + std::to_string(o) + "])",
                      "sm" + v + std::to_string(o));
        },
        "@");
    return;
  }
  std::string fin = "@";
  if (op.kind == OpKind::kMean)
    fin = str_cat("@ / ((float)count * ", float_literal(static_cast<double>(inner_count)), ")");
  if (op.kind == OpKind::kL2Norm) fin = "sqrtf(@)";
  // With inner axes each page contributes its inner reduction, already squared for l2norm.
  const Combine partial =
      combine == Combine::kSumSq && !inner_axes.empty() ? Combine::kSum : combine;
  pass(
      partial, s.name, [](int64_t, const std::string& v) { return v; }, fin);
  kernel_storage_[id] = s;
}

// ---- kernels ---------------------------------------------------------------------------------

void Generator::for_each_element(ValueId id, const std::function<void(const Index&)>& fn) {
  const ValueFacts& f = fact(id);
  if (f.numel <= kMaxUnrolledStore) {
    for (int64_t e = 0; e < f.numel; ++e) {
      Index idx(f.ext.size(), aff(0));
      int64_t rem = e;
      for (size_t a = f.ext.size(); a-- > 0;) {
        if (f.ext[a] <= 1) continue;
        idx[a] = aff(rem % f.ext[a]);
        rem /= f.ext[a];
      }
      fn(idx);
    }
    return;
  }
  Index idx(f.ext.size(), aff(0));
  size_t opened = 0;
  for (size_t a = 0; a < f.ext.size(); ++a) {
    if (f.ext[a] <= 1) continue;
    const std::string v = new_name("o");
    open("for (int " + v + " = 0; " + v + " < " + std::to_string(f.ext[a]) + "; ++" + v + ") {");
    vars_[v] = {top().level, 1};
    idx[a] = aff_var(v);
    ++opened;
  }
  fn(idx);
  for (size_t i = 0; i < opened; ++i) close();
}

// Declares the page's pointers (i is the scoreable page; row and h are known) and opens the
// per-page scope, whose hoisted loads then come after the declarations.
void Generator::open_page_scope() {
  OriginGuard generated(*this, SourceLoc{});
  line(fused_select_ ? "const int page = vx_select_row_page(sr, s_sel, i);"
                     : "const int page = a.pages[page_base + i];");
  line("const long long block = (long long)page * a.num_kv_heads + h;  // State: page-major");
  line("const long long fblock = (long long)h * a.num_pages + page;  // Fields: head-major");
  line("const vx_bf16* fld = a.fields + fblock * a.field_stride;");
  line("const unsigned char* fld8 = (const unsigned char*)fld;");
  for (int j = 0; j < num_scales_; ++j) {
    line(str_cat("const float fsc", j, " = a.field_scales[fblock * ", num_scales_, " + ", j, "];"));
    line(str_cat("const float fbias", j, " = fsc", j, " * 8388736.0f;  // (2^23 + 128) * scale"));
  }
  line("float* st = a.state + block * a.state_stride;");
  line(
      "float* ps = a.page_scratch + ((long long)row * a.max_pages + i) * "
      "VX_PAGE_SCRATCH_FLOATS;");
  open("{");
  page_level_ = top().level;
}

// Puts the per-page materializations at the head of the scope and closes it.
void Generator::close_page_scope(std::string& head) {
  top().body.insert(0, head);
  close();
}

// The kernel's outputs in a per-page scope: page_scratch values, or scores and State stores.
void Generator::emit_outputs(bool to_scratch) {
  const Function& fn = rewritten_.score;
  if (to_scratch) {
    int64_t off = 0;  // the row kernel's layout: scratch values in the order it asked for them
    for (ValueId id : scratch_values_) {
      for_each_element(id, [&](const Index& idx) {
        const std::string v = value(id, idx);
        line(store_guard_ + "ps[" + str(flat(id, idx) + aff(off)) + "] = " + v + ";");
      });
      off += fact(id).numel;
    }
    return;
  }
  struct Write {
    std::string target, value;
    SourceLoc loc;
    bool score = false;  // the page's score (the fused kernel also keeps it as a key)
  };
  std::vector<Write> writes;  // stores after all values exist
  if (lanes_ > 1) {
    // Every lane of the group has read the page's State (at the head of the scope) before the
    // group's lane 0 overwrites it.
    bool stores_state = false;
    for (const Op& op : fn.ops) stores_state = stores_state || op.kind == OpKind::kStoreField;
    if (stores_state) line("__syncwarp(gmask);");
  }
  {
    const ValueId r = fn.result;
    OriginGuard origin(*this, fn.ops[static_cast<size_t>(r)].loc);
    Index idx(fact(r).ext.size(), aff(0));
    writes.push_back({"a.scores[(long long)row * a.max_pages + i]", value(r, idx), origin_, true});
  }
  for (const Op& op : fn.ops) {
    if (op.kind != OpKind::kStoreField) continue;
    const ValueId v = op.operands[0];
    const int64_t off = field_offset_[static_cast<size_t>(op.field)];
    OriginGuard origin(*this, op.loc);
    for_each_element(v, [&](const Index& idx) {
      const std::string x = value(v, idx);
      if (fact(v).numel <= kMaxUnrolledStore)
        writes.push_back({"st[" + str(flat(v, idx) + aff(off)) + "]", x, op.loc});
      else
        line(store_guard_ + "st[" + str(flat(v, idx) + aff(off)) + "] = " + x + ";");
    });
  }
  for (const Write& w : writes) {
    if (w.score && fused_select_) {
      // The score also goes to the row's selection, as its key (rows of up to VX_SELECT_CACHED
      // scoreable pages; longer rows are selected from the scores in global memory).
      line(str_cat(store_guard_, "{ const float sc = ", w.value, "; ", w.target,
                   " = sc; if (i < VX_SELECT_CACHED) s_sel.keys[i] = "
                   "vx_score_key(__float_as_uint(sc)); }"),
           &w.loc);
    } else {
      line(store_guard_ + w.target + " = " + w.value + ";", &w.loc);
    }
  }
}

// Starts generating a kernel of `kind` for `fn`: forgets what the previous kernel stored,
// declared and materialized.
void Generator::begin_kernel(const Function* fn, KernelKind kind, Context ctx) {
  fn_ = fn;
  kernel_ = kind;
  ctx_ = ctx;
  kernel_storage_.clear();
  page_storage_.clear();
  shared_decls_.clear();
  prologue_.clear();
  passes_.clear();
  shared_bytes_ = 0;
}

// Throws when the kernel being generated needs more shared memory than a block may have.
void Generator::check_shared_bytes(const char* what) const {
  if (shared_bytes_ > kMaxSharedBytes)
    throw CudaCodegenError(
        program_.filename, fn_->loc,
        str_cat("the CUDA generator needs ", shared_bytes_, " bytes of shared memory for ", what,
                " (at most ", kMaxSharedBytes, ")"));
}

// The declaration of qp, the row's G query heads in q (score kernels; needs row and h).
std::string Generator::q_pointer() const {
  return str_cat("const vx_bf16* qp = a.q + ((long long)a.q_rows[row / a.num_kv_heads] * ",
                 "a.num_q_heads + (long long)h * ", geometry_.G, ") * ", geometry_.D, ";");
}

std::string Generator::gen_summarize(const std::string& name) {
  begin_kernel(&rewritten_.summarize, KernelKind::kSummarize, Context::kSummarize);
  page_head_ = nullptr;
  if (num_scales_ > 0) declare_shared("s_int8_red", 32);
  std::string body = in_new_stack(0, 1, [&] {
    line("const long long fblock = (long long)h * a.num_pages + page;  // head-major");
    line(
        "vx_bf16* fo = a.fields + (long long)layer * a.field_layer_stride + fblock * "
        "a.field_stride;");
    for (const Op& op : fn_->ops) {
      if (op.kind != OpKind::kStoreField) continue;
      OriginGuard origin(*this, op.loc);
      const ValueId v = op.operands[0];
      const ValueFacts& f = fact(v);
      const int64_t off = field_offset_[static_cast<size_t>(op.field)];
      const int scale = field_scale_[static_cast<size_t>(op.field)];
      // fn(e, x): the statement for element e (a loop variable) of value x.
      auto for_elements =
          [&](const std::function<void(const std::string&, const std::string&)>& fn) {
            const std::string e = new_name("e");
            open(str_cat("for (int ", e, " = threadIdx.x; ", e, " < ", f.numel, "; ", e,
                         " += blockDim.x) {"));
            fn(e, value(v, unflatten(v, e)));
            close();
          };
      if (scale < 0) {
        for_elements([&](const std::string& e, const std::string& x) {
          line(str_cat("fo[", off, " + ", e, "] = vx_f2bf(", x, ");"));
        });
        continue;
      }
      // int8: the block's largest magnitude sets a power-of-two scale (NaN if a value is NaN);
      // each value is stored as round(x / scale) + 128 (flow/field_storage.h).
      const std::string m = new_name("amax"), se = new_name("se");
      line(str_cat("float ", m, " = 0.0f;"));
      for_elements([&](const std::string&, const std::string& x) {
        line(str_cat(m, " = vx_max(", m, ", fabsf(", x, "));"));
      });
      line(str_cat(m, " = vx_block_max(", m, ", s_int8_red);"));
      line(str_cat("const int ", se, " = vx_int8_scale_exponent(", m, ");"));
      const std::string codes = new_name("i8");
      line(str_cat("unsigned char* ", codes, " = (unsigned char*)(fo + ", off, ");"));
      for_elements([&](const std::string& e, const std::string& x) {
        line(str_cat(codes, "[", e, "] = (unsigned char)vx_int8_code((", x, ") * ldexpf(1.0f, -",
                     se, "));"));
      });
      line(
          str_cat("if (threadIdx.x == 0) a.field_scales[(long long)layer * a.scale_layer_stride + "
                  "fblock * ",
                  num_scales_, " + ", scale, "] = ", m, " != ", m, " ? vx_nan() : ldexpf(1.0f, ",
                  se, ");"));
    }
  });
  check_shared_bytes("summarize");
  std::string k;
  k += str_cat("extern \"C\" __global__ void __launch_bounds__(", kCudaSummarizeThreads, ") ", name,
               "(const CudaSummarizeArgs a) {\n");
  k += shared_decls_;
  k += "  if ((int)blockIdx.x >= *a.num_items) return;\n";
  k += "  const int page = a.items[blockIdx.x];\n";
  k += "  const int h = blockIdx.y;\n";
  k += "  const int layer = a.layers ? a.layers[blockIdx.z] : (int)blockIdx.z;\n";
  k += "  const long long kv_base = (long long)layer * a.kv_layer_stride + (long long)page * "
       "a.page_stride + (long long)h * a.head_stride;\n";
  k += "  (void)kv_base;\n";
  k += prologue_;
  k += "  __syncthreads();\n";
  k += passes_;
  k += body;
  k += "}\n";
  return k;
}

// The per-page scope of a per-page kernel (its shared declarations and prologue are left in
// shared_decls_ and prologue_). lanes > 1: the cooperative form, `lanes` threads per page
// (lane_splits_ then counts the reductions split over them).
std::string Generator::page_kernel_body(bool write_outputs, int lanes) {
  begin_kernel(&rewritten_.score, KernelKind::kScorePages, Context::kPage);
  lanes_ = lanes;
  lane_splits_ = 0;
  lane_loads_ = 0;
  store_guard_ = lanes > 1 ? "if (lane == 0) " : "";
  std::string head;
  page_head_ = &head;
  std::string body = in_new_stack(1, 3, [&] {
    open_page_scope();
    emit_outputs(!write_outputs);
    close_page_scope(head);
  });
  page_head_ = nullptr;
  lanes_ = 1;
  store_guard_.clear();
  return body;
}

// The group of `lanes` adjacent lanes that shares a page, and its shuffle mask.
std::string Generator::lane_group_decls(int lanes) const {
  if (lanes <= 1) return "";
  std::string k;
  k += str_cat("  const int lane = (int)threadIdx.x & ", lanes - 1, ";\n");
  k += str_cat("  const unsigned gmask = 0xffffffffu >> ", 32 - lanes, " << ((int)threadIdx.x & ",
               32 - lanes, ");\n");
  k += "  (void)lane; (void)gmask;\n";
  return k;
}

// The per-page kernel: outputs are the scratch values (before a row kernel) or the scores and
// State stores.
std::string Generator::gen_page_kernel(const std::string& name, bool write_outputs, int lanes) {
  const std::string body = page_kernel_body(write_outputs, lanes);
  check_shared_bytes("score");
  std::string k;
  k += str_cat("extern \"C\" __global__ void __launch_bounds__(", kCudaScorePageThreads, ") ", name,
               "(const CudaScoreArgs a) {\n");
  k += shared_decls_;
  k += lane_group_decls(lanes);
  k += "  const int num_items = *a.num_items;\n";
  k += "  int prologue_row = -1;\n";
  k += "  for (int it = blockIdx.x; it < num_items; it += gridDim.x) {\n";
  k += "    const int row = a.item_row[it];\n";
  k += "    const int count = a.row_count[row];\n";
  k += "    const int h = row % a.num_kv_heads;\n";
  k += "    const int page_base = a.row_page_offset[row] + a.row_first[row];\n";
  k += "    (void)count; (void)h; (void)page_base;\n";
  if (!prologue_.empty()) {
    k += "    if (row != prologue_row) {  // row-invariant values, once per row\n";
    k += "      __syncthreads();\n";
    k += str_cat("      ", q_pointer(), "\n");
    k += "      (void)qp;\n";
    k += prologue_;
    k += "      prologue_row = row;\n";
    k += "    }\n";
  }
  if (lanes > 1) {
    // The group's pages of the item: i, i + groups, ... (the same for every lane of a group, so
    // its shuffles see all of its lanes).
    k += str_cat("    const int end = min(a.item_begin[it] + ", kCudaScorePageThreads,
                 ", count);\n");
    k += str_cat("    for (int i = a.item_begin[it] + (int)threadIdx.x / ", lanes,
                 "; i < end; i += ", kCudaScorePageThreads / lanes, ") {\n");
  } else {
    k += "    const int i = a.item_begin[it] + (int)threadIdx.x;\n";
    k += "    if (i < count) {\n";
  }
  k += body;
  k += "    }\n";
  k += "  }\n";
  k += "}\n";
  return k;
}

// The fused score-and-select kernel (cuda_flow_abi.h): one block per row runs the per-page
// kernel's scope over all of the row's scoreable pages, their physical numbers read from the
// selection's shared-memory cache, then selects with kernels/cuda/select_row.cuh. Returns ""
// when the kernel's shared memory would not fit.
std::string Generator::gen_score_select_kernel(const std::string& name, int lanes) {
  fused_select_ = true;
  const std::string body = page_kernel_body(true, lanes);
  fused_select_ = false;
  if (shared_bytes_ + kSelectSharedBytes > kMaxSharedBytes) return "";
  const int groups = kCudaScoreSelectThreads / lanes;
  std::string k;
  k += str_cat("extern \"C\" __global__ void __launch_bounds__(", kCudaScoreSelectThreads, ", 2) ",
               name, "(const CudaScoreArgs a) {\n");
  k += shared_decls_;
  k += "  __shared__ VxSelectShared s_sel;\n";
  k += lane_group_decls(lanes);
  k += "  const int row = blockIdx.x;\n";
  k += "  if (row >= a.num_rows) return;\n";
  k += "  const VxSelectRow sr = vx_select_row_plan(row, a.page_size, a.max_pages, "
       "a.row_page_offset, a.pages, a.row_num_tokens, a.row_first, a.row_count, a.row_k, "
       "a.row_recent_begin, a.out_pages);\n";
  k += "  const int count = sr.count;\n";
  k += "  const int h = row % a.num_kv_heads;\n";
  k += "  (void)count; (void)h;\n";
  if (!prologue_.empty()) {
    // Row-invariant values first: their reads overlap the plan's.
    k += "  {\n";
    k += str_cat("    ", q_pointer(), "\n");
    k += "    (void)qp;\n";
    k += prologue_;
    k += "  }\n";
  }
  k += "  if (!vx_select_row_begin(sr, s_sel, a.page_size, a.out_num_tokens + row)) return;\n";
  k += "  __syncthreads();\n";
  k += str_cat("  for (int i = (int)threadIdx.x / ", lanes, "; i < count; i += ", groups, ") {\n");
  k += body;
  k += "  }\n";
  k += "  __syncthreads();\n";
  k += "  vx_select_row_finish(sr, s_sel, a.scores + (long long)row * a.max_pages);\n";
  k += "}\n";
  return k;
}

// The largest group size the options leave to the generator: 16-byte chunks of D spread over up
// to 8 lanes (a 128-byte row per load instruction of a group for D >= 64).
int Generator::auto_lanes() const {
  for (int l : {8, 4, 2})
    if (geometry_.D % (8 * l) == 0) return l;
  return 1;
}

// Generates the per-page kernel, cooperative where the options and the program allow, and
// appends it to `kernels`. The automatic choice halves the group (from auto_lanes()) until each
// lane has at least 4 field loads per page in flight: on an H100 (qwen3-1.7b, D = 128, 1024
// pages per row) block_topk's one centroid scored fastest with 4 lanes, quest's two fields with
// 8 (2 lanes: slower for both).
CudaScoreKernel Generator::add_page_kernel(const std::string& name, bool write_outputs,
                                           std::string& kernels) {
  const bool automatic = options_.score_lanes == 0;
  for (int lanes = automatic ? auto_lanes() : options_.score_lanes; lanes > 1; lanes /= 2) {
    std::string k = gen_page_kernel(name, write_outputs, lanes);
    if (lane_splits_ == 0) break;
    if (!automatic || lane_loads_ >= 4 || lanes == 2) {
      kernels += k + "\n";
      return {name, CudaKernelKind::kPerPage, lanes};
    }
  }
  kernels += gen_page_kernel(name, write_outputs, 1) + "\n";
  return {name, CudaKernelKind::kPerPage, 1};
}

std::string Generator::gen_row_kernel(const std::string& name) {
  begin_kernel(&rewritten_.score, KernelKind::kScoreRows, Context::kPage);
  scratch_values_.clear();
  scratch_floats_ = 0;
  declare_shared("s_red", 32);
  std::string head;
  page_head_ = &head;
  std::string final_pass = in_new_stack(0, 1, [&] {
    open("for (int i = threadIdx.x; i < count; i += blockDim.x) {");
    open_page_scope();
    emit_outputs(false);
    close_page_scope(head);
    close();
  });
  page_head_ = nullptr;
  check_shared_bytes("score's row kernel");
  std::string k;
  k += str_cat("extern \"C\" __global__ void __launch_bounds__(", kCudaScoreRowThreads, ") ", name,
               "(const CudaScoreArgs a) {\n");
  k += shared_decls_;
  k += "  const int row = blockIdx.x;\n";
  k += "  if (row >= a.num_rows) return;\n";
  k += "  const int count = a.row_count[row];\n";
  k += "  if (count <= 0) return;\n";
  k += "  const int h = row % a.num_kv_heads;\n";
  k += "  const int page_base = a.row_page_offset[row] + a.row_first[row];\n";
  k += "  (void)h; (void)page_base;\n";
  if (!prologue_.empty()) {
    k += str_cat("  ", q_pointer(), "\n");
    k += prologue_;
  }
  k += passes_;
  k += final_pass;
  k += "}\n";
  return k;
}

CudaFlowSource Generator::run() {
  if (geometry_.G <= 0 || geometry_.D <= 0 || geometry_.P <= 0)
    fail(program_.filename, ": the CUDA generator needs a concrete geometry, got G=", geometry_.G,
         " D=", geometry_.D, " P=", geometry_.P);
  // Field layout and geometry checks, exactly as the CPU executor binds them.
  CpuFlowExecutor reference(program_, geometry_);
  field_offset_.assign(program_.fields.size(), 0);
  field_floats_.assign(program_.fields.size(), 0);
  field_scale_.assign(program_.fields.size(), -1);
  // The GPU block of a (page, KV head): the Fields in declaration order, in 16-bit units; a bf16
  // Field takes one unit a value, an int8 Field one byte a value from a 16-byte boundary.
  CudaFlowSource out;
  int64_t units = 0;
  for (const FieldSlot& s : reference.field_slots()) {
    CudaFieldLayout layout;
    layout.field = s.field;
    if (s.int8) {
      units = (units + 7) / 8 * 8;
      layout.scale = num_scales_++;
    }
    layout.offset = static_cast<int32_t>(units);
    units += s.int8 ? (s.num_floats + 1) / 2 : s.num_floats;
    field_offset_[static_cast<size_t>(s.field)] = layout.offset;
    field_floats_[static_cast<size_t>(s.field)] = s.num_floats;
    field_scale_[static_cast<size_t>(s.field)] = layout.scale;
    out.fields.push_back(layout);
  }
  field_floats_total_ = reference.field_floats_per_page_head();
  for (const FieldSlot& s : reference.state_slots()) {
    field_offset_[static_cast<size_t>(s.field)] = state_floats_total_;
    field_floats_[static_cast<size_t>(s.field)] = s.num_floats;
    state_floats_total_ += s.num_floats;
  }

  rewritten_ = rewrite_reductions(program_, geometry_);
  analyse(rewritten_.summarize, sum_facts_);
  analyse_score();

  out.field_floats = static_cast<int32_t>(field_floats_total_);
  out.field_stride = static_cast<int32_t>((units + 7) / 8 * 8);
  out.field_scales = num_scales_;
  out.state_floats = static_cast<int32_t>(state_floats_total_);
  out.state_stride = static_cast<int32_t>((state_floats_total_ + 3) / 4 * 4);

  std::string base = program_.class_name.empty() ? "flow" : program_.class_name;
  for (char& c : base)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  std::string kernels;

  bool stores = false;
  for (const Op& op : rewritten_.summarize.ops) stores = stores || op.kind == OpKind::kStoreField;
  if (stores) {
    out.summarize_kernel = base + "_summarize";
    kernels += gen_summarize(out.summarize_kernel) + "\n";
  }
  const size_t summarize_bytes = kernels.size();

  bool cross = false;
  for (size_t i = 0; i < rewritten_.score.ops.size(); ++i)
    cross = cross || mixes_pages(static_cast<ValueId>(i));
  bool uses_select = false;
  if (!cross) {
    const CudaScoreKernel pages = add_page_kernel(base + "_score_pages", true, kernels);
    out.score_kernels.push_back(pages);
    const std::string fused = gen_score_select_kernel(base + "_score_select", pages.lanes);
    if (!fused.empty()) {
      kernels += fused + "\n";
      out.select_kernel = base + "_score_select";
      out.select_lanes = pages.lanes;
      uses_select = true;
    }
  } else {
    const std::string row_name = base + "_score_rows";
    const std::string row_kernel = gen_row_kernel(row_name);
    const std::vector<ValueId> scratch = scratch_values_;
    const int64_t scratch_floats = scratch_floats_;
    if (!scratch.empty())
      out.score_kernels.push_back(add_page_kernel(base + "_score_pages", false, kernels));
    kernels += row_kernel + "\n";
    out.score_kernels.push_back({row_name, CudaKernelKind::kPerRow});
    out.page_scratch_floats = static_cast<int32_t>(scratch_floats);
  }

  const size_t score_bytes = kernels.size() - summarize_bytes;
  std::string src;
  src += str_cat("// Generated by vortex from ", program_.filename, " (flow ", program_.class_name,
                 ") for G=", geometry_.G, " D=", geometry_.D, " P=", geometry_.P, ".\n");
  src += kCudaFlowAbiSource;
  src += kDeviceHelpers;
  src += abi_asserts();
  if (uses_select) {
    src += kSelectRowSource;
    src += str_cat("static_assert(VX_SELECT_THREADS == ", kCudaScoreSelectThreads,
                   ", \"the host launches the fused score-and-select kernel with ",
                   kCudaScoreSelectThreads, " threads\");\n");
    src += str_cat("static_assert(sizeof(VxSelectShared) <= ", kSelectSharedBytes,
                   ", \"the generator reserves ", kSelectSharedBytes,
                   " bytes of shared memory for the selection\");\n");
  }
  src += "\n" + kernels;
  for (size_t pos; (pos = src.find("VX_PAGE_SCRATCH_FLOATS")) != std::string::npos;)
    src.replace(pos, std::strlen("VX_PAGE_SCRATCH_FLOATS"),
                std::to_string(out.page_scratch_floats));
  out.source = finish_lines(src, program_.filename, program_.filename + ".cu");
  if (static_cast<int64_t>(out.source.size()) > kMaxCudaSourceBytes) {
    // Blame the phase whose kernels are the larger part.
    const Function& fn = out.summarize_kernel.empty() || score_bytes >= summarize_bytes
                             ? program_.score
                             : program_.summarize;
    throw CudaCodegenError(
        program_.filename, fn.loc,
        str_cat("the CUDA code generated for this flow is ", out.source.size(), " bytes; at most ",
                kMaxCudaSourceBytes, " (", kMaxCudaSourceBytes >> 10,
                " KiB: the generated code limit, which keeps NVRTC's time and "
                "memory bounded); simplify ",
                &fn == &program_.score ? "score" : "summarize"));
  }
  return out;
}

}  // namespace

CudaCodegenOptions cuda_codegen_options_from_env() {
  CudaCodegenOptions o;
  const char* env = std::getenv("VORTEX_FLOW_SCORE");
  if (!env || !*env || std::strcmp(env, "auto") == 0) return o;
  if (std::strcmp(env, "thread") == 0) {
    o.score_lanes = 1;
    return o;
  }
  for (int l : {2, 4, 8, 16, 32})
    if (std::to_string(l) == env) {
      o.score_lanes = l;
      return o;
    }
  fail("VORTEX_FLOW_SCORE=", env,
       ": expected 'thread', 'auto' or lanes per page (2, 4, 8, 16 "
       "or 32)");
}

CudaFlowSource generate_cuda_flow(const FlowProgram& program, const FlowGeometry& geometry,
                                  const CudaCodegenOptions& options) {
  const int l = options.score_lanes;
  if (l < 0 || l > 32 || (l & (l - 1)) != 0)
    fail(program.filename,
         ": score_lanes must be 0 (automatic), 1 or a power of two up to 32, "
         "got ",
         l);
  return Generator(program, geometry, options).run();
}

}  // namespace vortex::flow
