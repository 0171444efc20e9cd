// Compile-time values of the flow front end: numbers, symbolic dims (a rational multiple of
// G, D, P or N), booleans, None, tuples and lists. Arithmetic follows Python (floor division
// and modulo, int/float promotion); results that are not one of these (D * P, D + 1) are
// reported as not representable so the caller can fall back to tensor ops or say so.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "flow/ir.h"

namespace vortex::flow {

struct ConstValue {
  enum class Kind { kInt, kFloat, kBool, kNone, kSym, kTuple, kList, kString, kEllipsis };
  Kind kind = Kind::kNone;
  int64_t i = 0;
  double f = 0.0;
  bool b = false;
  Dim sym;  // kSym: symbol != kNone
  std::vector<ConstValue> items;
  std::string s;

  static ConstValue integer(int64_t v);
  static ConstValue real(double v);
  static ConstValue boolean(bool v);
  static ConstValue none();
  static ConstValue dim(const Dim& d);  // an integer Dim gives kInt

  bool is_number() const {
    return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool;
  }
  double as_double() const;  // numbers only
  // An integer-valued constant as a Dim (kInt or kSym).
  std::optional<Dim> as_dim() const;
};

std::string const_to_string(const ConstValue& v);
const char* const_kind_name(ConstValue::Kind k);  // "integer", "tuple", ...

// Result of constant arithmetic: a value, or not representable (value empty, error empty), or an
// error that must be reported (division by zero, overflow).
struct ConstResult {
  std::optional<ConstValue> value;
  std::string error;
};

// op is one of + - * / // % ** and the comparisons < <= > >= == !=.
ConstResult const_binary(const std::string& op, const ConstValue& a, const ConstValue& b);
ConstResult const_negate(const ConstValue& a);
// Python truthiness; nullopt for values whose truth is not a number (tuples are fine).
std::optional<bool> const_truth(const ConstValue& a);

}  // namespace vortex::flow
