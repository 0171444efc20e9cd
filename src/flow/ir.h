// The typed IR of a compiled flow: what the verifier, the passes, the CPU executor and the code
// generators all read. A FlowProgram holds the declarations (fields, budget) and two phase
// functions, summarize and score. A function is a list of SSA ops in topological order: op i
// defines value i, and its operands name earlier ops. Every value is f32 (or bool from a
// comparison, used as 0/1) with a shape of symbolic dims.
//
// Semantics an interpreter needs, per op kind, are written beside OpKind below. Shapes follow numpy
// broadcasting; every op's result shape is already inferred, so an executor only evaluates each
// Dim with the geometry (and N for the row) to get concrete sizes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vortex::flow {

// 1-based line and column in the flow's source; {0, 0} when there is no source position.
struct SourceLoc {
  int line = 0;
  int col = 0;
};

// The geometry symbols a dim may be a multiple of. N (the row's scoreable pages) appears only in
// score; G, D, P are fixed for a model and page size.
enum class Symbol : uint8_t { kNone, kN, kG, kD, kP };

// One dimension: (num / den) * symbol, or the integer num when symbol is kNone (den is then 1).
// Always normalised: den > 0, gcd(num, den) == 1. Examples: 4, N, P/4, 2*D.
struct Dim {
  Symbol symbol = Symbol::kNone;
  int64_t num = 0;
  int64_t den = 1;

  static Dim constant(int64_t value) { return Dim{Symbol::kNone, value, 1}; }
  static Dim of(Symbol s, int64_t num = 1, int64_t den = 1);  // normalises
  bool is_constant() const { return symbol == Symbol::kNone; }
  bool is_one() const { return symbol == Symbol::kNone && num == 1; }
  friend bool operator==(const Dim& a, const Dim& b) {
    return a.symbol == b.symbol && a.num == b.num && a.den == b.den;
  }
};

using Shape = std::vector<Dim>;

// Concrete values of the geometry symbols. 0 = unknown (left symbolic).
struct FlowGeometry {
  int64_t G = 0;
  int64_t D = 0;
  int64_t P = 0;
};

// The value of d with the geometry and the row's page count n (n < 0: N unknown), or nullopt
// if a symbol it needs is unknown or the value is not an integer.
std::optional<int64_t> eval_dim(const Dim& d, const FlowGeometry& geometry, int64_t n = -1);
std::string dim_to_string(const Dim& d);      // "4", "N", "P/4", "2*D", "3*D/2"
std::string shape_to_string(const Shape& s);  // "[N, G, D]", "[]" for a scalar
const char* symbol_name(Symbol s);            // "N", "G", "D", "P", "" for kNone

enum class ValueType : uint8_t {
  kVoid,  // stores: no result
  kF32,
  kBool,  // comparisons; read as 0.0 / 1.0 wherever a number is expected
};

// What each op computes. Elementwise ops broadcast their operands to the result shape (numpy
// rules). Axis attributes are already normalised to non-negative indices of the operand.
enum class OpKind : uint8_t {
  // Leaves.
  kInput,  // the phase's parameter number `input`: summarize k=0, v=1 ([P, D]); score q=0 ([G, D])
  kConstant,   // every element = `value`; result shape may be [] or any shape (zeros/ones/full)
  kDimValue,   // scalar [] whose value is the dim `dim` (e.g. D, P/4, N) evaluated for the row
  kLoadField,  // field `field` of FlowProgram::fields: summarize never loads; score sees [N,
               // ...dims]
  // The row's page positions (score only): kPageIndex is [N], scoreable page i's position in
  // the row (0 = the row's first page, so first_page + i); kRowPages is the scalar [] n, the
  // row's number of pages, the partial last one included.
  kPageIndex,
  kRowPages,
  // Store: no result. summarize writes a Field ([...dims]); score writes a State ([N, ...dims]).
  kStoreField,  // operands: {value}; `field` names the field; operand shape == declared shape
  // Unary elementwise: operands {x}.
  kNeg,
  kAbs,
  kExp,
  kLog,
  kSqrt,
  kRelu,
  kSigmoid,
  kSilu,
  // Binary elementwise: operands {a, b}. kFloorDiv and kMod follow Python/numpy (floor) rules;
  // kPow's exponent is always a constant.
  kAdd,
  kSub,
  kMul,
  kDiv,
  kFloorDiv,
  kMod,
  kPow,
  kMaximum,
  kMinimum,
  // Comparisons: operands {a, b}, result kBool.
  kLt,
  kLe,
  kGt,
  kGe,
  kEq,
  kNe,
  // Ternary: operands {cond, a, b}; cond != 0 picks a.
  kWhere,
  // Reductions over `axes` (sorted, unique), keeping them as size 1 if `keepdims`.
  // kL2Norm = sqrt(sum(x * x)). kMean divides by the product of the reduced sizes.
  kSum,
  kMean,
  kMax,
  kMin,
  kL2Norm,
  // softmax over `axis` (numerically stable: subtract the max first).
  kSoftmax,
  // Grouped reductions over runs of `group` consecutive entries along `axis`: that axis shrinks
  // from S to S / group (S is divisible by group, checked at compile or bind time).
  kFoldSum,
  kFoldMean,
  kFoldMax,
  kFoldMin,
  // numpy matmul on operands {a, b}: rank-1 operands are promoted and the added axis dropped;
  // leading (batch) axes broadcast.
  kMatMul,
  // Result axis i is operand axis perm[i]; `axes` holds perm.
  kTranspose,
  // Same elements in row-major order, new shape = result shape (covers reshape, squeeze,
  // expand_dims and None-indexing). Never touches the N axis.
  kReshape,
  // Basic indexing: `slices` has exactly one entry per operand axis (ellipsis already expanded).
  kSlice,
};

const char* op_kind_name(OpKind k);  // "add", "load_field", ...

// The families of OpKind, as the passes and both backends group them. op_class is the one place
// a new op is classified (its switch names every op).
enum class OpClass : uint8_t {
  kLeaf,        // kInput, kConstant, kDimValue, kLoadField, kPageIndex, kRowPages
  kStore,       // kStoreField
  kUnary,       // kNeg .. kSilu
  kBinary,      // kAdd .. kMinimum
  kComparison,  // kLt .. kNe
  kWhere,
  kReduction,  // kSum, kMean, kMax, kMin, kL2Norm
  kSoftmax,
  kFold,  // kFoldSum .. kFoldMin
  kMatMul,
  kRemap,  // kTranspose, kReshape, kSlice: the same elements in another order
};
OpClass op_class(OpKind k);
// After a switch that names every OpKind (switches over OpKind have no default, so the compiler
// flags an op a switch forgets): a value outside the enum is a bug. Throws vortex::Error.
[[noreturn]] void unreachable_op_kind(OpKind k);

// One axis of a kSlice. With `index`, picks entry `start` and drops the axis; otherwise Python
// slice semantics start:stop:step with missing bounds as nullopt. Negative values count from the
// end, exactly as in Python; the result shape already holds the resulting length.
struct SliceSpec {
  std::optional<int64_t> start;
  std::optional<int64_t> stop;
  int64_t step = 1;
  bool index = false;
};

// Where a score op can run: PER_PAGE ops are independent across pages (fusable per page);
// CROSS_PAGE ops read other pages' values (a reduction or softmax over the N axis, or anything
// downstream of one). Summarize ops are all kPerPage.
enum class Placement : uint8_t { kUnassigned, kPerPage, kCrossPage };
const char* placement_name(Placement p);  // "PER_PAGE", "CROSS_PAGE", "-"

using ValueId = int32_t;  // index into Function::ops

struct Op {
  OpKind kind = OpKind::kConstant;
  std::vector<ValueId> operands;
  Shape shape;  // result shape; empty for a scalar or for kStoreField
  ValueType type = ValueType::kF32;
  // Attributes, each meaningful only for the kinds noted above.
  std::vector<int> axes;  // reductions: reduced axes; kTranspose: the permutation
  bool keepdims = false;
  int axis = 0;       // kSoftmax and folds
  int64_t group = 0;  // folds
  std::vector<SliceSpec> slices;
  double value = 0.0;  // kConstant
  Dim dim;             // kDimValue
  int field = -1;      // kLoadField / kStoreField: index into FlowProgram::fields
  int input = -1;      // kInput
  Placement placement = Placement::kUnassigned;
  SourceLoc loc;
};

enum class Phase : uint8_t { kSummarize, kScore };

struct Param {
  std::string name;  // "k", "v", "q"
  Shape shape;
};

// A run of consecutive-in-dependence ops with one placement: the kernels the CUDA generator will
// emit for score, in order. Filled by the grouping pass.
struct Stage {
  Placement placement = Placement::kPerPage;
  std::vector<ValueId> ops;
};

struct Function {
  Phase phase = Phase::kSummarize;
  std::vector<Param> params;
  std::vector<Op> ops;
  ValueId result = -1;  // score: the returned [N] value; summarize: -1
  std::vector<Stage> stages;
  SourceLoc loc;         // the `def`
  SourceLoc result_loc;  // score: the `return` statement
};

enum class FieldKind : uint8_t {
  kField,  // per page, written once by summarize, read by score
  kState,  // per (request, page), starts at 0, read and written by score
};

// How a Field's values are stored between summarize and score (a State is always f32).
enum class FieldDtype : uint8_t {
  kBf16,  // Field(..., dtype="bf16"), the default
  kInt8,  // Field(..., dtype="int8"): 8-bit integers and a power-of-two scale per (page, KV
          // head, layer), flow/field_storage.h
};

struct FieldDecl {
  std::string name;
  FieldKind kind = FieldKind::kField;
  Shape dims;  // [] for Field()/State(), else [r, c]: per (page, KV head, layer)
  SourceLoc loc;
  FieldDtype dtype = FieldDtype::kBf16;  // a Field's storage (a State is f32)
};

// How many pages a row reads; see the spec's planning rule. Defaults apply to keys a flow omits.
struct BudgetPolicy {
  std::optional<int64_t> pages;  // fixed count of extra pages; exclusive with ratio
  std::optional<double> ratio;   // fraction of the row's pages, in (0, 1]
  int64_t floor = 0;
  std::optional<int64_t> cap;
  int64_t sink = 1;
  int64_t recent = 2;
  std::vector<int64_t> dense_layers{0};
  SourceLoc loc;               // the Budget(...) call, {0,0} if defaulted
  SourceLoc dense_layers_loc;  // the dense_layers value, {0,0} if defaulted

  // ratio as planned: the explicit one, or 1/16 when neither pages nor ratio is set.
  double effective_ratio() const { return ratio ? *ratio : (pages ? 0.0 : 1.0 / 16.0); }
};

struct FlowProgram {
  std::string filename;
  std::string class_name;
  std::string docstring;
  std::vector<FieldDecl> fields;
  BudgetPolicy budget;
  FlowGeometry geometry;  // what was bound at compile time (zeros = symbolic)
  Function summarize;     // params k, v
  Function score;         // param q
  SourceLoc loc;          // the class

  int field_index(const std::string& name) const;  // -1 if none
};

// Human-readable listing of a function / program (what `vortex check --dump-ir` prints).
std::string print_function(const FlowProgram& program, const Function& fn);
std::string print_program(const FlowProgram& program);

}  // namespace vortex::flow
