// int8 Field storage (flow/field_storage.h): the per-block power-of-two scale, the rounding it
// implies, the Field(dtype=...) declaration and its errors, and the CPU executor storing what a
// GPU block holds.
#include "flow/field_storage.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"
#include "flow/compiler.h"
#include "flow/cpu_executor.h"

namespace vortex::flow {
namespace {

TEST(FieldStorage, ScalePutsTheLargestMagnitudeIn63To127Units) {
  EXPECT_EQ(int8_scale_exponent(0.0f), 0);
  EXPECT_EQ(int8_scale_exponent(1.0f), -6);
  EXPECT_EQ(int8_scale_exponent(100.0f), 0);
  EXPECT_EQ(int8_scale_exponent(127.0f), 0);
  EXPECT_EQ(int8_scale_exponent(127.5f), 1);  // would round to 128
  EXPECT_EQ(int8_scale_exponent(128.0f), 1);
  EXPECT_EQ(int8_scale_exponent(0.75f), -7);
  EXPECT_EQ(int8_scale_exponent(1e-44f), -126);  // clamped: the scale stays a normal float
  EXPECT_EQ(int8_scale_exponent(3e38f), 104);    // clamped: (2^23 + 128) * scale stays finite
  EXPECT_EQ(int8_scale_exponent(INFINITY), 104);
  for (float m = 1e-30f; m < 1e30f; m *= 3.7f) {
    const float units = std::ldexp(m, -int8_scale_exponent(m));
    EXPECT_GT(units, 63.5f) << m;
    EXPECT_LE(units, 127.0f) << m;
  }
  EXPECT_EQ(block_max_abs(std::vector<float>{1.0f, NAN, -3.0f}.data(), 3), 3.0f);
}

TEST(FieldStorage, CodesRoundToNearestEvenAndClamp) {
  EXPECT_EQ(int8_code(2.5f, 0), 2);
  EXPECT_EQ(int8_code(3.5f, 0), 4);
  EXPECT_EQ(int8_code(-2.5f, 0), -2);
  EXPECT_EQ(int8_code(5.0f, 1), 2);    // 5 / 2 = 2.5: to the even 2
  EXPECT_EQ(int8_code(0.75f, -2), 3);  // 0.75 * 4
  EXPECT_EQ(int8_code(300.0f, 0), 127);
  EXPECT_EQ(int8_code(-INFINITY, 0), -127);
  EXPECT_EQ(int8_code(NAN, 0), 0);
}

TEST(FieldStorage, RoundingKeepsEachValueWithinHalfAStep) {
  Rng rng(5);
  for (int trial = 0; trial < 50; ++trial) {
    const float magnitude = std::ldexp(1.0f, static_cast<int>(rng.next_u64() % 60) - 30);
    std::vector<float> x(128);
    for (float& v : x)
      v = magnitude * (static_cast<float>(rng.next_u64() % 20001) / 10000.0f - 1.0f);
    std::vector<float> r = x;
    round_int8_block(r.data(), static_cast<int64_t>(r.size()));
    const float m = block_max_abs(x.data(), static_cast<int64_t>(x.size()));
    const float step = std::ldexp(1.0f, int8_scale_exponent(m));
    EXPECT_GE(step, m / 127.0f) << trial;
    EXPECT_LT(step, m / 63.5f) << trial;
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_LE(std::fabs(r[i] - x[i]), step / 2) << "trial " << trial << " value " << i;
      EXPECT_EQ(std::fmod(r[i], step), 0.0f) << "trial " << trial << " value " << i;
    }
    std::vector<float> again = r;
    round_int8_block(again.data(), static_cast<int64_t>(again.size()));
    EXPECT_EQ(again, r) << "rounding is not idempotent, trial " << trial;
  }
  std::vector<float> zeros(8, 0.0f);
  round_int8_block(zeros.data(), 8);
  EXPECT_EQ(zeros, std::vector<float>(8, 0.0f));
  std::vector<float> with_nan{1.0f, NAN, -2.0f};
  round_int8_block(with_nan.data(), 3);
  for (float v : with_nan) EXPECT_TRUE(std::isnan(v));  // the block's scale is NaN
  // An infinity clamps its block: scale 2^104, the infinity at 127 of it, the rest at 0.
  std::vector<float> huge{INFINITY, -1e30f, 1.0f};
  round_int8_block(huge.data(), 3);
  EXPECT_EQ(huge, (std::vector<float>{std::ldexp(127.0f, 104), -0.0f, 0.0f}));
}

CompileResult compile_source(const std::string& source) {
  CompileOptions options;
  options.dump_ir = false;
  return compile_flow(source, "inline.py", nullptr, options);
}

std::string centroid_flow(const std::string& declaration) {
  return R"(
"""Test flow: a centroid stored as the declaration says, and a bf16 mean beside it."""
from vortex.flow import Flow, Field, State, D

class Stored(Flow):
    centroid = )" +
         declaration + R"(
    level = Field()

    def summarize(self, k, v):
        self.centroid = k.mean(axis=0, keepdims=True)
        self.level = v.mean()

    def score(self, q):
        return (q * self.centroid).sum(axis=-1).mean(axis=-1) + self.level
)";
}

TEST(FieldStorage, CpuExecutorStoresWhatAnInt8BlockHolds) {
  const CompileResult int8 = compile_source(centroid_flow("Field(1, D, dtype=\"int8\")"));
  const CompileResult bf16 = compile_source(centroid_flow("Field(1, D, dtype=\"bf16\")"));
  ASSERT_TRUE(int8.ok()) << format_compile_errors(int8, "", "inline.py");
  ASSERT_TRUE(bf16.ok()) << format_compile_errors(bf16, "", "inline.py");
  EXPECT_EQ(int8.program->fields[0].dtype, FieldDtype::kInt8);
  EXPECT_EQ(int8.program->fields[1].dtype, FieldDtype::kBf16);
  EXPECT_EQ(bf16.program->fields[0].dtype, FieldDtype::kBf16);

  const FlowGeometry g{2, 16, 4};
  const CpuFlowExecutor int8_exec(*int8.program, g), bf16_exec(*bf16.program, g);
  ASSERT_TRUE(int8_exec.field_slots()[0].int8);
  ASSERT_FALSE(int8_exec.field_slots()[1].int8);
  Rng rng(11);
  std::vector<float> k(static_cast<size_t>(g.P * g.D)), v(k.size());
  for (float& x : k) x = static_cast<float>(rng.next_u64() % 1000) / 97.0f - 5.0f;
  for (float& x : v) x = static_cast<float>(rng.next_u64() % 1000) / 31.0f;
  const float* kp[1] = {k.data()};
  const float* vp[1] = {v.data()};
  std::vector<float> a(static_cast<size_t>(int8_exec.field_floats_per_page_head()));
  std::vector<float> b(a.size());
  float* ap[1] = {a.data()};
  float* bp[1] = {b.data()};
  int8_exec.summarize_pages(kp, vp, 1, ap);
  bf16_exec.summarize_pages(kp, vp, 1, bp);
  // The bf16 flow keeps f32 values; the int8 one exactly those rounded as a block.
  std::vector<float> want(b.begin(), b.begin() + g.D);
  round_int8_block(want.data(), g.D);
  for (int64_t d = 0; d < g.D; ++d)
    EXPECT_EQ(a[static_cast<size_t>(d)], want[static_cast<size_t>(d)]) << d;
  EXPECT_NE(std::vector<float>(a.begin(), a.begin() + g.D),
            std::vector<float>(b.begin(), b.begin() + g.D))
      << "random means should not all be multiples of the block's step already";
  EXPECT_EQ(a[static_cast<size_t>(g.D)], b[static_cast<size_t>(g.D)]);  // the bf16 Field
}

TEST(FieldStorage, BadDtypeDeclarationsAreErrorsAtTheirSource) {
  struct Case {
    std::string declaration, message;
  };
  const Case cases[] = {
      {"Field(1, D, dtype=\"fp8\")", "Field dtype must be the string \"bf16\""},
      {"Field(1, D, dtype=8)", "Field dtype must be the string"},
      {"Field(1, D, kind=\"int8\")", "unknown Field keyword 'kind'"},
      {"Field(1, D, dtype=\"int8\", dtype=\"int8\")", "dtype is given twice"},
      {"State(1, D, dtype=\"int8\")", "State takes no keyword arguments"},
  };
  for (const Case& c : cases) {
    const std::string source = centroid_flow(c.declaration);
    const CompileResult r = compile_source(source);
    ASSERT_FALSE(r.ok()) << c.declaration;
    const std::string text = format_compile_errors(r, source, "inline.py");
    EXPECT_NE(text.find(c.message), std::string::npos) << c.declaration << "\n" << text;
    EXPECT_NE(text.find("inline.py:6:"), std::string::npos) << c.declaration << "\n" << text;
  }
}

}  // namespace
}  // namespace vortex::flow
