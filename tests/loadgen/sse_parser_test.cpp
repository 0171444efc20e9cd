#include "loadgen/sse_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vortex::loadgen {
namespace {

// Feeds `stream` in pieces of `piece` bytes and returns the events' data.
std::vector<std::string> parse(const std::string& stream, size_t piece, bool finish = true) {
  SseParser p;
  std::vector<std::string> out;
  auto on = [&](std::string_view d) {
    out.emplace_back(d);
    return true;
  };
  for (size_t i = 0; i < stream.size(); i += piece) {
    EXPECT_TRUE(p.feed(std::string_view(stream).substr(i, piece), on));
  }
  if (finish) {
    EXPECT_TRUE(p.finish(on));
  }
  return out;
}

TEST(SseParser, EventsSplitAcrossReadsAtEveryByte) {
  const std::string s =
      "data: {\"a\":1}\n\n: comment\n\ndata: {\"b\":2}\r\n\r\nevent: x\nid: 3\ndata:{\"c\":3}\r\r"
      "data: [DONE]\n\n";
  const std::vector<std::string> want = {"{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "[DONE]"};
  for (size_t piece = 1; piece <= s.size(); ++piece) {
    EXPECT_EQ(parse(s, piece), want) << "pieces of " << piece;
  }
}

TEST(SseParser, CrLfSplitBetweenReadsIsOneLineEnd) {
  SseParser p;
  std::vector<std::string> out;
  auto on = [&](std::string_view d) {
    out.emplace_back(d);
    return true;
  };
  EXPECT_TRUE(p.feed("data: x\r", on));
  EXPECT_TRUE(p.feed("\n\r", on));  // LF completes the CRLF; CR is the blank line
  EXPECT_EQ(out, std::vector<std::string>{"x"});
  EXPECT_TRUE(p.feed("\ndata: y\n\n", on));
  EXPECT_EQ(out, (std::vector<std::string>{"x", "y"}));
}

TEST(SseParser, CommentsAndOtherFieldsCarryNoData) {
  EXPECT_TRUE(parse(": ping\n\n:\n\nevent: message\nretry: 10\n\n", 4).empty());
}

TEST(SseParser, DataLinesOfOneEventJoinWithNewlines) {
  EXPECT_EQ(parse("data: a\ndata:b\ndata\n\n", 3), std::vector<std::string>{"a\nb\n"});
  // Only one space after the colon is dropped.
  EXPECT_EQ(parse("data:  two\n\n", 100), std::vector<std::string>{" two"});
}

TEST(SseParser, FinishDeliversAnEventWithoutItsBlankLine) {
  EXPECT_TRUE(parse("data: [DONE]", 5, /*finish=*/false).empty());
  EXPECT_EQ(parse("data: [DONE]", 5), std::vector<std::string>{"[DONE]"});
  EXPECT_EQ(parse("data: [DONE]\n", 5), std::vector<std::string>{"[DONE]"});
}

TEST(SseParser, HandlerCanStopTheStream) {
  SseParser p;
  int calls = 0;
  auto on = [&](std::string_view) { return ++calls < 2; };
  EXPECT_FALSE(p.feed("data: 1\n\ndata: 2\n\ndata: 3\n\n", on));
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(p.feed("data: 4\n\n", on));
  EXPECT_EQ(calls, 2);
}

TEST(SseParser, ALineWithoutEndOverTheLimitFails) {
  SseParser p;
  auto on = [](std::string_view) { return true; };
  const std::string chunk(1 << 20, 'x');
  bool ok = true;
  for (size_t fed = 0; ok && fed <= SseParser::kMaxLineBytes; fed += chunk.size()) {
    ok = p.feed(chunk, on);
  }
  EXPECT_FALSE(ok);
  EXPECT_NE(p.error().find("MiB"), std::string::npos) << p.error();
}

}  // namespace
}  // namespace vortex::loadgen
