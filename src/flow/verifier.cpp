#include "flow/verifier.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "flow/limits.h"
#include "flow/shape_inference.h"

namespace vortex::flow {
namespace {

std::string declared(const FieldDecl& f) {
  std::string out = f.kind == FieldKind::kField ? "Field(" : "State(";
  for (size_t i = 0; i < f.dims.size(); ++i) {
    if (i) out += ", ";
    out += dim_to_string(f.dims[i]);
  }
  return out + ")";
}

// True when `got` is `want` with its size-1 dims dropped: the writer forgot keepdims=True.
bool lost_unit_dims(const Shape& want, const Shape& got) {
  Shape squeezed;
  for (const Dim& d : want)
    if (!d.is_one()) squeezed.push_back(d);
  return squeezed == got && want != got;
}

void check_stores(const FlowProgram& program, const Function& fn, DiagnosticSink& sink) {
  for (const Op& op : fn.ops) {
    if (op.kind != OpKind::kStoreField) continue;
    const FieldDecl& f = program.fields[op.field];
    const Shape& got = fn.ops[op.operands[0]].shape;
    Shape want = f.dims;
    if (fn.phase == Phase::kScore) want.insert(want.begin(), Dim::of(Symbol::kN));
    if (got == want) continue;
    std::string who = fn.phase == Phase::kSummarize ? "summarize" : "score";
    std::string msg = std::string(f.kind == FieldKind::kField ? "field" : "state") + " '" + f.name +
                      "' is declared " + declared(f) + ", so " + who + " must write shape " +
                      shape_to_string(want) + "; this writes " + shape_to_string(got);
    if (lost_unit_dims(want, got)) msg += ": keep the reduced axis with keepdims=True";
    sink.error(op.loc, msg, {DiagnosticSink::note(f.loc, "'" + f.name + "' is declared here")});
  }
}

void check_result(const Function& score, DiagnosticSink& sink) {
  if (score.result < 0) return;  // a missing return is reported by lowering
  const Op& op = score.ops[score.result];
  const Shape& s = op.shape;
  Shape want{Dim::of(Symbol::kN)};
  if (s == want) return;
  std::string msg =
      "score must return one score per page, shape [N]; this returns " + shape_to_string(s);
  int page_axes = count_page_axes(s);
  if (page_axes == 0) {
    msg +=
        ": it does not depend on the page; combine it with a field (self.name), or use "
        "zeros(N) for a constant score";
  } else if (s.size() > 1) {
    std::vector<int> axes;
    for (size_t i = 0; i < s.size(); ++i)
      if (!is_page_dim(s[i])) axes.push_back(static_cast<int>(i));
    bool only_heads = axes.size() == 1 && s[axes[0]] == Dim::of(Symbol::kG);
    if (only_heads) {
      msg += ": reduce over the head axis, e.g. .max(axis=-1)";
    } else if (axes.size() == 1) {
      msg += ": reduce over axis " + std::to_string(axes[0]) +
             ", e.g. .max(axis=" + std::to_string(axes[0]) + ")";
    } else {
      std::string list;
      for (size_t i = 0; i < axes.size(); ++i) {
        if (i) list += ", ";
        list += std::to_string(axes[i]);
      }
      msg += ": reduce over axes " + list + ", e.g. .max(axis=(" + list + "))";
    }
  }
  // At the return statement (docs/flows.md, section 7), with where the value was computed.
  const SourceLoc at = score.result_loc.line > 0 ? score.result_loc : op.loc;
  if (at.line == op.loc.line) {  // computed in the return statement itself
    sink.error(at, msg);
  } else {
    sink.error(at, msg,
               {DiagnosticSink::note(
                   op.loc, "the returned value, " + shape_to_string(s) + ", is computed here")});
  }
}

std::string count_text(double n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

// Elements per page of each value, and of all of a function's values together (the CPU
// executor keeps every value of a row at once).
void check_sizes(const FlowProgram& program, const Function& fn, DiagnosticSink& sink) {
  const char* phase = fn.phase == Phase::kSummarize ? "summarize" : "score";
  double total = 0;
  for (const Op& op : fn.ops) {
    if (op.kind == OpKind::kStoreField || op.kind == OpKind::kInput) continue;
    const double n = min_elements(op.shape, program.geometry);
    const bool symbolic = std::any_of(op.shape.begin(), op.shape.end(), [](const Dim& d) {
      return !d.is_constant() && !is_page_dim(d);
    });
    const std::string per = count_page_axes(op.shape) > 0 ? " per page" : "";
    if (n > static_cast<double>(kMaxValueElements)) {
      sink.error(op.loc, "this value of shape " + shape_to_string(op.shape) + " has " +
                             (symbolic ? "at least " : "") + count_text(n) + " elements" + per +
                             "; a value may have at most " + std::to_string(kMaxValueElements) +
                             per + " (the value size limit)");
      return;
    }
    total += n;
    if (total > static_cast<double>(kMaxFunctionElements)) {
      sink.error(op.loc, std::string("the values of ") + phase + " hold " +
                             (symbolic ? "at least " : "") + count_text(total) +
                             " elements per page up to here; at most " +
                             std::to_string(kMaxFunctionElements) +
                             " are allowed (the function size limit)");
      return;
    }
  }
}

}  // namespace

void verify_constants(const FlowProgram& program, DiagnosticSink& sink) {
  constexpr double kF32Max = std::numeric_limits<float>::max();
  for (const Function* fn : {&program.summarize, &program.score}) {
    for (const Op& op : fn->ops) {
      if (op.kind != OpKind::kConstant) continue;
      if (std::isfinite(op.value) && std::fabs(op.value) <= kF32Max) continue;
      char v[64];
      std::snprintf(v, sizeof v, "%g", std::fabs(op.value));
      const std::string shown =
          std::isnan(op.value) ? "nan" : (op.value < 0 ? "-" : "") + std::string(v);
      sink.error(op.loc, "this computes the constant " + shown +
                             ", which is not a finite f32 number (flows compute in f32, up to "
                             "about 3.4e38); constants must be finite");
    }
  }
}

void verify_flow(const FlowProgram& program, DiagnosticSink& sink) {
  size_t n = program.fields.size();
  std::vector<int> summarize_writes(n, 0), score_writes(n, 0), score_reads(n, 0);
  for (const Op& op : program.summarize.ops)
    if (op.kind == OpKind::kStoreField) ++summarize_writes[op.field];
  for (const Op& op : program.score.ops) {
    if (op.kind == OpKind::kStoreField) ++score_writes[op.field];
    if (op.kind == OpKind::kLoadField) ++score_reads[op.field];
  }
  for (size_t i = 0; i < n; ++i) {
    const FieldDecl& f = program.fields[i];
    if (f.kind == FieldKind::kField) {
      if (summarize_writes[i] == 0) {
        sink.error(f.loc, "field '" + f.name +
                              "' is never written by summarize: assign it "
                              "once there, e.g. self." +
                              f.name + " = k.mean(axis=0, keepdims=True)");
      } else if (score_reads[i] == 0) {
        sink.error(f.loc, "field '" + f.name +
                              "' is written but never read by score: remove it "
                              "or use it");
      }
    } else {
      if (score_writes[i] == 0) {
        sink.error(f.loc, "state '" + f.name +
                              "' is never written by score: update it there, "
                              "e.g. self." +
                              f.name + " = self." + f.name + " * 0.9 + ...");
      } else if (score_reads[i] == 0) {
        sink.error(f.loc, "state '" + f.name +
                              "' is written but never read by score: remove it "
                              "or use it");
      }
    }
  }
  check_stores(program, program.summarize, sink);
  check_stores(program, program.score, sink);
  check_result(program.score, sink);
  check_sizes(program, program.summarize, sink);
  check_sizes(program, program.score, sink);
}

std::string check_ir_invariants(const FlowProgram& program) {
  for (const Function* fn : {&program.summarize, &program.score}) {
    std::string name = fn->phase == Phase::kSummarize ? "summarize" : "score";
    for (size_t i = 0; i < fn->ops.size(); ++i) {
      const Op& op = fn->ops[i];
      for (ValueId id : op.operands) {
        if (id < 0 || static_cast<size_t>(id) >= i)
          return name + " %" + std::to_string(i) + ": operand %" + std::to_string(id) +
                 " is not defined before use";
        if (fn->ops[id].type == ValueType::kVoid)
          return name + " %" + std::to_string(i) + ": operand %" + std::to_string(id) +
                 " has no value";
      }
      if ((op.kind == OpKind::kLoadField || op.kind == OpKind::kStoreField) &&
          (op.field < 0 || static_cast<size_t>(op.field) >= program.fields.size()))
        return name + " %" + std::to_string(i) + ": bad field index";
      if (op.kind == OpKind::kInput &&
          (op.input < 0 || static_cast<size_t>(op.input) >= fn->params.size()))
        return name + " %" + std::to_string(i) + ": bad input index";
      for (const Dim& d : op.shape)
        if (d.num <= 0 || d.den <= 0)
          return name + " %" + std::to_string(i) + ": non-positive dim " + dim_to_string(d);
    }
    if (fn->result >= static_cast<ValueId>(fn->ops.size())) return name + ": result is not defined";
  }
  return {};
}

}  // namespace vortex::flow
