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

}  // namespace vortex::flow::codegen
