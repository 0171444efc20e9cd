#include "flow/lowering/lowerer.h"

namespace vortex::flow::lowering {

Val Lowering::lower_expr(const Expr& e) {
  switch (e.kind) {
    case ExprKind::kInt:
      return Val::of(ConstValue::integer(e.int_value));
    case ExprKind::kFloat:
      return Val::of(ConstValue::real(e.float_value));
    case ExprKind::kBool:
      return Val::of(ConstValue::boolean(e.bool_value));
    case ExprKind::kNone:
      return Val::of(ConstValue::none());
    case ExprKind::kEllipsis: {
      ConstValue c;
      c.kind = Kind::kEllipsis;
      return Val::of(c);
    }
    case ExprKind::kString:
      fail(e.loc, "strings are only allowed as docstrings");
    case ExprKind::kName:
      return lower_name(e);
    case ExprKind::kAttribute:
      return lower_attribute(e);
    case ExprKind::kCall:
      return lower_call(e);
    case ExprKind::kSubscript:
      return lower_subscript(e);
    case ExprKind::kSlice:
      fail(e.loc, "slices (a:b) are only allowed inside [ ]");
    case ExprKind::kBinary:
      return lower_binary_values(e.text, lower_expr(*e.lhs), lower_expr(*e.rhs), e.loc);
    case ExprKind::kCompare:
      return lower_binary_values(e.text, lower_expr(*e.lhs), lower_expr(*e.rhs), e.loc);
    case ExprKind::kUnary:
      return lower_unary(e);
    case ExprKind::kBoolOp: {
      Val a = lower_expr(*e.lhs);
      Val b = lower_expr(*e.rhs);
      if (a.tensor || b.tensor) {
        fail(e.loc, "'" + e.text +
                        "' works only on constants; for tensors use minimum, "
                        "maximum or where");
      }
      bool ta = const_truth(a.c).value_or(false);
      if (e.text == "and") return ta ? b : a;
      return ta ? a : b;
    }
    case ExprKind::kTuple:
    case ExprKind::kList: {
      ConstValue c;
      c.kind = e.kind == ExprKind::kTuple ? Kind::kTuple : Kind::kList;
      for (const auto& item : e.items) {
        Val v = lower_expr(*item);
        if (v.tensor) {
          fail(item->loc, std::string(e.kind == ExprKind::kTuple ? "tuples" : "lists") +
                              " may hold only constants (axes, shapes, layer indices)");
        }
        c.items.push_back(v.c);
      }
      return Val::of(c);
    }
  }
  fail(e.loc, "unsupported expression");
}

Val Lowering::lower_name(const Expr& e) {
  const std::string& name = e.text;
  if (is_dunder(name))
    fail(e.loc, "'" + name +
                    "' is not available in flows: names starting with '__' are "
                    "not allowed");
  if (method_) {
    auto it = method_->locals.find(name);
    if (it != method_->locals.end()) {
      if (it->second.poisoned) throw LowerError{};
      return it->second.value;
    }
  }
  if (in_class_) {
    auto it = class_consts_.find(name);
    if (it != class_consts_.end()) return Val::of(it->second);
  }
  if (auto it = module_consts_.find(name); it != module_consts_.end()) return Val::of(it->second);
  if (auto it = imports_.find(name); it != imports_.end()) {
    const std::string& canonical = it->second;
    if (canonical == "N") {
      if (!method_ || method_->phase != Phase::kScore)
        fail(e.loc, "N (the row's number of scoreable pages) exists only in score");
      return Val::of(ConstValue::dim(Dim::of(Symbol::kN)));
    }
    if (canonical == "G") return Val::of(ConstValue::dim(sym(Symbol::kG)));
    if (canonical == "D") return Val::of(ConstValue::dim(sym(Symbol::kD)));
    if (canonical == "P") return Val::of(ConstValue::dim(sym(Symbol::kP)));
    if (canonical == "Flow" || canonical == "Field" || canonical == "State" ||
        canonical == "Budget")
      fail(e.loc, "'" + name + "' can only be used in the class declaration");
    fail(e.loc, "'" + name + "' is a function; call it, e.g. " + name + "(...)");
  }
  if (name == "self") fail(e.loc, "'self' can only be used as self.field");
  if (failed_declaration(name)) throw LowerError{};  // its declaration's error says why
  if (method_) {
    if (method_->phase == Phase::kSummarize && name == "q")
      fail(e.loc,
           "'q' is not available in summarize: the query exists only in score; "
           "summarize sees the page's keys and values (k, v)");
    if (method_->phase == Phase::kScore && (name == "k" || name == "v"))
      fail(e.loc, "'" + name +
                      "' is not available in score: keys and values exist only in "
                      "summarize; score reads the fields it stored (self.name) and q");
    if (class_consts_.count(name))
      fail(e.loc, "'" + name + "' is a class constant; write self." + name);
    if (program_.field_index(name) >= 0)
      fail(e.loc, "'" + name + "' is a field; write self." + name);
  }
  if (forbidden_builtins().count(name))
    fail(e.loc, "'" + name +
                    "' is not available in flows: a flow can only use names imported "
                    "from vortex.flow, its constants, fields and locals");
  const auto& names = flow_module_names();
  if (std::find(names.begin(), names.end(), name) != names.end())
    fail(e.loc, "'" + name + "' is not imported; add it to `from vortex.flow import ...`");
  fail(e.loc, "unknown name '" + name + "'");
}

Val Lowering::read_self_attribute(const Expr& e) {
  const std::string& name = e.text;
  if (name == "summarize" || name == "score")
    fail(e.loc, "self." + name +
                    " cannot be used: flows have no calls between methods and "
                    "no recursion");
  if (auto it = class_consts_.find(name); it != class_consts_.end()) return Val::of(it->second);
  int f = program_.field_index(name);
  if (f < 0) {
    if (failed_declaration(name)) throw LowerError{};  // its declaration's error says why
    fail(e.loc, "unknown field '" + name + "': declare it in the class body, as a Field (e.g. " +
                    name + " = Field(1, D), written by summarize) or a State (e.g. " + name +
                    " = State(1, D), kept per request by score)");
  }
  if (!method_) fail(e.loc, "fields can only be read in summarize and score");
  MethodState& m = *method_;
  const FieldDecl& decl = program_.fields[f];
  if (auto it = m.field_values.find(f); it != m.field_values.end()) return Val::of(it->second);
  if (m.phase == Phase::kSummarize) {
    if (decl.kind == FieldKind::kState)
      fail(e.loc, "State '" + name +
                      "' is per request and lives in score; summarize cannot "
                      "read it");
    fail(e.loc, "field '" + name + "' is read in summarize before it is written");
  }
  Op op;
  op.kind = OpKind::kLoadField;
  op.field = f;
  op.shape = decl.dims;
  op.shape.insert(op.shape.begin(), Dim::of(Symbol::kN));
  op.loc = e.loc;
  return Val::of(emit(std::move(op)));
}

Val Lowering::lower_attribute(const Expr& e) {
  if (is_dunder(e.text))
    fail(e.loc, "attribute '" + e.text +
                    "' is not allowed: flows cannot reach Python "
                    "internals");
  if (e.lhs->kind == ExprKind::kName && e.lhs->text == "self") return read_self_attribute(e);
  Val obj = lower_expr(*e.lhs);
  if (e.text == "T") {
    ValueId x = as_tensor(obj, e.lhs->loc);
    if (shape_of(x).size() > 1 && count_page_axes(shape_of(x)) > 0)
      fail(e.loc, ".T reverses every axis and would move the page axis N of shape " +
                      shape_to_string(shape_of(x)) +
                      " from axis 0; N must stay the leading axis: transpose the other axes "
                      "with x.transpose(0, ...)");
    std::vector<int> perm(shape_of(x).size());
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int>(perm.size() - 1 - i);
    return Val::of(transpose(x, perm, e.loc));
  }
  const auto& methods = tensor_methods();
  if (std::find(methods.begin(), methods.end(), e.text) != methods.end())
    fail(e.loc, "method '" + e.text + "' must be called, e.g. x." + e.text + "(...)");
  fail(e.loc, "unknown tensor attribute '" + e.text + "'; tensors have .T and the methods " +
                  join(methods));
}

Val Lowering::lower_unary(const Expr& e) {
  Val x = lower_expr(*e.lhs);
  if (e.text == "+") return x;
  if (e.text == "~") fail(e.loc, "operator '~' is not supported in flows");
  if (e.text == "not") {
    if (x.tensor) fail(e.loc, "'not' works only on constants; for tensors compare, e.g. x == 0");
    return Val::of(ConstValue::boolean(!const_truth(x.c).value_or(false)));
  }
  if (!x.tensor) {
    ConstResult r = const_negate(x.c);
    if (!r.error.empty()) fail(e.loc, r.error);
    if (r.value) return Val::of(*r.value);
  }
  return Val::of(elementwise(OpKind::kNeg, {as_tensor(x, e.lhs->loc)}, e.loc, "-"));
}

std::optional<OpKind> Lowering::binary_kind(const std::string& op) {
  static const std::map<std::string, OpKind> kinds = {
      {"+", OpKind::kAdd},       {"-", OpKind::kSub},   {"*", OpKind::kMul},  {"/", OpKind::kDiv},
      {"//", OpKind::kFloorDiv}, {"%", OpKind::kMod},   {"**", OpKind::kPow}, {"<", OpKind::kLt},
      {"<=", OpKind::kLe},       {">", OpKind::kGt},    {">=", OpKind::kGe},  {"==", OpKind::kEq},
      {"!=", OpKind::kNe},       {"@", OpKind::kMatMul}};
  auto it = kinds.find(op);
  if (it == kinds.end()) return std::nullopt;
  return it->second;
}

Val Lowering::lower_binary_values(const std::string& op, Val a, Val b, SourceLoc loc) {
  std::optional<OpKind> kind = binary_kind(op);
  if (!kind) fail(loc, "operator '" + op + "' is not supported in flows");
  if (*kind == OpKind::kMatMul) {
    if (!a.tensor || !b.tensor) fail(loc, "both operands of '@' must be tensors");
    const Shape& sa = shape_of(a.id);
    const Shape& sb = shape_of(b.id);
    if ((sa.size() == 1 && count_page_axes(sa) > 0) || (sb.size() <= 2 && count_page_axes(sb) > 0))
      fail(loc, "'@' of " + shape_to_string(sa) + " and " + shape_to_string(sb) +
                    " would contract the page axis N: pages are scored one by one, so N "
                    "must stay a batch axis (use a reduction over axis 0 to combine pages)");
    ShapeResult r = matmul_shape(shape_of(a.id), shape_of(b.id));
    if (!r.ok()) fail(loc, r.error);
    Op o;
    o.kind = OpKind::kMatMul;
    o.operands = {a.id, b.id};
    o.shape = r.shape;
    o.loc = loc;
    check_no_page_contraction(a.id, b.id, loc);
    return Val::of(emit(std::move(o)));
  }
  if (!a.tensor && !b.tensor) {
    ConstResult r = const_binary(op, a.c, b.c);
    if (!r.error.empty()) fail(loc, r.error);
    if (r.value) return Val::of(*r.value);
    if (!a.c.is_number() && a.c.kind != Kind::kSym)
      fail(loc, "operator '" + op + "' cannot be applied to " + const_to_string(a.c));
    if (!b.c.is_number() && b.c.kind != Kind::kSym)
      fail(loc, "operator '" + op + "' cannot be applied to " + const_to_string(b.c));
  }
  if (*kind == OpKind::kPow && b.tensor) fail(loc, "the exponent of ** must be a constant");
  ValueId x = as_tensor(a, loc);
  ValueId y = as_tensor(b, loc);
  return Val::of(elementwise(*kind, {x, y}, loc, op));
}

ValueId Lowering::elementwise(OpKind kind, std::vector<ValueId> operands, SourceLoc loc,
                              const std::string& what) {
  Shape shape = shape_of(operands[0]);
  for (size_t i = 1; i < operands.size(); ++i) {
    ShapeResult r = broadcast_shapes(shape, shape_of(operands[i]));
    if (!r.ok()) fail(loc, "'" + what + "': " + r.error);
    shape = r.shape;
  }
  if (count_page_axes(shape) > 1)
    fail(loc, "'" + what + "' would pair pages with pages (shape " + shape_to_string(shape) +
                  "); a score sees each page once");
  Op op;
  op.kind = kind;
  op.operands = std::move(operands);
  op.shape = shape;
  op.loc = loc;
  bool cmp = kind == OpKind::kLt || kind == OpKind::kLe || kind == OpKind::kGt ||
             kind == OpKind::kGe || kind == OpKind::kEq || kind == OpKind::kNe;
  op.type = cmp ? ValueType::kBool : ValueType::kF32;
  return emit(std::move(op));
}

ValueId Lowering::reduce(OpKind kind, ValueId x, std::vector<int> axes, bool keepdims,
                         SourceLoc loc) {
  Op op;
  op.kind = kind;
  op.operands = {x};
  op.shape = reduce_shape(shape_of(x), axes, keepdims);
  op.axes = std::move(axes);
  op.keepdims = keepdims;
  op.loc = loc;
  return emit(std::move(op));
}

ValueId Lowering::transpose(ValueId x, const std::vector<int>& perm, SourceLoc loc) {
  ShapeResult r = transpose_shape(shape_of(x), perm);
  if (!r.ok()) fail(loc, r.error);
  Op op;
  op.kind = OpKind::kTranspose;
  op.operands = {x};
  op.axes = perm;
  op.shape = r.shape;
  op.loc = loc;
  return emit(std::move(op));
}

// Reshape keeping the page axis N whole: the dims before N and after N are reshaped
// separately, so no page's data moves to another page.
ValueId Lowering::reshape(ValueId x, const Shape& to, SourceLoc loc) {
  const Shape& from = shape_of(x);
  auto page_axis = [](const Shape& s) {
    return static_cast<int>(std::find_if(s.begin(), s.end(), is_page_dim) - s.begin());
  };
  int pf = page_axis(from), pt = page_axis(to);
  bool has_from = pf < static_cast<int>(from.size()), has_to = pt < static_cast<int>(to.size());
  Shape out;
  if (has_from || has_to) {
    std::string msg = "reshape cannot touch the page axis N: " + shape_to_string(from) + " to " +
                      shape_to_string(to) +
                      "; keep N as it is and reshape the other "
                      "axes";
    if (!has_from || !has_to) fail(loc, msg);
    Shape fa(from.begin(), from.begin() + pf), fb(from.begin() + pf + 1, from.end());
    Shape ta(to.begin(), to.begin() + pt), tb(to.begin() + pt + 1, to.end());
    ShapeResult ra = reshape_shape(fa, ta), rb = reshape_shape(fb, tb);
    if (!ra.ok() || !rb.ok()) fail(loc, msg);
    out = ra.shape;
    out.push_back(Dim::of(Symbol::kN));
    out.insert(out.end(), rb.shape.begin(), rb.shape.end());
  } else {
    ShapeResult r = reshape_shape(from, to);
    if (!r.ok()) fail(loc, r.error);
    out = r.shape;
  }
  if (out == from) return x;
  Op op;
  op.kind = OpKind::kReshape;
  op.operands = {x};
  op.shape = out;
  op.loc = loc;
  return emit(std::move(op));
}

Val Lowering::lower_subscript(const Expr& e) {
  Val obj = lower_expr(*e.lhs);
  if (!obj.tensor) fail(e.loc, "only tensors can be indexed, got " + const_to_string(obj.c));
  ValueId x = obj.id;
  const Shape& s = shape_of(x);
  // Each index item: an integer, a slice, None (new axis) or ... (the axes in between).
  struct Item {
    enum { kIndex, kSlice, kNewAxis, kEllipsis } kind;
    SliceSpec spec;
    SourceLoc loc;
  };
  std::vector<Item> items;
  std::vector<const Expr*> exprs;
  for (const auto& it : e.items) exprs.push_back(it.get());
  for (const Expr* ie : exprs) {
    Item item;
    item.loc = ie->loc;
    if (ie->kind == ExprKind::kSlice) {
      item.kind = Item::kSlice;
      auto bound = [&](const ast::ExprPtr& b) -> std::optional<int64_t> {
        if (!b) return std::nullopt;
        ConstValue c = const_arg(*b, "a slice bound");
        if (c.kind == Kind::kNone) return std::nullopt;
        if (c.kind != Kind::kInt)
          fail(b->loc, "slice bounds must be integer constants, got " + const_to_string(c) +
                           (c.kind == Kind::kSym ? " (a symbolic bound needs the geometry: "
                                                   "check with --model)"
                                                 : ""));
        if (c.i > kMaxDim || c.i < -kMaxDim) fail(b->loc, "slice bound is too large");
        return c.i;
      };
      item.spec.start = bound(ie->items[0]);
      item.spec.stop = bound(ie->items[1]);
      std::optional<int64_t> step = bound(ie->items[2]);
      item.spec.step = step.value_or(1);
      if (item.spec.step == 0) fail(ie->items[2]->loc, "slice step cannot be zero");
    } else {
      Val v = lower_expr(*ie);
      if (v.tensor)
        fail(ie->loc,
             "indices must be integer constants, slices, None or ...; indexing with a "
             "tensor is not supported");
      if (v.c.kind == Kind::kNone) {
        item.kind = Item::kNewAxis;
      } else if (v.c.kind == Kind::kEllipsis) {
        item.kind = Item::kEllipsis;
      } else if (v.c.kind == Kind::kInt) {
        item.kind = Item::kIndex;
        item.spec.index = true;
        item.spec.start = v.c.i;
      } else {
        fail(ie->loc,
             "indices must be integer constants, slices, None or ..., got " + const_to_string(v.c));
      }
    }
    items.push_back(item);
  }
  int consumed = 0, ellipses = 0;
  for (const Item& it : items) {
    if (it.kind == Item::kIndex || it.kind == Item::kSlice) ++consumed;
    if (it.kind == Item::kEllipsis && ++ellipses > 1)
      fail(it.loc, "an index can have only one ellipsis (...)");
  }
  int rank = static_cast<int>(s.size());
  if (consumed > rank)
    fail(e.loc,
         "too many indices (" + std::to_string(consumed) + ") for shape " + shape_to_string(s));
  std::vector<SliceSpec> specs;
  Shape sliced, final_shape;
  bool any_slice = false;
  int axis = 0;
  auto full_axis = [&]() {
    specs.push_back(SliceSpec{});
    sliced.push_back(s[axis]);
    final_shape.push_back(s[axis]);
    ++axis;
  };
  for (const Item& it : items) {
    switch (it.kind) {
      case Item::kNewAxis:
        final_shape.push_back(Dim::constant(1));
        break;
      case Item::kEllipsis:
        for (int k = 0; k < rank - consumed; ++k) full_axis();
        break;
      case Item::kIndex: {
        const Dim& d = s[axis];
        if (is_page_dim(d))
          fail(it.loc, "indexing the page axis N is not allowed: score sees every page alike");
        int64_t i = *it.spec.start;
        if (d.is_constant() && (i >= d.num || i < -d.num))
          fail(it.loc, "index " + std::to_string(i) + " is out of range for axis " +
                           std::to_string(axis) + " of size " + std::to_string(d.num) + " (shape " +
                           shape_to_string(s) + ")");
        specs.push_back(it.spec);
        any_slice = true;
        ++axis;
        break;
      }
      case Item::kSlice: {
        const Dim& d = s[axis];
        bool whole = !it.spec.start && !it.spec.stop && it.spec.step == 1;
        if (whole) {
          full_axis();
          break;
        }
        if (is_page_dim(d)) fail(it.loc, "slicing the page axis N is not allowed: use ':' for it");
        std::string error;
        std::optional<Dim> len = slice_length(d, it.spec, &error);
        if (!len)
          fail(it.loc,
               error + " (axis " + std::to_string(axis) + " of shape " + shape_to_string(s) + ")");
        specs.push_back(it.spec);
        sliced.push_back(*len);
        final_shape.push_back(*len);
        any_slice = true;
        ++axis;
        break;
      }
    }
  }
  while (axis < rank) full_axis();
  ValueId result = x;
  if (any_slice) {
    Op op;
    op.kind = OpKind::kSlice;
    op.operands = {x};
    op.slices = std::move(specs);
    op.shape = sliced;
    op.loc = e.loc;
    result = emit(std::move(op));
  }
  if (final_shape != shape_of(result)) result = reshape(result, final_shape, e.loc);
  return Val::of(result);
}

}  // namespace vortex::flow::lowering
