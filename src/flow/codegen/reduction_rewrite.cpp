// The reduction rewrite of reduction_rewrite.h. Score's ops are copied in order into a new list;
// each sum/mean is first merged with the sum/mean chain below it, then distributed over a
// product whose operands are broadcast along some of the reduced axes. New ops keep the source
// location of the reduction they replace.
#include "flow/codegen/reduction_rewrite.h"

#include <algorithm>
#include <optional>

#include "flow/passes.h"
#include "flow/shape_inference.h"

namespace vortex::flow {
namespace {

class Rewriter {
 public:
  explicit Rewriter(const FlowGeometry& geometry) : geometry_(geometry) {}

  Function rewrite(const Function& fn) {
    out_.clear();
    std::vector<ValueId> map(fn.ops.size(), -1);
    for (size_t i = 0; i < fn.ops.size(); ++i) {
      Op op = fn.ops[i];
      for (ValueId& id : op.operands) id = map[static_cast<size_t>(id)];
      map[i] = is_linear_reduction(op) ? rewrite_reduction(op) : add(std::move(op));
    }
    Function result = fn;
    result.ops = std::move(out_);
    if (fn.result >= 0) result.result = map[static_cast<size_t>(fn.result)];
    result.stages.clear();
    return result;
  }

 private:
  std::optional<int64_t> extent(const Dim& d) const {
    if (is_page_dim(d)) return std::nullopt;
    std::optional<int64_t> v = eval_dim(d, geometry_);
    if (!v || *v <= 0) return std::nullopt;
    return v;
  }

  // Product of the extents of `axes` of `shape` (all known: checked by is_linear_reduction).
  int64_t count(const Shape& shape, const std::vector<int>& axes) const {
    int64_t n = 1;
    for (int a : axes) n *= *extent(shape[static_cast<size_t>(a)]);
    return n;
  }

  // A sum or mean over axes that are not the page axis and have known extents.
  bool is_linear_reduction(const Op& op) const {
    if (op.kind != OpKind::kSum && op.kind != OpKind::kMean) return false;
    if (op.operands.size() != 1 || op.axes.empty()) return false;
    const Shape& in = out_[static_cast<size_t>(op.operands[0])].shape;
    for (int a : op.axes)
      if (a < 0 || static_cast<size_t>(a) >= in.size() || !extent(in[static_cast<size_t>(a)]))
        return false;
    return true;
  }

  ValueId add(Op op) {
    out_.push_back(std::move(op));
    return static_cast<ValueId>(out_.size() - 1);
  }

  ValueId add_reduce(OpKind kind, ValueId x, std::vector<int> axes, bool keepdims, SourceLoc loc) {
    std::sort(axes.begin(), axes.end());
    Op op;
    op.kind = kind;
    op.operands = {x};
    op.axes = axes;
    op.keepdims = keepdims;
    op.shape = reduce_shape(out_[static_cast<size_t>(x)].shape, axes, keepdims);
    op.loc = loc;
    return add(std::move(op));
  }

  // Reduction of x over axes by sum, divided by m: a mean when m is the count, else a sum
  // followed by a division.
  ValueId plain(ValueId x, const std::vector<int>& all_axes, int64_t m, bool keepdims,
                SourceLoc loc) {
    // Axes of extent 1 reduce nothing; with none left the reduction is a reshape (or nothing).
    const Shape& xs = out_[static_cast<size_t>(x)].shape;
    std::vector<int> axes;
    for (int a : all_axes)
      if (*extent(xs[static_cast<size_t>(a)]) != 1) axes.push_back(a);
    if (axes.empty() && m == 1) {
      const Shape target = reduce_shape(xs, all_axes, keepdims);
      if (target == xs) return x;
      Op reshape;
      reshape.kind = OpKind::kReshape;
      reshape.operands = {x};
      reshape.shape = target;
      reshape.loc = loc;
      return add(std::move(reshape));
    }
    if (axes.size() != all_axes.size() && !keepdims) axes = all_axes;  // keep the result shape
    const int64_t n = count(out_[static_cast<size_t>(x)].shape, axes);
    if (m == n && m != 1) return add_reduce(OpKind::kMean, x, axes, keepdims, loc);
    ValueId s = add_reduce(OpKind::kSum, x, axes, keepdims, loc);
    if (m == 1) return s;
    Op c;
    c.kind = OpKind::kConstant;
    c.value = static_cast<double>(m);
    c.loc = loc;
    ValueId cid = add(std::move(c));
    Op div;
    div.kind = OpKind::kDiv;
    div.operands = {s, cid};
    div.shape = out_[static_cast<size_t>(s)].shape;
    div.loc = loc;
    return add(std::move(div));
  }

  // sum over axes of x, divided by m; distributed over x = a * b where one side is broadcast
  // along some of the axes. Returns -1 when there is nothing to distribute.
  ValueId distribute(ValueId x, const std::vector<int>& axes, int64_t m, bool keepdims,
                     SourceLoc loc) {
    const Op& mul = out_[static_cast<size_t>(x)];
    if (mul.kind != OpKind::kMul || mul.operands.size() != 2) return -1;
    const Shape y = mul.shape;
    const SourceLoc mul_loc = mul.loc;
    const ValueId a = mul.operands[0], b = mul.operands[1];
    const Shape sa = out_[static_cast<size_t>(a)].shape, sb = out_[static_cast<size_t>(b)].shape;
    const size_t rank = y.size();
    if (sa.size() > rank || sb.size() > rank) return -1;
    auto aligned = [&](const Shape& s, size_t k) {
      return k + s.size() >= rank ? s[k + s.size() - rank] : Dim::constant(1);
    };
    // Reduced axes along which one operand is broadcast and the product is not.
    std::vector<int> a_broadcast, b_broadcast;
    for (int s : axes) {
      const size_t k = static_cast<size_t>(s);
      if (y[k].is_one()) continue;
      if (aligned(sa, k).is_one()) a_broadcast.push_back(s);
      if (aligned(sb, k).is_one()) b_broadcast.push_back(s);
    }
    if (a_broadcast.empty() && b_broadcast.empty()) return -1;
    auto local_axes = [&](const std::vector<int>& axes_y, const Shape& s) {
      std::vector<int> local;
      for (int ax : axes_y) local.push_back(ax - static_cast<int>(rank - s.size()));
      return local;
    };
    // Inner reductions: a over the axes where b is broadcast, b over those where a is.
    const std::vector<int> a_axes = local_axes(b_broadcast, sa);
    const std::vector<int> b_axes = local_axes(a_broadcast, sb);
    const int64_t ca = a_axes.empty() ? 1 : count(sa, a_axes);
    const int64_t cb = b_axes.empty() ? 1 : count(sb, b_axes);
    Shape p_shape(rank);
    for (size_t k = 0; k < rank; ++k) {
      Dim da = aligned(sa, k), db = aligned(sb, k);
      if (std::find(b_broadcast.begin(), b_broadcast.end(), static_cast<int>(k)) !=
          b_broadcast.end())
        da = Dim::constant(1);
      if (std::find(a_broadcast.begin(), a_broadcast.end(), static_cast<int>(k)) !=
          a_broadcast.end())
        db = Dim::constant(1);
      p_shape[k] = da.is_one() ? db : da;
    }
    int64_t co = 1;
    for (int s : axes) co *= *extent(p_shape[static_cast<size_t>(s)]);
    // Spread the 1/m scale over the three reductions as means, if the counts allow it.
    int64_t ma = 1, mb = 1, mo = 1, rest = m;
    bool found = m == 1;
    for (int mask = 1; mask < 8 && !found; ++mask) {
      const int64_t fa = (mask & 1) ? ca : 1, fb = (mask & 2) ? cb : 1, fo = (mask & 4) ? co : 1;
      if (((mask & 1) && a_axes.empty()) || ((mask & 2) && b_axes.empty())) continue;
      if (fa * fb * fo == m) {
        ma = fa, mb = fb, mo = fo, found = true;
      }
    }
    if (found) rest = 1;
    const ValueId a2 = a_axes.empty() ? a : reduce(a, a_axes, ma, true, loc);
    const ValueId b2 = b_axes.empty() ? b : reduce(b, b_axes, mb, true, loc);
    Op p;
    p.kind = OpKind::kMul;
    p.operands = {a2, b2};
    p.shape = p_shape;
    p.loc = mul_loc;
    const ValueId pid = add(std::move(p));
    ValueId outer = plain(pid, axes, mo, keepdims, loc);
    if (rest != 1) {
      Op c;
      c.kind = OpKind::kConstant;
      c.value = static_cast<double>(rest);
      c.loc = loc;
      ValueId cid = add(std::move(c));
      Op div;
      div.kind = OpKind::kDiv;
      div.operands = {outer, cid};
      div.shape = out_[static_cast<size_t>(outer)].shape;
      div.loc = loc;
      outer = add(std::move(div));
    }
    return outer;
  }

  // sum over axes of x divided by m, distributed where possible.
  ValueId reduce(ValueId x, const std::vector<int>& axes, int64_t m, bool keepdims, SourceLoc loc) {
    ValueId d = distribute(x, axes, m, keepdims, loc);
    return d >= 0 ? d : plain(x, axes, m, keepdims, loc);
  }

  ValueId rewrite_reduction(const Op& r) {
    ValueId x = r.operands[0];
    std::vector<int> axes = r.axes;
    int64_t m = r.kind == OpKind::kMean ? count(out_[static_cast<size_t>(x)].shape, axes) : 1;
    int merged = 0;
    // (a) fold the chain of sums/means below into one reduction of its bottom operand.
    while (is_linear_reduction(out_[static_cast<size_t>(x)])) {
      const Op& inner = out_[static_cast<size_t>(x)];
      const ValueId y = inner.operands[0];
      const size_t y_rank = out_[static_cast<size_t>(y)].shape.size();
      std::vector<int> kept;  // x's axis j is y's axis kept[j]
      for (size_t k = 0; k < y_rank; ++k)
        if (inner.keepdims || std::find(inner.axes.begin(), inner.axes.end(),
                                        static_cast<int>(k)) == inner.axes.end())
          kept.push_back(static_cast<int>(k));
      std::vector<int> all = inner.axes;
      for (int a : axes) all.push_back(kept[static_cast<size_t>(a)]);
      std::sort(all.begin(), all.end());
      all.erase(std::unique(all.begin(), all.end()), all.end());
      if (inner.kind == OpKind::kMean) m *= count(out_[static_cast<size_t>(y)].shape, inner.axes);
      x = y;
      axes = std::move(all);
      ++merged;
    }
    // (b) distribute over a product broadcast along some reduced axes.
    ValueId v = distribute(x, axes, m, false, r.loc);
    if (v < 0) {
      if (merged == 0) return add(r);
      v = plain(x, axes, m, false, r.loc);
    }
    if (out_[static_cast<size_t>(v)].shape != r.shape) {
      Op reshape;
      reshape.kind = OpKind::kReshape;
      reshape.operands = {v};
      reshape.shape = r.shape;
      reshape.loc = r.loc;
      v = add(std::move(reshape));
    }
    return v;
  }

  const FlowGeometry& geometry_;
  std::vector<Op> out_;
};

}  // namespace

FlowProgram rewrite_reductions(const FlowProgram& program, const FlowGeometry& geometry) {
  FlowProgram result = program;
  if (geometry.G <= 0 || geometry.D <= 0 || geometry.P <= 0) return result;
  result.score = Rewriter(geometry).rewrite(program.score);
  remove_dead_code(result);
  assign_placement(result);
  return result;
}

}  // namespace vortex::flow
