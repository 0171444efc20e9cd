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

// ---- Hostile tokenizer.json files: an error naming the file and the field, never a crash, a
// hang or an unbounded allocation.

// Only the part after the path, so expectations read like the message.
std::string load_error_tail(const Json& json) {
  std::string path;
  const std::string message = load_error(json, &path);
  return message.rfind(path, 0) == 0 ? message.substr(path.size()) : message;
}

TEST(TokenizerHostile, TokenIdsNearInt32MaxAreRefusedWithoutAllocatingATable) {
  Json json = minimal_tokenizer();
  json["model"]["vocab"]["b"] = 2000000000;
  EXPECT_EQ(load_error_tail(json),
            ": field 'model.vocab': token 'b' has id 2000000000, over the limit of 1048575");
  json["model"]["vocab"]["b"] = 4294967296ull;
  EXPECT_EQ(load_error_tail(json),
            ": field 'model.vocab': token 'b' has id 4294967296, over the limit of 1048575");
  json["model"]["vocab"]["b"] = -1;
  EXPECT_EQ(load_error_tail(json),
            ": field 'model.vocab': token 'b' has invalid id -1 (expected "
            "a non-negative integer)");
  json["model"]["vocab"]["b"] = 1.0;
  EXPECT_TRUE(load_error_tail(json).find("has invalid id 1.0") != std::string::npos);
  // The largest id allowed loads, and vocab_size follows it.
  json["model"]["vocab"]["b"] = kMaxTokenizerVocabSize - 1;
  json["model"]["merges"] = Json::array();
  const std::string path = testing::write_temp_json("tokenizer.json", json);
  EXPECT_EQ(Tokenizer::load(path).vocab_size(), kMaxTokenizerVocabSize);
}

TEST(TokenizerHostile, TooManyVocabEntriesAreRefused) {
  Json json = minimal_tokenizer();
  Json vocab = Json::object();
  for (int32_t i = 0; i <= kMaxTokenizerVocabSize; ++i) vocab[std::to_string(i)] = 0;
  json["model"]["vocab"] = std::move(vocab);
  json["model"]["merges"] = Json::array();
  EXPECT_EQ(load_error_tail(json),
            ": field 'model.vocab' has 1048577 entries, over the limit of "
            "1048576");
}

// A Sequence of `kind` nested `depth` times around a leaf of `leaf`.
Json nested_sequence(const char* list_key, const Json& leaf, int depth) {
  Json spec = leaf;
  for (int i = 0; i < depth; ++i) {
    spec = {{"type", "Sequence"}, {list_key, Json::array({spec})}};
  }
  return spec;
}

std::string repeated(const std::string& part, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += part;
  return out;
}

TEST(TokenizerHostile, NestedSequencesHaveADepthLimit) {
  struct Case {
    const char* field;
    const char* list_key;
    Json leaf;
  };
  const Case cases[] = {
      {"normalizer", "normalizers", {{"type", "NFC"}}},
      {"pre_tokenizer", "pretokenizers", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
      {"decoder", "decoders", {{"type", "ByteLevel"}}},
      {"post_processor", "processors", {{"type", "ByteLevel"}}},
  };
  for (const Case& c : cases) {
    Json json = minimal_tokenizer();
    json[c.field] = nested_sequence(c.list_key, c.leaf, kMaxSequenceDepth);
    EXPECT_EQ(load_error(json), "") << c.field;
    json[c.field] = nested_sequence(c.list_key, c.leaf, kMaxSequenceDepth + 1);
    const std::string where =
        c.field + repeated(str_cat(".", c.list_key, "[0]"), kMaxSequenceDepth);
    EXPECT_EQ(load_error_tail(json),
              ": field '" + where + "': Sequences nested deeper than 16 levels (the limit)")
        << c.field;
    // Deeper still, the JSON depth limit answers first.
    json[c.field] = nested_sequence(c.list_key, c.leaf, 1000);
    EXPECT_TRUE(load_error_tail(json).find("JSON nested deeper than 128 levels") !=
                std::string::npos)
        << c.field;
    // Wide instead of deep: every part runs on every encode, so their number is bounded too.
    json[c.field] = {{"type", "Sequence"}, {c.list_key, Json::array()}};
    for (int i = 0; i < 100000; ++i) json[c.field][c.list_key].push_back(c.leaf);
    EXPECT_EQ(load_error_tail(json), str_cat(": field '", c.field, ".", c.list_key,
                                             "[255]': more than 256 parts in all (the limit)"))
        << c.field;
  }
}

TEST(TokenizerHostile, AddedTokensAreBounded) {
  Json json = minimal_tokenizer();
  json["added_tokens"] = Json::array({{{"content", std::string(kMaxAddedTokenBytes + 1, 'z')}}});
  EXPECT_EQ(load_error_tail(json),
            ": field 'added_tokens[0].content' is 4097 bytes, over the limit of 4096");
  Json many = Json::array();
  for (int i = 0; i < 1100; ++i) {
    many.push_back({{"content", std::to_string(i) + std::string(kMaxAddedTokenBytes - 8, 'q')}});
  }
  json["added_tokens"] = many;
  EXPECT_EQ(load_error_tail(json),
            ": field 'added_tokens' holds more than 4194304 bytes of "
            "token contents (the limit)");
}

TEST(TokenizerHostile, PostProcessorIdsMustBeInTheVocabulary) {
  auto template_with = [](const Json& ids) {
    Json json = minimal_tokenizer();
    json["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", Json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", ids}}}}}};
    return json;
  };
  EXPECT_EQ(load_error_tail(template_with(Json::array({2000000000}))),
            ": field 'post_processor.special_tokens.<s>.ids[0]' must be a token id below 1048576, "
            "got 2000000000");
  EXPECT_EQ(load_error_tail(template_with(Json::array({2, 500}))),
            ": field 'post_processor.special_tokens.<s>.ids[1]' is token id 500, which is not in "
            "the vocabulary (size 3)");
  EXPECT_EQ(load_error_tail(template_with(Json::array({"x"}))),
            ": field 'post_processor.special_tokens.<s>.ids[0]' must be a token id below 1048576, "
            "got \"x\"");
  EXPECT_EQ(load_error(template_with(Json::array({2}))), "");

  Json json = minimal_tokenizer();
  json["post_processor"] = {{"type", "RobertaProcessing"},
                            {"cls", Json::array({"<s>", -1})},
                            {"sep", Json::array({"</s>", 1})}};
  EXPECT_EQ(load_error_tail(json),
            ": field 'post_processor.cls[1]' must be a token id below 1048576, got -1");
  json["post_processor"]["cls"] = Json::array({"<s>", 0});
  json["post_processor"]["sep"] = 7;
  EXPECT_EQ(load_error_tail(json), ": field 'post_processor.sep' must be [token, id]");
  json["post_processor"] = {{"type", "TemplateProcessing"}, {"single", Json::array({5})}};
  EXPECT_EQ(load_error_tail(json),
            ": field 'post_processor.single[0]' must be a Sequence or a "
            "SpecialToken with a string id");
}

Json split_tokenizer(const std::string& pattern) {
  Json json = minimal_tokenizer();
  json["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}};
  return json;
}

TEST(TokenizerHostile, CatastrophicRegexIsAnErrorNotAHang) {
  const std::string path = testing::write_temp_json("tokenizer.json", split_tokenizer("(a+)+$"));
  const Tokenizer tok = Tokenizer::load(path);
  EXPECT_EQ(tok.encode("aab", false), (std::vector<int32_t>{0, 2}));  // small inputs still work
  try {
    tok.encode(std::string(40, 'a') + "b", false);
    FAIL() << "no error";
  } catch (const Error& e) {
    expect_contains(e.what(), path + ": field 'pre_tokenizer.pattern': regex matching failed: ");
    expect_contains(e.what(), "(the pattern backtracks too much on this text)");
  }
}

TEST(TokenizerHostile, PatternThatBacktracksOnEveryMatchRunsOutOfItsBudget) {
  // Each search stays under the limit of one search (about 3.5M steps for 32 a's), but a short
  // text holds a hundred of them: the budget of the whole text stops it.
  const std::string path =
      testing::write_temp_json("tokenizer.json", split_tokenizer("(a|aa)*c|a"));
  const Tokenizer tok = Tokenizer::load(path);
  EXPECT_EQ(tok.encode("aab", false).size(), 3u);  // "a", "a", "b": each a match of its own
  std::string text;
  for (int i = 0; i < 100; ++i) text += std::string(32, 'a') + "b";
  try {
    tok.encode(text, false);
    FAIL() << "no error";
  } catch (const Error& e) {
    expect_contains(e.what(), "(the pattern backtracks too much on this text)");
  }
}

TEST(TokenizerHostile, TheSearchesOfOneEncodeShareOneBudget) {
  // A first Split cuts the text into a hundred pieces; on each, the second pattern stays within
  // what one search may take, so only a budget shared by the whole encode stops it.
  Json json = minimal_tokenizer();
  json["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       Json::array({{{"type", "Split"}, {"pattern", {{"String", "b"}}}, {"behavior", "Removed"}},
                    {{"type", "Split"},
                     {"pattern", {{"Regex", "(a|aa)*c|a"}}},
                     {"behavior", "Isolated"}}})}};
  const Tokenizer tok = Tokenizer::load(testing::write_temp_json("tokenizer.json", json));
  EXPECT_EQ(tok.encode("aabaa", false).size(), 4u);
  std::string text;
  for (int i = 0; i < 100; ++i) text += std::string(30, 'a') + "b";
  try {
    tok.encode(text, false);
    FAIL() << "no error";
  } catch (const Error& e) {
    expect_contains(e.what(), "(the pattern backtracks too much on this text)");
  }
}

TEST(TokenizerHostile, OverlongPatternIsRefused) {
  EXPECT_EQ(load_error_tail(split_tokenizer(std::string(70000, 'a'))),
            ": field 'pre_tokenizer.pattern': pattern of 70000 bytes, over the limit of 65536");
  // A pattern PCRE2 cannot compile (nesting past its own limit) is a plain error.
  const std::string message =
      load_error_tail(split_tokenizer(std::string(5000, '(') + std::string(5000, ')')));
  expect_contains(message, ": field 'pre_tokenizer.pattern': invalid regex");
  EXPECT_LT(message.size(), 600u);
}

TEST(TokenizerHostile, HostileFilesAreNamed) {
  const std::string empty = testing::write_temp_file("tokenizer.json", "");
  EXPECT_EQ(testing::error_of_load(empty), empty + ": is empty, expected JSON");
  const std::string deep = testing::write_temp_file("tokenizer.json", std::string(100000, '['));
  EXPECT_EQ(testing::error_of_load(deep),
            deep + ": JSON nested deeper than 128 levels (the limit) at byte 128");
  // Raw bytes that are not UTF-8, and an unpaired surrogate escape, are not JSON strings.
  const std::string latin1 = testing::write_temp_file(
      "tokenizer.json", "{\"model\": {\"vocab\": {\"\xe9\": 0}, \"merges\": []}}");
  expect_contains(testing::error_of_load(latin1), latin1 + ": invalid JSON at byte");
  const std::string surrogate = testing::write_temp_file(
      "tokenizer.json", "{\"model\": {\"vocab\": {\"\\ud800\": 0}, \"merges\": []}}");
  expect_contains(testing::error_of_load(surrogate), surrogate + ": invalid JSON at byte");
  const std::string dup = testing::write_temp_file(
      "tokenizer.json", R"({"model": {"vocab": {"a": 0, "a": 1}, "merges": []}})");
  EXPECT_EQ(testing::error_of_load(dup),
            dup + ": the key \"a\" appears twice in the object at 'model.vocab'");
}

TEST(TokenizerHostile, HostileStringsAreQuotedOnOneBoundedLine) {
  Json json = minimal_tokenizer();
  json["model"]["merges"] = {"a\nb" + std::string(10000, 'c')};
  std::string message = load_error_tail(json);
  expect_contains(message, ": field 'model.merges[0]': expected \"left right\", got \"a\\nbccc");
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_LT(message.size(), 200u);
  json = minimal_tokenizer();
  json["model"]["merges"] = Json::array({Json::array({1, std::string(10000, 'd')})});
  message = load_error_tail(json);
  expect_contains(message, "got [1,\"ddd");
  EXPECT_LT(message.size(), 200u);
  json = minimal_tokenizer();
  json["normalizer"] = {{"type", std::string(10000, 'N')}};
  EXPECT_LT(load_error_tail(json).size(), 250u);
}

}  // namespace
}  // namespace vortex
