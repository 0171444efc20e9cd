// Every file under tests/data/flows/malformed must fail to compile with one pinned diagnostic:
// its location and a substring of its message (what a flow author needs to act on it).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "flow/compiler.h"

namespace vortex::flow {
namespace {

struct Expected {
  const char* file;
  int line;
  int col;
  const char* message;
};

const Expected kExpected[] = {
    // Syntax.
    {"bad_indent", 10, 11, "unexpected indent"},
    {"unindent_mismatch", 10, 7, "unindent does not match any outer indentation level"},
    {"unclosed_paren", 12, 13, "'(' was never closed"},
    {"bad_token", 12, 55, "invalid character '$'"},
    // Names, imports, builtins.
    {"unknown_name", 12, 57, "unknown name 'scale'"},
    {"unknown_method", 12, 42, "unknown tensor method 'argmax'"},
    {"unknown_function_not_imported", 12, 16, "'minimum' is not imported"},
    {"unknown_field", 12, 26, "unknown field 'centroid'"},
    {"import_os", 2, 1, "`import os` is not allowed"},
    {"from_os_import", 2, 1, "imports from 'os' are not allowed"},
    {"import_nonexistent", 2, 25, "'nonexistent' is not part of vortex.flow"},
    {"builtin_open", 12, 13, "'open' is not available in flows"},
    {"builtin_exec", 12, 9, "'exec' is not available in flows"},
    {"builtin_eval", 12, 13, "'eval' is not available in flows"},
    {"builtin_import", 12, 13, "'__import__' is not available in flows"},
    {"builtin_getattr", 12, 13, "'getattr' is not available in flows"},
    {"dunder_attribute", 12, 15, "attribute '__class__' is not allowed"},
    // Constructs outside the subset.
    {"for_loop", 12, 9, "loops are not allowed; use reductions"},
    {"while_loop", 12, 9, "loops are not allowed; use reductions"},
    {"nested_def", 12, 9, "nested functions are not allowed"},
    {"lambda", 12, 13, "lambda is not allowed"},
    {"recursion_self_score", 12, 18, "self.score(...) cannot be called"},
    {"non_constant_if", 13, 14, "`if` conditions must be compile-time constants"},
    // Shapes.
    {"broadcast_mismatch", 12, 19, "'*': shapes [G, D] and [N, D, 1] do not broadcast (G vs D)"},
    {"matmul_inner_dim", 12, 19, "matmul inner dims do not match: [G, D] @ [N, 1, D]"},
    {"field_wrong_shape", 9, 14,
     "field 'c' is declared Field(1, D), so summarize must write shape [1, D]; this writes [D]"},
    {"wrong_return_shape", 12, 9,
     "score must return one score per page, shape [N]; this returns [N, G]: reduce over the head "
     "axis, e.g. .max(axis=-1)"},
    {"bad_axis", 12, 38, "axis 3 is out of range for a tensor of rank 3 (shape [N, G, D])"},
    {"fold_not_dividing", 9, 29, "fold size 3 does not divide axis 0 of size P"},
    {"reshape_page_axis", 13, 18, "reshape cannot touch the page axis N"},
    // Fields and state.
    {"field_never_written", 7, 5, "field 'e' is never written by summarize"},
    {"field_never_read", 7, 5,
     "field 'extra' is written but never read by score: remove it or use it"},
    {"field_written_twice", 10, 14, "field 'c' is written twice (first at line 9)"},
    {"state_never_written", 7, 5, "state 'acc' is never written by score"},
    {"state_written_in_summarize", 11, 14, "State 'acc' is per request and lives in score"},
    {"field_written_in_score", 12, 14, "score cannot write Field 'c'"},
    {"q_in_summarize", 9, 23, "'q' is not available in summarize"},
    {"k_in_score", 12, 21, "'k' is not available in score"},
    {"missing_return", 11, 5, "score must end with `return scores`"},
    // File structure.
    {"two_flow_classes", 15, 1, "only one Flow class is allowed per file"},
    {"no_flow_class", 1, 1, "no class deriving from Flow"},
    // Budget.
    {"budget_ratio_zero", 7, 27, "Budget ratio must be in (0, 1]"},
    {"budget_ratio_two", 7, 27, "Budget ratio must be in (0, 1]"},
    {"budget_negative_sink", 7, 26, "Budget sink must be >= 0"},
    {"budget_floor_above_cap", 7, 21, "Budget floor (8) is larger than cap (4)"},
    {"budget_pages_and_ratio", 7, 21, "Budget takes pages or ratio, not both"},
    {"budget_unknown_key", 7, 32, "unknown Budget keyword 'topk'"},
    // Hostile input: encoding, literals and constant arithmetic.
    {"tabs_mixed_with_spaces", 12, 2, "inconsistent use of tabs and spaces in indentation"},
    {"nul_byte", 12, 59, "NUL byte in the flow file"},
    {"invalid_utf8", 12, 61, "invalid UTF-8 (byte 0xe9)"},
    {"name_too_long", 12, 16, "a name of 300 characters"},
    {"int_literal_too_large", 12, 57, "is invalid or too large (integers are 64-bit"},
    {"float_literal_infinite", 12, 57, "number literal '1e400' is too large"},
    {"const_integer_overflow", 12, 58, "integer overflow in a constant"},
    {"const_float_overflow", 12, 64, "a constant is infinite"},
    {"const_outside_f32", 12, 55, "this computes the constant 1e+39, which is not a finite f32"},
    {"const_folds_to_nan", 12, 57, "this computes the constant nan"},
    {"const_floor_div_by_zero", 12, 60, "division by zero in a constant expression"},
    {"const_mod_by_zero", 12, 60, "division by zero in a constant expression"},
    {"const_zero_negative_power", 12, 58, "0 cannot be raised to a negative power"},
    // Hostile input: sizes and counts, each message naming its limit.
    {"field_too_large", 7, 5,
     "Field 'b' takes 20000000000 bytes per (page, KV head, layer), which brings the flow's "
     "Fields over 131072 bytes = 128 KiB (the Field memory limit)"},
    {"state_too_large", 7, 5, "State 's' takes 524288 bytes per (page, KV head, layer)"},
    {"too_many_fields", 70, 5,
     "Field 'f63' is one more than the 64 Fields and States a flow may declare (the field "
     "limit)"},
    {"value_too_large", 12, 57,
     "this value of shape [N, 100000, 100000] has 10000000000 elements per page; a value may "
     "have at most 65536 per page (the value size limit)"},
    {"budget_pages_too_large", 7, 29, "Budget pages must be at most 2147483647 pages"},
    {"budget_dense_layer_too_large", 7, 34,
     "Budget dense_layers: layer 1000000000000 is out of range"},
    {"budget_too_many_dense_layers", 7, 34, "this list has more than 1024 items"},
    // Hostile input: the page axis N (what the GPU code generator relies on, for every target).
    {"two_page_axes", 12, 57, "this gives shape [N, N], with the page axis N more than once"},
    {"page_axis_not_leading", 12, 24, ".T reverses every axis and would move the page axis N"},
    {"page_axis_moved_by_broadcast", 12, 56,
     "this gives shape [G, N], where the page axis N is not the leading axis"},
    {"matmul_contracts_pages", 12, 56, "'@' of [N] and [N, G] would contract the page axis N"},
    // Follow-on errors: one message at the cause, and a State is never suggested as a Field.
    {"state_declaration_error_no_followon", 7, 23, "State takes no keyword arguments"},
    {"unknown_state_in_score", 12, 62,
     "unknown field 'acc': declare it in the class body, as a Field (e.g. acc = Field(1, D), "
     "written by summarize) or a State (e.g. acc = State(1, D), kept per request by score)"},
};

std::filesystem::path malformed_dir() {
  return std::filesystem::path(VORTEX_SOURCE_DIR) / "tests/data/flows/malformed";
}

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

class MalformedFlow : public ::testing::TestWithParam<Expected> {};

TEST_P(MalformedFlow, FailsWithPinnedDiagnostic) {
  const Expected& e = GetParam();
  std::filesystem::path path = malformed_dir() / (std::string(e.file) + ".py");
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  std::string source = read(path);
  for (bool bound : {false, true}) {
    FlowGeometry geometry{2, 128, 16};
    CompileResult r = compile_flow(source, path.filename().string(), bound ? &geometry : nullptr);
    ASSERT_FALSE(r.ok()) << e.file << " compiled";
    ASSERT_FALSE(r.diagnostics.empty());
    if (bound) continue;  // bound messages print numbers instead of symbols; the location holds
    const Diagnostic& d = r.diagnostics.front();
    EXPECT_EQ(d.loc.line, e.line) << e.file << ": " << d.message;
    EXPECT_EQ(d.loc.col, e.col) << e.file << ": " << d.message;
    EXPECT_NE(d.message.find(e.message), std::string::npos)
        << e.file << ": got '" << d.message << "'";
    std::string text = format_compile_errors(r, source, "x.py");
    EXPECT_EQ(
        text.rfind("x.py:" + std::to_string(e.line) + ":" + std::to_string(e.col) + ": error: ", 0),
        0u)
        << text;
  }
}

INSTANTIATE_TEST_SUITE_P(All, MalformedFlow, ::testing::ValuesIn(kExpected),
                         [](const ::testing::TestParamInfo<Expected>& info) {
                           return std::string(info.param.file);
                         });

TEST(MalformedFlows, EveryFileInTheFolderHasAnExpectation) {
  std::set<std::string> pinned;
  for (const Expected& e : kExpected) pinned.insert(e.file);
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(malformed_dir())) {
    if (entry.path().extension() != ".py") continue;
    ++files;
    EXPECT_TRUE(pinned.count(entry.path().stem().string())) << entry.path() << " is not pinned";
  }
  EXPECT_GE(files, 30);
}

TEST(MalformedFlows, AFailedDeclarationIsReportedOnceWithoutFollowOnErrors) {
  std::string source = read(malformed_dir() / "state_declaration_error_no_followon.py");
  for (bool bound : {false, true}) {
    FlowGeometry geometry{2, 128, 16};
    CompileResult r = compile_flow(source, "s.py", bound ? &geometry : nullptr);
    ASSERT_EQ(r.diagnostics.size(), 1u) << format_compile_errors(r, source, "s.py");
    EXPECT_EQ(r.diagnostics[0].message.find("Field(1, D)"), std::string::npos);
  }
}

TEST(MalformedFlows, DiagnosticShowsTheSourceLineAndACaret) {
  std::string source = read(malformed_dir() / "unknown_name.py");
  CompileResult r = compile_flow(source, "unknown_name.py", nullptr);
  std::string text = format_compile_errors(r, source, "unknown_name.py");
  EXPECT_NE(text.find("unknown_name.py:12:57: error: unknown name 'scale'\n"
                      "            return (q * self.c).sum(axis=-1).max(axis=-1) * scale\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n" + std::string(4 + 56, ' ') + "^\n"), std::string::npos) << text;
}

TEST(MalformedFlows, SeveralErrorsAreReportedInOneRun) {
  std::string source =
      "\"\"\"Doc.\"\"\"\n"
      "from vortex.flow import Flow, Field, D\n"
      "class F(Flow):\n"
      "    c = Field(1, D)\n"
      "    def summarize(self, k, v):\n"
      "        self.c = k.mean(axis=0, keepdims=True)\n"
      "        a = open(1)\n"
      "        b = eval(2)\n"
      "    def score(self, q):\n"
      "        x = unknown1\n"
      "        return (q * self.c).sum(axis=-1).max(axis=-1)\n";
  CompileResult r = compile_flow(source, "f.py", nullptr);
  ASSERT_EQ(r.diagnostics.size(), 3u) << format_compile_errors(r, source, "f.py");
  EXPECT_EQ(r.diagnostics[0].loc.line, 7);
  EXPECT_EQ(r.diagnostics[1].loc.line, 8);
  EXPECT_EQ(r.diagnostics[2].loc.line, 10);
}

TEST(MalformedFlows, StopsAfterTwentyErrors) {
  std::string source =
      "\"\"\"Doc.\"\"\"\n"
      "from vortex.flow import Flow, N, zeros\n"
      "class F(Flow):\n"
      "    def score(self, q):\n";
  for (int i = 0; i < 40; ++i) source += "        x" + std::to_string(i) + " = nope\n";
  source += "        return zeros(N)\n";
  CompileResult r = compile_flow(source, "f.py", nullptr);
  ASSERT_EQ(r.diagnostics.size(), 21u);
  EXPECT_NE(r.diagnostics.back().message.find("too many errors"), std::string::npos);
}

}  // namespace
}  // namespace vortex::flow
