// What the CUDA code generator (generator.h) emits with: affine index expressions, literals, the
// source-origin markers that map generated lines back to the flow file, the ABI checks, and the
// CUDA expression of each elementwise op. Internal to src/flow/codegen.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "flow/codegen/cuda_flow_abi.h"
#include "flow/ir.h"

namespace vortex::flow::codegen {

// ---- affine index expressions ----------------------------------------------------------------

// c + sum(coef * term): a term is a loop variable or an opaque expression in parentheses.
struct Affine {
  int64_t c = 0;
  std::vector<std::pair<std::string, int64_t>> terms;
};

inline Affine aff(int64_t c) {
  return Affine{c, {}};
}
inline Affine aff_var(const std::string& v) {
  return Affine{0, {{v, 1}}};
}

inline Affine operator+(Affine a, const Affine& b) {
  a.c += b.c;
  // A plain loop variable, not a structured binding: clang before 16 (the fuzz build's) cannot
  // capture a binding in a lambda.
  for (const auto& term : b.terms) {
    auto it = std::find_if(a.terms.begin(), a.terms.end(),
                           [&](const auto& t) { return t.first == term.first; });
    if (it == a.terms.end())
      a.terms.push_back(term);
    else
      it->second += term.second;
  }
  a.terms.erase(
      std::remove_if(a.terms.begin(), a.terms.end(), [](const auto& t) { return t.second == 0; }),
      a.terms.end());
  return a;
}

inline Affine operator*(Affine a, int64_t k) {
  if (k == 0) return aff(0);
  a.c *= k;
  for (auto& t : a.terms) t.second *= k;
  return a;
}

inline bool is_const(const Affine& a) {
  return a.terms.empty();
}

inline std::string str(const Affine& a) {
  std::string s;
  for (const auto& [name, coef] : a.terms) {
    if (!s.empty()) s += " + ";
    s += coef == 1 ? name : name + " * " + std::to_string(coef);
  }
  if (a.c != 0 || s.empty()) {
    if (!s.empty()) s += a.c < 0 ? " - " : " + ";
    s += std::to_string(!s.empty() && a.c < 0 ? -a.c : a.c);
  }
  return s;
}

// An opaque (non-affine) index expression.
inline Affine aff_opaque(const std::string& expr) {
  return aff_var("(" + expr + ")");
}

using Index = std::vector<Affine>;  // one entry per axis of a value (the N axis entry unused)

inline std::string index_key(const Index& idx) {
  std::string k;
  for (const Affine& a : idx) k += str(a) + ",";
  return k;
}

// ---- literals and source lines ---------------------------------------------------------------

inline std::string float_literal(double v) {
  const float f = static_cast<float>(v);
  if (std::isnan(f)) return "vx_nan()";
  if (std::isinf(f)) return f > 0 ? "vx_inf()" : "(-vx_inf())";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(f));
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  s += "f";
  return f < 0 ? "(" + s + ")" : s;
}

// Lines of generated code carry their origin: a flow source line, or none (generated). A line
// from an op starts with \x01<line>\x02; finish_lines turns origins into #line directives.
constexpr char kOriginStart = '\x01';
constexpr char kOriginEnd = '\x02';

inline std::string escape_path(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

inline std::string finish_lines(const std::string& text, const std::string& flow_file,
                                const std::string& generated_file) {
  std::istringstream in(text);
  std::string out, line;
  int out_lines = 0;
  int current = -1;  // flow line the next output line maps to, 0 = generated and in sync
  bool generated_in_sync = true;
  auto emit = [&](const std::string& l) {
    out += l;
    out += '\n';
    ++out_lines;
  };
  while (std::getline(in, line)) {
    int origin = 0;
    if (!line.empty() && line[0] == kOriginStart) {
      const size_t end = line.find(kOriginEnd);
      origin = std::atoi(line.substr(1, end - 1).c_str());
      line = line.substr(end + 1);
    }
    if (origin > 0) {
      emit("#line " + std::to_string(origin) + " \"" + escape_path(flow_file) + "\"");
      generated_in_sync = false;
      current = origin;
    } else if (!generated_in_sync) {
      emit("#line " + std::to_string(out_lines + 2) + " \"" + escape_path(generated_file) + "\"");
      generated_in_sync = true;
      current = 0;
    }
    emit(line);
  }
  (void)current;
  return out;
}

// The host's layout of the ABI structs, checked by the generated code.
inline std::string abi_asserts() {
  std::string s;
  auto size = [&](const char* type, size_t n) {
    s += str_cat("static_assert(sizeof(", type, ") == ", n, ", \"ABI drift: sizeof(", type,
                 ") differs between the host and the generated code\");\n");
  };
  auto offset = [&](const char* type, const char* member, size_t n) {
    s += str_cat("static_assert(VX_OFFSETOF(", type, ", ", member, ") == ", n,
                 ", \"ABI drift: offset of ", type, "::", member, "\");\n");
  };
#define VX_SUM_FIELD(m) offset("CudaSummarizeArgs", #m, offsetof(CudaSummarizeArgs, m))
#define VX_SCORE_FIELD(m) offset("CudaScoreArgs", #m, offsetof(CudaScoreArgs, m))
  size("CudaSummarizeArgs", sizeof(CudaSummarizeArgs));
  VX_SUM_FIELD(k);
  VX_SUM_FIELD(v);
  VX_SUM_FIELD(fields);
  VX_SUM_FIELD(field_scales);
  VX_SUM_FIELD(items);
  VX_SUM_FIELD(num_items);
  VX_SUM_FIELD(layers);
  VX_SUM_FIELD(page_stride);
  VX_SUM_FIELD(head_stride);
  VX_SUM_FIELD(kv_layer_stride);
  VX_SUM_FIELD(field_layer_stride);
  VX_SUM_FIELD(scale_layer_stride);
  VX_SUM_FIELD(num_kv_heads);
  VX_SUM_FIELD(field_stride);
  VX_SUM_FIELD(num_layers);
  VX_SUM_FIELD(num_pages);
  size("CudaScoreArgs", sizeof(CudaScoreArgs));
  VX_SCORE_FIELD(q);
  VX_SCORE_FIELD(q_rows);
  VX_SCORE_FIELD(row_page_offset);
  VX_SCORE_FIELD(pages);
  VX_SCORE_FIELD(row_first);
  VX_SCORE_FIELD(row_count);
  VX_SCORE_FIELD(item_row);
  VX_SCORE_FIELD(item_begin);
  VX_SCORE_FIELD(num_items);
  VX_SCORE_FIELD(fields);
  VX_SCORE_FIELD(field_scales);
  VX_SCORE_FIELD(state);
  VX_SCORE_FIELD(page_scratch);
  VX_SCORE_FIELD(row_scratch);
  VX_SCORE_FIELD(scores);
  VX_SCORE_FIELD(row_num_tokens);
  VX_SCORE_FIELD(row_k);
  VX_SCORE_FIELD(row_recent_begin);
  VX_SCORE_FIELD(out_pages);
  VX_SCORE_FIELD(out_num_tokens);
  VX_SCORE_FIELD(num_rows);
  VX_SCORE_FIELD(num_q_heads);
  VX_SCORE_FIELD(num_kv_heads);
  VX_SCORE_FIELD(max_pages);
  VX_SCORE_FIELD(field_stride);
  VX_SCORE_FIELD(state_stride);
  VX_SCORE_FIELD(num_pages);
  VX_SCORE_FIELD(page_size);
#undef VX_SUM_FIELD
#undef VX_SCORE_FIELD
  return s;
}

// ---- op classes ------------------------------------------------------------------------------

inline bool is_unary(OpKind k) {
  return op_class(k) == OpClass::kUnary;
}
inline bool is_binary(OpKind k) {  // arithmetic and comparisons
  return op_class(k) == OpClass::kBinary || op_class(k) == OpClass::kComparison;
}
inline bool is_elementwise(OpKind k) {
  return is_unary(k) || is_binary(k) || k == OpKind::kWhere;
}
inline bool is_remap(OpKind k) {
  return op_class(k) == OpClass::kRemap;
}
inline bool is_reduction(OpKind k) {
  return op_class(k) == OpClass::kReduction;
}
inline bool is_fold(OpKind k) {
  return op_class(k) == OpClass::kFold;
}
// Ops computed by a loop over reduced indices per output element.
inline bool is_reduce_like(OpKind k) {
  return is_reduction(k) || is_fold(k) || k == OpKind::kMatMul;
}
inline bool needs_materialization(OpKind k) {
  return is_reduce_like(k) || k == OpKind::kSoftmax;
}

enum class Combine { kSum, kSumSq, kMax, kMin };

inline std::string elementwise_expr(OpKind k, const std::vector<std::string>& x) {
  auto bin = [&](const char* op) { return "(" + x[0] + " " + op + " " + x[1] + ")"; };
  auto call = [&](const char* fn) {
    std::string s = std::string(fn) + "(" + x[0];
    for (size_t i = 1; i < x.size(); ++i) s += ", " + x[i];
    return s + ")";
  };
  auto cmp = [&](const char* op) { return "(" + x[0] + " " + op + " " + x[1] + " ? 1.0f : 0.0f)"; };
  switch (k) {
    case OpKind::kNeg:
      return "(-" + x[0] + ")";
    case OpKind::kAbs:
      return call("fabsf");
    case OpKind::kExp:
      return call("expf");
    case OpKind::kLog:
      return call("logf");
    case OpKind::kSqrt:
      return call("sqrtf");
    case OpKind::kRelu:
      return call("vx_relu");
    case OpKind::kSigmoid:
      return call("vx_sigmoid");
    case OpKind::kSilu:
      return call("vx_silu");
    case OpKind::kAdd:
      return bin("+");
    case OpKind::kSub:
      return bin("-");
    case OpKind::kMul:
      return bin("*");
    case OpKind::kDiv:
      return bin("/");
    case OpKind::kFloorDiv:
      return "floorf(" + x[0] + " / " + x[1] + ")";
    case OpKind::kMod:
      return call("vx_mod");
    case OpKind::kPow:
      return call("powf");
    case OpKind::kMaximum:
      return call("vx_max");
    case OpKind::kMinimum:
      return call("vx_min");
    case OpKind::kLt:
      return cmp("<");
    case OpKind::kLe:
      return cmp("<=");
    case OpKind::kGt:
      return cmp(">");
    case OpKind::kGe:
      return cmp(">=");
    case OpKind::kEq:
      return cmp("==");
    case OpKind::kNe:
      return cmp("!=");
    case OpKind::kWhere:
      return "(" + x[0] + " != 0.0f ? " + x[1] + " : " + x[2] + ")";
    default:
      return "";
  }
}

}  // namespace vortex::flow::codegen
