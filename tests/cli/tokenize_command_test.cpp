// `vortex tokenize` on a text, a file and a JSON Lines file: the three give the same ids for the
// same text, and bad input names the file and line.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/json_file.h"
#include "support/run_vortex.h"

namespace vortex {
namespace {

namespace fs = std::filesystem;
using testing::CmdResult;
using testing::run_vortex;

const std::string kModel = std::string(VORTEX_SOURCE_DIR) + "/models/needle";

class TokenizeCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vortex_tokenize_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  fs::path dir_;
};

Json ids_of(const std::string& out) {
  return parse_json(out, "tokenize output")["ids"];
}

TEST_F(TokenizeCommand, FileAndJsonlGiveTheIdsOfText) {
  const std::string a = "def f(x):\n    return x + 1  # caf\xc3\xa9\n", b = "The key is 7391.";
  const CmdResult ta = run_vortex({"tokenize", "--model", kModel, "--text", a, "--json"});
  const CmdResult tb =
      run_vortex({"tokenize", "--model", kModel, "--text", b, "--json", "--no-special"});
  ASSERT_EQ(ta.code, 0) << ta.err;
  ASSERT_EQ(tb.code, 0) << tb.err;
  const CmdResult fa =
      run_vortex({"tokenize", "--model", kModel, "--file", write("a.txt", a), "--json"});
  ASSERT_EQ(fa.code, 0) << fa.err;
  EXPECT_EQ(ids_of(fa.out), ids_of(ta.out));
  EXPECT_GT(ids_of(fa.out).size(), 5u);

  const Json rows = {{{"text", b}, {"path", "x"}}, {{"text", ""}}};
  const std::string jl = write("b.jsonl", rows[0].dump() + "\n" + rows[1].dump() + "\r\n");
  const CmdResult j = run_vortex({"tokenize", "--model", kModel, "--jsonl", jl, "--no-special"});
  ASSERT_EQ(j.code, 0) << j.err;
  const std::string first = j.out.substr(0, j.out.find('\n'));
  EXPECT_EQ(ids_of(first), ids_of(tb.out));
  EXPECT_EQ(j.out.substr(first.size() + 1), "{\"ids\":[]}\n");
}

TEST_F(TokenizeCommand, BadInputNamesTheFileAndLine) {
  const std::string jl = write("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": 5}\n");
  CmdResult r = run_vortex({"tokenize", "--model", kModel, "--jsonl", jl});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find(jl + ":2: not a JSON object with a \"text\" string"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "the good first line is printed: " << r.out;

  r = run_vortex({"tokenize", "--model", kModel, "--jsonl", write("c.jsonl", "{\"text\": \n")});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("c.jsonl:1"), std::string::npos) << r.err;

  const std::string latin1 = write("latin1.txt", "caf\xe9\n");
  r = run_vortex({"tokenize", "--model", kModel, "--file", latin1});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find(latin1 + ": "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("UTF-8"), std::string::npos) << r.err;

  r = run_vortex({"tokenize", "--model", kModel, "--file", (dir_ / "missing.txt").string()});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("missing.txt: cannot read"), std::string::npos) << r.err;

  r = run_vortex({"tokenize", "--model", kModel});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("one of --text, --file or --jsonl"), std::string::npos) << r.err;

  r = run_vortex({"tokenize", "--model", kModel, "--text", "a", "--file", "b"});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("excludes"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace vortex
