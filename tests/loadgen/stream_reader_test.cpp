#include "loadgen/stream_reader.h"

#include <gtest/gtest.h>

namespace vortex::loadgen {
namespace {

using Event = StreamReader::Event;

TEST(StreamReader, CompletionsTextChunksAndTheUsageChunk) {
  StreamReader r(Endpoint::kCompletions);
  EXPECT_EQ(r.on_data(R"({"choices":[{"index":0,"text":"Hi","finish_reason":null}],"usage":null})"),
            Event::kContent);
  EXPECT_EQ(r.on_data(R"({"choices":[{"index":0,"text":"","finish_reason":"length"}]})"),
            Event::kOther);
  EXPECT_FALSE(r.completion_tokens());
  EXPECT_EQ(r.on_data(R"({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}})"),
            Event::kOther);
  EXPECT_EQ(r.completion_tokens(), 2);
  EXPECT_EQ(r.prompt_tokens(), 7);
  EXPECT_FALSE(r.done());
  EXPECT_EQ(r.on_data("[DONE]"), Event::kDone);
  EXPECT_TRUE(r.done());
  EXPECT_EQ(r.on_data(R"({"choices":[]})"), Event::kError);
}

TEST(StreamReader, ChatDeltasWithContentOrReasoningCount) {
  StreamReader r(Endpoint::kChat);
  EXPECT_EQ(r.on_data(R"({"choices":[{"delta":{"role":"assistant","content":""}}]})"),
            Event::kOther);
  EXPECT_EQ(r.on_data(R"({"choices":[{"delta":{"content":"a"}}]})"), Event::kContent);
  EXPECT_EQ(r.on_data(R"({"choices":[{"delta":{"reasoning_content":"hm"}}]})"), Event::kContent);
  EXPECT_EQ(r.on_data(R"({"choices":[{"delta":{},"finish_reason":"stop"}]})"), Event::kOther);
}

TEST(StreamReader, ChunksWithTokenIdsCountEvenWithoutText) {
  // vLLM's return_token_ids, and what Vortex sends for a model served without a tokenizer.
  StreamReader completions(Endpoint::kCompletions);
  EXPECT_EQ(completions.on_data(R"({"choices":[{"text":"","token_ids":[17]}]})"), Event::kContent);
  EXPECT_EQ(completions.on_data(R"({"choices":[{"text":"","token_ids":[]}]})"), Event::kOther);
  StreamReader chat(Endpoint::kChat);
  EXPECT_EQ(chat.on_data(R"({"choices":[{"delta":{"content":""},"token_ids":[3]}]})"),
            Event::kContent);
  EXPECT_EQ(chat.on_data(R"({"choices":[{"delta":{},"token_ids":null}]})"), Event::kOther);
}

TEST(StreamReader, GenerateCountsNewTokensFromMetaInfo) {
  StreamReader r(Endpoint::kGenerate);
  EXPECT_EQ(r.on_data(R"({"text":"","meta_info":{"prompt_tokens":5,"completion_tokens":1}})"),
            Event::kContent);  // a token whose text is not complete yet still arrived
  EXPECT_EQ(r.on_data(R"({"text":"ab","meta_info":{"completion_tokens":2}})"), Event::kContent);
  EXPECT_EQ(r.on_data(R"({"text":"ab","meta_info":{"completion_tokens":2}})"), Event::kOther);
  EXPECT_EQ(r.completion_tokens(), 2);
  EXPECT_EQ(r.prompt_tokens(), 5);
}

TEST(StreamReader, GenerateWithoutMetaInfoFollowsTheText) {
  StreamReader r(Endpoint::kGenerate);
  EXPECT_EQ(r.on_data(R"({"text":"a"})"), Event::kContent);
  EXPECT_EQ(r.on_data(R"({"text":"a"})"), Event::kOther);
  EXPECT_EQ(r.on_data(R"({"text":"ab"})"), Event::kContent);
  EXPECT_FALSE(r.completion_tokens());
}

TEST(StreamReader, MalformedDataAndErrorObjectsAreErrors) {
  StreamReader a(Endpoint::kCompletions);
  EXPECT_EQ(a.on_data("{not json"), Event::kError);
  EXPECT_NE(a.error().find("not JSON"), std::string::npos) << a.error();
  StreamReader b(Endpoint::kChat);
  EXPECT_EQ(b.on_data("[1,2]"), Event::kError);
  StreamReader c(Endpoint::kCompletions);
  EXPECT_EQ(c.on_data(R"({"error":{"message":"out of KV pages","code":503}})"), Event::kError);
  EXPECT_EQ(c.error(), "server error in stream: out of KV pages");
  StreamReader d(Endpoint::kGenerate);
  EXPECT_EQ(d.on_data(R"({"error":"bad input_ids"})"), Event::kError);
  EXPECT_NE(d.error().find("bad input_ids"), std::string::npos) << d.error();
}

}  // namespace
}  // namespace vortex::loadgen
