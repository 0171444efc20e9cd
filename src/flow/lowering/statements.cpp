#include "flow/lowering/lowerer.h"

namespace vortex::flow::lowering {

void Lowering::lower_method(const Stmt& def, Phase phase) {
  Function& fn = phase == Phase::kSummarize ? program_.summarize : program_.score;
  fn.loc = def.loc;
  const char* sig = phase == Phase::kSummarize ? "summarize(self, k, v)" : "score(self, q)";
  size_t want = phase == Phase::kSummarize ? 3 : 2;
  if (def.params.size() != want || def.params[0].name != "self") {
    sink_.error(def.loc, std::string("the method must be declared as ") + sig);
    return;
  }
  MethodState m;
  m.phase = phase;
  m.fn = &fn;
  statements_ = 0;
  op_depth_.clear();
  m.writes.assign(program_.fields.size(), 0);
  m.first_write.assign(program_.fields.size(), SourceLoc{});
  method_ = &m;
  for (size_t i = 1; i < def.params.size(); ++i) {
    const ast::ParamDecl& p = def.params[i];
    if (is_dunder(p.name)) {
      sink_.error(p.loc, "names starting with '__' are not allowed");
      continue;
    }
    Op op;
    op.kind = OpKind::kInput;
    op.input = static_cast<int>(i - 1);
    op.shape = fn.params[i - 1].shape;
    op.loc = p.loc;
    fn.params[i - 1].name = p.name;
    m.locals[p.name].value = Val::of(emit(std::move(op)));
  }
  lower_block(def.body, /*top_level=*/true);
  if (phase == Phase::kScore && !m.returned) {
    sink_.error(def.loc, "score must end with `return scores`: one score per page, shape [N]");
  }
  method_ = nullptr;
}

void Lowering::lower_block(const std::vector<ast::StmtPtr>& body, bool top_level) {
  for (size_t i = 0; i < body.size(); ++i) {
    const Stmt& s = *body[i];
    if (++statements_ > kMaxStatements) {
      sink_.error(s.loc, std::string(method_->phase == Phase::kSummarize ? "summarize" : "score") +
                             " has more than " + std::to_string(kMaxStatements) +
                             " statements (the statement limit)");
      throw CompileAborted{};
    }
    try {
      lower_statement(s, top_level && i + 1 == body.size());
    } catch (const LowerError&) {
      if (s.kind == StmtKind::kAssign || s.kind == StmtKind::kAugAssign) {
        if (s.target && s.target->kind == ExprKind::kName)
          method_->locals[s.target->text].poisoned = true;
      }
    }
  }
}

void Lowering::lower_statement(const Stmt& s, bool last_top_level) {
  MethodState& m = *method_;
  const char* method = m.phase == Phase::kSummarize ? "summarize" : "score";
  if (m.returned && !m.scratch)
    fail(s.loc, "code after `return` is not allowed; return must be the last statement");
  switch (s.kind) {
    case StmtKind::kPass:
      return;
    case StmtKind::kExpr:
      if (is_docstring(s)) return;
      lower_expr(*s.value);  // reports forbidden names and calls first
      fail(s.loc, "this expression's value is not used; assign it to a name or a field");
    case StmtKind::kAssign:
      return lower_assign(*s.target, *s.value, nullptr, s.loc);
    case StmtKind::kAugAssign:
      return lower_assign(*s.target, *s.value, &s.text, s.loc);
    case StmtKind::kReturn: {
      if (m.phase == Phase::kSummarize)
        fail(s.loc, "summarize does not return a value; write fields with self.name = ...");
      if (!s.value) fail(s.loc, "score must return one score per page, shape [N]");
      if (!last_top_level)
        fail(s.loc,
             "return must be the last statement of score, outside any `if`; assign the "
             "scores to a name in each branch and return it at the end");
      m.returned = true;
      Val v = lower_expr(*s.value);
      if (!v.tensor && (v.c.kind == Kind::kTuple || v.c.kind == Kind::kList))
        fail(s.value->loc, "score returns one tensor of shape [N], not a tuple");
      m.fn->result = as_tensor(v, s.value->loc);
      m.fn->result_loc = s.loc;
      return;
    }
    case StmtKind::kIf:
      return lower_if(s);
    case StmtKind::kDef:
      fail(s.loc, std::string("nested functions are not allowed in flows; write the "
                              "computation inline in ") +
                      method);
    case StmtKind::kClass:
      fail(s.loc, "classes are not allowed inside methods");
    case StmtKind::kImport:
    case StmtKind::kImportFrom:
      fail(s.loc, "imports belong at module level: `from vortex.flow import ...`");
  }
}

void Lowering::lower_if(const Stmt& s) {
  MethodState& m = *method_;
  Val cond = lower_expr(*s.value);
  std::optional<bool> truth = cond.tensor ? std::nullopt : const_truth(cond.c);
  if (!truth) {
    fail(s.value->loc,
         "`if` conditions must be compile-time constants (numbers, D, G, P and "
         "module or class constants); for tensors use where(cond, a, b)");
  }
  const auto& taken = *truth ? s.body : s.orelse;
  const auto& dropped = *truth ? s.orelse : s.body;
  // Check the branch not taken first (its ops are then dropped), so ops stay in order.
  if (!dropped.empty()) {
    MethodState saved = m;
    size_t ops = m.fn->ops.size();
    m.scratch = true;
    lower_block(dropped, false);
    m.fn->ops.resize(ops);
    op_depth_.resize(ops);
    Function* fn = m.fn;
    m = std::move(saved);
    m.fn = fn;
  }
  lower_block(taken, false);
}

void Lowering::lower_assign(const Expr& target, const Expr& value, const std::string* aug_op,
                            SourceLoc loc) {
  MethodState& m = *method_;
  if (target.kind == ExprKind::kAttribute && target.lhs->kind == ExprKind::kName &&
      target.lhs->text == "self") {
    int f = field_for_write(target);
    Val v = aug_op ? lower_binary_values(*aug_op, lower_expr(target), lower_expr(value), loc)
                   : lower_expr(value);
    ValueId id = as_tensor(v, value.loc);
    Op op;
    op.kind = OpKind::kStoreField;
    op.type = ValueType::kVoid;
    op.field = f;
    op.operands = {id};
    op.loc = target.loc;
    emit(std::move(op));
    m.field_values[f] = id;
    return;
  }
  if (target.kind == ExprKind::kSubscript)
    fail(target.loc,
         "item assignment is not allowed: tensors are immutable in flows; build "
         "the value with where(...) or arithmetic");
  if (target.kind == ExprKind::kAttribute)
    fail(target.loc, "only fields can be assigned, as self.name = ...");
  check_assignable_name(target);
  Val v = aug_op ? lower_binary_values(*aug_op, lower_expr(target), lower_expr(value), loc)
                 : lower_expr(value);
  if (!v.tensor && (v.c.kind == Kind::kString || v.c.kind == Kind::kEllipsis))
    fail(value.loc, "a local name must hold a tensor or a constant");
  m.locals[target.text] = Local{v, false};
}

// The field a `self.name = ...` writes, after checking the phase allows it.
int Lowering::field_for_write(const Expr& target) {
  MethodState& m = *method_;
  const std::string& name = target.text;
  int f = program_.field_index(name);
  if (f < 0) {
    if (class_consts_.count(name))
      fail(target.loc, "cannot assign to class constant '" + name + "'");
    if (failed_declaration(name)) throw LowerError{};  // its declaration's error says why
    fail(target.loc, "unknown field '" + name + "': declare it in the class body, e.g. " + name +
                         (m.phase == Phase::kSummarize
                              ? " = Field(1, D) (a Field is written by summarize)"
                              : " = State(1, D) (a State is per request, kept by score)"));
  }
  const FieldDecl& decl = program_.fields[f];
  if (m.phase == Phase::kSummarize && decl.kind == FieldKind::kState) {
    fail(target.loc, "State '" + name +
                         "' is per request and lives in score; summarize can "
                         "only write Fields");
  }
  if (m.phase == Phase::kScore && decl.kind == FieldKind::kField) {
    fail(target.loc, "score cannot write Field '" + name +
                         "': Fields are written once by "
                         "summarize; declare per-request state with State(...) to update it in "
                         "score");
  }
  if (m.writes[f] > 0) {
    fail(target.loc, std::string(decl.kind == FieldKind::kField ? "field" : "state") + " '" + name +
                         "' is written twice (first at line " +
                         std::to_string(m.first_write[f].line) + "); write it exactly once");
  }
  ++m.writes[f];
  m.first_write[f] = target.loc;
  return f;
}

Dim Lowering::sym(Symbol s) const {
  const FlowGeometry& g = program_.geometry;
  if (bound_) {
    if (s == Symbol::kG && g.G > 0) return Dim::constant(g.G);
    if (s == Symbol::kD && g.D > 0) return Dim::constant(g.D);
    if (s == Symbol::kP && g.P > 0) return Dim::constant(g.P);
  }
  return Dim::of(s);
}

ValueId Lowering::emit(Op op) {
  if (!method_)
    fail(op.loc,
         "this needs a tensor operation, which is not allowed in a constant; constants "
         "are numbers and multiples of D, G, P (e.g. P // 4)");
  if (op.shape.size() > kMaxRank)
    fail(op.loc, "tensors of rank more than " + std::to_string(kMaxRank) +
                     " are not supported (shape " + shape_to_string(op.shape) + ")");
  check_page_axis(op);
  Function& fn = *method_->fn;
  const char* phase = fn.phase == Phase::kSummarize ? "summarize" : "score";
  if (static_cast<int>(fn.ops.size()) >= kMaxOps) {
    sink_.error(op.loc, std::string(phase) + " needs more than " + std::to_string(kMaxOps) +
                            " operations (the operation limit); simplify the flow");
    throw CompileAborted{};
  }
  int depth = 1;
  for (ValueId id : op.operands) depth = std::max(depth, op_depth_[static_cast<size_t>(id)] + 1);
  if (depth > kMaxOpDepth) {
    sink_.error(op.loc, "this value is the end of a chain of more than " +
                            std::to_string(kMaxOpDepth) + " dependent operations in " + phase +
                            " (the dependency depth limit); compute it in fewer steps");
    throw CompileAborted{};
  }
  fn.ops.push_back(std::move(op));
  op_depth_.push_back(depth);
  return static_cast<ValueId>(fn.ops.size() - 1);
}

// In score the page axis N appears at most once in a value, and only as its leading axis:
// each page is scored on its own (and the GPU code keeps one page per thread group).
void Lowering::check_page_axis(const Op& op) {
  const int pages = count_page_axes(op.shape);
  if (pages == 0) return;
  if (pages > 1)
    fail(op.loc, "this gives shape " + shape_to_string(op.shape) +
                     ", with the page axis N more than once: a value has at most one N axis "
                     "(a score sees each page once)");
  if (!is_page_dim(op.shape[0]))
    fail(op.loc, "this gives shape " + shape_to_string(op.shape) +
                     ", where the page axis N is not the leading axis: N must stay axis 0 of "
                     "every value (keep it first, e.g. x.transpose(0, 2, 1) instead of x.T)");
}

ValueId Lowering::as_tensor(const Val& v, SourceLoc loc) {
  if (v.tensor) return v.id;
  Op op;
  op.loc = loc;
  switch (v.c.kind) {
    case Kind::kInt:
    case Kind::kFloat:
    case Kind::kBool:
      op.kind = OpKind::kConstant;
      op.value = v.c.as_double();
      return emit(std::move(op));
    case Kind::kSym:
      op.kind = OpKind::kDimValue;
      op.dim = v.c.sym;
      return emit(std::move(op));
    default:
      fail(loc, std::string("expected a tensor or a number here, got ") +
                    const_kind_name(v.c.kind) + " " + const_to_string(v.c));
  }
}

}  // namespace vortex::flow::lowering
