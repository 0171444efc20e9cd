#include "loadgen/endpoint.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "loadgen/http_client.h"

namespace vortex::loadgen {
namespace {

BenchRequest ids_request() {
  BenchRequest r;
  r.kind = PromptKind::kIds;
  r.prompt_ids = {5, 6, 7};
  r.max_tokens = 4;
  return r;
}

TEST(Endpoint, ParsesTheThreePathsAndRefusesOthersAsUsage) {
  EXPECT_EQ(parse_endpoint("/v1/completions"), Endpoint::kCompletions);
  EXPECT_EQ(parse_endpoint("/v1/chat/completions"), Endpoint::kChat);
  EXPECT_EQ(parse_endpoint("/generate"), Endpoint::kGenerate);
  try {
    parse_endpoint("/v1/embeddings");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(std::string(e.what()).find("--endpoint"), std::string::npos);
  }
}

TEST(RequestBody, CompletionsSendsIdsStreamingWithUsageAndNoExtensionByDefault) {
  BodyOptions o;
  o.model = "m";
  Json b = request_body(Endpoint::kCompletions, ids_request(), o);
  EXPECT_EQ(b["model"], "m");
  EXPECT_EQ(b["prompt"], Json::array({5, 6, 7}));
  EXPECT_EQ(b["max_tokens"], 4);
  EXPECT_EQ(b["stream"], true);
  EXPECT_EQ(b["stream_options"]["include_usage"], true);
  EXPECT_EQ(b["temperature"], 0.0);
  EXPECT_FALSE(b.contains("ignore_eos"));
  EXPECT_FALSE(b.contains("vortex"));
}

TEST(RequestBody, ExtensionAndIgnoreEosWhenGiven) {
  BodyOptions o;
  o.ignore_eos = true;
  o.vortex = {{"flow", "quest"}, {"topk_ratio", 0.125}};
  Json b = request_body(Endpoint::kCompletions, ids_request(), o);
  EXPECT_EQ(b["ignore_eos"], true);
  EXPECT_EQ(b["vortex"]["flow"], "quest");
  EXPECT_FALSE(b.contains("model"));
  Json g = request_body(Endpoint::kGenerate, ids_request(), o);
  EXPECT_EQ(g["input_ids"], Json::array({5, 6, 7}));
  EXPECT_EQ(g["sampling_params"]["max_new_tokens"], 4);
  EXPECT_EQ(g["sampling_params"]["ignore_eos"], true);
  EXPECT_EQ(g["sampling_params"]["vortex"]["topk_ratio"], 0.125);
  EXPECT_FALSE(g.contains("vortex"));
  EXPECT_FALSE(g.contains("model"));
  EXPECT_EQ(g["stream"], true);
}

TEST(RequestBody, ChatWrapsATextPromptAsOneUserMessage) {
  BenchRequest r;
  r.kind = PromptKind::kText;
  r.prompt_text = "hello";
  Json b = request_body(Endpoint::kChat, r, {});
  EXPECT_EQ(b["messages"], Json::parse(R"([{"role":"user","content":"hello"}])"));
  EXPECT_FALSE(b.contains("prompt"));
  Json g = request_body(Endpoint::kGenerate, r, {});
  EXPECT_EQ(g["text"], "hello");
  EXPECT_THROW(request_body(Endpoint::kChat, ids_request(), {}), Error);
}

TEST(ServerUrl, SplitsOriginAndPrefix) {
  ServerUrl u = parse_server_url("http://127.0.0.1:30000/");
  EXPECT_EQ(u.url, "http://127.0.0.1:30000");
  EXPECT_EQ(u.origin, "http://127.0.0.1:30000");
  EXPECT_EQ(u.path_prefix, "");
  u = parse_server_url("https://example.org/api/");
  EXPECT_EQ(u.origin, "https://example.org");
  EXPECT_EQ(u.path_prefix, "/api");
  for (const char* bad : {"127.0.0.1:30000", "ftp://x", "http://", "http://h/a?b=1"}) {
    try {
      parse_server_url(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.exit_code(), 2) << bad;
      EXPECT_EQ(std::string(e.what()).rfind("--url", 0), 0u) << e.what();
    }
  }
}

}  // namespace
}  // namespace vortex::loadgen
