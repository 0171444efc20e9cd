#include "flow/lowering/lowerer.h"

namespace vortex::flow::lowering {

// Binds a call's arguments to parameter names; missing optional ones are null.
std::vector<const Expr*> Lowering::bind(const Expr& call, const std::string& fname,
                                        const std::vector<std::string>& params, size_t required,
                                        size_t skip_positional) {
  std::vector<const Expr*> slots(params.size(), nullptr);
  std::string sig = fname + "(" + join(params) + ")";
  size_t npos = call.items.size();
  if (npos > params.size() - skip_positional)
    fail(call.loc, sig + " takes at most " + std::to_string(params.size() - skip_positional) +
                       " positional arguments, got " + std::to_string(npos));
  for (size_t i = 0; i < npos; ++i) slots[i + skip_positional] = call.items[i].get();
  for (const ast::Keyword& k : call.keywords) {
    auto it = std::find(params.begin(), params.end(), k.name);
    if (it == params.end() || static_cast<size_t>(it - params.begin()) < skip_positional)
      fail(k.loc, "unexpected keyword '" + k.name + "' for " + sig);
    size_t idx = it - params.begin();
    if (slots[idx]) fail(k.loc, "argument '" + k.name + "' of " + fname + " is given twice");
    slots[idx] = k.value.get();
  }
  for (size_t i = skip_positional; i < required; ++i)
    if (!slots[i]) fail(call.loc, sig + " is missing argument '" + params[i] + "'");
  return slots;
}

ConstValue Lowering::const_arg(const Expr& e, const std::string& what) {
  Val v = lower_expr(e);
  if (v.tensor) fail(e.loc, what + " must be a compile-time constant");
  return v.c;
}

int64_t Lowering::int_arg(const Expr& e, const std::string& what) {
  ConstValue c = const_arg(e, what);
  if (c.kind != Kind::kInt) fail(e.loc, what + " must be an integer, got " + const_to_string(c));
  return c.i;
}

bool Lowering::bool_arg(const Expr* e, const std::string& what) {
  if (!e) return false;
  ConstValue c = const_arg(*e, what);
  if (c.kind != Kind::kBool && c.kind != Kind::kInt)
    fail(e->loc, what + " must be True or False, got " + const_to_string(c));
  return c.kind == Kind::kBool ? c.b : c.i != 0;
}

int Lowering::axis_arg(const Expr* e, int64_t fallback, const Shape& shape) {
  int64_t axis = e ? int_arg(*e, "axis") : fallback;
  std::optional<int> a = normalize_axis(axis, static_cast<int>(shape.size()));
  if (!a) fail(e ? e->loc : SourceLoc{}, axis_out_of_range_message(axis, shape));
  return *a;
}

// Reduction axes: None (all), an int, or a tuple of ints.
std::vector<int> Lowering::axes_arg(const Expr* e, const Shape& shape) {
  std::vector<int> axes;
  int rank = static_cast<int>(shape.size());
  if (!e) {
    for (int i = 0; i < rank; ++i) axes.push_back(i);
    return axes;
  }
  ConstValue c = const_arg(*e, "axis");
  std::vector<ConstValue> items;
  if (c.kind == Kind::kNone) {
    for (int i = 0; i < rank; ++i) axes.push_back(i);
    return axes;
  }
  if (c.kind == Kind::kTuple || c.kind == Kind::kList)
    items = c.items;
  else
    items = {c};
  for (const ConstValue& item : items) {
    if (item.kind != Kind::kInt)
      fail(e->loc,
           "axis must be an integer, a tuple of integers or None, got " + const_to_string(c));
    std::optional<int> a = normalize_axis(item.i, rank);
    if (!a) fail(e->loc, axis_out_of_range_message(item.i, shape));
    if (std::find(axes.begin(), axes.end(), *a) != axes.end())
      fail(e->loc, "axis " + std::to_string(item.i) + " is repeated");
    axes.push_back(*a);
  }
  std::sort(axes.begin(), axes.end());
  return axes;
}

Dim Lowering::dim_value(const ConstValue& c, const Expr& e, bool allow_minus_one) {
  std::optional<Dim> d = c.as_dim();
  if (!d)
    fail(e.loc,
         "a dim must be an integer or a multiple of N, G, D or P, got " + const_to_string(c));
  if (allow_minus_one && d->is_constant() && d->num == -1) return *d;
  if (d->num <= 0) fail(e.loc, "dims must be positive, got " + dim_to_string(*d));
  if (d->symbol == Symbol::kN && !(d->num == 1 && d->den == 1))
    fail(e.loc, "the page axis must be exactly N, got " + dim_to_string(*d));
  if ((d->is_constant() && d->num > kMaxDim) || d->num > (1 << 20) || d->den > (1 << 20))
    fail(e.loc, "dim " + dim_to_string(*d) + " is too large");
  return *d;
}

// A shape argument: one dim, or a tuple of dims.
Shape Lowering::shape_arg(const Expr& e, bool allow_minus_one) {
  ConstValue c = const_arg(e, "a shape");
  Shape s;
  if (c.kind == Kind::kTuple || c.kind == Kind::kList) {
    for (const ConstValue& item : c.items) s.push_back(dim_value(item, e, allow_minus_one));
  } else {
    s.push_back(dim_value(c, e, allow_minus_one));
  }
  if (s.size() > kMaxRank) fail(e.loc, "shapes of rank more than 8 are not supported");
  return s;
}

Val Lowering::lower_call(const Expr& call) {
  const Expr& callee = *call.lhs;
  if (callee.kind == ExprKind::kName) {
    const std::string& name = callee.text;
    bool local = method_ && method_->locals.count(name);
    auto it = imports_.find(name);
    if (!local && it != imports_.end()) return call_function(it->second, call);
    if (!local && (module_consts_.count(name) || (in_class_ && class_consts_.count(name))))
      fail(callee.loc, "'" + name + "' is a constant, not a function");
    lower_name(callee);  // reports unknown and forbidden names first
    fail(callee.loc, "'" + name + "' is not a function");
  }
  if (callee.kind == ExprKind::kAttribute) {
    if (is_dunder(callee.text))
      fail(callee.loc, "attribute '" + callee.text +
                           "' is not allowed: flows cannot reach "
                           "Python internals");
    if (callee.lhs->kind == ExprKind::kName && callee.lhs->text == "self") {
      if (callee.text == "summarize" || callee.text == "score")
        fail(callee.loc, "self." + callee.text +
                             "(...) cannot be called: flows have no calls "
                             "between methods and no recursion");
      read_self_attribute(callee);  // reports unknown fields first
      fail(callee.loc, "self." + callee.text + " is not a method");
    }
    Val obj = lower_expr(*callee.lhs);
    return call_method(obj, callee, call);
  }
  fail(call.loc, "only functions from vortex.flow and tensor methods can be called");
}

std::optional<OpKind> Lowering::unary_kind(const std::string& name) {
  static const std::map<std::string, OpKind> kinds = {
      {"abs", OpKind::kAbs},   {"exp", OpKind::kExp},   {"log", OpKind::kLog},
      {"sqrt", OpKind::kSqrt}, {"relu", OpKind::kRelu}, {"sigmoid", OpKind::kSigmoid},
      {"silu", OpKind::kSilu}};
  auto it = kinds.find(name);
  if (it == kinds.end()) return std::nullopt;
  return it->second;
}

std::optional<OpKind> Lowering::reduction_kind(const std::string& name) {
  static const std::map<std::string, OpKind> kinds = {{"sum", OpKind::kSum},
                                                      {"mean", OpKind::kMean},
                                                      {"max", OpKind::kMax},
                                                      {"min", OpKind::kMin},
                                                      {"l2norm", OpKind::kL2Norm}};
  auto it = kinds.find(name);
  if (it == kinds.end()) return std::nullopt;
  return it->second;
}

std::optional<OpKind> Lowering::fold_kind(const std::string& name) {
  static const std::map<std::string, OpKind> kinds = {{"fold_sum", OpKind::kFoldSum},
                                                      {"fold_mean", OpKind::kFoldMean},
                                                      {"fold_max", OpKind::kFoldMax},
                                                      {"fold_min", OpKind::kFoldMin}};
  auto it = kinds.find(name);
  if (it == kinds.end()) return std::nullopt;
  return it->second;
}

Val Lowering::call_function(const std::string& fn, const Expr& call) {
  if (fn == "Flow" || fn == "Field" || fn == "State" || fn == "Budget")
    fail(call.loc, fn + "(...) can only be used in the class body, as name = " + fn + "(...)");
  if (fn == "D" || fn == "G" || fn == "P" || fn == "N")
    fail(call.loc, "'" + fn + "' is a dim, not a function");
  if (auto k = unary_kind(fn)) {
    auto a = bind(call, fn, {"x"}, 1);
    return Val::of(elementwise(*k, {tensor_arg(*a[0])}, call.loc, fn));
  }
  if (fn == "maximum" || fn == "minimum") {
    auto a = bind(call, fn, {"a", "b"}, 2);
    ValueId x = tensor_arg(*a[0]);
    ValueId y = tensor_arg(*a[1]);
    return Val::of(
        elementwise(fn == "maximum" ? OpKind::kMaximum : OpKind::kMinimum, {x, y}, call.loc, fn));
  }
  if (fn == "where") {
    auto a = bind(call, fn, {"cond", "a", "b"}, 3);
    ValueId c = tensor_arg(*a[0]);
    ValueId x = tensor_arg(*a[1]);
    ValueId y = tensor_arg(*a[2]);
    return Val::of(elementwise(OpKind::kWhere, {c, x, y}, call.loc, fn));
  }
  if (auto k = reduction_kind(fn)) {
    auto a = bind(call, fn, {"x", "axis", "keepdims"}, 1);
    ValueId x = tensor_arg(*a[0]);
    return Val::of(
        reduce(*k, x, axes_arg(a[1], shape_of(x)), bool_arg(a[2], "keepdims"), call.loc));
  }
  if (fn == "softmax") {
    auto a = bind(call, fn, {"x", "axis"}, 1);
    ValueId x = tensor_arg(*a[0]);
    if (shape_of(x).empty()) fail(call.loc, "softmax needs a tensor with at least one axis");
    int axis = axis_arg(a[1], -1, shape_of(x));
    Op op;
    op.kind = OpKind::kSoftmax;
    op.operands = {x};
    op.axis = axis;
    op.shape = shape_of(x);
    op.loc = call.loc;
    return Val::of(emit(std::move(op)));
  }
  if (fn == "expand_dims") {
    auto a = bind(call, fn, {"x", "axis"}, 2);
    ValueId x = tensor_arg(*a[0]);
    Shape s = shape_of(x);
    int64_t axis = int_arg(*a[1], "axis");
    std::optional<int> ax = normalize_axis(axis, static_cast<int>(s.size()) + 1);
    if (!ax) fail(a[1]->loc, axis_out_of_range_message(axis, s));
    s.insert(s.begin() + *ax, Dim::constant(1));
    return Val::of(reshape(x, s, call.loc));
  }
  if (fn == "page_index" || fn == "num_pages") {
    bind(call, fn, {}, 0);
    if (!method_ || method_->phase != Phase::kScore)
      fail(call.loc, fn + "() (the row's page positions) exists only in score: summarize runs "
                          "once per page, whatever row reads it");
    Op op;
    op.kind = fn == "page_index" ? OpKind::kPageIndex : OpKind::kRowPages;
    if (op.kind == OpKind::kPageIndex) op.shape = {Dim::of(Symbol::kN)};
    op.loc = call.loc;
    return Val::of(emit(std::move(op)));
  }
  if (fn == "zeros" || fn == "ones" || fn == "full") {
    auto a = fn == "full" ? bind(call, fn, {"shape", "value"}, 2) : bind(call, fn, {"shape"}, 1);
    Op op;
    op.kind = OpKind::kConstant;
    op.shape = shape_arg(*a[0]);
    op.value = fn == "ones" ? 1.0 : 0.0;
    if (fn == "full") {
      ConstValue v = const_arg(*a[1], "the fill value");
      if (!v.is_number())
        fail(a[1]->loc, "the fill value must be a number, got " + const_to_string(v));
      op.value = v.as_double();
    }
    op.loc = call.loc;
    return Val::of(emit(std::move(op)));
  }
  fail(call.loc, "'" + fn + "' cannot be called");
}

Val Lowering::call_method(const Val& obj, const Expr& callee, const Expr& call) {
  const std::string& name = callee.text;
  SourceLoc loc = callee.loc;
  const auto& methods = tensor_methods();
  if (std::find(methods.begin(), methods.end(), name) == methods.end() || name == "T") {
    fail(loc, "unknown tensor method '" + name + "'; tensors have " + join(methods));
  }
  ValueId x = as_tensor(obj, callee.lhs->loc);
  const Shape& s = shape_of(x);
  if (auto k = unary_kind(name)) {
    bind(call, name, {}, 0);
    return Val::of(elementwise(*k, {x}, loc, name));
  }
  if (name == "clip") {
    auto a = bind(call, name, {"lo", "hi"}, 2);
    ValueId lo = tensor_arg(*a[0]);
    ValueId hi = tensor_arg(*a[1]);
    ValueId m = elementwise(OpKind::kMaximum, {x, lo}, loc, "clip");
    return Val::of(elementwise(OpKind::kMinimum, {m, hi}, loc, "clip"));
  }
  if (auto k = reduction_kind(name)) {
    auto a = bind(call, name, {"axis", "keepdims"}, 0);
    return Val::of(reduce(*k, x, axes_arg(a[0], s), bool_arg(a[1], "keepdims"), loc));
  }
  if (auto k = fold_kind(name)) {
    auto a = bind(call, name, {"size", "axis"}, 1);
    int64_t g = int_arg(*a[0], "the fold size");
    if (s.empty()) fail(loc, name + " needs a tensor with at least one axis");
    int axis = axis_arg(a[1], 0, s);
    ShapeResult r = fold_shape(s, axis, g);
    if (!r.ok()) fail(a[0]->loc, r.error);
    Op op;
    op.kind = *k;
    op.operands = {x};
    op.axis = axis;
    op.group = g;
    op.shape = r.shape;
    op.loc = loc;
    return Val::of(emit(std::move(op)));
  }
  if (name == "transpose") {
    if (!call.keywords.empty()) fail(call.keywords[0].loc, "transpose takes axes positionally");
    std::vector<int> perm;
    std::vector<ConstValue> items;
    if (call.items.size() == 1) {
      ConstValue c = const_arg(*call.items[0], "transpose axes");
      items =
          (c.kind == Kind::kTuple || c.kind == Kind::kList) ? c.items : std::vector<ConstValue>{c};
    } else {
      for (const auto& item : call.items) items.push_back(const_arg(*item, "transpose axes"));
    }
    if (items.empty()) {
      for (size_t i = 0; i < s.size(); ++i) perm.push_back(static_cast<int>(s.size() - 1 - i));
    }
    for (const ConstValue& c : items) {
      if (c.kind != Kind::kInt) fail(call.loc, "transpose axes must be integers");
      std::optional<int> a = normalize_axis(c.i, static_cast<int>(s.size()));
      if (!a) fail(call.loc, axis_out_of_range_message(c.i, s));
      perm.push_back(*a);
    }
    return Val::of(transpose(x, perm, loc));
  }
  if (name == "reshape") {
    if (!call.keywords.empty()) fail(call.keywords[0].loc, "reshape takes dims positionally");
    if (call.items.empty()) fail(loc, "reshape needs the new shape");
    Shape to;
    if (call.items.size() == 1) {
      to = shape_arg(*call.items[0], true);
    } else {
      for (const auto& item : call.items) {
        Shape one = shape_arg(*item, true);
        if (one.size() != 1) fail(item->loc, "reshape dims must be integers or dims");
        to.push_back(one[0]);
      }
    }
    return Val::of(reshape(x, to, loc));
  }
  if (name == "squeeze") {
    auto a = bind(call, name, {"axis"}, 0);
    Shape out;
    if (!a[0]) {
      for (const Dim& d : s)
        if (!d.is_one()) out.push_back(d);
    } else {
      std::vector<int> axes = axes_arg(a[0], s);
      for (int i = 0; i < static_cast<int>(s.size()); ++i) {
        bool drop = std::find(axes.begin(), axes.end(), i) != axes.end();
        if (drop && !s[i].is_one())
          fail(a[0]->loc, "cannot squeeze axis " + std::to_string(i) + " of shape " +
                              shape_to_string(s) + ": its size is not 1");
        if (!drop) out.push_back(s[i]);
      }
    }
    return Val::of(reshape(x, out, loc));
  }
  fail(loc, "unknown tensor method '" + name + "'");
}

}  // namespace vortex::flow::lowering
