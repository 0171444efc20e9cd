// A tiny tokenizer.json built here, small enough to work out every id by hand: merge order,
// ties, added-token flags, pre-tokenizer behaviors, post-processing and the merge formats.
#include <gtest/gtest.h>

#include "core/error.h"
#include "tokenizer/test_files.h"
#include "tokenizer/tokenizer.h"

namespace vortex {
namespace {

using Ids = std::vector<int32_t>;

// "Ġ" is the byte-level character of the space byte.
const char* const kSpace = "\u0120";

Json added(const std::string& content, bool special, bool lstrip = false, bool rstrip = false,
           bool single_word = false) {
  return {{"id", 0},           {"content", content}, {"single_word", single_word},
          {"lstrip", lstrip},  {"rstrip", rstrip},   {"normalized", false},
          {"special", special}};
}

// ids: a=0 b=1 c=2 Ġ=3 ab=4 abc=5 Ġa=6 bc=7 aa=8; added tokens then take 9, 10, ...
Json tiny_tokenizer() {
  Json vocab = {{"a", 0},
                {"b", 1},
                {"c", 2},
                {kSpace, 3},
                {"ab", 4},
                {"abc", 5},
                {std::string(kSpace) + "a", 6},
                {"bc", 7},
                {"aa", 8}};
  Json merges =
      Json::array({Json::array({"a", "b"}), Json::array({"ab", "c"}), Json::array({kSpace, "a"}),
                   Json::array({"b", "c"}), Json::array({"a", "a"})});
  return {
      {"version", "1.0"},
      {"added_tokens", Json::array({added("<s>", true), added("<x>", false, true, true),
                                    added("zz", false, false, false, true)})},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", Json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {9}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"ignore_merges", false}}}};
}

Tokenizer load_json(const Json& json) {
  return Tokenizer::load(testing::write_temp_json("tokenizer.json", json));
}

TEST(SyntheticTokenizer, MergesByRankThenLeftmost) {
  const Tokenizer tok = load_json(tiny_tokenizer());
  const bool raw = false;                       // no post-processing
  EXPECT_EQ(tok.encode("abc", raw), (Ids{5}));  // a+b (rank 0) before b+c (rank 3)
  EXPECT_EQ(tok.encode("bc", raw), (Ids{7}));
  EXPECT_EQ(tok.encode("cab", raw), (Ids{2, 4}));
  EXPECT_EQ(tok.encode("aaa", raw), (Ids{8, 0}));         // equal ranks: the leftmost pair first
  EXPECT_EQ(tok.encode("abc abc", raw), (Ids{5, 3, 5}));  // "Ġ"+"ab" is no merge
  EXPECT_EQ(tok.encode(" a", raw), (Ids{6}));
  EXPECT_EQ(tok.encode("abd", raw), (Ids{4}));  // "d" is not in the vocab and there is no unk
}

TEST(SyntheticTokenizer, TemplateProcessingAddsBosOnlyWhenAsked) {
  const Tokenizer tok = load_json(tiny_tokenizer());
  EXPECT_EQ(tok.encode("abc"), (Ids{9, 5}));
  EXPECT_EQ(tok.encode("abc", /*add_special_tokens=*/false), (Ids{5}));
  EXPECT_EQ(tok.encode(""), (Ids{9}));
  EXPECT_EQ(tok.decode({9, 5, 3, 5}), "<s>abc abc");
  EXPECT_EQ(tok.decode({9, 5, 3, 5}, /*skip_special_tokens=*/true), "abc abc");
}

TEST(SyntheticTokenizer, AddedTokensHonourStripAndSingleWord) {
  const Tokenizer tok = load_json(tiny_tokenizer());
  // <x> swallows the whitespace on both sides.
  EXPECT_EQ(tok.encode("ab <x>  c", false), (Ids{4, 10, 2}));
  EXPECT_EQ(tok.decode({4, 10, 2}), "ab<x>c");
  // zz only stands alone as a word; inside a word it is plain (here: unknown) text.
  EXPECT_EQ(tok.encode("a zz", false), (Ids{0, 3, 11}));
  EXPECT_EQ(tok.encode("azz", false), (Ids{0}));
  EXPECT_EQ(tok.encode("<s><s>", false), (Ids{9, 9}));
}

TEST(SyntheticTokenizer, AddedTokenIdsAreAssignedLikeHuggingFace) {
  // HF ignores the "id" fields: contents already in the vocab take the vocab id, the others
  // are numbered after the vocab.
  Json json = tiny_tokenizer();
  json["added_tokens"] = Json::array({added("<s>", true), added("ab", true)});
  json["added_tokens"][0]["id"] = 500;
  json["post_processor"] = nullptr;
  const Tokenizer tok = load_json(json);
  EXPECT_EQ(tok.token_to_id("<s>"), 9);
  EXPECT_EQ(tok.encode("<s>abc"), (Ids{9, 4, 2}));  // "ab" is split off as an added token
  EXPECT_TRUE(tok.is_special(4));
  EXPECT_EQ(tok.vocab_size(), 10);
}

TEST(SyntheticTokenizer, MergesStoredAsStringsGiveTheSameIds) {
  Json json = tiny_tokenizer();
  Json merges = Json::array();
  for (const auto& pair : json["model"]["merges"]) {
    merges.push_back(pair[0].get<std::string>() + " " + pair[1].get<std::string>());
  }
  json["model"]["merges"] = merges;
  const Tokenizer tok = load_json(json);
  EXPECT_EQ(tok.encode("abc abc aaa", false), (Ids{5, 3, 5, 6, 8}));
}

TEST(SyntheticTokenizer, IgnoreMergesEmitsWholeWordsFoundInTheVocab) {
  Json json = tiny_tokenizer();
  // Without the ab+c merge, BPE cannot reach the vocab entry "abc".
  json["model"]["merges"] = Json::array({"a b", "b c"});
  EXPECT_EQ(load_json(json).encode("abc", false), (Ids{4, 2}));
  json["model"]["ignore_merges"] = true;
  EXPECT_EQ(load_json(json).encode("abc", false), (Ids{5}));
}

TEST(SyntheticTokenizer, SplitBehaviorsShapeThePreTokens) {
  auto with_split = [](const std::string& behavior, bool invert) {
    Json json = tiny_tokenizer();
    json["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers",
         Json::array(
             {{{"type", "Split"},
               {"pattern", {{"Regex", " +"}}},
               {"behavior", behavior},
               {"invert", invert}},
              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
    return load_json(json);
  };
  EXPECT_EQ(with_split("Isolated", false).encode("abc a", false), (Ids{5, 3, 0}));
  EXPECT_EQ(with_split("Removed", false).encode("abc a", false), (Ids{5, 0}));
  EXPECT_EQ(with_split("MergedWithNext", false).encode("abc a", false), (Ids{5, 6}));
  // Inverted, the words are the delimiters: Removed keeps only the spaces.
  EXPECT_EQ(with_split("Removed", true).encode("abc a", false), (Ids{3}));
}

TEST(SyntheticTokenizer, ByteLevelAddPrefixSpace) {
  Json json = tiny_tokenizer();
  json["pre_tokenizer"]["add_prefix_space"] = true;
  EXPECT_EQ(load_json(json).encode("abc", false), (Ids{3, 5}));
  EXPECT_EQ(load_json(json).encode(" abc", false), (Ids{3, 5}));
}

TEST(SyntheticTokenizer, NoDecoderJoinsTokensWithSpaces) {
  Json json = tiny_tokenizer();
  json["decoder"] = nullptr;
  const Tokenizer tok = load_json(json);
  EXPECT_EQ(tok.decode({5, 4}), "abc ab");
  StreamDecoder stream(tok);
  std::string streamed = stream.push(5);
  streamed += stream.push(4);
  streamed += stream.flush();
  EXPECT_EQ(streamed, "abc ab");
}

TEST(SyntheticTokenizer, SequenceNormalizerAndPostProcessorAreApplied) {
  Json json = tiny_tokenizer();
  json["normalizer"] = {{"type", "Sequence"}, {"normalizers", Json::array({{{"type", "NFC"}}})}};
  json["post_processor"] = {
      {"type", "Sequence"},
      {"processors", Json::array({{{"type", "ByteLevel"}}, json["post_processor"]})}};
  EXPECT_EQ(load_json(json).encode("abc"), (Ids{9, 5}));
}

}  // namespace
}  // namespace vortex
