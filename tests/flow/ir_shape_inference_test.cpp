// Symbolic shape inference: the shape rules on their own, and the shapes the compiler infers for
// expressions inside a flow (broadcasting, reductions, fold, matmul, slices, None, ellipsis).
#include <gtest/gtest.h>

#include "flow/compiler.h"
#include "flow/shape_inference.h"

namespace vortex::flow {
namespace {

Dim n() {
  return Dim::of(Symbol::kN);
}
Dim g() {
  return Dim::of(Symbol::kG);
}
Dim d() {
  return Dim::of(Symbol::kD);
}
Dim p(int64_t num = 1, int64_t den = 1) {
  return Dim::of(Symbol::kP, num, den);
}
Dim c(int64_t v) {
  return Dim::constant(v);
}

TEST(Dims, AreNormalisedAndPrinted) {
  EXPECT_EQ(dim_to_string(Dim::of(Symbol::kP, 2, 8)), "P/4");
  EXPECT_EQ(dim_to_string(Dim::of(Symbol::kD, 4, 2)), "2*D");
  EXPECT_EQ(dim_to_string(Dim::of(Symbol::kD, 3, 2)), "3*D/2");
  EXPECT_EQ(Dim::of(Symbol::kP, 2, 8), p(1, 4));
  EXPECT_EQ(shape_to_string({n(), g(), c(1)}), "[N, G, 1]");
  EXPECT_EQ(shape_to_string({}), "[]");
}

TEST(Dims, EvaluateWithTheGeometry) {
  FlowGeometry geo{4, 128, 16};
  EXPECT_EQ(eval_dim(p(1, 4), geo), 4);
  EXPECT_EQ(eval_dim(Dim::of(Symbol::kD, 3, 2), geo), 192);
  EXPECT_EQ(eval_dim(n(), geo, 37), 37);
  EXPECT_FALSE(eval_dim(n(), geo).has_value());
  EXPECT_FALSE(eval_dim(p(1, 32), geo).has_value());  // 16 / 32 is not an integer
  EXPECT_FALSE(eval_dim(g(), FlowGeometry{}).has_value());
}

TEST(Broadcast, FollowsNumpyOverSymbolicDims) {
  ShapeResult r = broadcast_shapes({g(), d()}, {n(), c(1), d()});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.shape, (Shape{n(), g(), d()}));
  r = broadcast_shapes({}, {p(1, 4), d()});
  EXPECT_EQ(r.shape, (Shape{p(1, 4), d()}));
  r = broadcast_shapes({c(1), c(3)}, {c(5), c(1)});
  EXPECT_EQ(r.shape, (Shape{c(5), c(3)}));
}

TEST(Broadcast, SymbolsThatAreNotProvablyEqualDoNotBroadcast) {
  ShapeResult r = broadcast_shapes({g(), d()}, {n(), c(1), p()});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error, "shapes [G, D] and [N, 1, P] do not broadcast (D vs P)");
  EXPECT_FALSE(broadcast_shapes({d()}, {Dim::of(Symbol::kD, 1, 2)}).ok());
  EXPECT_FALSE(broadcast_shapes({c(4)}, {c(3)}).ok());
}

TEST(Reductions, DropOrKeepAxes) {
  Shape s{n(), g(), d()};
  EXPECT_EQ(reduce_shape(s, {2}, false), (Shape{n(), g()}));
  EXPECT_EQ(reduce_shape(s, {1, 2}, true), (Shape{n(), c(1), c(1)}));
  EXPECT_EQ(reduce_shape(s, {0, 1, 2}, false), Shape{});
  EXPECT_EQ(normalize_axis(-1, 3), 2);
  EXPECT_FALSE(normalize_axis(3, 3).has_value());
  EXPECT_FALSE(normalize_axis(-4, 3).has_value());
}

TEST(Fold, DividesTheAxisAndChecksDivisibility) {
  ShapeResult r = fold_shape({p(), d()}, 0, 4);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.shape, (Shape{p(1, 4), d()}));
  EXPECT_EQ(fold_shape({c(16), c(128)}, 1, 32).shape, (Shape{c(16), c(4)}));
  EXPECT_FALSE(fold_shape({c(16), c(128)}, 0, 3).ok());
  EXPECT_FALSE(fold_shape({p(), d()}, 0, 3).ok());  // P is a power of two
  EXPECT_TRUE(fold_shape({p(3), d()}, 0, 3).ok());  // 3P / 3 = P
  EXPECT_FALSE(fold_shape({n(), d()}, 0, 2).ok());  // never across pages
}

TEST(Matmul, ContractsAndBroadcastsBatchDims) {
  ShapeResult r = matmul_shape({g(), d()}, {n(), d(), c(1)});
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.shape, (Shape{n(), g(), c(1)}));
  EXPECT_EQ(matmul_shape({d()}, {d(), p()}).shape, (Shape{p()}));
  EXPECT_EQ(matmul_shape({g(), d()}, {d()}).shape, (Shape{g()}));
  EXPECT_EQ(matmul_shape({d()}, {d()}).shape, Shape{});
  r = matmul_shape({g(), d()}, {n(), c(1), d()});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("contracts D vs 1"), std::string::npos);
}

TEST(Reshape, InfersMinusOneAndComparesSymbolicCounts) {
  EXPECT_EQ(reshape_shape({p(), d()}, {p(1, 4), c(4), d()}).shape, (Shape{p(1, 4), c(4), d()}));
  EXPECT_EQ(reshape_shape({p(), c(8)}, {c(-1)}).shape, (Shape{Dim::of(Symbol::kP, 8)}));
  EXPECT_EQ(reshape_shape({g(), c(4)}, {c(2), c(-1)}).shape, (Shape{c(2), Dim::of(Symbol::kG, 2)}));
  EXPECT_FALSE(reshape_shape({p(), d()}, {c(-1)}).ok());  // P * D is not a single dim
  EXPECT_FALSE(reshape_shape({p(), d()}, {p(), c(2)}).ok());
}

TEST(Slices, LengthsForConstantAndSymbolicAxes) {
  std::string err;
  auto len = [&](Dim size, std::optional<int64_t> a, std::optional<int64_t> b, int64_t step = 1) {
    return slice_length(size, SliceSpec{a, b, step, false}, &err);
  };
  EXPECT_EQ(len(c(10), 2, 5), c(3));
  EXPECT_EQ(len(c(10), -3, std::nullopt), c(3));
  EXPECT_EQ(len(c(10), std::nullopt, std::nullopt, 3), c(4));
  EXPECT_EQ(len(c(10), std::nullopt, std::nullopt, -1), c(10));
  EXPECT_EQ(len(d(), 0, 4), c(4));
  EXPECT_EQ(len(d(), -8, std::nullopt), c(8));
  EXPECT_EQ(len(p(), std::nullopt, std::nullopt, 2), p(1, 2));
  EXPECT_FALSE(len(d(), 1, std::nullopt).has_value());  // D - 1: not a fixed length
  EXPECT_FALSE(len(c(4), 5, 9).has_value());            // empty
}

// The shape of score's returned value for a score body `expr` (q: [G, D]; fields a: Field(1, D),
// s: Field(P // 4, D)).
std::string score_shape(const std::string& expr, const FlowGeometry* geo = nullptr,
                        std::string* error = nullptr) {
  std::string src =
      "\"\"\"Doc.\"\"\"\n"
      "from vortex.flow import Flow, Field, D, G, P, N, zeros, ones, full, softmax, "
      "expand_dims, sum, maximum\n"
      "class F(Flow):\n"
      "    a = Field(1, D)\n"
      "    s = Field(P // 4, D)\n"
      "    def summarize(self, k, v):\n"
      "        self.a = k.mean(axis=0, keepdims=True)\n"
      "        self.s = k.fold_max(4)\n"
      "    def score(self, q):\n"
      "        a = self.a\n"
      "        s = self.s\n"
      "        x = " +
      expr +
      "\n"
      "        return (q * a).sum(axis=-1).max(axis=-1) + (s.sum(axis=(1, 2)) + (x * 0).sum()) * "
      "0\n";
  CompileOptions opts;
  CompileResult r = compile_flow(src, "f.py", geo, opts);
  if (!r.ok()) {
    if (error) *error = r.diagnostics.front().message;
    return "error";
  }
  std::string dump = r.ir_dumps.front();
  // The last op on line 12 in the lowered IR defines x.
  std::string shape;
  size_t pos = 0;
  while ((pos = dump.find("@12:", pos)) != std::string::npos) {
    size_t line_start = dump.rfind('\n', pos) + 1;
    std::string line = dump.substr(line_start, pos - line_start);
    size_t colon = line.rfind(" : ");
    if (colon != std::string::npos) {
      std::string rest = line.substr(colon + 3);
      rest = rest.substr(rest.find('['));
      shape = rest.substr(0, rest.find(']') + 1);
    }
    pos += 4;
  }
  return shape;
}

TEST(InferredShapes, ElementwiseBroadcastingInAFlow) {
  EXPECT_EQ(score_shape("q * a"), "[N, G, D]");
  EXPECT_EQ(score_shape("maximum(q * a, 0.0)"), "[N, G, D]");
  EXPECT_EQ(score_shape("q[:, None, :] * s[:, None]"), "[N, G, P/4, D]");
}

TEST(InferredShapes, Reductions) {
  EXPECT_EQ(score_shape("(q * a).sum(axis=-1)"), "[N, G]");
  EXPECT_EQ(score_shape("(q * a).max(axis=(1, 2), keepdims=True)"), "[N, 1, 1]");
  EXPECT_EQ(score_shape("sum(q * a, axis=None)"), "[]");
  EXPECT_EQ(score_shape("(q * a).l2norm(axis=0)"), "[G, D]");
  EXPECT_EQ(score_shape("softmax((q * a).sum(axis=-1), axis=0)"), "[N, G]");
}

TEST(InferredShapes, FoldMatmulTransposeAndConstructors) {
  EXPECT_EQ(score_shape("s.fold_mean(2, axis=1)"), "[N, P/8, D]");
  EXPECT_EQ(score_shape("q @ a.transpose(0, 2, 1)"), "[N, G, 1]");
  EXPECT_EQ(score_shape("q.T"), "[D, G]");
  EXPECT_EQ(score_shape("zeros((N, G))"), "[N, G]");
  EXPECT_EQ(score_shape("full(P // 4, 2.0)"), "[P/4]");
  EXPECT_EQ(score_shape("expand_dims(q, 1)"), "[G, 1, D]");
  EXPECT_EQ(score_shape("a.squeeze(1)"), "[N, D]");
  EXPECT_EQ(score_shape("s.reshape(N, -1, 2, D)"), "[N, P/8, 2, D]");
}

TEST(InferredShapes, SlicesNoneAndEllipsis) {
  EXPECT_EQ(score_shape("q[0]"), "[D]");
  EXPECT_EQ(score_shape("q[:, 0:4]"), "[G, 4]");
  EXPECT_EQ(score_shape("q[..., -2:]"), "[G, 2]");
  EXPECT_EQ(score_shape("q[None, ..., None]"), "[1, G, D, 1]");
  EXPECT_EQ(score_shape("s[:, ::2, 1]"), "[N, P/8]");
  EXPECT_EQ(score_shape("a[..., 0]"), "[N, 1]");
}

TEST(InferredShapes, BoundGeometryMakesDimsConcrete) {
  FlowGeometry geo{4, 64, 16};
  EXPECT_EQ(score_shape("q[:, None, :] * s[:, None]", &geo), "[N, 4, 4, 64]");
  std::string error;
  EXPECT_EQ(score_shape("s.fold_max(8, axis=1)", &geo, &error), "error");
  EXPECT_NE(error.find("fold size 8 does not divide axis 1 of size 4"), std::string::npos) << error;
  EXPECT_EQ(score_shape("q[:, 0:D // 2]", &geo), "[4, 32]");
}

TEST(InferredShapes, ShapeErrorsNameBothShapes) {
  std::string error;
  EXPECT_EQ(score_shape("q * s", nullptr, &error), "error");
  EXPECT_NE(error.find("shapes [G, D] and [N, P/4, D] do not broadcast (G vs P/4)"),
            std::string::npos)
      << error;
  EXPECT_EQ(score_shape("q[3, 0, 1]", nullptr, &error), "error");
  EXPECT_NE(error.find("too many indices"), std::string::npos) << error;
  EXPECT_EQ(score_shape("a[0]", nullptr, &error), "error");
  EXPECT_NE(error.find("indexing the page axis N"), std::string::npos) << error;
  EXPECT_EQ(score_shape("q[:, 1:]", nullptr, &error), "error");
  EXPECT_NE(error.find("fixed length"), std::string::npos) << error;
}

}  // namespace
}  // namespace vortex::flow
