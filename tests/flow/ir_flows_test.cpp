// Good flows compile: the spec's example, the shipped flows in flows/*.py (for the geometries of
// Qwen3-1.7B and Llama-3.1-8B and symbolically), and the program holds what the file declares.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "flow/compiler.h"

namespace vortex::flow {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

const char* kSpecQuest = R"(
"""Quest: query-aware sparsity (Tang et al., ICML 2024). Docstring is required: cite the algorithm."""
from vortex.flow import Flow, Field, State, Budget, D, G, P, N, maximum, softmax, sqrt

class Quest(Flow):
    kmax = Field(1, D)                 # per-page field: shape (r, c) per (page, KV head, layer)
    kmin = Field(1, D)
    budget = Budget(ratio=1/16, sink=1, recent=2, dense_layers=[0])

    def summarize(self, k, v):         # k, v: [P, D] of one full page, keys after RoPE
        self.kmax = k.max(axis=0, keepdims=True)     # must produce exactly the declared (1, D)
        self.kmin = k.min(axis=0, keepdims=True)

    def score(self, q):                # q: [G, D]; fields seen as [N, r, c]
        s = maximum(q * self.kmax, q * self.kmin)    # [G,D] * [N,1,D] -> [N,G,D]
        return s.sum(axis=-1).max(axis=-1)           # [N, G] -> [N]
)";

TEST(GoodFlows, SpecExampleCompilesWithItsDeclarations) {
  CompileResult r = compile_flow(kSpecQuest, "quest.py", nullptr);
  ASSERT_TRUE(r.ok()) << format_compile_errors(r, kSpecQuest, "quest.py");
  const FlowProgram& p = *r.program;
  EXPECT_EQ(p.class_name, "Quest");
  EXPECT_NE(p.docstring.find("Tang et al."), std::string::npos);
  ASSERT_EQ(p.fields.size(), 2u);
  EXPECT_EQ(p.fields[0].name, "kmax");
  EXPECT_EQ(p.fields[0].kind, FieldKind::kField);
  EXPECT_EQ(p.fields[0].dims, (Shape{Dim::constant(1), Dim::of(Symbol::kD)}));
  EXPECT_EQ(p.fields[0].loc.line, 6);
  ASSERT_TRUE(p.budget.ratio.has_value());
  EXPECT_DOUBLE_EQ(*p.budget.ratio, 1.0 / 16);
  EXPECT_EQ(p.budget.sink, 1);
  EXPECT_EQ(p.budget.recent, 2);
  EXPECT_EQ(p.budget.dense_layers, std::vector<int64_t>{0});
  EXPECT_EQ(p.score.ops[p.score.result].shape, Shape{Dim::of(Symbol::kN)});
  EXPECT_EQ(p.score.params[0].name, "q");
  EXPECT_EQ(p.summarize.params[1].name, "v");
}

TEST(GoodFlows, BudgetDefaultsApplyWhenOmitted) {
  std::string src =
      "\"\"\"Doc.\"\"\"\nfrom vortex.flow import Flow, Budget, N, zeros\n"
      "class S(Flow):\n    budget = Budget(pages=0, recent=63)\n"
      "    def score(self, q):\n        return zeros(N)\n";
  CompileResult r = compile_flow(src, "s.py", nullptr);
  ASSERT_TRUE(r.ok()) << format_compile_errors(r, src, "s.py");
  const BudgetPolicy& b = r.program->budget;
  EXPECT_EQ(b.pages, 0);
  EXPECT_FALSE(b.ratio.has_value());
  EXPECT_EQ(b.floor, 0);
  EXPECT_FALSE(b.cap.has_value());
  EXPECT_EQ(b.sink, 1);
  EXPECT_EQ(b.recent, 63);
  EXPECT_EQ(b.dense_layers, std::vector<int64_t>{0});
  EXPECT_TRUE(r.program->summarize.ops.empty());
}

TEST(GoodFlows, ShippedFlowsCompileForModelGeometries) {
  fs::path dir = fs::path(VORTEX_SOURCE_DIR) / "flows";
  if (!fs::exists(dir)) GTEST_SKIP() << "no flows/ folder yet";
  const FlowGeometry qwen3_1_7b{2, 128, 16}, llama_3_1_8b{4, 128, 16};
  int count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".py") continue;
    ++count;
    std::string src = read(entry.path());
    for (const FlowGeometry* g :
         {static_cast<const FlowGeometry*>(nullptr), &qwen3_1_7b, &llama_3_1_8b}) {
      CompileResult r = compile_flow(src, entry.path().filename().string(), g);
      EXPECT_TRUE(r.ok()) << format_compile_errors(r, src, entry.path().string());
    }
  }
  EXPECT_GT(count, 0);
}

TEST(GoodFlows, AliasesConstantsAndConstantIfs) {
  std::string src = R"("""Doc."""
from vortex.flow import Flow, Field as F, D, P, maximum as mx

WIDE = P >= 16
SCALE = 1 / 4

class A(Flow):
    GROUP = 2
    c = F(P // GROUP, D)

    def summarize(self, k, v):
        if WIDE and self.GROUP == 2:
            self.c = k.fold_max(self.GROUP) * SCALE
        else:
            self.c = k.fold_min(self.GROUP)

    def score(self, q):
        x = q[:, None, :] * self.c[:, None]
        x += 1
        return mx(x, 0.0).sum(axis=-1).max(axis=(1, 2))
)";
  for (int64_t page : {8, 16, 32}) {
    FlowGeometry g{2, 64, page};
    CompileResult r = compile_flow(src, "a.py", &g);
    ASSERT_TRUE(r.ok()) << format_compile_errors(r, src, "a.py");
    // WIDE picks fold_max for P >= 16 and fold_min for P = 8.
    bool has_max = false;
    for (const Op& op : r.program->summarize.ops) has_max = has_max || op.kind == OpKind::kFoldMax;
    EXPECT_EQ(has_max, page >= 16);
  }
}

TEST(GoodFlows, GeometryMustBeValid) {
  FlowGeometry bad{2, 64, 12};
  CompileResult r = compile_flow(kSpecQuest, "q.py", &bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.diagnostics[0].message.find("power of two"), std::string::npos);
}

}  // namespace
}  // namespace vortex::flow
