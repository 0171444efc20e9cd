// IR passes: constant folding, dead-code removal and PER_PAGE / CROSS_PAGE placement.
#include "flow/passes.h"

#include <gtest/gtest.h>

#include "flow/compiler.h"
#include "flow/verifier.h"

namespace vortex::flow {
namespace {

const char* kHeader =
    "\"\"\"Doc.\"\"\"\n"
    "from vortex.flow import Flow, Field, State, D, G, N, P, softmax, sqrt, exp, zeros, ones\n"
    "class F(Flow):\n"
    "    c = Field(1, D)\n"
    "    def summarize(self, k, v):\n"
    "        self.c = k.mean(axis=0, keepdims=True)\n";

FlowProgram compile_ok(const std::string& score_body, const FlowGeometry* geo = nullptr,
                       const std::string& extra_fields = "") {
  std::string src = kHeader;
  if (!extra_fields.empty()) src.insert(src.find("    def summarize"), extra_fields);
  src += "    def score(self, q):\n" + score_body;
  CompileResult r = compile_flow(src, "f.py", geo);
  EXPECT_TRUE(r.ok()) << format_compile_errors(r, src, "f.py");
  if (!r.ok()) return FlowProgram{};
  return *r.program;
}

int count(const Function& fn, OpKind kind) {
  int n = 0;
  for (const Op& op : fn.ops) n += op.kind == kind;
  return n;
}

const Op& result_op(const FlowProgram& p) {
  return p.score.ops[p.score.result];
}

TEST(ConstantFolding, FoldsScalarMathOnBoundGeometry) {
  FlowGeometry geo{2, 64, 16};
  FlowProgram p = compile_ok(
      "        s = (q * self.c).sum(axis=-1).max(axis=-1)\n"
      "        return s / sqrt(D) * exp(0.0)\n",
      &geo);
  // sqrt(64) and exp(0) fold to constants; the *1 disappears.
  EXPECT_EQ(count(p.score, OpKind::kSqrt), 0);
  EXPECT_EQ(count(p.score, OpKind::kExp), 0);
  EXPECT_EQ(count(p.score, OpKind::kMul), 1);  // only q * c remains
  const Op& div = result_op(p);
  ASSERT_EQ(div.kind, OpKind::kDiv);
  EXPECT_EQ(p.score.ops[div.operands[1]].kind, OpKind::kConstant);
  EXPECT_DOUBLE_EQ(p.score.ops[div.operands[1]].value, 8.0);
}

TEST(ConstantFolding, KeepsSymbolicValuesSymbolic) {
  FlowProgram p = compile_ok(
      "        s = (q * self.c).sum(axis=-1).max(axis=-1)\n"
      "        return s / sqrt(D)\n");
  EXPECT_EQ(count(p.score, OpKind::kDimValue), 1);
  EXPECT_EQ(count(p.score, OpKind::kSqrt), 1);
}

TEST(ConstantFolding, ReductionsOfConstantsFoldOnlyOverConcreteSizes) {
  FlowGeometry geo{2, 64, 16};
  FlowProgram p = compile_ok(
      "        a = ones((G, 4)).sum(axis=1)\n"  // [2] of 4.0: folds
      "        b = ones(N).sum()\n"             // over N: cannot fold
      "        s = (q * self.c).sum(axis=-1).max(axis=-1)\n"
      "        return s * a.max() + b\n",
      &geo);
  EXPECT_EQ(count(p.score, OpKind::kSum), 2);  // q*c's sum and ones(N).sum()
  bool found_four = false;
  for (const Op& op : p.score.ops)
    found_four = found_four || (op.kind == OpKind::kConstant && op.value == 4.0);
  EXPECT_TRUE(found_four);
}

TEST(ConstantFolding, ComparisonsAndWhereFoldToZeroOrOne) {
  FlowProgram p;
  p.fields = {};
  p.score.phase = Phase::kScore;
  auto add = [&](Op op) {
    p.score.ops.push_back(op);
    return static_cast<ValueId>(p.score.ops.size() - 1);
  };
  Op two;
  two.kind = OpKind::kConstant;
  two.value = 2.0;
  Op three = two;
  three.value = 3.0;
  ValueId a = add(two), b = add(three);
  Op lt;
  lt.kind = OpKind::kLt;
  lt.type = ValueType::kBool;
  lt.operands = {a, b};
  ValueId c = add(lt);
  Op where;
  where.kind = OpKind::kWhere;
  where.operands = {c, a, b};
  p.score.result = add(where);
  fold_constants(p);
  EXPECT_EQ(p.score.ops[c].kind, OpKind::kConstant);
  EXPECT_EQ(p.score.ops[c].value, 1.0);
  EXPECT_EQ(p.score.ops[c].type, ValueType::kBool);
  EXPECT_EQ(p.score.ops[p.score.result].value, 2.0);
}

TEST(DeadCode, RemovesUnusedOpsAndRenumbers) {
  FlowProgram p = compile_ok(
      "        unused = (q * 3.0).exp()\n"
      "        also_unused = self.c.max()\n"
      "        return (q * self.c).sum(axis=-1).max(axis=-1)\n");
  EXPECT_EQ(count(p.score, OpKind::kExp), 0);
  EXPECT_EQ(count(p.score, OpKind::kLoadField), 1);
  EXPECT_EQ(check_ir_invariants(p), "");
  EXPECT_EQ(p.score.result, static_cast<ValueId>(p.score.ops.size() - 1));
}

TEST(DeadCode, KeepsStoresAndWhatTheyRead) {
  FlowProgram p = compile_ok(
      "        self.acc = self.acc * 0.5 + 1.0\n"
      "        return (q * self.c).sum(axis=-1).max(axis=-1) + self.acc\n",
      nullptr, "    acc = State()\n");
  EXPECT_EQ(count(p.score, OpKind::kStoreField), 1);
  EXPECT_EQ(count(p.score, OpKind::kLoadField), 2);
}

TEST(Placement, PerPageFlowHasOneStage) {
  FlowProgram p = compile_ok("        return (q * self.c).sum(axis=-1).max(axis=-1)\n");
  ASSERT_EQ(p.score.stages.size(), 1u);
  EXPECT_EQ(p.score.stages[0].placement, Placement::kPerPage);
  for (const Op& op : p.score.ops) EXPECT_EQ(op.placement, Placement::kPerPage);
  ASSERT_EQ(p.summarize.stages.size(), 1u);
}

TEST(Placement, SoftmaxOverPagesAndEverythingAfterItIsCrossPage) {
  FlowProgram p = compile_ok(
      "        logits = (q * self.c).sum(axis=-1)\n"
      "        probs = softmax(logits, axis=0)\n"
      "        return probs.max(axis=-1) * 2.0\n");
  for (const Op& op : p.score.ops) {
    bool after = op.kind == OpKind::kSoftmax || op.kind == OpKind::kMax ||
                 (op.kind == OpKind::kMul && op.shape.size() == 1);
    EXPECT_EQ(op.placement, after ? Placement::kCrossPage : Placement::kPerPage)
        << op_kind_name(op.kind);
  }
  ASSERT_EQ(p.score.stages.size(), 2u);
  EXPECT_EQ(p.score.stages[1].placement, Placement::kCrossPage);
}

TEST(Placement, ReductionOverHeadsIsPerPageButOverPagesIsCrossPage) {
  FlowProgram p = compile_ok(
      "        s = (q * self.c).sum(axis=-1).max(axis=-1)\n"
      "        return s - s.max()\n");
  const Op& sub = result_op(p);
  EXPECT_EQ(sub.placement, Placement::kCrossPage);
  EXPECT_EQ(p.score.ops[sub.operands[0]].placement, Placement::kPerPage);
  EXPECT_EQ(p.score.ops[sub.operands[1]].placement, Placement::kCrossPage);
}

TEST(Placement, TwoPageWideStepsMakeThreeStages) {
  FlowProgram p = compile_ok(
      "        s = (q * self.c).sum(axis=-1).max(axis=-1)\n"
      "        t = softmax(s, axis=0)\n"
      "        return t / t.sum()\n");
  ASSERT_EQ(p.score.stages.size(), 3u);
  EXPECT_EQ(p.score.stages[0].placement, Placement::kPerPage);
  EXPECT_EQ(p.score.stages[1].placement, Placement::kCrossPage);
  EXPECT_EQ(p.score.stages[2].placement, Placement::kCrossPage);
}

}  // namespace
}  // namespace vortex::flow
