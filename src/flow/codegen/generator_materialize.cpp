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

}  // namespace vortex::flow::codegen
