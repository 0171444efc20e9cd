#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>

#include "core/error.h"
#include "flow/codegen/generator.h"
#include "flow/cpu_executor.h"
#include "flow/shape_inference.h"
#include "flow/slice_range.h"

namespace vortex::flow::codegen {

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

}  // namespace vortex::flow::codegen
