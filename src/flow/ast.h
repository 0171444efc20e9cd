// Syntax tree of a flow file, as parsed: a Python subset, before any meaning is given to names.
// Every node carries the 1-based line:col where it starts.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flow/ir.h"

namespace vortex::flow::ast {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;

enum class ExprKind {
  kInt,     // int_value
  kFloat,   // float_value
  kString,  // text
  kBool,    // bool_value
  kNone,
  kEllipsis,
  kName,       // text
  kAttribute,  // lhs.text
  kCall,       // lhs(items..., keywords...)
  kSubscript,  // lhs[items...] (a tuple index is flattened into items)
  kSlice,      // items = {start, stop, step}, each may be null; only inside a subscript
  kBinary,     // lhs text rhs, text is the operator ("+", "@", "**", "|", ...)
  kUnary,      // text lhs, text is "-", "+", "~" or "not"
  kCompare,    // lhs text rhs, text is "<", "<=", ">", ">=", "==", "!="
  kBoolOp,     // lhs text rhs, text is "and" or "or"
  kTuple,      // items
  kList,       // items
};

struct Keyword {
  std::string name;
  ExprPtr value;
  SourceLoc loc;
};

struct Expr {
  ExprKind kind = ExprKind::kNone;
  SourceLoc loc;
  int64_t int_value = 0;
  double float_value = 0.0;
  bool bool_value = false;
  std::string text;
  ExprPtr lhs;
  ExprPtr rhs;
  std::vector<ExprPtr> items;
  std::vector<Keyword> keywords;
  int depth = 1;  // height of this subtree, bounded by the parser
};

enum class StmtKind {
  kExpr,       // value (a docstring, or an expression whose value is dropped)
  kAssign,     // target = value
  kAugAssign,  // target text= value, text is the operator without '=' ("+", "*", ...)
  kReturn,     // value (may be null)
  kIf,         // if value: body else: orelse (elif is an If inside orelse)
  kPass,
  kImportFrom,  // from text import aliases
  kImport,      // import aliases
  kClass,       // class text(bases): body
  kDef,         // def text(params): body
};

struct Alias {
  std::string name;
  std::string as;  // equals name when there is no `as`
  SourceLoc loc;
};

struct ParamDecl {
  std::string name;
  SourceLoc loc;
};

struct Stmt {
  StmtKind kind = StmtKind::kPass;
  SourceLoc loc;
  std::string text;
  ExprPtr target;
  ExprPtr value;
  std::vector<Alias> aliases;
  std::vector<ExprPtr> bases;
  std::vector<ParamDecl> params;
  std::vector<StmtPtr> body;
  std::vector<StmtPtr> orelse;
};

struct Module {
  std::vector<StmtPtr> body;
};

}  // namespace vortex::flow::ast
