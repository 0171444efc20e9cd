// The lowering from the flow's syntax tree to its IR (flow/lowering.h), shared by the files of
// src/flow/lowering/ that implement it, one part of the language each: module.cpp (imports,
// constants, the Flow class, its Fields, States and Budget), statements.cpp (methods,
// statements, assignments, the SSA values they make), expressions.cpp (names, attributes,
// operators, subscripts, the op builders) and calls.cpp (functions and tensor methods).
// Internal: only those files include it.
#pragma once

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "flow/constant.h"
#include "flow/limits.h"
#include "flow/lowering.h"
#include "flow/shape_inference.h"

namespace vortex::flow::lowering {

using ast::Expr;
using ast::ExprKind;
using ast::Stmt;
using ast::StmtKind;
using Kind = ConstValue::Kind;

// A statement could not be lowered; its diagnostic is already reported.
struct LowerError {};

constexpr int kMaxRank = 8;
constexpr int64_t kMaxDim = int64_t{1} << 31;

inline const std::set<std::string>& forbidden_builtins() {
  static const std::set<std::string> names = {
      "open",       "exec",        "eval",         "__import__", "getattr",    "setattr",
      "delattr",    "globals",     "locals",       "vars",       "compile",    "input",
      "print",      "dir",         "type",         "object",     "super",      "breakpoint",
      "memoryview", "help",        "exit",         "quit",       "isinstance", "hasattr",
      "id",         "classmethod", "staticmethod", "property",   "len",        "range",
      "list",       "dict",        "set",          "tuple",      "int",        "float",
      "str",        "bool",        "map",          "filter",     "zip",        "enumerate",
      "sorted",     "reversed",    "iter",         "next",       "round",      "pow",
      "divmod",     "any",         "all",          "repr",       "format",     "chr",
      "ord",        "bytes",       "bytearray",    "frozenset",  "slice",      "hash",
      "callable",   "np",          "numpy",        "torch",      "math",       "os",
      "sys"};
  return names;
}

inline const std::vector<std::string>& tensor_methods() {
  static const std::vector<std::string> names = {
      "abs",      "exp",       "log",       "sqrt",    "clip",     "sum",
      "mean",     "max",       "min",       "l2norm",  "fold_max", "fold_min",
      "fold_sum", "fold_mean", "transpose", "reshape", "squeeze",  "T"};
  return names;
}

inline std::string join(const std::vector<std::string>& xs) {
  std::string out;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (i) out += ", ";
    out += xs[i];
  }
  return out;
}

inline bool is_dunder(const std::string& name) {
  return name.size() >= 2 && name.rfind("__", 0) == 0;
}

// What an expression lowers to: a compile-time constant or an SSA value.
struct Val {
  bool tensor = false;
  ValueId id = -1;
  ConstValue c;
  static Val of(ValueId id) {
    Val v;
    v.tensor = true;
    v.id = id;
    return v;
  }
  static Val of(ConstValue c) {
    Val v;
    v.c = std::move(c);
    return v;
  }
};

struct Local {
  Val value;
  bool poisoned = false;  // its definition failed: uses are silently abandoned
};

// Per-method lowering state.
struct MethodState {
  Phase phase = Phase::kSummarize;
  Function* fn = nullptr;
  std::map<std::string, Local> locals;
  std::vector<int> writes;              // per field
  std::vector<SourceLoc> first_write;   // per field
  std::map<int, ValueId> field_values;  // the latest value written to a field, per field
  bool scratch = false;                 // lowering a branch not taken: checked, then dropped
  bool returned = false;
};

class Lowering {
 public:
  Lowering(const std::string& filename, const FlowGeometry* geometry, DiagnosticSink& sink)
      : sink_(sink) {
    program_.filename = filename;
    if (geometry) {
      program_.geometry = *geometry;
      bound_ = true;
    }
  }

  std::optional<FlowProgram> run(const ast::Module& module) {
    try {
      lower_module(module);
    } catch (const LowerError&) {
      // A module-level failure already reported.
    }
    if (sink_.has_errors()) return std::nullopt;
    return std::move(program_);
  }

 private:
  // ---- diagnostics ----
  [[noreturn]] void fail(SourceLoc loc, std::string message) {
    sink_.error(loc, std::move(message));
    throw LowerError{};
  }

  // ---- module (module.cpp) ----
  void lower_module(const ast::Module& module);

  static bool is_docstring(const Stmt& s) {
    return s.kind == StmtKind::kExpr && s.value && s.value->kind == ExprKind::kString;
  }

  void lower_import(const Stmt& s);

  void lower_import_from(const Stmt& s);

  bool derives_from_flow(const Stmt& s) const;

  void check_assignable_name(const Expr& target);

  // A declaration that failed is reported once: later uses of its name are silently abandoned
  // (they would only say it is unknown, or suggest the wrong kind of declaration).
  void remember_failed_declaration(const Stmt& s);
  bool failed_declaration(const std::string& name) const {
    return failed_declarations_.count(name) > 0;
  }

  // Counts a module or class declaration against kMaxDeclarations (reported once).
  void count_declaration(const Expr& target);

  void lower_module_constant(const Stmt& s);

  // Constant context: no method, so any tensor op is an error.
  ConstValue eval_constant(const Expr& e, const std::string& what);

  // ---- class (module.cpp) ----
  void lower_class(const Stmt& cls);

  void lower_class_assign(const Stmt& s);

  Dim field_dim(const Expr& e, const std::string& field);

  void lower_field(const Stmt& s, bool state);

  // Fields together take at most kMaxFieldBytes per (page, KV head, layer) in their stored
  // dtype, States kMaxStateBytes. Symbols not bound yet count as 1, so what is refused here is
  // too large for every model; with the geometry bound the sizes are exact.
  void check_field_bytes(const FieldDecl& f);

  // ---- budget (module.cpp) ----
  std::optional<int64_t> budget_int(const ast::Keyword& k, bool allow_none);

  void lower_budget(const Stmt& s);

  // ---- methods (statements.cpp) ----
  void lower_method(const Stmt& def, Phase phase);

  void lower_block(const std::vector<ast::StmtPtr>& body, bool top_level);

  void lower_statement(const Stmt& s, bool last_top_level);

  void lower_if(const Stmt& s);

  void lower_assign(const Expr& target, const Expr& value, const std::string* aug_op,
                    SourceLoc loc);

  // The field a `self.name = ...` writes, after checking the phase allows it.
  int field_for_write(const Expr& target);

  // ---- values (statements.cpp) ----
  Dim sym(Symbol s) const;

  ValueId emit(Op op);

  // In score the page axis N appears at most once in a value, and only as its leading axis:
  // each page is scored on its own (and the GPU code keeps one page per thread group).
  void check_page_axis(const Op& op);

  const Op& op_of(ValueId id) const { return method_->fn->ops[id]; }
  const Shape& shape_of(ValueId id) const { return method_->fn->ops[id].shape; }

  ValueId as_tensor(const Val& v, SourceLoc loc);

  // ---- expressions (expressions.cpp) ----
  Val lower_expr(const Expr& e);

  Val lower_name(const Expr& e);

  Val read_self_attribute(const Expr& e);

  Val lower_attribute(const Expr& e);

  Val lower_unary(const Expr& e);

  static std::optional<OpKind> binary_kind(const std::string& op);

  Val lower_binary_values(const std::string& op, Val a, Val b, SourceLoc loc);

  // Matmul over the page axis mixes pages; allowed (it is cross-page), but not silently
  // pairing N with N in the batch dims. Nothing to check beyond the shape rules today.
  void check_no_page_contraction(ValueId, ValueId, SourceLoc) {}

  ValueId elementwise(OpKind kind, std::vector<ValueId> operands, SourceLoc loc,
                      const std::string& what);

  // ---- calls (calls.cpp) ----
  // Binds a call's arguments to parameter names; missing optional ones are null.
  std::vector<const Expr*> bind(const Expr& call, const std::string& fname,
                                const std::vector<std::string>& params, size_t required,
                                size_t skip_positional = 0);

  ConstValue const_arg(const Expr& e, const std::string& what);

  int64_t int_arg(const Expr& e, const std::string& what);

  bool bool_arg(const Expr* e, const std::string& what);

  int axis_arg(const Expr* e, int64_t fallback, const Shape& shape);

  // Reduction axes: None (all), an int, or a tuple of ints.
  std::vector<int> axes_arg(const Expr* e, const Shape& shape);

  Dim dim_value(const ConstValue& c, const Expr& e, bool allow_minus_one);

  // A shape argument: one dim, or a tuple of dims.
  Shape shape_arg(const Expr& e, bool allow_minus_one = false);

  Val lower_call(const Expr& call);

  ValueId tensor_arg(const Expr& e) { return as_tensor(lower_expr(e), e.loc); }

  static std::optional<OpKind> unary_kind(const std::string& name);
  static std::optional<OpKind> reduction_kind(const std::string& name);
  static std::optional<OpKind> fold_kind(const std::string& name);

  Val call_function(const std::string& fn, const Expr& call);

  Val call_method(const Val& obj, const Expr& callee, const Expr& call);

  // ---- op builders (expressions.cpp) ----
  ValueId reduce(OpKind kind, ValueId x, std::vector<int> axes, bool keepdims, SourceLoc loc);

  ValueId transpose(ValueId x, const std::vector<int>& perm, SourceLoc loc);

  // Reshape keeping the page axis N whole: the dims before N and after N are reshaped
  // separately, so no page's data moves to another page.
  ValueId reshape(ValueId x, const Shape& to, SourceLoc loc);

  Val lower_subscript(const Expr& e);

  DiagnosticSink& sink_;
  FlowProgram program_;
  bool bound_ = false;
  bool in_class_ = false;
  bool budget_seen_ = false;
  std::set<std::string> failed_declarations_;
  int declarations_ = 0;
  bool too_many_fields_reported_ = false;
  double field_bytes_ = 0, state_bytes_ = 0;  // of the Fields and States so far (lower bound)
  int statements_ = 0;                        // of the method being lowered
  std::vector<int> op_depth_;                 // per op of the method: its dependency depth
  std::string module_doc_, class_doc_;
  std::map<std::string, std::string> imports_;  // local alias -> vortex.flow name
  std::map<std::string, ConstValue> module_consts_;
  std::map<std::string, ConstValue> class_consts_;
  MethodState* method_ = nullptr;
};

}  // namespace vortex::flow::lowering
