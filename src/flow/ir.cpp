// Dims, names and small helpers of the flow IR.
#include "flow/ir.h"

#include <numeric>
#include <sstream>

#include "core/error.h"

namespace vortex::flow {

Dim Dim::of(Symbol s, int64_t num, int64_t den) {
  if (den < 0) {
    num = -num;
    den = -den;
  }
  int64_t g = std::gcd(num < 0 ? -num : num, den);
  if (g > 1) {
    num /= g;
    den /= g;
  }
  if (s == Symbol::kNone || num == 0) return Dim{Symbol::kNone, den == 1 ? num : 0, 1};
  return Dim{s, num, den};
}

const char* symbol_name(Symbol s) {
  switch (s) {
    case Symbol::kN:
      return "N";
    case Symbol::kG:
      return "G";
    case Symbol::kD:
      return "D";
    case Symbol::kP:
      return "P";
    case Symbol::kNone:
      break;
  }
  return "";
}

std::optional<int64_t> eval_dim(const Dim& d, const FlowGeometry& geometry, int64_t n) {
  if (d.symbol == Symbol::kNone) return d.num;
  int64_t base = 0;
  switch (d.symbol) {
    case Symbol::kN:
      base = n;
      break;
    case Symbol::kG:
      base = geometry.G;
      break;
    case Symbol::kD:
      base = geometry.D;
      break;
    case Symbol::kP:
      base = geometry.P;
      break;
    case Symbol::kNone:
      break;
  }
  if (base < 0 || (base == 0 && d.symbol != Symbol::kN)) return std::nullopt;
  int64_t scaled = base * d.num;
  if (scaled % d.den != 0) return std::nullopt;
  return scaled / d.den;
}

std::string dim_to_string(const Dim& d) {
  if (d.symbol == Symbol::kNone) return std::to_string(d.num);
  std::string out;
  if (d.num == -1)
    out = "-";
  else if (d.num != 1)
    out = std::to_string(d.num) + "*";
  out += symbol_name(d.symbol);
  if (d.den != 1) {
    out += "/";
    out += std::to_string(d.den);
  }
  return out;
}

std::string shape_to_string(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ", ";
    out += dim_to_string(s[i]);
  }
  return out + "]";
}

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::kInput:
      return "input";
    case OpKind::kConstant:
      return "constant";
    case OpKind::kDimValue:
      return "dim";
    case OpKind::kLoadField:
      return "load_field";
    case OpKind::kPageIndex:
      return "page_index";
    case OpKind::kRowPages:
      return "num_pages";
    case OpKind::kStoreField:
      return "store_field";
    case OpKind::kNeg:
      return "neg";
    case OpKind::kAbs:
      return "abs";
    case OpKind::kExp:
      return "exp";
    case OpKind::kLog:
      return "log";
    case OpKind::kSqrt:
      return "sqrt";
    case OpKind::kRelu:
      return "relu";
    case OpKind::kSigmoid:
      return "sigmoid";
    case OpKind::kSilu:
      return "silu";
    case OpKind::kAdd:
      return "add";
    case OpKind::kSub:
      return "sub";
    case OpKind::kMul:
      return "mul";
    case OpKind::kDiv:
      return "div";
    case OpKind::kFloorDiv:
      return "floordiv";
    case OpKind::kMod:
      return "mod";
    case OpKind::kPow:
      return "pow";
    case OpKind::kMaximum:
      return "maximum";
    case OpKind::kMinimum:
      return "minimum";
    case OpKind::kLt:
      return "lt";
    case OpKind::kLe:
      return "le";
    case OpKind::kGt:
      return "gt";
    case OpKind::kGe:
      return "ge";
    case OpKind::kEq:
      return "eq";
    case OpKind::kNe:
      return "ne";
    case OpKind::kWhere:
      return "where";
    case OpKind::kSum:
      return "sum";
    case OpKind::kMean:
      return "mean";
    case OpKind::kMax:
      return "max";
    case OpKind::kMin:
      return "min";
    case OpKind::kL2Norm:
      return "l2norm";
    case OpKind::kSoftmax:
      return "softmax";
    case OpKind::kFoldSum:
      return "fold_sum";
    case OpKind::kFoldMean:
      return "fold_mean";
    case OpKind::kFoldMax:
      return "fold_max";
    case OpKind::kFoldMin:
      return "fold_min";
    case OpKind::kMatMul:
      return "matmul";
    case OpKind::kTranspose:
      return "transpose";
    case OpKind::kReshape:
      return "reshape";
    case OpKind::kSlice:
      return "slice";
  }
  return "?";
}

OpClass op_class(OpKind k) {
  switch (k) {
    case OpKind::kInput:
    case OpKind::kConstant:
    case OpKind::kDimValue:
    case OpKind::kLoadField:
    case OpKind::kPageIndex:
    case OpKind::kRowPages:
      return OpClass::kLeaf;
    case OpKind::kStoreField:
      return OpClass::kStore;
    case OpKind::kNeg:
    case OpKind::kAbs:
    case OpKind::kExp:
    case OpKind::kLog:
    case OpKind::kSqrt:
    case OpKind::kRelu:
    case OpKind::kSigmoid:
    case OpKind::kSilu:
      return OpClass::kUnary;
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
    case OpKind::kFloorDiv:
    case OpKind::kMod:
    case OpKind::kPow:
    case OpKind::kMaximum:
    case OpKind::kMinimum:
      return OpClass::kBinary;
    case OpKind::kLt:
    case OpKind::kLe:
    case OpKind::kGt:
    case OpKind::kGe:
    case OpKind::kEq:
    case OpKind::kNe:
      return OpClass::kComparison;
    case OpKind::kWhere:
      return OpClass::kWhere;
    case OpKind::kSum:
    case OpKind::kMean:
    case OpKind::kMax:
    case OpKind::kMin:
    case OpKind::kL2Norm:
      return OpClass::kReduction;
    case OpKind::kSoftmax:
      return OpClass::kSoftmax;
    case OpKind::kFoldSum:
    case OpKind::kFoldMean:
    case OpKind::kFoldMax:
    case OpKind::kFoldMin:
      return OpClass::kFold;
    case OpKind::kMatMul:
      return OpClass::kMatMul;
    case OpKind::kTranspose:
    case OpKind::kReshape:
    case OpKind::kSlice:
      return OpClass::kRemap;
  }
  unreachable_op_kind(k);
}

void unreachable_op_kind(OpKind k) {
  fail("internal error: op kind ", static_cast<int>(k), " is not an OpKind");
}

const char* placement_name(Placement p) {
  switch (p) {
    case Placement::kPerPage:
      return "PER_PAGE";
    case Placement::kCrossPage:
      return "CROSS_PAGE";
    case Placement::kUnassigned:
      break;
  }
  return "-";
}

int FlowProgram::field_index(const std::string& name) const {
  for (size_t i = 0; i < fields.size(); ++i)
    if (fields[i].name == name) return static_cast<int>(i);
  return -1;
}

}  // namespace vortex::flow
