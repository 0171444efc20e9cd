// Pins the real Qwen3 tokenizer against ids produced by Hugging Face `tokenizers` (0.23) for
// the same strings, and checks round trips over a varied corpus.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "core/error.h"
#include "tokenizer/test_files.h"
#include "tokenizer/tokenizer.h"

namespace vortex {
namespace {

using Ids = std::vector<int32_t>;

const Tokenizer& qwen3() {
  static const Tokenizer tokenizer = Tokenizer::load(testing::qwen3_dir() + "/tokenizer.json");
  return tokenizer;
}

TEST(Qwen3Tokenizer, EncodesLikeHuggingFace) {
  const std::vector<std::pair<std::string, Ids>> cases = {
      {"Hello world", {9707, 1879}},
      {"I'm here; it's 2024 and we'll see",
       {40, 2776, 1588, 26, 432, 594, 220, 17, 15, 17, 19, 323, 582, 3278, 1490}},
      {"  two spaces\n\n\nnewlines\tand tabs  ",
       {220, 1378, 12621, 1406, 931, 7969, 52477, 22398, 256}},
      {"12345678", {16, 17, 18, 19, 20, 21, 22, 23}},
      {"def add(a, b):\n    return a + b\n",
       {750, 912, 2877, 11, 293, 982, 262, 470, 264, 488, 293, 198}},
      {"\U0001F468\u200D\U0001F469\u200D\U0001F467 family",
       {145367, 378, 235, 145233, 378, 235, 145665, 2997}},
      {"\u4F60\u597D\uFF0C\u4E16\u754C", {108386, 3837, 99489}},
      {"\u0645\u0631\u062D\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
       {124122, 29825, 124671, 124476, 129634}},
      {"\u0928\u092E\u0938\u094D\u0924\u0947", {60096, 87244, 78368, 30484, 97, 34370}},
      {"<|im_start|>user\nHi<|im_end|>", {151644, 872, 198, 13048, 151645}},
      {"x<think>y</think>z", {87, 151667, 88, 151668, 89}},
      // U+0085 is whitespace to HF's regex engine, U+180E is not.
      {"\u0085nel\u180Emvs", {126, 227, 8138, 123970, 236, 76, 11562}},
  };
  for (const auto& [text, ids] : cases) EXPECT_EQ(qwen3().encode(text), ids) << text;
}

TEST(Qwen3Tokenizer, NormalizesToNfcBeforeTokenizing) {
  // "cafe" + combining acute composes to "café".
  EXPECT_EQ(qwen3().encode("cafe\u0301"), (Ids{924, 58858}));
  EXPECT_EQ(qwen3().encode("cafe\u0301"), qwen3().encode("caf\u00E9"));
  EXPECT_EQ(qwen3().decode(qwen3().encode("cafe\u0301")), "caf\u00E9");
}

TEST(Qwen3Tokenizer, RoundTripsAVariedCorpus) {
  const std::vector<std::string> corpus = {
      "",
      " ",
      "\n\n\n",
      "   leading and trailing   ",
      "a\r\nb\r\n\r\n",
      "I'M IT'S you're they've she'd",
      "3.14159 1e-9 0xFF 1,000,000",
      "if (a<b && c>=d) { x->y[0] += 1; } // comment",
      "https://example.com/path?q=1&r=2#frag",
      "\U0001F44D\U0001F3FD \U0001F1EB\U0001F1F7 \U0001FAE0",
      "\u65E5\u672C\u8A9E\u306E\u30C6\u30AD\u30B9\u30C8",
      "\u00A0nbsp\u2003emsp\u3000ideographic",
      "zero\u200Bwidth\tjoiner\u200Dx",
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>assistant\n",
      std::string(300, 'x'),
      std::string(200, ' ') + "end",
  };
  for (const auto& text : corpus) EXPECT_EQ(qwen3().decode(qwen3().encode(text)), text) << text;
}

TEST(Qwen3Tokenizer, SpecialTokensAreMatchedInlineLongestFirst) {
  EXPECT_EQ(qwen3().encode("a<|endoftext|><|endoftext|>b"), (Ids{64, 151643, 151643, 65}));
  // An unfinished marker is plain text.
  const Ids partial = qwen3().encode("<|im_start|");
  EXPECT_EQ(std::count(partial.begin(), partial.end(), 151644), 0);
  EXPECT_EQ(qwen3().decode(partial), "<|im_start|");
}

TEST(Qwen3Tokenizer, VocabularyQueries) {
  EXPECT_EQ(qwen3().vocab_size(), 151669);
  EXPECT_EQ(qwen3().token_to_id("<|im_end|>"), 151645);
  EXPECT_EQ(qwen3().token_to_id("Hello"), 9707);
  EXPECT_EQ(qwen3().token_to_id("\u0120world"), 1879);  // "Ġworld": stored byte-level
  EXPECT_EQ(qwen3().token_to_id("no such token"), std::nullopt);
  EXPECT_EQ(qwen3().id_to_token(1879), "\u0120world");
  EXPECT_EQ(qwen3().id_to_token(151644), "<|im_start|>");
  EXPECT_TRUE(qwen3().is_special(151645));
  EXPECT_FALSE(qwen3().is_special(151667));  // <think> is an added token but not special
  EXPECT_FALSE(qwen3().is_special(9707));
}

TEST(Qwen3Tokenizer, DecodeSkipsOnlySpecialTokensWhenAsked) {
  const Ids ids = qwen3().encode("<|im_start|>user\n<think>Hi</think><|im_end|>");
  EXPECT_EQ(qwen3().decode(ids), "<|im_start|>user\n<think>Hi</think><|im_end|>");
  EXPECT_EQ(qwen3().decode(ids, /*skip_special_tokens=*/true), "user\n<think>Hi</think>");
}

TEST(Qwen3Tokenizer, DecodeReplacesIncompleteUtf8WithReplacementCharacter) {
  // U+1FAE0 is split over three tokens; dropping the last leaves an incomplete character.
  EXPECT_EQ(qwen3().encode("\U0001FAE0"), (Ids{9284, 104, 254}));
  EXPECT_EQ(qwen3().decode({9284, 104, 254}), "\U0001FAE0");
  EXPECT_EQ(qwen3().decode({9284, 104}), "\uFFFD");
  EXPECT_EQ(qwen3().decode({9284, 104, 64}), "\uFFFDa");
}

TEST(Qwen3Tokenizer, StreamDecoderHoldsBackSplitCharacters) {
  StreamDecoder stream(qwen3());
  EXPECT_EQ(stream.push(64), "a");
  EXPECT_EQ(stream.push(9284), "");
  EXPECT_EQ(stream.push(104), "");
  EXPECT_EQ(stream.push(254), "\U0001FAE0");
  EXPECT_EQ(stream.flush(), "");

  // U+E0100 comes as four single-byte tokens and must come out once, whole.
  const Ids ids = qwen3().encode("a\U000E0100b");
  ASSERT_EQ(ids, (Ids{64, 175, 254, 226, 222, 65}));
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(stream.push(id));
  EXPECT_EQ(pieces, (std::vector<std::string>{"a", "", "", "", "\U000E0100", "b"}));
}

TEST(Qwen3Tokenizer, StreamDecoderFlushesAnUnfinishedCharacterAsReplacement) {
  StreamDecoder stream(qwen3());
  EXPECT_EQ(stream.push(9284), "");
  EXPECT_EQ(stream.push(104), "");
  EXPECT_EQ(stream.flush(), "\uFFFD");
  EXPECT_EQ(stream.push(64), "a");
}

TEST(Qwen3Tokenizer, StreamDecoderMatchesDecodeOnMixedText) {
  const std::string text =
      "<|im_start|>assistant\nZWJ \U0001F468\u200D\U0001F469\u200D\U0001F467, CJK \u4F60\u597D, "
      "Hindi \u0928\u092E\u0938\u094D\u0924\u0947<|im_end|>";
  const Ids ids = qwen3().encode(text);
  for (bool skip : {false, true}) {
    StreamDecoder stream(qwen3(), skip);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    EXPECT_EQ(streamed, qwen3().decode(ids, skip));
  }
}

TEST(Qwen3Tokenizer, UnknownIdsInDecodeNameTheIdAndVocabSize) {
  for (int32_t id : {-1, 151669, 1 << 30}) {
    try {
      qwen3().decode({9707, id});
      FAIL() << "no error for id " << id;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(id)), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("151669"), std::string::npos) << e.what();
    }
  }
  StreamDecoder stream(qwen3());
  EXPECT_THROW(stream.push(200000), Error);
  EXPECT_THROW(qwen3().id_to_token(-5), Error);
}

TEST(Qwen3Tokenizer, RejectsInvalidUtf8Input) {
  EXPECT_THROW(qwen3().encode("ok \xC3\x28 bad"), Error);
  EXPECT_THROW(qwen3().encode("\xF0\x9F\x98"), Error);
}

TEST(Qwen3Tokenizer, LongInputsEncodeAndRoundTrip) {
  std::string text;
  const char* parts[] = {"Hello world, ", "12345 ",     "\u4F60\u597D ", "\U0001F600 ",
                         "  \n\n",        "<|im_end|>", "don't "};
  for (int i = 0; text.size() < 100000; ++i) text += parts[(i * 7 + i / 3) % 7];
  const Ids ids = qwen3().encode(text);
  EXPECT_GT(ids.size(), 10000u);
  EXPECT_EQ(qwen3().decode(ids), text);
  // One pre-token of 100K characters: merging must stay near-linear, and stay correct.
  const std::string letters(100000, 'a');
  EXPECT_EQ(qwen3().decode(qwen3().encode(letters)), letters);
}

TEST(Qwen3Tokenizer, ConcurrentEncodesAgree) {
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) {
    texts.push_back("thread text " + std::to_string(i * 7919) + " \u4F60\u597D <|im_end|> " +
                    std::string(i % 13, ' ') + "end");
  }
  std::vector<Ids> expected;
  for (const auto& t : texts) expected.push_back(qwen3().encode(t));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) {
        for (size_t i = t; i < texts.size(); i += 1) {
          if (qwen3().encode(texts[i]) != expected[i]) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Qwen3Tokenizer, CopiesShareTheLoadedTokenizer) {
  const Tokenizer copy = qwen3();
  EXPECT_EQ(copy.encode("Hello world"), (Ids{9707, 1879}));
  EXPECT_EQ(copy.vocab_size(), qwen3().vocab_size());
}

}  // namespace
}  // namespace vortex
