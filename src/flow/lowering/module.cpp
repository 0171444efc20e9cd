#include "flow/lowering/lowerer.h"

namespace vortex::flow::lowering {

void Lowering::lower_module(const ast::Module& module) {
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
                            "' is already defined at line " + std::to_string(flow_class->loc.line));
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

void Lowering::lower_import(const Stmt& s) {
  const std::string& name = s.aliases.empty() ? std::string("?") : s.aliases[0].name;
  if (name == "vortex.flow" || name == "vortex")
    fail(s.loc, "`import " + name + "` is not allowed; write `from vortex.flow import ...`");
  fail(s.loc, "`import " + name +
                  "` is not allowed: a flow may only import names with "
                  "`from vortex.flow import ...`");
}

void Lowering::lower_import_from(const Stmt& s) {
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
      sink_.error(a.loc, "'" + a.name + "' is not part of vortex.flow; it offers: " + join(names));
      continue;
    }
    if (is_dunder(a.as)) {
      sink_.error(a.loc, "names starting with '__' are not allowed");
      continue;
    }
    imports_[a.as] = a.name;
  }
}

bool Lowering::derives_from_flow(const Stmt& s) const {
  if (s.bases.size() != 1 || s.bases[0]->kind != ExprKind::kName) return false;
  auto it = imports_.find(s.bases[0]->text);
  return it != imports_.end() && it->second == "Flow";
}

void Lowering::check_assignable_name(const Expr& target) {
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
void Lowering::remember_failed_declaration(const Stmt& s) {
  if (s.kind == StmtKind::kAssign && s.target && s.target->kind == ExprKind::kName)
    failed_declarations_.insert(s.target->text);
}

// Counts a module or class declaration against kMaxDeclarations (reported once).
void Lowering::count_declaration(const Expr& target) {
  if (++declarations_ <= kMaxDeclarations) return;
  if (declarations_ == kMaxDeclarations + 1)
    fail(target.loc, "more than " + std::to_string(kMaxDeclarations) +
                         " declarations: module constants, class constants, Fields and States "
                         "together (the declaration limit)");
  throw LowerError{};
}

void Lowering::lower_module_constant(const Stmt& s) {
  check_assignable_name(*s.target);
  count_declaration(*s.target);
  ConstValue v = eval_constant(*s.value, "module constant '" + s.target->text + "'");
  module_consts_[s.target->text] = v;
}

// Constant context: no method, so any tensor op is an error.
ConstValue Lowering::eval_constant(const Expr& e, const std::string& what) {
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

void Lowering::lower_class(const Stmt& cls) {
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

void Lowering::lower_class_assign(const Stmt& s) {
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

Dim Lowering::field_dim(const Expr& e, const std::string& field) {
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

void Lowering::lower_field(const Stmt& s, bool state) {
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
void Lowering::check_field_bytes(const FieldDecl& f) {
  const bool state = f.kind == FieldKind::kState;
  const double values = min_elements(f.dims, program_.geometry);
  const double bytes = state ? 4 * values : f.dtype == FieldDtype::kInt8 ? values + 4 : 2 * values;
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

std::optional<int64_t> Lowering::budget_int(const ast::Keyword& k, bool allow_none) {
  ConstValue c = eval_constant(*k.value, "Budget " + k.name);
  if (c.kind == Kind::kNone && allow_none) return std::nullopt;
  if (c.kind != Kind::kInt) {
    fail(k.value->loc, "Budget " + k.name + " must be an integer" + (allow_none ? " or None" : "") +
                           ", got " + const_to_string(c));
  }
  if (c.i > kMaxBudgetPages)
    fail(k.value->loc, "Budget " + k.name + " must be at most " + std::to_string(kMaxBudgetPages) +
                           " pages, got " + std::to_string(c.i));
  return c.i;
}

void Lowering::lower_budget(const Stmt& s) {
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
      if (b.cap && *b.cap < 0) fail(vloc, "Budget cap must be >= 0, got " + std::to_string(*b.cap));
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
                         " is out of range (layer indices are below " + std::to_string(kMaxLayers) +
                         ", and below the model's layer count)");
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

}  // namespace vortex::flow::lowering
