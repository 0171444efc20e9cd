// The op-by-op interpreter behind CpuFlowExecutor. Every value is a contiguous row-major f32
// array (bools as 0/1); inputs and reshapes alias their source, everything else owns a buffer
// in the thread's Scratch. Sums (sum, mean, l2norm, softmax's denominator, matmul) accumulate
// in double so the reference does not depend on summation order.
#include "flow/cpu_executor_eval.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "core/error.h"
#include "flow/slice_range.h"

namespace vortex::flow::cpu {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

Dims row_major_strides(const Dims& shape) {
  Dims strides(shape.size(), 1);
  for (size_t a = shape.size(); a-- > 1;) strides[a - 1] = strides[a] * shape[a];
  return strides;
}

// Strides that read `in` (right-aligned, numpy style) at each index of `out`: 0 on broadcast axes.
Dims broadcast_strides(const Dims& in, const Dims& out) {
  Dims strides(out.size(), 0);
  Dims own = row_major_strides(in);
  const size_t lead = out.size() - in.size();
  for (size_t a = 0; a < in.size(); ++a) strides[lead + a] = in[a] == 1 ? 0 : own[a];
  return strides;
}

// Advances a row-major multi-index over `shape` (all axes but the last `skip_tail`); false at end.
bool next_index(Dims& index, const Dims& shape, size_t axes) {
  for (size_t a = axes; a-- > 0;) {
    if (++index[a] < shape[a]) return true;
    index[a] = 0;
  }
  return false;
}

template <size_t K, class Fn, size_t... I>
inline float apply(Fn& fn, const std::array<const float*, K>& in,
                   const std::array<int64_t, K>& offset, std::index_sequence<I...>) {
  return fn(in[I][offset[I]]...);
}

template <size_t K, class Fn, size_t... I>
inline void inner_map(Fn& fn, const std::array<const float*, K>& row,
                      const std::array<int64_t, K>& step, float* out, int64_t count,
                      std::index_sequence<I...>) {
  for (int64_t j = 0; j < count; ++j) out[j] = fn(row[I][j * step[I]]...);
}

// out[i] = fn(operands broadcast to out's shape at i).
template <size_t K, class Fn>
void broadcast_map(const Dims& out_shape, float* out, const std::array<const float*, K>& in,
                   const std::array<const Dims*, K>& in_shapes, Fn fn) {
  const int64_t total = num_elements(out_shape);
  if (total == 0) return;
  bool same = true;
  for (size_t k = 0; k < K; ++k) same = same && num_elements(*in_shapes[k]) == total;
  std::array<int64_t, K> offset{};
  if (same) {  // equal element counts under broadcasting means equal shapes up to leading 1s
    for (int64_t i = 0; i < total; ++i) {
      offset.fill(i);
      out[i] = apply(fn, in, offset, std::make_index_sequence<K>());
    }
    return;
  }
  const size_t rank = out_shape.size();
  std::array<Dims, K> strides;
  for (size_t k = 0; k < K; ++k) strides[k] = broadcast_strides(*in_shapes[k], out_shape);
  const int64_t inner = out_shape[rank - 1];
  Dims index(rank, 0);
  int64_t o = 0;
  do {
    std::array<int64_t, K> base{};
    for (size_t k = 0; k < K; ++k)
      for (size_t a = 0; a + 1 < rank; ++a) base[k] += index[a] * strides[k][a];
    // The innermost axis is contiguous or broadcast for every operand; keep those two cases
    // as plain strided loops the compiler can vectorise.
    std::array<const float*, K> row;
    std::array<int64_t, K> step;
    for (size_t k = 0; k < K; ++k) {
      row[k] = in[k] + base[k];
      step[k] = strides[k][rank - 1];
    }
    inner_map(fn, row, step, out + o, inner, std::make_index_sequence<K>());
    o += inner;
  } while (next_index(index, out_shape, rank - 1));
}

float nan_max(float a, float b) {
  return (a != a || b != b) ? kNaN : std::max(a, b);
}
float nan_min(float a, float b) {
  return (a != a || b != b) ? kNaN : std::min(a, b);
}
float sigmoid(float x) {
  return 1.0f / (1.0f + std::exp(-x));
}
float py_mod(float a, float b) {
  float r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

void unary(OpKind kind, const float* x, float* out, int64_t count) {
  auto map = [&](auto fn) {
    for (int64_t i = 0; i < count; ++i) out[i] = fn(x[i]);
  };
  switch (kind) {
    case OpKind::kNeg:
      return map([](float v) { return -v; });
    case OpKind::kAbs:
      return map([](float v) { return std::fabs(v); });
    case OpKind::kExp:
      return map([](float v) { return std::exp(v); });
    case OpKind::kLog:
      return map([](float v) { return std::log(v); });
    case OpKind::kSqrt:
      return map([](float v) { return std::sqrt(v); });
    case OpKind::kRelu:
      return map([](float v) { return v != v ? v : std::max(v, 0.0f); });
    case OpKind::kSigmoid:
      return map([](float v) { return sigmoid(v); });
    case OpKind::kSilu:
      return map([](float v) { return v * sigmoid(v); });
    default:
      VORTEX_ASSERT(false);
  }
}

void binary(OpKind kind, const Dims& out_shape, float* out, const float* a, const Dims& as,
            const float* b, const Dims& bs) {
  std::array<const float*, 2> in{a, b};
  std::array<const Dims*, 2> shapes{&as, &bs};
  auto map = [&](auto fn) { broadcast_map<2>(out_shape, out, in, shapes, fn); };
  switch (kind) {
    case OpKind::kAdd:
      return map([](float x, float y) { return x + y; });
    case OpKind::kSub:
      return map([](float x, float y) { return x - y; });
    case OpKind::kMul:
      return map([](float x, float y) { return x * y; });
    case OpKind::kDiv:
      return map([](float x, float y) { return x / y; });
    case OpKind::kFloorDiv:
      return map([](float x, float y) { return std::floor(x / y); });
    case OpKind::kMod:
      return map([](float x, float y) { return py_mod(x, y); });
    case OpKind::kPow:
      return map([](float x, float y) { return std::pow(x, y); });
    case OpKind::kMaximum:
      return map([](float x, float y) { return nan_max(x, y); });
    case OpKind::kMinimum:
      return map([](float x, float y) { return nan_min(x, y); });
    case OpKind::kLt:
      return map([](float x, float y) { return x < y ? 1.0f : 0.0f; });
    case OpKind::kLe:
      return map([](float x, float y) { return x <= y ? 1.0f : 0.0f; });
    case OpKind::kGt:
      return map([](float x, float y) { return x > y ? 1.0f : 0.0f; });
    case OpKind::kGe:
      return map([](float x, float y) { return x >= y ? 1.0f : 0.0f; });
    case OpKind::kEq:
      return map([](float x, float y) { return x == y ? 1.0f : 0.0f; });
    case OpKind::kNe:
      return map([](float x, float y) { return x != y ? 1.0f : 0.0f; });
    default:
      VORTEX_ASSERT(false);
  }
}

// Reduction over `axes` of x; the result layout is x's with the reduced axes removed (keepdims
// only adds size-1 axes, which do not move elements).
void reduce(OpKind kind, const float* x, const Dims& xs, const std::vector<int>& axes, float* out,
            int64_t out_count, std::vector<double>& acc) {
  Dims out_strides(xs.size(), 0);
  int64_t stride = 1;
  int64_t reduced = 1;
  for (size_t a = xs.size(); a-- > 0;) {
    if (std::find(axes.begin(), axes.end(), static_cast<int>(a)) != axes.end()) {
      reduced *= xs[a];
    } else {
      out_strides[a] = stride;
      stride *= xs[a];
    }
  }
  const bool extremum = kind == OpKind::kMax || kind == OpKind::kMin;
  // Common case: the reduced axes are the trailing ones, so each output reads one contiguous run.
  bool trailing = true;
  for (size_t a = 0; a < xs.size(); ++a)
    if ((out_strides[a] == 0) != (a + axes.size() >= xs.size())) trailing = false;
  if (trailing && !axes.empty() && reduced > 0) {
    for (int64_t o = 0; o < out_count; ++o) {
      const float* run = x + o * reduced;
      double a = run[0];
      switch (kind) {
        case OpKind::kMax:
          for (int64_t j = 1; j < reduced; ++j) a = nan_max(static_cast<float>(a), run[j]);
          break;
        case OpKind::kMin:
          for (int64_t j = 1; j < reduced; ++j) a = nan_min(static_cast<float>(a), run[j]);
          break;
        case OpKind::kL2Norm:
          a *= a;
          for (int64_t j = 1; j < reduced; ++j) a += static_cast<double>(run[j]) * run[j];
          a = std::sqrt(a);
          break;
        default:
          for (int64_t j = 1; j < reduced; ++j) a += run[j];
          if (kind == OpKind::kMean) a /= static_cast<double>(reduced);
          break;
      }
      out[o] = static_cast<float>(a);
    }
    return;
  }
  // The other common case: leading axes reduced (k.max(axis=0)): accumulate whole rows.
  bool leading = !axes.empty();
  for (size_t a = 0; a < xs.size(); ++a)
    if ((out_strides[a] == 0) != (a < axes.size())) leading = false;
  if (leading && reduced > 0 && !trailing && extremum) {  // exact in f32: no double needed
    std::copy(x, x + out_count, out);
    for (int64_t r = 1; r < reduced; ++r) {
      const float* row = x + r * out_count;
      if (kind == OpKind::kMax)
        for (int64_t i = 0; i < out_count; ++i) out[i] = nan_max(out[i], row[i]);
      else
        for (int64_t i = 0; i < out_count; ++i) out[i] = nan_min(out[i], row[i]);
    }
    return;
  }
  if (leading && reduced > 0 && !trailing) {
    acc.assign(x, x + out_count);
    for (int64_t r = 1; r < reduced; ++r) {
      const float* row = x + r * out_count;
      switch (kind) {
        case OpKind::kMax:
          for (int64_t i = 0; i < out_count; ++i)
            acc[static_cast<size_t>(i)] =
                nan_max(static_cast<float>(acc[static_cast<size_t>(i)]), row[i]);
          break;
        case OpKind::kMin:
          for (int64_t i = 0; i < out_count; ++i)
            acc[static_cast<size_t>(i)] =
                nan_min(static_cast<float>(acc[static_cast<size_t>(i)]), row[i]);
          break;
        case OpKind::kL2Norm:
          if (r == 1)
            for (int64_t i = 0; i < out_count; ++i)
              acc[static_cast<size_t>(i)] *= acc[static_cast<size_t>(i)];
          for (int64_t i = 0; i < out_count; ++i)
            acc[static_cast<size_t>(i)] += static_cast<double>(row[i]) * row[i];
          break;
        default:
          for (int64_t i = 0; i < out_count; ++i) acc[static_cast<size_t>(i)] += row[i];
          break;
      }
    }
    for (int64_t i = 0; i < out_count; ++i) {
      double a = acc[static_cast<size_t>(i)];
      if (kind == OpKind::kL2Norm) a = reduced == 1 ? std::fabs(a) : std::sqrt(a);
      if (kind == OpKind::kMean) a /= static_cast<double>(reduced);
      out[i] = static_cast<float>(a);
    }
    return;
  }
  const double init = kind == OpKind::kMax   ? -std::numeric_limits<double>::infinity()
                      : kind == OpKind::kMin ? std::numeric_limits<double>::infinity()
                                             : 0.0;
  acc.assign(static_cast<size_t>(out_count), init);
  const int64_t total = num_elements(xs);
  if (total > 0) {
    Dims index(xs.size(), 0);
    int64_t o = 0;
    for (int64_t i = 0; i < total; ++i) {
      double v = x[i];
      double& a = acc[static_cast<size_t>(o)];
      switch (kind) {
        case OpKind::kMax:
          if (v > a || v != v) a = a != a ? a : v;
          break;
        case OpKind::kMin:
          if (v < a || v != v) a = a != a ? a : v;
          break;
        case OpKind::kL2Norm:
          a += v * v;
          break;
        default:
          a += v;
          break;
      }
      for (size_t ax = xs.size(); ax-- > 0;) {  // odometer with the output offset alongside
        o += out_strides[ax];
        if (++index[ax] < xs[ax]) break;
        o -= out_strides[ax] * xs[ax];
        index[ax] = 0;
      }
    }
  }
  for (int64_t i = 0; i < out_count; ++i) {
    double a = acc[static_cast<size_t>(i)];
    if (kind == OpKind::kMean) a /= static_cast<double>(reduced);
    if (kind == OpKind::kL2Norm) a = std::sqrt(a);
    out[i] = extremum || kind != OpKind::kMean || reduced > 0 ? static_cast<float>(a) : kNaN;
  }
}

// Splits shape around `axis` into (outer, axis size, inner).
std::array<int64_t, 3> around_axis(const Dims& shape, int axis) {
  int64_t outer = 1, inner = 1;
  for (int a = 0; a < axis; ++a) outer *= shape[static_cast<size_t>(a)];
  for (size_t a = static_cast<size_t>(axis) + 1; a < shape.size(); ++a) inner *= shape[a];
  return {outer, shape[static_cast<size_t>(axis)], inner};
}

void softmax(const float* x, const Dims& xs, int axis, float* out) {
  auto [outer, len, inner] = around_axis(xs, axis);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * len * inner + i;
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < len; ++j) mx = nan_max(mx, x[base + j * inner]);
      double total = 0;
      for (int64_t j = 0; j < len; ++j)
        total += std::exp(static_cast<double>(x[base + j * inner]) - mx);
      for (int64_t j = 0; j < len; ++j)
        out[base + j * inner] =
            static_cast<float>(std::exp(static_cast<double>(x[base + j * inner]) - mx) / total);
    }
}

void fold(OpKind kind, const float* x, const Dims& xs, int axis, int64_t group, float* out) {
  auto [outer, len, inner] = around_axis(xs, axis);
  const int64_t groups = len / group;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t i = 0; i < inner; ++i) {
        const float* src = x + (o * len + g * group) * inner + i;
        double a = kind == OpKind::kFoldMax   ? -std::numeric_limits<double>::infinity()
                   : kind == OpKind::kFoldMin ? std::numeric_limits<double>::infinity()
                                              : 0.0;
        for (int64_t j = 0; j < group; ++j) {
          double v = src[j * inner];
          if (kind == OpKind::kFoldMax)
            a = (a != a || v != v) ? kNaN : std::max(a, v);
          else if (kind == OpKind::kFoldMin)
            a = (a != a || v != v) ? kNaN : std::min(a, v);
          else
            a += v;
        }
        if (kind == OpKind::kFoldMean) a /= static_cast<double>(group);
        out[(o * groups + g) * inner + i] = static_cast<float>(a);
      }
}

void transpose(const float* x, const Dims& xs, const std::vector<int>& perm, const Dims& out_shape,
               float* out) {
  const int64_t total = num_elements(out_shape);
  if (total == 0) return;
  if (out_shape.empty()) {
    out[0] = x[0];
    return;
  }
  Dims in_strides = row_major_strides(xs);
  Dims src_strides(perm.size());
  for (size_t a = 0; a < perm.size(); ++a)
    src_strides[a] = in_strides[static_cast<size_t>(perm[a])];
  Dims index(out_shape.size(), 0);
  for (int64_t o = 0; o < total; ++o) {
    int64_t src = 0;
    for (size_t a = 0; a < index.size(); ++a) src += index[a] * src_strides[a];
    out[o] = x[src];
    next_index(index, out_shape, out_shape.size());
  }
}

void slice(const float* x, const Dims& xs, const std::vector<SliceSpec>& specs, float* out,
           int64_t out_count) {
  VORTEX_ASSERT(specs.size() == xs.size());
  if (out_count == 0) return;
  if (xs.empty()) {
    out[0] = x[0];
    return;
  }
  Dims in_strides = row_major_strides(xs);
  Dims counts(xs.size()), steps(xs.size());
  int64_t base = 0;
  for (size_t a = 0; a < xs.size(); ++a) {
    auto [start, count] = slice_range(specs[a], xs[a]);
    counts[a] = count;
    steps[a] = specs[a].index ? 0 : specs[a].step * in_strides[a];
    base += start * in_strides[a];
  }
  VORTEX_ASSERT(num_elements(counts) == out_count);
  Dims index(xs.size(), 0);
  for (int64_t o = 0; o < out_count; ++o) {
    int64_t src = base;
    for (size_t a = 0; a < index.size(); ++a) src += index[a] * steps[a];
    out[o] = x[src];
    next_index(index, counts, counts.size());
  }
}

// numpy matmul: rank-1 operands are promoted ([K] -> [1, K] on the left, [K, 1] on the right);
// the leading axes broadcast. out is laid out as [batch..., M, N] with dropped axes of size 1.
void matmul(const float* a, Dims as, const float* b, Dims bs, float* out) {
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t m = as[as.size() - 2], k = as.back(), n = bs.back();
  VORTEX_ASSERT(bs[bs.size() - 2] == k);
  Dims a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  const size_t rank = std::max(a_batch.size(), b_batch.size());
  Dims batch(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i + a_batch.size() >= rank ? a_batch[i + a_batch.size() - rank] : 1;
    int64_t db = i + b_batch.size() >= rank ? b_batch[i + b_batch.size() - rank] : 1;
    batch[i] = std::max(da, db);
  }
  Dims a_strides = broadcast_strides(a_batch, batch), b_strides = broadcast_strides(b_batch, batch);
  const int64_t batches = num_elements(batch);
  Dims index(rank, 0);
  for (int64_t t = 0; t < batches; ++t) {
    int64_t ai = 0, bi = 0;
    for (size_t i = 0; i < rank; ++i) {
      ai += index[i] * a_strides[i];
      bi += index[i] * b_strides[i];
    }
    const float* am = a + ai * m * k;
    const float* bm = b + bi * k * n;
    float* om = out + t * m * n;
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < n; ++c) {
        double s = 0;
        for (int64_t j = 0; j < k; ++j) s += static_cast<double>(am[r * k + j]) * bm[j * n + c];
        om[r * n + c] = static_cast<float>(s);
      }
    next_index(index, batch, rank);
  }
}

}  // namespace

int64_t num_elements(const Dims& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void bind_shapes(const FlowProgram& program, const Function& fn, const FlowGeometry& geometry,
                 int64_t n, std::vector<Dims>& shapes) {
  shapes.resize(fn.ops.size());
  for (size_t i = 0; i < fn.ops.size(); ++i) {
    const Op& op = fn.ops[i];
    Dims& dims = shapes[i];
    dims.resize(op.shape.size());
    for (size_t a = 0; a < op.shape.size(); ++a) {
      std::optional<int64_t> v = eval_dim(op.shape[a], geometry, n);
      if (!v || *v < 0)
        fail(program.filename, ":", op.loc.line, ":", op.loc.col, ": error: shape ",
             shape_to_string(op.shape), " of '", op_kind_name(op.kind),
             "' is not a whole size for G=", geometry.G, " D=", geometry.D, " P=", geometry.P);
      dims[a] = *v;
    }
  }
}

void evaluate(const FlowProgram& program, const Function& fn, const FlowGeometry& geometry,
              int64_t n, std::span<const float* const> inputs, FieldAccess& fields, Scratch& s,
              const RowPages& row) {
  const size_t num_ops = fn.ops.size();
  bind_shapes(program, fn, geometry, n, s.shapes);
  if (s.buffers.size() < num_ops) s.buffers.resize(num_ops);
  s.values.assign(num_ops, nullptr);

  for (size_t i = 0; i < num_ops; ++i) {
    const Op& op = fn.ops[i];
    const Dims& shape = s.shapes[i];
    auto operand = [&](size_t j) { return s.values[static_cast<size_t>(op.operands[j])]; };
    auto operand_shape = [&](size_t j) -> const Dims& {
      return s.shapes[static_cast<size_t>(op.operands[j])];
    };
    // Aliases first: they need no buffer.
    if (op.kind == OpKind::kInput) {
      VORTEX_ASSERT(op.input >= 0 && static_cast<size_t>(op.input) < inputs.size());
      s.values[i] = inputs[static_cast<size_t>(op.input)];
      continue;
    }
    if (op.kind == OpKind::kReshape) {
      VORTEX_ASSERT(num_elements(operand_shape(0)) == num_elements(shape));
      s.values[i] = operand(0);
      continue;
    }
    if (op.kind == OpKind::kStoreField) {
      fields.store(op.field, operand(0), num_elements(operand_shape(0)));
      continue;
    }
    const int64_t count = num_elements(shape);
    std::vector<float>& buffer = s.buffers[i];
    buffer.resize(static_cast<size_t>(std::max<int64_t>(count, 1)));
    float* out = buffer.data();
    s.values[i] = out;

    switch (op.kind) {
      case OpKind::kConstant:
        std::fill(out, out + count, static_cast<float>(op.value));
        break;
      case OpKind::kDimValue: {
        std::optional<int64_t> v = eval_dim(op.dim, geometry, n);
        VORTEX_ASSERT(v.has_value());
        out[0] = static_cast<float>(*v);
        break;
      }
      case OpKind::kLoadField:
        fields.load(op.field, out, count);
        break;
      case OpKind::kPageIndex:
        for (int64_t i = 0; i < count; ++i) out[i] = static_cast<float>(row.first_page + i);
        break;
      case OpKind::kRowPages:
        if (row.row_pages < 0)
          fail(program.filename, ":", op.loc.line, ":", op.loc.col,
               ": error: num_pages() is read but the row's page count was not given");
        out[0] = static_cast<float>(row.row_pages);
        break;
      case OpKind::kNeg:
      case OpKind::kAbs:
      case OpKind::kExp:
      case OpKind::kLog:
      case OpKind::kSqrt:
      case OpKind::kRelu:
      case OpKind::kSigmoid:
      case OpKind::kSilu:
        VORTEX_ASSERT(num_elements(operand_shape(0)) == count);
        unary(op.kind, operand(0), out, count);
        break;
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
        binary(op.kind, shape, out, operand(0), operand_shape(0), operand(1), operand_shape(1));
        break;
      case OpKind::kWhere:
        broadcast_map<3>(shape, out, {operand(0), operand(1), operand(2)},
                         {&operand_shape(0), &operand_shape(1), &operand_shape(2)},
                         [](float c, float a, float b) { return c != 0.0f ? a : b; });
        break;
      case OpKind::kSum:
      case OpKind::kMean:
      case OpKind::kMax:
      case OpKind::kMin:
      case OpKind::kL2Norm:
        reduce(op.kind, operand(0), operand_shape(0), op.axes, out, count, s.accumulators);
        break;
      case OpKind::kSoftmax:
        softmax(operand(0), operand_shape(0), op.axis, out);
        break;
      case OpKind::kFoldSum:
      case OpKind::kFoldMean:
      case OpKind::kFoldMax:
      case OpKind::kFoldMin:
        VORTEX_ASSERT(op.group > 0 &&
                      operand_shape(0)[static_cast<size_t>(op.axis)] % op.group == 0);
        fold(op.kind, operand(0), operand_shape(0), op.axis, op.group, out);
        break;
      case OpKind::kMatMul:
        matmul(operand(0), operand_shape(0), operand(1), operand_shape(1), out);
        break;
      case OpKind::kTranspose:
        transpose(operand(0), operand_shape(0), op.axes, shape, out);
        break;
      case OpKind::kSlice:
        slice(operand(0), operand_shape(0), op.slices, out, count);
        break;
      default:
        fail(program.filename, ":", op.loc.line, ":", op.loc.col,
             ": error: the CPU executor has no rule for op '", op_kind_name(op.kind), "'");
    }
  }
}

}  // namespace vortex::flow::cpu
