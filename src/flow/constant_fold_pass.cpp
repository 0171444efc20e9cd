// Constant folding. Values here must match the CPU executor's op semantics exactly.
#include <cmath>
#include <optional>

#include "flow/passes.h"

namespace vortex::flow {
namespace {

bool is_const(const Function& fn, ValueId id) {
  return fn.ops[id].kind == OpKind::kConstant;
}
double value_of(const Function& fn, ValueId id) {
  return fn.ops[id].value;
}

// Product of the dims at `axes` if all are concrete.
std::optional<double> count(const Shape& s, const std::vector<int>& axes) {
  double n = 1;
  for (int a : axes) {
    if (!s[a].is_constant()) return std::nullopt;
    n *= static_cast<double>(s[a].num);
  }
  return n;
}

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

std::optional<double> fold(const Function& fn, const Op& op) {
  for (ValueId id : op.operands)
    if (!is_const(fn, id)) return std::nullopt;
  auto v = [&](size_t i) { return value_of(fn, op.operands[i]); };
  const Shape* in = op.operands.empty() ? nullptr : &fn.ops[op.operands[0]].shape;
  switch (op.kind) {
    case OpKind::kNeg:
      return -v(0);
    case OpKind::kAbs:
      return std::fabs(v(0));
    case OpKind::kExp:
      return std::exp(v(0));
    case OpKind::kLog:
      return std::log(v(0));
    case OpKind::kSqrt:
      return std::sqrt(v(0));
    case OpKind::kRelu:
      return v(0) > 0 ? v(0) : 0.0;
    case OpKind::kSigmoid:
      return sigmoid(v(0));
    case OpKind::kSilu:
      return v(0) * sigmoid(v(0));
    case OpKind::kAdd:
      return v(0) + v(1);
    case OpKind::kSub:
      return v(0) - v(1);
    case OpKind::kMul:
      return v(0) * v(1);
    case OpKind::kDiv:
      return v(0) / v(1);
    case OpKind::kFloorDiv:
      return std::floor(v(0) / v(1));
    case OpKind::kMod:
      return v(0) - std::floor(v(0) / v(1)) * v(1);
    case OpKind::kPow:
      return std::pow(v(0), v(1));
    case OpKind::kMaximum:
      return std::fmax(v(0), v(1));
    case OpKind::kMinimum:
      return std::fmin(v(0), v(1));
    case OpKind::kLt:
      return v(0) < v(1) ? 1.0 : 0.0;
    case OpKind::kLe:
      return v(0) <= v(1) ? 1.0 : 0.0;
    case OpKind::kGt:
      return v(0) > v(1) ? 1.0 : 0.0;
    case OpKind::kGe:
      return v(0) >= v(1) ? 1.0 : 0.0;
    case OpKind::kEq:
      return v(0) == v(1) ? 1.0 : 0.0;
    case OpKind::kNe:
      return v(0) != v(1) ? 1.0 : 0.0;
    case OpKind::kWhere:
      return v(0) != 0.0 ? v(1) : v(2);
    case OpKind::kMax:
    case OpKind::kMin:
    case OpKind::kMean:
    case OpKind::kFoldMax:
    case OpKind::kFoldMin:
    case OpKind::kFoldMean:
    case OpKind::kTranspose:
    case OpKind::kReshape:
    case OpKind::kSlice:
      return v(0);
    case OpKind::kFoldSum:
      return v(0) * static_cast<double>(op.group);
    case OpKind::kSum: {
      std::optional<double> n = count(*in, op.axes);
      if (!n) return std::nullopt;
      return v(0) * *n;
    }
    case OpKind::kL2Norm: {
      std::optional<double> n = count(*in, op.axes);
      if (!n) return std::nullopt;
      return std::fabs(v(0)) * std::sqrt(*n);
    }
    case OpKind::kSoftmax: {
      std::optional<double> n = count(*in, {op.axis});
      if (!n) return std::nullopt;
      return 1.0 / *n;
    }
    default:
      return std::nullopt;
  }
}

// x*1, 1*x, x/1, x+0, 0+x, x-0 -> x when that keeps the shape and type.
std::optional<ValueId> identity(const Function& fn, const Op& op) {
  if (op.operands.size() != 2) return std::nullopt;
  ValueId a = op.operands[0], b = op.operands[1];
  auto is = [&](ValueId id, double c) { return is_const(fn, id) && value_of(fn, id) == c; };
  auto keeps = [&](ValueId x) {
    return fn.ops[x].shape == op.shape && fn.ops[x].type == ValueType::kF32;
  };
  switch (op.kind) {
    case OpKind::kMul:
      if (is(b, 1.0) && keeps(a)) return a;
      if (is(a, 1.0) && keeps(b)) return b;
      break;
    case OpKind::kDiv:
      if (is(b, 1.0) && keeps(a)) return a;
      break;
    case OpKind::kAdd:
      if (is(b, 0.0) && keeps(a)) return a;
      if (is(a, 0.0) && keeps(b)) return b;
      break;
    case OpKind::kSub:
      if (is(b, 0.0) && keeps(a)) return a;
      break;
    default:
      break;
  }
  return std::nullopt;
}

void fold_function(Function& fn) {
  std::vector<ValueId> forward(fn.ops.size());
  for (size_t i = 0; i < fn.ops.size(); ++i) {
    forward[i] = static_cast<ValueId>(i);
    Op& op = fn.ops[i];
    for (ValueId& id : op.operands) id = forward[id];
    if (op.kind == OpKind::kStoreField || op.kind == OpKind::kLoadField ||
        op.kind == OpKind::kInput || op.kind == OpKind::kConstant || op.kind == OpKind::kDimValue ||
        op.kind == OpKind::kPageIndex || op.kind == OpKind::kRowPages)
      continue;
    if (std::optional<double> v = fold(fn, op)) {
      Op folded;
      folded.kind = OpKind::kConstant;
      folded.value = *v;
      folded.shape = op.shape;
      folded.type = op.type;
      folded.loc = op.loc;
      op = std::move(folded);
      continue;
    }
    if (std::optional<ValueId> x = identity(fn, op)) forward[i] = *x;
  }
  if (fn.result >= 0) fn.result = forward[fn.result];
}

}  // namespace

void fold_constants(FlowProgram& program) {
  fold_function(program.summarize);
  fold_function(program.score);
}

}  // namespace vortex::flow
