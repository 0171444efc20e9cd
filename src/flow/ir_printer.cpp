// Text form of the IR: one line per op, stable so that golden tests can pin it.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "flow/ir.h"

namespace vortex::flow {
namespace {

std::string format_number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<int64_t>(v));
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string int_list(const std::vector<int>& xs) {
  std::string out = "[";
  for (size_t i = 0; i < xs.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(xs[i]);
  }
  out += "]";
  return out;
}

std::string slice_to_string(const SliceSpec& s) {
  if (s.index) return std::to_string(s.start.value_or(0));
  std::string out;
  if (s.start) out += std::to_string(*s.start);
  out += ":";
  if (s.stop) out += std::to_string(*s.stop);
  if (s.step != 1) {
    out += ":";
    out += std::to_string(s.step);
  }
  return out;
}

std::string attributes(const FlowProgram& program, const Op& op) {
  std::string out;
  switch (op.kind) {
    case OpKind::kInput:
      break;
    case OpKind::kConstant:
      out = std::string(" value=") + format_number(op.value);
      break;
    case OpKind::kDimValue:
      out = std::string(" ") + dim_to_string(op.dim);
      break;
    case OpKind::kLoadField:
    case OpKind::kStoreField:
      if (op.field >= 0 && op.field < static_cast<int>(program.fields.size()))
        out = std::string(" ") + program.fields[op.field].name;
      break;
    case OpKind::kSum:
    case OpKind::kMean:
    case OpKind::kMax:
    case OpKind::kMin:
    case OpKind::kL2Norm:
      out = std::string(" axes=") + int_list(op.axes);
      if (op.keepdims) out += " keepdims";
      break;
    case OpKind::kSoftmax:
      out = " axis=";
      out += std::to_string(op.axis);
      break;
    case OpKind::kFoldSum:
    case OpKind::kFoldMean:
    case OpKind::kFoldMax:
    case OpKind::kFoldMin:
      out = " group=";
      out += std::to_string(op.group);
      out += " axis=";
      out += std::to_string(op.axis);
      break;
    case OpKind::kTranspose:
      out = std::string(" perm=") + int_list(op.axes);
      break;
    case OpKind::kSlice: {
      out = " [";
      for (size_t i = 0; i < op.slices.size(); ++i) {
        if (i) out += ", ";
        out += slice_to_string(op.slices[i]);
      }
      out += "]";
      break;
    }
    default:
      break;
  }
  return out;
}

std::string param_name(const Function& fn, const Op& op) {
  if (op.input >= 0 && op.input < static_cast<int>(fn.params.size()))
    return std::string(" ") + fn.params[op.input].name;
  return "";
}

}  // namespace

std::string print_function(const FlowProgram& program, const Function& fn) {
  std::ostringstream os;
  os << "func " << (fn.phase == Phase::kSummarize ? "summarize" : "score") << "(";
  for (size_t i = 0; i < fn.params.size(); ++i)
    os << (i ? ", " : "") << fn.params[i].name << ": " << shape_to_string(fn.params[i].shape);
  os << ") {\n";
  for (size_t i = 0; i < fn.ops.size(); ++i) {
    const Op& op = fn.ops[i];
    std::string line = "  ";
    // Stores define no value; they keep their number (as a label) so stages can list them.
    line += '%';
    line += std::to_string(i);
    line += op.type != ValueType::kVoid ? " = " : ": ";
    line += op_kind_name(op.kind);
    if (op.kind == OpKind::kInput) line += param_name(fn, op);
    line += attributes(program, op);
    for (size_t j = 0; j < op.operands.size(); ++j) {
      line += j ? ", %" : " %";
      line += std::to_string(op.operands[j]);
    }
    if (op.type != ValueType::kVoid) {
      line += std::string(" : ") + (op.type == ValueType::kBool ? "bool" : "f32") +
              shape_to_string(op.shape);
    }
    if (op.placement != Placement::kUnassigned) {
      line += "  ";
      line += placement_name(op.placement);
    }
    if (op.loc.line > 0) {
      if (line.size() < 56) line.resize(56, ' ');
      line += "  @";
      line += std::to_string(op.loc.line) + ":" + std::to_string(op.loc.col);
    }
    os << line << "\n";
  }
  if (fn.result >= 0) os << "  return %" << fn.result << "\n";
  os << "}\n";
  for (size_t s = 0; s < fn.stages.size(); ++s) {
    os << "stage " << s << " " << placement_name(fn.stages[s].placement) << ":";
    for (ValueId id : fn.stages[s].ops) os << " %" << id;
    os << "\n";
  }
  return os.str();
}

std::string print_program(const FlowProgram& program) {
  std::ostringstream os;
  os << "flow " << program.class_name << "\n";
  for (const FieldDecl& f : program.fields) {
    os << (f.kind == FieldKind::kField ? "field " : "state ") << f.name << " "
       << shape_to_string(f.dims) << (f.dtype == FieldDtype::kInt8 ? " int8" : "") << "\n";
  }
  const BudgetPolicy& b = program.budget;
  os << "budget";
  if (b.pages)
    os << " pages=" << *b.pages;
  else
    os << " ratio=" << format_number(b.effective_ratio());
  os << " floor=" << b.floor << " cap=" << (b.cap ? std::to_string(*b.cap) : "none")
     << " sink=" << b.sink << " recent=" << b.recent << " dense_layers=[";
  for (size_t i = 0; i < b.dense_layers.size(); ++i) os << (i ? ", " : "") << b.dense_layers[i];
  os << "]\n";
  os << print_function(program, program.summarize);
  os << print_function(program, program.score);
  return os.str();
}

}  // namespace vortex::flow
