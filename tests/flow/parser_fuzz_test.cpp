// Mutation fuzzing of the whole compiler: random byte flips, inserts, deletes and splices of the
// shipped and golden flows (fixed seed, fixed iteration budget) must never crash or hang, and
// every rejected input must come with at least one diagnostic.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/rng.h"
#include "flow/compiler.h"

namespace vortex::flow {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> corpus() {
  std::vector<std::string> out;
  for (const char* sub : {"flows", "tests/data/flows/golden"}) {
    fs::path dir = fs::path(VORTEX_SOURCE_DIR) / sub;
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().extension() != ".py") continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::ostringstream os;
      os << in.rdbuf();
      out.push_back(os.str());
    }
  }
  return out;
}

// Bytes that matter to the grammar, so mutations reach past the lexer more often.
constexpr std::string_view kInteresting = "()[]{}:,.=+-*/@%<>\n \t#'\"\\0123456789_aNDGPqkv";

std::string mutate(const std::string& base, const std::vector<std::string>& all, Rng& rng) {
  std::string s = base;
  int edits = 1 + static_cast<int>(rng.next_u64() % 4);
  for (int e = 0; e < edits; ++e) {
    size_t pos = s.empty() ? 0 : rng.next_u64() % (s.size() + 1);
    switch (rng.next_u64() % 5) {
      case 0:  // flip a bit
        if (!s.empty() && pos < s.size())
          s[pos] = static_cast<char>(s[pos] ^ (1 << (rng.next_u64() % 8)));
        break;
      case 1:  // insert a grammar byte
        s.insert(s.begin() + pos, kInteresting[rng.next_u64() % kInteresting.size()]);
        break;
      case 2:  // insert a random byte
        s.insert(s.begin() + pos, static_cast<char>(rng.next_u64() & 0xff));
        break;
      case 3: {  // delete a run
        size_t len = 1 + rng.next_u64() % 16;
        if (pos < s.size()) s.erase(pos, len);
        break;
      }
      case 4: {  // splice a chunk of another file (or this one) in
        const std::string& other = all[rng.next_u64() % all.size()];
        if (other.empty()) break;
        size_t from = rng.next_u64() % other.size();
        size_t len = 1 + rng.next_u64() % 80;
        s.insert(pos, other.substr(from, len));
        break;
      }
    }
  }
  return s;
}

TEST(ParserFuzz, MutatedFlowsNeverCrashAndAlwaysExplainFailures) {
  std::vector<std::string> files = corpus();
  ASSERT_FALSE(files.empty());
  Rng rng(0x5eed0f10u);
  const FlowGeometry geometry{4, 128, 16};
  const int kIterations = 30000;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int compiled = 0, rejected = 0;
  for (int i = 0; i < kIterations && std::chrono::steady_clock::now() < deadline; ++i) {
    const std::string& base = files[rng.next_u64() % files.size()];
    std::string src = mutate(base, files, rng);
    CompileOptions options;
    options.dump_ir = (i % 7) == 0;
    CompileResult r = compile_flow(src, "fuzz.py", (i % 2) ? &geometry : nullptr, options);
    if (r.ok()) {
      ++compiled;
      EXPECT_TRUE(r.diagnostics.empty());
      continue;
    }
    ++rejected;
    ASSERT_FALSE(r.diagnostics.empty()) << "rejected without a diagnostic:\n" << src;
    ASSERT_LE(r.diagnostics.size(), 21u);
    for (const Diagnostic& d : r.diagnostics) {
      ASSERT_FALSE(d.message.empty());
      EXPECT_EQ(d.message.find("internal"), std::string::npos) << d.message << "\n" << src;
    }
    std::string text = format_compile_errors(r, src, "fuzz.py");
    ASSERT_NE(text.find("error: "), std::string::npos);
  }
  // Both outcomes must be exercised for the test to mean anything.
  EXPECT_GT(compiled, 0);
  EXPECT_GT(rejected, 0);
}

TEST(ParserFuzz, PathologicalInputsAreDiagnostics) {
  std::vector<std::string> inputs = {
      "",
      std::string(1, '\0'),
      std::string(10000, '('),
      std::string(10000, '['),
      "x = " + std::string(3000, '-') + "1\n",
      "x = " + std::string(3000, '~') + "1\n",
      std::string(2000, ' ') + "x\n",
      "if 1:\n" + std::string(300 * 1, ' ') + "pass\n",
      "\"\"\"" + std::string(5000, 'a'),
      "x = 1" + std::string(5000, '.') + "\n",
      "class A(Flow):\n" + std::string(5000, '\t') + "pass\n",
  };
  std::string nested_ifs =
      "from vortex.flow import Flow\nclass A(Flow):\n    def score(self, q):\n";
  for (int i = 0; i < 400; ++i) nested_ifs += std::string(8 + 4 * i, ' ') + "if 1:\n";
  inputs.push_back(nested_ifs);
  for (const std::string& src : inputs) {
    CompileResult r = compile_flow(src, "p.py", nullptr);
    EXPECT_FALSE(r.ok());
    EXPECT_FALSE(r.diagnostics.empty());
  }
}

}  // namespace
}  // namespace vortex::flow
