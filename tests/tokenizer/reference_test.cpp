// Checks tokenizers against reference files made with Hugging Face `tokenizers`:
// tokenizer_reference.json beside tokenizer.json, {"cases": [{"text", "ids", "decoded"}]} with
// ids = encode(text) (special tokens added) and decoded = decode(ids) (special tokens kept).
#include <gtest/gtest.h>

#include <filesystem>

#include "core/json_file.h"
#include "tokenizer/test_files.h"
#include "tokenizer/tokenizer.h"

namespace vortex {
namespace {

// The parameter is a tokenizer's folder (the real Qwen3 one as the build unpacks it).
class ReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceTest, MatchesHuggingFaceOnEveryCase) {
  const std::string dir = GetParam();
  const std::string reference_path = dir + "/tokenizer_reference.json";
  if (!std::filesystem::exists(reference_path)) {
    GTEST_SKIP() << "no reference file yet: " << reference_path;
  }
  const Tokenizer tok = Tokenizer::load(dir + "/tokenizer.json");
  const Json reference = read_json_file(reference_path);
  ASSERT_TRUE(reference.contains("cases") && reference["cases"].is_array()) << reference_path;
  ASSERT_FALSE(reference["cases"].empty()) << reference_path;
  for (const auto& c : reference["cases"]) {
    const std::string text = c.at("text").get<std::string>();
    const auto expected = c.at("ids").get<std::vector<int32_t>>();
    const auto ids = tok.encode(text);
    EXPECT_EQ(ids, expected) << "encode: " << text;
    const std::string decoded = tok.decode(expected);
    EXPECT_EQ(decoded, c.at("decoded").get<std::string>()) << "decode: " << text;
    StreamDecoder stream(tok);
    std::string streamed;
    for (int32_t id : expected) streamed += stream.push(id);
    streamed += stream.flush();
    EXPECT_EQ(streamed, decoded) << "stream decode: " << text;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Tokenizers, ReferenceTest,
    ::testing::Values(testing::qwen3_dir(),
                      std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3",
                      std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-llama"),
    [](const auto& info) {
      std::string name = info.param.substr(info.param.rfind('/') + 1);
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

}  // namespace
}  // namespace vortex
