// Hostile flow sources too large, deep or long to keep as files (the small ones are in
// tests/data/flows/malformed): each must end in a located diagnostic that names the limit it hit,
// never a crash, a hang or unbounded memory; and what a bound check accepts, the CUDA generator
// compiles.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "flow/codegen/cuda_codegen.h"
#include "flow/compiler.h"
#include "flow/constant.h"
#include "flow/limits.h"
#include "flow/source_file.h"

namespace vortex::flow {
namespace {

namespace fs = std::filesystem;

constexpr FlowGeometry kGeometry{2, 128, 16};

// A flow whose score is `score_body` (lines indented by 8), with one Field c.
std::string flow_with_score(const std::string& score_body, const std::string& class_extra = "") {
  return "\"\"\"Test flow.\"\"\"\n"
         "from vortex.flow import Flow, Field, State, Budget, D, N, exp, zeros\n"
         "\n"
         "\n"
         "class F(Flow):\n"
         "    c = Field(1, D)\n" +
         class_extra +
         "\n"
         "    def summarize(self, k, v):\n"
         "        self.c = k.mean(axis=0, keepdims=True)\n"
         "\n"
         "    def score(self, q):\n" +
         score_body;
}

const std::string kScore = "(q * self.c).sum(axis=-1).max(axis=-1)";

// Compiles symbolically and for kGeometry (which also runs the CUDA generator); both must fail
// with a first diagnostic containing `message`. Returns the symbolic compile's first diagnostic.
Diagnostic expect_rejected(const std::string& source, const std::string& message) {
  Diagnostic first;
  for (bool bound : {false, true}) {
    CompileResult r = compile_flow(source, "h.py", bound ? &kGeometry : nullptr);
    EXPECT_FALSE(r.ok()) << (bound ? "bound" : "symbolic") << " compile accepted it";
    if (r.diagnostics.empty()) {
      ADD_FAILURE() << "rejected without a diagnostic";
      continue;
    }
    const Diagnostic& d = r.diagnostics.front();
    EXPECT_NE(d.message.find(message), std::string::npos)
        << (bound ? "bound: " : "symbolic: ") << d.message;
    EXPECT_LE(r.diagnostics.size(), 3u) << format_compile_errors(r, source, "h.py");
    // One diagnostic renders as a few short lines whatever the source holds.
    EXPECT_LT(format_diagnostics({d}, source, "h.py").size(), 2048u);
    if (!bound) first = d;
  }
  return first;
}

TEST(HostileFlows, FiveThousandDependentStatementsHitTheDepthLimit) {
  std::string body = "        x = " + kScore + "\n";
  for (int i = 0; i < 5000; ++i) body += "        x = x + 1.0\n";
  body += "        return x\n";
  const Diagnostic d = expect_rejected(flow_with_score(body), "(the dependency depth limit)");
  EXPECT_GT(d.loc.line, 13);
  EXPECT_GT(d.loc.col, 0);

  // The same chain in summarize.
  std::string source = flow_with_score("        return " + kScore + "\n");
  std::string chain = "        y = k.mean(axis=0, keepdims=True)\n";
  for (int i = 0; i < 5000; ++i) chain += "        y = y * 1.5\n";
  chain += "        self.c = y\n";
  const std::string write = "        self.c = k.mean(axis=0, keepdims=True)\n";
  source.replace(source.find(write), write.size(), chain);
  expect_rejected(source, "dependent operations in summarize (the dependency depth limit)");
}

TEST(HostileFlows, AChainJustUnderTheDepthLimitCompilesForTheGpu) {
  // Two dependent operations a statement, ending a little under the limit.
  std::string body = "        x = " + kScore + "\n";
  for (int i = 0; i < (kMaxOpDepth - 16) / 2; ++i) body += "        x = x * 1.5 + 1.0\n";
  body += "        return x\n";
  const std::string source = flow_with_score(body);
  CompileResult r = compile_flow(source, "h.py", &kGeometry);
  ASSERT_TRUE(r.ok()) << format_compile_errors(r, source, "h.py");
  EXPECT_FALSE(generate_cuda_flow(*r.program, kGeometry).source.empty());
}

TEST(HostileFlows, LongOperatorChainsAndDeepNestingHitTheNestingLimit) {
  std::string sum = "a";
  for (int i = 0; i < 100000; ++i) sum += "+a";
  expect_rejected(flow_with_score("        a = " + kScore + "\n        return " + sum + "\n"),
                  "(the nesting limit)");
  const std::string parens = std::string(100000, '(') + "zeros(N)" + std::string(100000, ')');
  expect_rejected(flow_with_score("        return " + parens + "\n"), "(the nesting limit)");
  std::string calls = "zeros(N)";
  for (int i = 0; i < 30000; ++i) calls = "exp(" + calls + ")";
  expect_rejected(flow_with_score("        return " + calls + "\n"), "(the nesting limit)");
  expect_rejected(flow_with_score("        return " + std::string(100000, '-') + kScore + "\n"),
                  "(the nesting limit)");
  std::string attrs = "q";
  for (int i = 0; i < 100000; ++i) attrs += ".T";
  expect_rejected(flow_with_score("        return " + attrs + "\n"), "(the nesting limit)");
}

TEST(HostileFlows, ALongElifChainHitsTheNestingLimit) {
  std::string body = "        if 0:\n            x = zeros(N)\n";
  for (int i = 0; i < 20000; ++i) body += "        elif 0:\n            x = zeros(N)\n";
  body += "        else:\n            x = zeros(N)\n        return x + " + kScore + "\n";
  expect_rejected(flow_with_score(body), "(the nesting limit)");
}

TEST(HostileFlows, StatementsDeclarationsAndFieldsAreCounted) {
  std::string body;
  for (int i = 0; i <= kMaxStatements; ++i) body += "        x" + std::to_string(i) + " = 1\n";
  body += "        return " + kScore + "\n";
  expect_rejected(flow_with_score(body),
                  "score has more than 1024 statements (the statement limit)");

  std::string consts;
  for (int i = 0; i <= kMaxDeclarations; ++i)
    consts += "    K" + std::to_string(i) + " = " + std::to_string(i) + "\n";
  expect_rejected(flow_with_score("        return " + kScore + "\n", consts),
                  "(the declaration limit)");

  std::string fields;
  for (int i = 0; i < 5000; ++i) fields += "    f" + std::to_string(i) + " = Field(1, D)\n";
  const Diagnostic d = expect_rejected(flow_with_score("        return " + kScore + "\n", fields),
                                       "(the field limit)");
  EXPECT_EQ(d.loc.line, 7 + kMaxFields - 1);  // c is the first of the 64
}

TEST(HostileFlows, ARefusedFieldIsReportedOnceAndNotCountedAgainstTheNext) {
  std::string source = flow_with_score(
      "        return " + kScore + " + self.b.sum(axis=(1, 2)) + self.d.sum(axis=(1, 2))\n",
      "    b = Field(100000, 100000)\n    d = Field(2, D)\n");
  const std::string write = "        self.c = k.mean(axis=0, keepdims=True)\n";
  source.insert(source.find(write) + write.size(),
                "        self.b = zeros((100000, 100000))\n        self.d = k[0:2]\n");
  for (bool bound : {false, true}) {
    CompileResult r = compile_flow(source, "h.py", bound ? &kGeometry : nullptr);
    ASSERT_EQ(r.diagnostics.size(), 1u) << format_compile_errors(r, source, "h.py");
    EXPECT_EQ(r.diagnostics[0].loc.line, 7);
    EXPECT_NE(r.diagnostics[0].message.find("(the Field memory limit)"), std::string::npos);
  }
}

TEST(HostileFlows, OperationsPerFunctionAreCounted) {
  // Wide, not deep: many independent values, each a few operations.
  std::string body = "        s = " + kScore + "\n";
  for (int i = 0; i < 1000; ++i)
    body += "        y" + std::to_string(i) + " = (q * self.c * " + std::to_string(i) +
            ".0).sum(axis=-1).max(axis=-1) + s\n";
  body += "        return s\n";
  expect_rejected(flow_with_score(body), "operations (the operation limit)");
}

TEST(HostileFlows, TheValuesOfAFunctionAreBoundedTogether) {
  // Each value is at the per-value limit (256 x 256 per page); five of them are over the
  // function's total (the CPU executor keeps them all for every page of a row).
  std::string body = "        s = " + kScore + "\n";
  for (int i = 0; i < 5; ++i)
    body += "        y" + std::to_string(i) + " = zeros((N, 256, 256)) * s[:, None, None]\n";
  body += "        return (y0 + y1 + y2 + y3 + y4).sum(axis=(1, 2))\n";
  expect_rejected(flow_with_score(body), "are allowed (the function size limit)");
}

TEST(HostileFlows, SourceLargerThanTheCapIsRefusedBeforeParsing) {
  std::string source = flow_with_score("        return " + kScore + "\n");
  source += "# " + std::string(static_cast<size_t>(kMaxSourceBytes), 'x') + "\n";
  CompileResult r = compile_flow(source, "h.py", nullptr);
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_NE(r.diagnostics[0].message.find("flow files are limited to 1048576 bytes (1 MiB)"),
            std::string::npos)
      << r.diagnostics[0].message;
}

TEST(HostileFlows, GeneratedCodeIsBoundedWhenValuesAreReindexedOverAndOver) {
  // Every statement adds a transposed copy: the GPU generator would inline each value at every
  // permutation of its indices. The bound check stops at the generated code limit.
  std::string body =
      "        x = (q * self.c).sum(axis=(1, 2))[:, None, None, None, None, None, None, None] + "
      "zeros((N, 2, 2, 2, 2, 2, 2, 2))\n";
  const char* perms[] = {"0, 4, 7, 6, 3, 1, 5, 2", "0, 2, 3, 4, 5, 6, 7, 1",
                         "0, 7, 1, 6, 2, 5, 3, 4", "0, 3, 1, 2, 7, 5, 4, 6"};
  for (int i = 0; i < 200; ++i)
    body += std::string("        x = x + x.transpose(") + perms[i % 4] + ")\n";
  body += "        return x.sum(axis=(1, 2, 3, 4, 5, 6, 7))\n";
  const std::string source = flow_with_score(body);
  EXPECT_TRUE(compile_flow(source, "h.py", nullptr).ok());  // nothing to generate without a model
  CompileResult r = compile_flow(source, "h.py", &kGeometry);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.diagnostics[0].message.find("(the generated code limit)"), std::string::npos)
      << r.diagnostics[0].message;
  EXPECT_GT(r.diagnostics[0].loc.line, 12);
}

TEST(HostileFlows, TheCudaSourceHandedToNvrtcIsBounded) {
  // A long chain of elementwise operations, each inlined for every element a page needs: far
  // under the depth limit, but more source than NVRTC should be given.
  std::string body = "        x = q * self.c\n";
  for (int i = 0; i < 200; ++i) body += "        x = maximum(x * " + std::to_string(i) + ".5, q)\n";
  body += "        return x.sum(axis=(1, 2))\n";
  const std::string source = flow_with_score(body);
  std::string with_maximum = source;
  with_maximum.insert(with_maximum.find("exp, zeros"), "maximum, ");
  EXPECT_TRUE(compile_flow(with_maximum, "h.py", nullptr).ok());
  CompileResult r = compile_flow(with_maximum, "h.py", &kGeometry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.diagnostics[0].loc.line, 11);  // def score
  EXPECT_NE(r.diagnostics[0].message.find("bytes; at most 524288 (512 KiB: the generated code "
                                          "limit"),
            std::string::npos)
      << r.diagnostics[0].message;
}

TEST(HostileFlows, ALeadingByteOrderMarkIsIgnored) {
  const std::string source = "\xEF\xBB\xBF" + flow_with_score("        return " + kScore + "\n");
  for (bool bound : {false, true}) {
    CompileResult r = compile_flow(source, "h.py", bound ? &kGeometry : nullptr);
    EXPECT_TRUE(r.ok()) << format_compile_errors(r, source, "h.py");
  }
  // Columns on the first line count after the mark, and the rendered line does not show it.
  CompileResult r = compile_flow("\xEF\xBB\xBFx = $\n", "h.py", nullptr);
  ASSERT_FALSE(r.diagnostics.empty());
  EXPECT_EQ(r.diagnostics[0].loc.col, 5);
  EXPECT_NE(format_compile_errors(r, "\xEF\xBB\xBFx = $\n", "h.py").find("\n    x = $\n"),
            std::string::npos);
}

TEST(HostileFlows, CarriageReturnsEndLinesAsInPython) {
  const std::string lf = flow_with_score("        return " + kScore + "\n");
  for (const std::string& end : {std::string("\r\n"), std::string("\r")}) {
    std::string source;
    for (char c : lf) source += c == '\n' ? end : std::string(1, c);
    CompileResult ok = compile_flow(source, "h.py", &kGeometry);
    EXPECT_TRUE(ok.ok()) << format_compile_errors(ok, source, "h.py");
    // An error is at the same line and column as with "\n", and its line is shown.
    const std::string bad = source + "$" + end;
    CompileResult r = compile_flow(bad, "h.py", nullptr);
    ASSERT_FALSE(r.diagnostics.empty());
    EXPECT_EQ(r.diagnostics[0].loc.line, 13);
    EXPECT_EQ(r.diagnostics[0].loc.col, 1);
    EXPECT_NE(format_compile_errors(r, bad, "h.py").find("\n    $\n    ^\n"), std::string::npos)
        << format_compile_errors(r, bad, "h.py");
  }
}

TEST(HostileFlows, TabIndentationAloneIsFine) {
  // The usual flow with each 4 leading spaces written as one tab.
  std::string source;
  bool line_start = true;
  int spaces = 0;
  for (char c : flow_with_score("        return " + kScore + "\n")) {
    if (line_start && c == ' ') {
      if (++spaces == 4) source += '\t', spaces = 0;
      continue;
    }
    source.append(static_cast<size_t>(spaces), ' ');
    spaces = 0;
    source += c;
    line_start = c == '\n';
  }
  CompileResult r = compile_flow(source, "h.py", nullptr);
  EXPECT_TRUE(r.ok()) << format_compile_errors(r, source, "h.py");
}

TEST(HostileFlows, LongLinesRenderAsAWindowAroundTheColumn) {
  const std::string source =
      flow_with_score("        return " + kScore + " + " + std::string(200000, 'a') + "$\n");
  CompileResult r = compile_flow(source, "h.py", nullptr);
  ASSERT_FALSE(r.ok());
  const std::string text = format_compile_errors(r, source, "h.py");
  EXPECT_LT(text.size(), 2048u) << text.substr(0, 400);
}

ConstValue integer(int64_t v) {
  return ConstValue::integer(v);
}

int64_t int_result(const std::string& op, int64_t a, int64_t b) {
  ConstResult r = const_binary(op, integer(a), integer(b));
  EXPECT_TRUE(r.error.empty()) << a << " " << op << " " << b << ": " << r.error;
  EXPECT_TRUE(r.value && r.value->kind == ConstValue::Kind::kInt) << a << " " << op << " " << b;
  return r.value ? r.value->i : 0;
}

std::string int_error(const std::string& op, int64_t a, int64_t b) {
  ConstResult r = const_binary(op, integer(a), integer(b));
  EXPECT_FALSE(r.value) << a << " " << op << " " << b;
  return r.error;
}

TEST(HostileFlows, IntegerConstantArithmeticIsExactOrAnError) {
  EXPECT_EQ(int_result("**", -1, 3), -1);
  EXPECT_EQ(int_result("**", -2, 3), -8);
  EXPECT_EQ(int_result("**", -1, (int64_t{1} << 62) + 1), -1);  // O(log n), no loop to 2^62
  EXPECT_EQ(int_result("**", 1, INT64_MAX), 1);
  EXPECT_EQ(int_result("**", 0, 0), 1);
  EXPECT_EQ(int_result("**", 2, 62), int64_t{1} << 62);
  EXPECT_EQ(int_result("**", -2, 63), INT64_MIN);
  EXPECT_EQ(int_result("**", 10, 18), 1000000000000000000);
  EXPECT_NE(int_error("**", 2, 63).find("integer overflow"), std::string::npos);
  EXPECT_NE(int_error("**", 10, 100).find("integer overflow"), std::string::npos);
  EXPECT_NE(int_error("**", 0, -1).find("negative power"), std::string::npos);
  EXPECT_NE(int_error("//", INT64_MIN, -1).find("integer overflow"), std::string::npos);
  EXPECT_NE(int_error("%", 5, 0).find("division by zero"), std::string::npos);
  EXPECT_NE(int_error("//", 5, 0).find("division by zero"), std::string::npos);
  EXPECT_NE(int_error("*", INT64_MAX, 2).find("integer overflow"), std::string::npos);
  EXPECT_EQ(int_result("//", -7, 2), -4);
  EXPECT_EQ(int_result("%", -7, 2), 1);
  EXPECT_EQ(int_result("%", 7, -2), -1);
  // Comparisons of large integers are exact (not through double).
  ConstResult eq = const_binary("==", integer((int64_t{1} << 62) + 1), integer(int64_t{1} << 62));
  ASSERT_TRUE(eq.value);
  EXPECT_FALSE(eq.value->b);
  ConstResult neg = const_negate(integer(INT64_MIN));
  EXPECT_NE(neg.error.find("integer overflow"), std::string::npos);
}

TEST(HostileFlows, FloatConstantArithmeticStaysFinite) {
  auto real = [](double v) { return ConstValue::real(v); };
  auto error_of = [&](const std::string& op, double a, double b) {
    ConstResult r = const_binary(op, real(a), real(b));
    EXPECT_FALSE(r.value) << a << " " << op << " " << b;
    return r.error;
  };
  EXPECT_NE(error_of("*", 1e308, 10.0).find("infinite"), std::string::npos);
  EXPECT_NE(error_of("**", 2.0, 2000.0).find("infinite"), std::string::npos);
  EXPECT_NE(error_of("**", -8.0, 1.0 / 3.0).find("not a real number"), std::string::npos);
  EXPECT_NE(error_of("/", 1.0, 0.0).find("division by zero"), std::string::npos);
  EXPECT_NE(error_of("%", 1.0, 0.0).find("division by zero"), std::string::npos);
  EXPECT_NE(error_of("**", 0.0, -1.0).find("negative power"), std::string::npos);
  ConstResult mod = const_binary("%", real(7.5), real(-2.0));
  ASSERT_TRUE(mod.value);
  EXPECT_DOUBLE_EQ(mod.value->f, -0.5);
  ConstResult div = const_binary("//", real(-7.5), real(2.0));
  ASSERT_TRUE(div.value);
  EXPECT_DOUBLE_EQ(div.value->f, -4.0);
}

TEST(HostileFlows, MinusOneCubedFoldsToMinusOne) {
  const std::string source = flow_with_score("        return " + kScore + " * (-1)**3\n");
  CompileOptions options;
  options.dump_ir = true;
  CompileResult r = compile_flow(source, "h.py", nullptr, options);
  ASSERT_TRUE(r.ok()) << format_compile_errors(r, source, "h.py");
  EXPECT_NE(r.ir_dumps.back().find("constant value=-1 "), std::string::npos) << r.ir_dumps.back();
}

TEST(HostileFlows, DenseLayersMustExistInTheModel) {
  const std::string with_budget = flow_with_score("        return " + kScore + "\n",
                                                  "    budget = Budget(dense_layers=[0, 5])\n");
  CompileOptions options;
  options.num_layers = 4;
  CompileResult r = compile_flow(with_budget, "h.py", &kGeometry, options);
  ASSERT_EQ(r.diagnostics.size(), 1u) << format_compile_errors(r, with_budget, "h.py");
  EXPECT_EQ(r.diagnostics[0].loc.line, 7);
  EXPECT_NE(r.diagnostics[0].message.find("layer 5 does not exist: the model has 4 layers"),
            std::string::npos)
      << r.diagnostics[0].message;
  options.num_layers = 6;
  EXPECT_TRUE(compile_flow(with_budget, "h.py", &kGeometry, options).ok());
}

// One set of rules: with a bound geometry, compile_flow accepts exactly what the CUDA generator
// compiles, and refuses the rest at the generator's line and column.
TEST(HostileFlows, ABoundCheckAgreesWithTheCudaGenerator) {
  int checked = 0, rejected = 0;
  for (const char* dir : {"flows", "tests/data/flows/codegen", "tests/data/flows/golden"}) {
    for (const auto& e : fs::directory_iterator(fs::path(VORTEX_SOURCE_DIR) / dir)) {
      if (e.path().extension() != ".py") continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::ostringstream os;
      os << in.rdbuf();
      const std::string source = os.str();
      const std::string name = e.path().filename().string();
      CompileResult symbolic = compile_flow(source, name, nullptr);
      ASSERT_TRUE(symbolic.ok()) << name << format_compile_errors(symbolic, source, name);
      CompileResult bound = compile_flow(source, name, &kGeometry);
      try {
        generate_cuda_flow(*symbolic.program, kGeometry);
        EXPECT_TRUE(bound.ok()) << name << format_compile_errors(bound, source, name);
      } catch (const CudaCodegenError& err) {
        ASSERT_FALSE(bound.ok()) << name << " compiles but the generator says: " << err.what();
        EXPECT_EQ(bound.diagnostics[0].loc.line, err.loc().line) << name;
        EXPECT_EQ(bound.diagnostics[0].loc.col, err.loc().col) << name;
        EXPECT_EQ(bound.diagnostics[0].message, err.detail()) << name;
        ++rejected;
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 15);
  EXPECT_GE(rejected, 1);  // wide_softmax.py: 128 values per row kept by a softmax over N
}

class ScratchDir {
 public:
  ScratchDir() : path_(fs::temp_directory_path() / ("vortex_hostile_" + std::to_string(getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string file_error(const std::string& path) {
  try {
    read_flow_source_file(path);
  } catch (const FlowFileError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": " + e.detail());
    return e.detail();
  }
  ADD_FAILURE() << path << " was read";
  return "";
}

TEST(HostileFlows, OnlyRegularFilesUpToTheCapAreRead) {
  ScratchDir dir;
  EXPECT_NE(file_error(dir / "missing.py").find("cannot read the flow file"), std::string::npos);
  fs::create_directories(dir / "a_dir.py");
  EXPECT_NE(file_error(dir / "a_dir.py").find("is a directory, not a flow file"),
            std::string::npos);
  ASSERT_EQ(mkfifo((dir / "fifo.py").c_str(), 0600), 0);
  EXPECT_NE(file_error(dir / "fifo.py").find("is a FIFO (named pipe), not a flow file"),
            std::string::npos);  // returns: nothing opened it for reading
  EXPECT_NE(file_error("/dev/zero").find("is a character device, not a flow file"),
            std::string::npos);
  {
    std::ofstream big(dir / "big.py", std::ios::binary);
    big << std::string(static_cast<size_t>(kMaxSourceBytes) + 1, '#');
  }
  EXPECT_NE(file_error(dir / "big.py")
                .find("the flow file is 1048577 bytes; flow files are limited to 1048576 bytes"),
            std::string::npos);
  {
    std::ofstream ok(dir / "ok.py", std::ios::binary);
    ok << std::string(static_cast<size_t>(kMaxSourceBytes), '#');
  }
  EXPECT_EQ(read_flow_source_file(dir / "ok.py").size(), static_cast<size_t>(kMaxSourceBytes));
}

}  // namespace
}  // namespace vortex::flow
