#include "flow/lowering.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "core/error.h"
#include "flow/constant.h"
#include "flow/limits.h"
#include "flow/shape_inference.h"

namespace vortex::flow {

using ast::Expr;
using ast::ExprKind;
using ast::Stmt;
using ast::StmtKind;
using Kind = ConstValue::Kind;

const std::vector<std::string>& flow_module_names() {
  static const std::vector<std::string> names = {
      "Flow",        "Field",   "State", "Budget", "D",          "G",        "P",      "N",
      "maximum",     "minimum", "abs",   "exp",    "log",        "sqrt",     "relu",   "sigmoid",
      "silu",        "where",   "sum",   "mean",   "max",        "min",      "l2norm", "softmax",
      "expand_dims", "zeros",   "ones",  "full",   "page_index", "num_pages"};
  return names;
}

namespace {

// A statement could not be lowered; its diagnostic is already reported.
struct LowerError {};

constexpr int kMaxRank = 8;
constexpr int64_t kMaxDim = int64_t{1} << 31;

const std::set<std::string>& forbidden_builtins() {
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

const std::vector<std::string>& tensor_methods() {
  static const std::vector<std::string> names = {
      "abs",      "exp",       "log",       "sqrt",    "clip",     "sum",
      "mean",     "max",       "min",       "l2norm",  "fold_max", "fold_min",
      "fold_sum", "fold_mean", "transpose", "reshape", "squeeze",  "T"};
  return names;
}

std::string join(const std::vector<std::string>& xs) {
  std::string out;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (i) out += ", ";
    out += xs[i];
  }
  return out;
}

bool is_dunder(const std::string& name) {
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

  // ---- module ----
  void lower_module(const ast::Module& module) {
    const Stmt* flow_class = nullptr;
    for (size_t i = 0; i < module.body.size(); ++i) {
      const Stmt& s = *module.body[i];
      try {
        if (i == 0 && is_docstring(s)) {
          module_doc_ = s.value->text;
          continue;
        }
        switch (s.kind) {
          case StmtKind::kImportFrom:
            lower_import_from(s);
            break;
          case StmtKind::kImport:
            lower_import(s);
            break;
          case StmtKind::kAssign:
            lower_module_constant(s);
            break;
          case StmtKind::kClass:
            if (!derives_from_flow(s)) {
              fail(s.loc, "class '" + s.text +
                              "' does not derive from Flow; a flow file holds exactly one class, "
                              "`class " +
                              s.text + "(Flow):`");
            }
            if (flow_class) {
              fail(s.loc, "only one Flow class is allowed per file; '" + flow_class->text +
                              "' is already defined at line " +
                              std::to_string(flow_class->loc.line));
            }
            flow_class = &s;
            break;
          case StmtKind::kDef:
            fail(s.loc,
                 "functions outside the Flow class are not allowed; put the logic in "
                 "summarize or score");
          default:
            fail(s.loc,
                 "only a docstring, `from vortex.flow import ...`, constants and the Flow "
                 "class are allowed at module level");
        }
      } catch (const LowerError&) {
        remember_failed_declaration(s);
      }
    }
    if (!flow_class) {
      fail(SourceLoc{1, 1},
           "no class deriving from Flow: a flow file defines one, e.g. "
           "`class MyFlow(Flow):` with summarize(self, k, v) and score(self, q)");
    }
    lower_class(*flow_class);
  }

  static bool is_docstring(const Stmt& s) {
    return s.kind == StmtKind::kExpr && s.value && s.value->kind == ExprKind::kString;
  }

  void lower_import(const Stmt& s) {
    const std::string& name = s.aliases.empty() ? std::string("?") : s.aliases[0].name;
    if (name == "vortex.flow" || name == "vortex")
      fail(s.loc, "`import " + name + "` is not allowed; write `from vortex.flow import ...`");
    fail(s.loc, "`import " + name +
                    "` is not allowed: a flow may only import names with "
                    "`from vortex.flow import ...`");
  }

  void lower_import_from(const Stmt& s) {
    if (s.text != "vortex.flow") {
      fail(s.loc, "imports from '" + s.text +
                      "' are not allowed: a flow may only import names "
                      "with `from vortex.flow import ...`");
    }
    const auto& names = flow_module_names();
    for (const ast::Alias& a : s.aliases) {
      if (a.name == "*") {
        sink_.error(a.loc, "`from vortex.flow import *` is not allowed; import the names you use");
        continue;
      }
      if (std::find(names.begin(), names.end(), a.name) == names.end()) {
        sink_.error(a.loc,
                    "'" + a.name + "' is not part of vortex.flow; it offers: " + join(names));
        continue;
      }
      if (is_dunder(a.as)) {
        sink_.error(a.loc, "names starting with '__' are not allowed");
        continue;
      }
      imports_[a.as] = a.name;
    }
  }

  bool derives_from_flow(const Stmt& s) const {
    if (s.bases.size() != 1 || s.bases[0]->kind != ExprKind::kName) return false;
    auto it = imports_.find(s.bases[0]->text);
    return it != imports_.end() && it->second == "Flow";
  }

  void check_assignable_name(const Expr& target) {
    if (target.kind == ExprKind::kTuple)
      fail(target.loc, "tuple assignment is not allowed; assign one name at a time");
    if (target.kind != ExprKind::kName) fail(target.loc, "can only assign to a name here");
    const std::string& name = target.text;
    if (is_dunder(name)) fail(target.loc, "names starting with '__' are not allowed");
    if (imports_.count(name))
      fail(target.loc, "cannot assign to '" + name + "': it is imported from vortex.flow");
    if (name == "self") fail(target.loc, "cannot assign to 'self'");
  }

  // A declaration that failed is reported once: later uses of its name are silently abandoned
  // (they would only say it is unknown, or suggest the wrong kind of declaration).
  void remember_failed_declaration(const Stmt& s) {
    if (s.kind == StmtKind::kAssign && s.target && s.target->kind == ExprKind::kName)
      failed_declarations_.insert(s.target->text);
  }
  bool failed_declaration(const std::string& name) const {
    return failed_declarations_.count(name) > 0;
  }

  // Counts a module or class declaration against kMaxDeclarations (reported once).
  void count_declaration(const Expr& target) {
    if (++declarations_ <= kMaxDeclarations) return;
    if (declarations_ == kMaxDeclarations + 1)
      fail(target.loc, "more than " + std::to_string(kMaxDeclarations) +
                           " declarations: module constants, class constants, Fields and States "
                           "together (the declaration limit)");
    throw LowerError{};
  }

  void lower_module_constant(const Stmt& s) {
    check_assignable_name(*s.target);
    count_declaration(*s.target);
    ConstValue v = eval_constant(*s.value, "module constant '" + s.target->text + "'");
    module_consts_[s.target->text] = v;
  }

  // Constant context: no method, so any tensor op is an error.
  ConstValue eval_constant(const Expr& e, const std::string& what) {
    MethodState* saved = method_;
    method_ = nullptr;
    Val v;
    try {
      v = lower_expr(e);
    } catch (...) {
      method_ = saved;
      throw;
    }
    method_ = saved;
    if (v.tensor) fail(e.loc, what + " must be a compile-time constant");
    return v.c;
  }

  // ---- class ----
  void lower_class(const Stmt& cls) {
    program_.class_name = cls.text;
    program_.loc = cls.loc;
    in_class_ = true;
    const Stmt* summarize = nullptr;
    const Stmt* score = nullptr;
    for (size_t i = 0; i < cls.body.size(); ++i) {
      const Stmt& s = *cls.body[i];
      try {
        if (is_docstring(s)) {
          if (i == 0) class_doc_ = s.value->text;
          continue;
        }
        switch (s.kind) {
          case StmtKind::kPass:
            break;
          case StmtKind::kAssign:
            lower_class_assign(s);
            break;
          case StmtKind::kDef: {
            const Stmt** slot = s.text == "summarize" ? &summarize
                                : s.text == "score"   ? &score
                                                      : nullptr;
            if (!slot) {
              fail(s.loc,
                   "only summarize(self, k, v) and score(self, q) methods are allowed; "
                   "'" +
                       s.text + "' is not one of them");
            }
            if (*slot) {
              fail(s.loc, "method '" + s.text + "' is defined twice (first at line " +
                              std::to_string((*slot)->loc.line) + ")");
            }
            *slot = &s;
            break;
          }
          case StmtKind::kClass:
            fail(s.loc, "nested classes are not allowed in flows");
          case StmtKind::kImport:
          case StmtKind::kImportFrom:
            fail(s.loc, "imports belong at module level: `from vortex.flow import ...`");
          default:
            fail(s.loc,
                 "a Flow class body holds only a docstring, fields (Field/State), "
                 "budget = Budget(...), constants and the summarize and score methods");
        }
      } catch (const LowerError&) {
        remember_failed_declaration(s);
      }
    }
    program_.docstring = class_doc_.empty() ? module_doc_ : class_doc_;
    if (program_.docstring.find_first_not_of(" \t\r\n") == std::string::npos) {
      sink_.error(cls.loc, "flow '" + cls.text +
                               "' needs a docstring (module or class) that "
                               "names the algorithm and cites its source");
    }
    in_class_ = false;
    program_.summarize.phase = Phase::kSummarize;
    program_.summarize.params = {Param{"k", {sym(Symbol::kP), sym(Symbol::kD)}},
                                 Param{"v", {sym(Symbol::kP), sym(Symbol::kD)}}};
    program_.score.phase = Phase::kScore;
    program_.score.params = {Param{"q", {sym(Symbol::kG), sym(Symbol::kD)}}};
    if (summarize)
      lower_method(*summarize, Phase::kSummarize);
    else
      program_.summarize.loc = cls.loc;
    if (score) {
      lower_method(*score, Phase::kScore);
    } else {
      sink_.error(cls.loc, "flow '" + cls.text +
                               "' has no score(self, q) method; it must "
                               "return one score per page, shape [N]");
    }
  }

  void lower_class_assign(const Stmt& s) {
    check_assignable_name(*s.target);
    const std::string& name = s.target->text;
    if (name == "summarize" || name == "score")
      fail(s.target->loc, "'" + name + "' is a method name; it cannot be assigned");
    if (program_.field_index(name) >= 0 || class_consts_.count(name) ||
        (name == "budget" && budget_seen_))
      fail(s.target->loc, "'" + name + "' is defined twice in the class");
    count_declaration(*s.target);
    const Expr& v = *s.value;
    if (v.kind == ExprKind::kCall && v.lhs->kind == ExprKind::kName) {
      auto it = imports_.find(v.lhs->text);
      std::string callee = it == imports_.end() ? "" : it->second;
      if (callee == "Field" || callee == "State") return lower_field(s, callee == "State");
      if (callee == "Budget") return lower_budget(s);
    }
    class_consts_[name] = eval_constant(v, "class constant '" + name + "'");
  }

  Dim field_dim(const Expr& e, const std::string& field) {
    ConstValue c = eval_constant(e, "a dim of field '" + field + "'");
    std::optional<Dim> d = c.as_dim();
    if (c.kind == Kind::kSym && c.sym.symbol == Symbol::kN)
      fail(e.loc, "field dims cannot use N: a field is per page; the page axis is added in score");
    if (!d) {
      fail(e.loc, "a dim of field '" + field +
                      "' must be a positive integer or a multiple of D, "
                      "G or P (e.g. P // 4), got " +
                      const_to_string(c));
    }
    if (d->num <= 0) {
      fail(e.loc, "a dim of field '" + field + "' must be positive, got " + dim_to_string(*d));
    }
    if (d->is_constant() && d->num > kMaxDim) fail(e.loc, "field dim is too large");
    return *d;
  }

  void lower_field(const Stmt& s, bool state) {
    const Expr& call = *s.value;
    const std::string& name = s.target->text;
    const char* kind = state ? "State" : "Field";
    FieldDecl f;
    f.name = name;
    f.kind = state ? FieldKind::kState : FieldKind::kField;
    f.loc = s.target->loc;
    for (const ast::Keyword& k : call.keywords) {
      if (state) fail(k.loc, "State takes no keyword arguments (a State is always stored in f32)");
      if (k.name != "dtype")
        fail(k.loc, "unknown Field keyword '" + k.name +
                        "' (the only one is dtype=\"bf16\" or "
                        "dtype=\"int8\")");
      if (&k != &call.keywords.front()) fail(k.loc, "Field dtype is given twice");
      // A string literal (the one place a flow takes one besides docstrings).
      const std::string given = k.value->kind == ExprKind::kString ? k.value->text : "";
      if (given == "bf16") {
        f.dtype = FieldDtype::kBf16;
      } else if (given == "int8") {
        f.dtype = FieldDtype::kInt8;
      } else {
        fail(k.value->loc,
             "Field dtype must be the string \"bf16\" (the default) or \"int8\" "
             "(8-bit integers with a power-of-two scale per page)" +
                 (k.value->kind == ExprKind::kString ? ", got \"" + printable(given, 40) + "\""
                                                     : std::string()));
      }
    }
    if (call.items.size() != 0 && call.items.size() != 2) {
      fail(call.loc, std::string(kind) + " takes () for a scalar per page or (rows, cols), got " +
                         std::to_string(call.items.size()) + " arguments");
    }
    for (const auto& arg : call.items) f.dims.push_back(field_dim(*arg, name));
    if (static_cast<int>(program_.fields.size()) >= kMaxFields) {
      if (!too_many_fields_reported_) {
        too_many_fields_reported_ = true;
        fail(f.loc, std::string(kind) + " '" + name + "' is one more than the " +
                        std::to_string(kMaxFields) +
                        " Fields and States a flow may declare (the field limit)");
      }
      throw LowerError{};
    }
    check_field_bytes(f);
    program_.fields.push_back(std::move(f));
  }

  // Fields together take at most kMaxFieldBytes per (page, KV head, layer) in their stored
  // dtype, States kMaxStateBytes. Symbols not bound yet count as 1, so what is refused here is
  // too large for every model; with the geometry bound the sizes are exact.
  void check_field_bytes(const FieldDecl& f) {
    const bool state = f.kind == FieldKind::kState;
    const double values = min_elements(f.dims, program_.geometry);
    const double bytes = state                          ? 4 * values
                         : f.dtype == FieldDtype::kInt8 ? values + 4
                                                        : 2 * values;
    double& total = state ? state_bytes_ : field_bytes_;
    const int64_t limit = state ? kMaxStateBytes : kMaxFieldBytes;
    if (total + bytes <= static_cast<double>(limit)) {
      total += bytes;  // a refused declaration is not counted against the next ones
      return;
    }
    const bool symbolic =
        std::any_of(f.dims.begin(), f.dims.end(), [](const Dim& d) { return !d.is_constant(); });
    char amount[64];
    std::snprintf(amount, sizeof amount, "%.0f", bytes);
    fail(f.loc, std::string(state ? "State '" : "Field '") + f.name + "' takes " +
                    (symbolic ? "at least " : "") + amount +
                    " bytes per (page, KV head, layer), which brings the flow's " +
                    (state ? "States" : "Fields") + " over " + std::to_string(limit) +
                    " bytes = " + std::to_string(limit >> 10) + " KiB (the " +
                    (state ? "State" : "Field") + " memory limit)");
  }

  // ---- budget ----
  std::optional<int64_t> budget_int(const ast::Keyword& k, bool allow_none) {
    ConstValue c = eval_constant(*k.value, "Budget " + k.name);
    if (c.kind == Kind::kNone && allow_none) return std::nullopt;
    if (c.kind != Kind::kInt) {
      fail(k.value->loc, "Budget " + k.name + " must be an integer" +
                             (allow_none ? " or None" : "") + ", got " + const_to_string(c));
    }
    if (c.i > kMaxBudgetPages)
      fail(k.value->loc, "Budget " + k.name + " must be at most " +
                             std::to_string(kMaxBudgetPages) + " pages, got " +
                             std::to_string(c.i));
    return c.i;
  }

  void lower_budget(const Stmt& s) {
    if (s.target->text != "budget")
      fail(s.target->loc, "assign the budget policy to `budget = Budget(...)`");
    budget_seen_ = true;
    const Expr& call = *s.value;
    if (!call.items.empty())
      fail(call.items[0]->loc, "Budget takes keyword arguments only, e.g. Budget(ratio=1/16)");
    BudgetPolicy b;
    b.loc = call.loc;
    SourceLoc pages_loc, floor_loc;
    std::set<std::string> seen;
    for (const ast::Keyword& k : call.keywords) {
      if (!seen.insert(k.name).second) fail(k.loc, "Budget " + k.name + " is given twice");
      SourceLoc vloc = k.value->loc;
      if (k.name == "pages") {
        b.pages = budget_int(k, true);
        pages_loc = k.loc;
        if (b.pages && *b.pages < 0)
          fail(vloc, "Budget pages must be >= 0, got " + std::to_string(*b.pages));
      } else if (k.name == "ratio") {
        ConstValue c = eval_constant(*k.value, "Budget ratio");
        if (c.kind == Kind::kNone) continue;
        if (!c.is_number() || c.kind == Kind::kBool)
          fail(vloc, "Budget ratio must be a number in (0, 1], got " + const_to_string(c));
        double r = c.as_double();
        if (!(r > 0.0 && r <= 1.0))
          fail(vloc, "Budget ratio must be in (0, 1] (a fraction of the row's pages), got " +
                         const_to_string(c));
        b.ratio = r;
      } else if (k.name == "floor") {
        b.floor = *budget_int(k, false);
        floor_loc = k.loc;
        if (b.floor < 0) fail(vloc, "Budget floor must be >= 0, got " + std::to_string(b.floor));
      } else if (k.name == "cap") {
        b.cap = budget_int(k, true);
        if (b.cap && *b.cap < 0)
          fail(vloc, "Budget cap must be >= 0, got " + std::to_string(*b.cap));
      } else if (k.name == "sink" || k.name == "recent") {
        int64_t v = *budget_int(k, false);
        if (v < 0) fail(vloc, "Budget " + k.name + " must be >= 0 pages, got " + std::to_string(v));
        (k.name == "sink" ? b.sink : b.recent) = v;
      } else if (k.name == "dense_layers") {
        ConstValue c = eval_constant(*k.value, "Budget dense_layers");
        if (c.kind != Kind::kList && c.kind != Kind::kTuple)
          fail(vloc, "Budget dense_layers must be a list of layer indices, e.g. [0], got " +
                         printable(const_to_string(c), 40));
        b.dense_layers.clear();
        b.dense_layers_loc = vloc;
        if (c.items.size() > static_cast<size_t>(kMaxDenseLayers))
          fail(vloc, "Budget dense_layers has " + std::to_string(c.items.size()) +
                         " entries; at most " + std::to_string(kMaxDenseLayers) + " are allowed");
        for (const ConstValue& item : c.items) {
          if (item.kind != Kind::kInt || item.i < 0)
            fail(vloc, "Budget dense_layers must hold non-negative integers, got " +
                           printable(const_to_string(item), 40));
          if (item.i >= kMaxLayers)
            fail(vloc, "Budget dense_layers: layer " + std::to_string(item.i) +
                           " is out of range (layer indices are below " +
                           std::to_string(kMaxLayers) + ", and below the model's layer count)");
          b.dense_layers.push_back(item.i);
        }
      } else {
        fail(k.loc, "unknown Budget keyword '" + k.name +
                        "'; Budget takes pages, ratio, floor, cap, sink, recent, dense_layers");
      }
    }
    if (b.pages && b.ratio)
      fail(pages_loc,
           "Budget takes pages or ratio, not both: pages fixes the count, ratio "
           "scales it with the row's length");
    if (b.cap && b.floor > *b.cap) {
      fail(floor_loc, "Budget floor (" + std::to_string(b.floor) + ") is larger than cap (" +
                          std::to_string(*b.cap) + ")");
    }
    program_.budget = b;
  }

  // ---- methods ----
  void lower_method(const Stmt& def, Phase phase) {
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

  void lower_block(const std::vector<ast::StmtPtr>& body, bool top_level) {
    for (size_t i = 0; i < body.size(); ++i) {
      const Stmt& s = *body[i];
      if (++statements_ > kMaxStatements) {
        sink_.error(s.loc,
                    std::string(method_->phase == Phase::kSummarize ? "summarize" : "score") +
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

  void lower_statement(const Stmt& s, bool last_top_level) {
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

  void lower_if(const Stmt& s) {
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

  void lower_assign(const Expr& target, const Expr& value, const std::string* aug_op,
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
  int field_for_write(const Expr& target) {
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
      fail(target.loc, std::string(decl.kind == FieldKind::kField ? "field" : "state") + " '" +
                           name + "' is written twice (first at line " +
                           std::to_string(m.first_write[f].line) + "); write it exactly once");
    }
    ++m.writes[f];
    m.first_write[f] = target.loc;
    return f;
  }

  // ---- values ----
  Dim sym(Symbol s) const {
    const FlowGeometry& g = program_.geometry;
    if (bound_) {
      if (s == Symbol::kG && g.G > 0) return Dim::constant(g.G);
      if (s == Symbol::kD && g.D > 0) return Dim::constant(g.D);
      if (s == Symbol::kP && g.P > 0) return Dim::constant(g.P);
    }
    return Dim::of(s);
  }

  ValueId emit(Op op) {
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
  void check_page_axis(const Op& op) {
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

  const Op& op_of(ValueId id) const { return method_->fn->ops[id]; }
  const Shape& shape_of(ValueId id) const { return method_->fn->ops[id].shape; }

  ValueId as_tensor(const Val& v, SourceLoc loc) {
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

  // ---- expressions ----
  Val lower_expr(const Expr& e) {
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

  Val lower_name(const Expr& e) {
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

  Val read_self_attribute(const Expr& e) {
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

  Val lower_attribute(const Expr& e) {
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

  Val lower_unary(const Expr& e) {
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

  static std::optional<OpKind> binary_kind(const std::string& op) {
    static const std::map<std::string, OpKind> kinds = {
        {"+", OpKind::kAdd},       {"-", OpKind::kSub},   {"*", OpKind::kMul},  {"/", OpKind::kDiv},
        {"//", OpKind::kFloorDiv}, {"%", OpKind::kMod},   {"**", OpKind::kPow}, {"<", OpKind::kLt},
        {"<=", OpKind::kLe},       {">", OpKind::kGt},    {">=", OpKind::kGe},  {"==", OpKind::kEq},
        {"!=", OpKind::kNe},       {"@", OpKind::kMatMul}};
    auto it = kinds.find(op);
    if (it == kinds.end()) return std::nullopt;
    return it->second;
  }

  Val lower_binary_values(const std::string& op, Val a, Val b, SourceLoc loc) {
    std::optional<OpKind> kind = binary_kind(op);
    if (!kind) fail(loc, "operator '" + op + "' is not supported in flows");
    if (*kind == OpKind::kMatMul) {
      if (!a.tensor || !b.tensor) fail(loc, "both operands of '@' must be tensors");
      const Shape& sa = shape_of(a.id);
      const Shape& sb = shape_of(b.id);
      if ((sa.size() == 1 && count_page_axes(sa) > 0) ||
          (sb.size() <= 2 && count_page_axes(sb) > 0))
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

  // Matmul over the page axis mixes pages; allowed (it is cross-page), but not silently
  // pairing N with N in the batch dims. Nothing to check beyond the shape rules today.
  void check_no_page_contraction(ValueId, ValueId, SourceLoc) {}

  ValueId elementwise(OpKind kind, std::vector<ValueId> operands, SourceLoc loc,
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

  // ---- calls ----
  // Binds a call's arguments to parameter names; missing optional ones are null.
  std::vector<const Expr*> bind(const Expr& call, const std::string& fname,
                                const std::vector<std::string>& params, size_t required,
                                size_t skip_positional = 0) {
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

  ConstValue const_arg(const Expr& e, const std::string& what) {
    Val v = lower_expr(e);
    if (v.tensor) fail(e.loc, what + " must be a compile-time constant");
    return v.c;
  }

  int64_t int_arg(const Expr& e, const std::string& what) {
    ConstValue c = const_arg(e, what);
    if (c.kind != Kind::kInt) fail(e.loc, what + " must be an integer, got " + const_to_string(c));
    return c.i;
  }

  bool bool_arg(const Expr* e, const std::string& what) {
    if (!e) return false;
    ConstValue c = const_arg(*e, what);
    if (c.kind != Kind::kBool && c.kind != Kind::kInt)
      fail(e->loc, what + " must be True or False, got " + const_to_string(c));
    return c.kind == Kind::kBool ? c.b : c.i != 0;
  }

  int axis_arg(const Expr* e, int64_t fallback, const Shape& shape) {
    int64_t axis = e ? int_arg(*e, "axis") : fallback;
    std::optional<int> a = normalize_axis(axis, static_cast<int>(shape.size()));
    if (!a) fail(e ? e->loc : SourceLoc{}, axis_out_of_range_message(axis, shape));
    return *a;
  }

  // Reduction axes: None (all), an int, or a tuple of ints.
  std::vector<int> axes_arg(const Expr* e, const Shape& shape) {
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

  Dim dim_value(const ConstValue& c, const Expr& e, bool allow_minus_one) {
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
  Shape shape_arg(const Expr& e, bool allow_minus_one = false) {
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

  Val lower_call(const Expr& call) {
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

  ValueId tensor_arg(const Expr& e) { return as_tensor(lower_expr(e), e.loc); }

  static std::optional<OpKind> unary_kind(const std::string& name) {
    static const std::map<std::string, OpKind> kinds = {
        {"abs", OpKind::kAbs},   {"exp", OpKind::kExp},   {"log", OpKind::kLog},
        {"sqrt", OpKind::kSqrt}, {"relu", OpKind::kRelu}, {"sigmoid", OpKind::kSigmoid},
        {"silu", OpKind::kSilu}};
    auto it = kinds.find(name);
    if (it == kinds.end()) return std::nullopt;
    return it->second;
  }
  static std::optional<OpKind> reduction_kind(const std::string& name) {
    static const std::map<std::string, OpKind> kinds = {{"sum", OpKind::kSum},
                                                        {"mean", OpKind::kMean},
                                                        {"max", OpKind::kMax},
                                                        {"min", OpKind::kMin},
                                                        {"l2norm", OpKind::kL2Norm}};
    auto it = kinds.find(name);
    if (it == kinds.end()) return std::nullopt;
    return it->second;
  }
  static std::optional<OpKind> fold_kind(const std::string& name) {
    static const std::map<std::string, OpKind> kinds = {{"fold_sum", OpKind::kFoldSum},
                                                        {"fold_mean", OpKind::kFoldMean},
                                                        {"fold_max", OpKind::kFoldMax},
                                                        {"fold_min", OpKind::kFoldMin}};
    auto it = kinds.find(name);
    if (it == kinds.end()) return std::nullopt;
    return it->second;
  }

  Val call_function(const std::string& fn, const Expr& call) {
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

  Val call_method(const Val& obj, const Expr& callee, const Expr& call) {
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
        items = (c.kind == Kind::kTuple || c.kind == Kind::kList) ? c.items
                                                                  : std::vector<ConstValue>{c};
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

  // ---- op builders ----
  ValueId reduce(OpKind kind, ValueId x, std::vector<int> axes, bool keepdims, SourceLoc loc) {
    Op op;
    op.kind = kind;
    op.operands = {x};
    op.shape = reduce_shape(shape_of(x), axes, keepdims);
    op.axes = std::move(axes);
    op.keepdims = keepdims;
    op.loc = loc;
    return emit(std::move(op));
  }

  ValueId transpose(ValueId x, const std::vector<int>& perm, SourceLoc loc) {
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
  ValueId reshape(ValueId x, const Shape& to, SourceLoc loc) {
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

  Val lower_subscript(const Expr& e) {
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
          fail(ie->loc, "indices must be integer constants, slices, None or ..., got " +
                            const_to_string(v.c));
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
                             std::to_string(axis) + " of size " + std::to_string(d.num) +
                             " (shape " + shape_to_string(s) + ")");
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
          if (is_page_dim(d))
            fail(it.loc, "slicing the page axis N is not allowed: use ':' for it");
          std::string error;
          std::optional<Dim> len = slice_length(d, it.spec, &error);
          if (!len)
            fail(it.loc, error + " (axis " + std::to_string(axis) + " of shape " +
                             shape_to_string(s) + ")");
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

}  // namespace

std::optional<FlowProgram> lower_flow(const ast::Module& module, const std::string& filename,
                                      const FlowGeometry* geometry, DiagnosticSink& sink) {
  return Lowering(filename, geometry, sink).run(module);
}

}  // namespace vortex::flow
