// Every way loading a tokenizer.json can fail gives an error naming the file and the field.
#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/test_files.h"
#include "tokenizer/tokenizer.h"

namespace vortex {
namespace {

Json minimal_tokenizer() {
  return {{"added_tokens", Json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}}};
}

// Loads `json` and returns the error message, or "" when loading succeeded.
std::string load_error(const Json& json, std::string* path_out = nullptr) {
  const std::string path = testing::write_temp_json("tokenizer.json", json);
  if (path_out) *path_out = path;
  try {
    Tokenizer::load(path);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    return e.what();
  }
  return "";
}

void expect_contains(const std::string& message, const std::string& part) {
  EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
}

TEST(TokenizerErrors, MinimalTokenizerLoads) {
  EXPECT_EQ(load_error(minimal_tokenizer()), "");
}

TEST(TokenizerErrors, MissingFileNamesThePath) {
  const std::string path = testing::write_temp_file("unused", "") + ".does-not-exist.json";
  try {
    Tokenizer::load(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    expect_contains(e.what(), path);
  }
}

TEST(TokenizerErrors, InvalidJsonNamesThePath) {
  const std::string path = testing::write_temp_file("tokenizer.json", "{\"model\": [1, 2,");
  try {
    Tokenizer::load(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    expect_contains(e.what(), path);
  }
}

TEST(TokenizerErrors, UnsupportedModelType) {
  Json json = minimal_tokenizer();
  json["model"]["type"] = "WordPiece";
  const std::string message = load_error(json);
  expect_contains(message, "model.type");
  expect_contains(message, "WordPiece");
}

TEST(TokenizerErrors, MissingModel) {
  Json json = minimal_tokenizer();
  json.erase("model");
  expect_contains(load_error(json), "'model'");
}

TEST(TokenizerErrors, UnsupportedNormalizerNamesTheTypeAndField) {
  Json json = minimal_tokenizer();
  json["normalizer"] = {{"type", "Sequence"},
                        {"normalizers", Json::array({{{"type", "NFC"}}, {{"type", "Lowercase"}}})}};
  const std::string message = load_error(json);
  expect_contains(message, "normalizer.normalizers[1].type");
  expect_contains(message, "Lowercase");
}

TEST(TokenizerErrors, UnsupportedPreTokenizer) {
  Json json = minimal_tokenizer();
  json["pre_tokenizer"] = {{"type", "Whitespace"}};
  const std::string message = load_error(json);
  expect_contains(message, "pre_tokenizer.type");
  expect_contains(message, "Whitespace");
}

TEST(TokenizerErrors, BadRegexIsReportedWithThePattern) {
  Json json = minimal_tokenizer();
  json["pre_tokenizer"] = {{"type", "Split"},
                           {"pattern", {{"Regex", "(unclosed"}}},
                           {"behavior", "Isolated"},
                           {"invert", false}};
  const std::string message = load_error(json);
  expect_contains(message, "invalid regex");
  expect_contains(message, "(unclosed");
}

TEST(TokenizerErrors, UnknownSplitBehavior) {
  Json json = minimal_tokenizer();
  json["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", " "}}}, {"behavior", "Sideways"}};
  expect_contains(load_error(json), "Sideways");
}

TEST(TokenizerErrors, MergeOutsideTheVocab) {
  Json json = minimal_tokenizer();
  json["model"]["merges"] = {"a b", "b c"};
  expect_contains(load_error(json), "model.merges[1]");
}

TEST(TokenizerErrors, MalformedMerge) {
  Json json = minimal_tokenizer();
  json["model"]["merges"] = {"ab"};
  expect_contains(load_error(json), "model.merges[0]");
}

TEST(TokenizerErrors, UnsupportedDecoderAndPostProcessor) {
  Json json = minimal_tokenizer();
  json["decoder"] = {{"type", "WordPiece"}};
  expect_contains(load_error(json), "decoder.type");
  json = minimal_tokenizer();
  json["post_processor"] = {{"type", "Mystery"}};
  expect_contains(load_error(json), "post_processor.type");
}

TEST(TokenizerErrors, AddedTokenWithoutContent) {
  Json json = minimal_tokenizer();
  json["added_tokens"] = Json::array({{{"id", 3}}});
  expect_contains(load_error(json), "added_tokens[0]");
}

TEST(TokenizerErrors, FieldOfTheWrongJsonTypeIsAnErrorNotACrash) {
  Json json = minimal_tokenizer();
  json["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", Json::array({{{"SpecialToken", {{"id", "<s>"}}}}})},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", Json::array({"not a number"})}}}}}};
  EXPECT_NE(load_error(json), "");
}

}  // namespace
}  // namespace vortex
