// Each IR op as the CPU executor evaluates it, on small hand-built programs with values worked
// out by hand (numpy semantics). The shipped flows are covered end to end elsewhere.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "core/error.h"
#include "flow/cpu_executor.h"

namespace vortex::flow {
namespace {

Shape dims(std::initializer_list<int64_t> values) {
  Shape s;
  for (int64_t v : values) s.push_back(Dim::constant(v));
  return s;
}

// Appends ops to a function and returns their ids.
struct Builder {
  Function& fn;
  ValueId push(Op op) {
    fn.ops.push_back(std::move(op));
    return static_cast<ValueId>(fn.ops.size() - 1);
  }
  ValueId input(int index, Shape shape) {
    Op op;
    op.kind = OpKind::kInput;
    op.input = index;
    op.shape = std::move(shape);
    return push(op);
  }
  ValueId constant(double value, Shape shape = {}) {
    Op op;
    op.kind = OpKind::kConstant;
    op.value = value;
    op.shape = std::move(shape);
    return push(op);
  }
  ValueId node(OpKind kind, std::vector<ValueId> operands, Shape shape) {
    Op op;
    op.kind = kind;
    op.operands = std::move(operands);
    op.shape = std::move(shape);
    return push(op);
  }
  ValueId reduce(OpKind kind, ValueId x, std::vector<int> axes, bool keepdims, Shape shape) {
    Op op;
    op.kind = kind;
    op.operands = {x};
    op.axes = std::move(axes);
    op.keepdims = keepdims;
    op.shape = std::move(shape);
    return push(op);
  }
  void store(int field, ValueId value) {
    Op op;
    op.kind = OpKind::kStoreField;
    op.operands = {value};
    op.field = field;
    op.type = ValueType::kVoid;
    push(op);
  }
};

// Runs a summarize whose only field `out` (declared `out_dims`) is what `build` returns, on
// k = `k` and v = `v` ([P, D] with the given geometry).
std::vector<float> run_summarize(const Shape& out_dims, const FlowGeometry& geometry,
                                 const std::vector<float>& k, const std::vector<float>& v,
                                 const std::function<ValueId(Builder&, ValueId, ValueId)>& build) {
  FlowProgram program;
  program.filename = "ops.py";
  program.class_name = "Ops";
  program.fields.push_back({"out", FieldKind::kField, out_dims, {}});
  Builder b{program.summarize};
  ValueId kk = b.input(0, {Dim::of(Symbol::kP), Dim::of(Symbol::kD)});
  ValueId vv = b.input(1, {Dim::of(Symbol::kP), Dim::of(Symbol::kD)});
  b.store(0, build(b, kk, vv));
  // A trivial score so the program is complete: return the loaded field summed to [N].
  Builder s{program.score};
  Shape loaded{Dim::of(Symbol::kN)};
  for (const Dim& d : out_dims) loaded.push_back(d);
  ValueId f = s.node(OpKind::kLoadField, {}, loaded);
  program.score.ops.back().field = 0;
  std::vector<int> axes;
  for (size_t a = 1; a < loaded.size(); ++a) axes.push_back(static_cast<int>(a));
  program.score.result =
      axes.empty() ? f : s.reduce(OpKind::kSum, f, axes, false, {Dim::of(Symbol::kN)});

  CpuFlowExecutor executor(program, geometry);
  std::vector<float> out(static_cast<size_t>(executor.field_floats_per_page_head()), -999.0f);
  const float* kp = k.data();
  const float* vp = v.data();
  float* op = out.data();
  executor.summarize_pages(&kp, &vp, 1, &op);
  return out;
}

const FlowGeometry kGeometry{1, 3, 4};  // G=1, D=3, P=4
// k[t][d] = 3t + d: rows {0,1,2}, {3,4,5}, {6,7,8}, {9,10,11}.
const std::vector<float> kRamp = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
const std::vector<float> kSigned = {-2, 1, 0.5f, 3, -4, 2, -1, -1, 7, 0, 2, -3};

void expect_floats(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i]))
      EXPECT_TRUE(std::isnan(got[i])) << "at " << i;
    else
      EXPECT_NEAR(got[i], want[i], 1e-5f * std::max(1.0f, std::fabs(want[i]))) << "at " << i;
  }
}

TEST(ExecutorOps, ReductionsOverEachAxisWithAndWithoutKeepdims) {
  auto run = [&](OpKind kind, std::vector<int> axes, bool keepdims, Shape shape) {
    return run_summarize(shape, kGeometry, kRamp, kRamp, [&](Builder& b, ValueId k, ValueId) {
      return b.reduce(kind, k, axes, keepdims, shape);
    });
  };
  expect_floats(run(OpKind::kSum, {0}, true, dims({1, 3})), {18, 22, 26});
  expect_floats(run(OpKind::kMean, {0}, true, dims({1, 3})), {4.5f, 5.5f, 6.5f});
  expect_floats(run(OpKind::kMax, {1}, false, dims({4})), {2, 5, 8, 11});
  expect_floats(run(OpKind::kMin, {1}, false, dims({4})), {0, 3, 6, 9});
  expect_floats(run(OpKind::kL2Norm, {1}, false, dims({4})),
                {std::sqrt(5.0f), std::sqrt(50.0f), std::sqrt(149.0f), std::sqrt(302.0f)});
  expect_floats(run(OpKind::kL2Norm, {0}, false, dims({3})),
                {std::sqrt(126.0f), std::sqrt(166.0f), std::sqrt(214.0f)});
  expect_floats(run(OpKind::kMin, {0}, true, dims({1, 3})), {0, 1, 2});
  expect_floats(run(OpKind::kSum, {0, 1}, false, dims({1})), {66});
  EXPECT_EQ(run(OpKind::kMean, {0, 1}, false, Shape{}), std::vector<float>{5.5f});
}

TEST(ExecutorOps, MaxAndMaximumPropagateNan) {
  std::vector<float> k = kRamp;
  k[4] = std::numeric_limits<float>::quiet_NaN();  // row 1, column 1
  const float nan = std::numeric_limits<float>::quiet_NaN();
  expect_floats(run_summarize(dims({1, 3}), kGeometry, k, k,
                              [](Builder& b, ValueId x, ValueId) {
                                return b.reduce(OpKind::kMax, x, {0}, true, dims({1, 3}));
                              }),
                {9, nan, 11});
  expect_floats(run_summarize(dims({1, 3}), kGeometry, k, k,
                              [](Builder& b, ValueId x, ValueId) {
                                ValueId row = b.node(OpKind::kSlice, {x}, dims({3}));
                                b.fn.ops.back().slices = {SliceSpec{1, std::nullopt, 1, true},
                                                          SliceSpec{}};
                                ValueId zero = b.constant(0.0);
                                ValueId m = b.node(OpKind::kMaximum, {row, zero}, dims({3}));
                                return b.node(OpKind::kReshape, {m}, dims({1, 3}));
                              }),
                {3, nan, 5});
}

TEST(ExecutorOps, BroadcastingFollowsNumpy) {
  // k[:, 0:1] ([4, 1]) + v[0:1, :] ([1, 3]) -> [4, 3]
  auto out = run_summarize(dims({4, 3}), kGeometry, kRamp, kSigned,
                           [](Builder& b, ValueId k, ValueId v) {
                             ValueId col = b.node(OpKind::kSlice, {k}, dims({4, 1}));
                             b.fn.ops.back().slices = {SliceSpec{}, SliceSpec{0, 1, 1, false}};
                             ValueId row = b.node(OpKind::kSlice, {v}, dims({1, 3}));
                             b.fn.ops.back().slices = {SliceSpec{0, 1, 1, false}, SliceSpec{}};
                             return b.node(OpKind::kAdd, {col, row}, dims({4, 3}));
                           });
  expect_floats(out, {-2, 1, 0.5f, 1, 4, 3.5f, 4, 7, 6.5f, 7, 10, 9.5f});
  // a scalar times a matrix, and a row vector of rank 1 against [P, D]
  auto scaled = run_summarize(dims({4, 3}), kGeometry, kRamp, kSigned,
                              [](Builder& b, ValueId k, ValueId v) {
                                ValueId row = b.node(OpKind::kSlice, {v}, dims({3}));
                                b.fn.ops.back().slices = {SliceSpec{0, std::nullopt, 1, true},
                                                          SliceSpec{}};
                                ValueId two = b.constant(2.0);
                                ValueId k2 = b.node(OpKind::kMul, {two, k}, dims({4, 3}));
                                return b.node(OpKind::kSub, {k2, row}, dims({4, 3}));
                              });
  expect_floats(scaled, {2, 1, 3.5f, 8, 7, 9.5f, 14, 13, 15.5f, 20, 19, 21.5f});
}

TEST(ExecutorOps, ElementwiseOpsFollowPythonRules) {
  auto binary = [&](OpKind kind) {
    return run_summarize(dims({4, 3}), kGeometry, kSigned, kRamp,
                         [&](Builder& b, ValueId k, ValueId) {
                           ValueId c = b.constant(2.0);
                           return b.node(kind, {k, c}, dims({4, 3}));
                         });
  };
  // kSigned = {-2, 1, .5, 3, -4, 2, -1, -1, 7, 0, 2, -3}
  expect_floats(binary(OpKind::kFloorDiv), {-1, 0, 0, 1, -2, 1, -1, -1, 3, 0, 1, -2});
  expect_floats(binary(OpKind::kMod), {0, 1, 0.5f, 1, 0, 0, 1, 1, 1, 0, 0, 1});
  expect_floats(binary(OpKind::kPow), {4, 1, 0.25f, 9, 16, 4, 1, 1, 49, 0, 4, 9});
  expect_floats(binary(OpKind::kGe), {0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0});
  expect_floats(binary(OpKind::kMinimum), {-2, 1, 0.5f, 2, -4, 2, -1, -1, 2, 0, 2, -3});
  auto unary = [&](OpKind kind) {
    return run_summarize(dims({4, 3}), kGeometry, kSigned, kRamp,
                         [&](Builder& b, ValueId k, ValueId) {
                           return b.node(kind, {k}, dims({4, 3}));
                         });
  };
  std::vector<float> relu, sig, silu, absv, neg;
  for (float x : kSigned) {
    relu.push_back(std::max(x, 0.0f));
    sig.push_back(1.0f / (1.0f + std::exp(-x)));
    silu.push_back(x / (1.0f + std::exp(-x)));
    absv.push_back(std::fabs(x));
    neg.push_back(-x);
  }
  expect_floats(unary(OpKind::kRelu), relu);
  expect_floats(unary(OpKind::kSigmoid), sig);
  expect_floats(unary(OpKind::kSilu), silu);
  expect_floats(unary(OpKind::kAbs), absv);
  expect_floats(unary(OpKind::kNeg), neg);
  // where(k > v, k, v) with v = kRamp
  expect_floats(run_summarize(dims({4, 3}), kGeometry, kSigned, kRamp,
                              [](Builder& b, ValueId k, ValueId v) {
                                ValueId c = b.node(OpKind::kGt, {k, v}, dims({4, 3}));
                                b.fn.ops.back().type = ValueType::kBool;
                                return b.node(OpKind::kWhere, {c, k, v}, dims({4, 3}));
                              }),
                {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
}

TEST(ExecutorOps, SoftmaxIsStableAndPerSlice) {
  std::vector<float> k = {1000, 0, 1, 1000, 0, 2, 1000, 0, 3, 1000, 0, 4};
  auto out = run_summarize(dims({4, 3}), kGeometry, k, k, [](Builder& b, ValueId x, ValueId) {
    Op op;
    op.kind = OpKind::kSoftmax;
    op.operands = {x};
    op.axis = 0;
    op.shape = dims({4, 3});
    return b.push(op);
  });
  double z = std::exp(-3.0) + std::exp(-2.0) + std::exp(-1.0) + 1.0;
  expect_floats(out, {0.25f, 0.25f, static_cast<float>(std::exp(-3.0) / z), 0.25f, 0.25f,
                      static_cast<float>(std::exp(-2.0) / z), 0.25f, 0.25f,
                      static_cast<float>(std::exp(-1.0) / z), 0.25f, 0.25f,
                      static_cast<float>(1.0 / z)});
}

TEST(ExecutorOps, FoldsReduceRunsOfConsecutiveRows) {
  FlowGeometry geometry{1, 2, 8};
  std::vector<float> k(16);
  for (int i = 0; i < 16; ++i) k[static_cast<size_t>(i)] = static_cast<float>((i * 7) % 11);
  // k rows: (0,7) (3,10) (6,2) (9,5) (1,8) (4,0) (7,3) (10,6)
  auto fold = [&](OpKind kind, int64_t group) {
    Shape shape = {Dim::of(Symbol::kP, 1, group), Dim::of(Symbol::kD)};
    return run_summarize(shape, geometry, k, k, [&](Builder& b, ValueId x, ValueId) {
      ValueId id = b.node(kind, {x}, shape);
      b.fn.ops.back().axis = 0;
      b.fn.ops.back().group = group;
      return id;
    });
  };
  expect_floats(fold(OpKind::kFoldMax, 4), {9, 10, 10, 8});
  expect_floats(fold(OpKind::kFoldMin, 4), {0, 2, 1, 0});
  expect_floats(fold(OpKind::kFoldSum, 2), {3, 17, 15, 7, 5, 8, 17, 9});
  expect_floats(fold(OpKind::kFoldMean, 8), {5, 5.125f});
}

TEST(ExecutorOps, MatmulTransposeAndSlicesFollowNumpy) {
  // k [4, 3] @ k.T [3, 4] -> [4, 4]; entry (i, j) = row_i . row_j
  auto gram = run_summarize(dims({4, 4}), kGeometry, kRamp, kRamp,
                            [](Builder& b, ValueId k, ValueId) {
                              ValueId t = b.node(OpKind::kTranspose, {k}, dims({3, 4}));
                              b.fn.ops.back().axes = {1, 0};
                              return b.node(OpKind::kMatMul, {k, t}, dims({4, 4}));
                            });
  std::vector<float> want;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      float s = 0;
      for (int d = 0; d < 3; ++d) s += kRamp[static_cast<size_t>(3 * i + d)] * kRamp[static_cast<size_t>(3 * j + d)];
      want.push_back(s);
    }
  expect_floats(gram, want);
  // rank-1 on the right: k @ k[0] -> [4]; batch broadcast: k[None] ([1,4,3]) @ [3,1] -> [1,4,1]
  expect_floats(run_summarize(dims({4}), kGeometry, kRamp, kRamp,
                              [](Builder& b, ValueId k, ValueId) {
                                ValueId r = b.node(OpKind::kSlice, {k}, dims({3}));
                                b.fn.ops.back().slices = {SliceSpec{-1, std::nullopt, 1, true},
                                                          SliceSpec{}};
                                return b.node(OpKind::kMatMul, {k, r}, dims({4}));
                              }),
                {32, 122, 212, 302});
  // k[::-2, 2:0:-1] -> rows 3, 1; columns 2, 1
  expect_floats(run_summarize(dims({2, 2}), kGeometry, kRamp, kRamp,
                              [](Builder& b, ValueId k, ValueId) {
                                ValueId id = b.node(OpKind::kSlice, {k}, dims({2, 2}));
                                b.fn.ops.back().slices = {SliceSpec{std::nullopt, std::nullopt, -2, false},
                                                          SliceSpec{2, 0, -1, false}};
                                return id;
                              }),
                {11, 10, 5, 4});
  // a 3-D transpose: reshape k to [2, 2, 3], axes (2, 0, 1) -> [3, 2, 2]
  expect_floats(run_summarize(dims({3, 4}), kGeometry, kRamp, kRamp,
                              [](Builder& b, ValueId k, ValueId) {
                                ValueId r = b.node(OpKind::kReshape, {k}, dims({2, 2, 3}));
                                ValueId t = b.node(OpKind::kTranspose, {r}, dims({3, 2, 2}));
                                b.fn.ops.back().axes = {2, 0, 1};
                                return b.node(OpKind::kReshape, {t}, dims({3, 4}));
                              }),
                {0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11});
}

TEST(ExecutorOps, GeometryConstantsEvaluateForTheBinding) {
  auto out = run_summarize(dims({1, 3}), kGeometry, kRamp, kRamp,
                           [](Builder& b, ValueId, ValueId) {
                             Op d;
                             d.kind = OpKind::kDimValue;
                             d.dim = Dim::of(Symbol::kD, 2);
                             ValueId two_d = b.push(d);
                             Op p;
                             p.kind = OpKind::kDimValue;
                             p.dim = Dim::of(Symbol::kP, 1, 4);
                             ValueId quarter_p = b.push(p);
                             ValueId sum = b.node(OpKind::kAdd, {two_d, quarter_p}, {});
                             ValueId ones = b.constant(1.0, dims({1, 3}));
                             return b.node(OpKind::kMul, {ones, sum}, dims({1, 3}));
                           });
  expect_floats(out, {7, 7, 7});
}

TEST(ExecutorOps, FieldShapesThatDoNotFitTheGeometryAreErrors) {
  FlowProgram program;
  program.filename = "sub.py";
  program.fields.push_back({"s", FieldKind::kField, {Dim::of(Symbol::kP, 1, 8), Dim::of(Symbol::kD)}, {3, 5}});
  try {
    CpuFlowExecutor executor(program, FlowGeometry{1, 4, 4});
    FAIL() << "P/8 accepted for P=4";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sub.py:3:5: error: field 's' has shape [P/8, D]"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace vortex::flow
