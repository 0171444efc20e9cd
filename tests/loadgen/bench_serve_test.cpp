// The whole benchmark against an in-process fake server: counts, token totals and chunk timings
// must match what the server sent, for each endpoint, and misbehaving servers end in failed
// requests, never in a crash.
#include "loadgen/bench_serve.h"

#include <gtest/gtest.h>

#include <limits>

#include "core/error.h"
#include "loadgen/fake_openai_server.h"

namespace vortex::loadgen {
namespace {

using testing::FakeOpenAiServer;
using testing::FakeServerOptions;

constexpr double kInf = std::numeric_limits<double>::infinity();

BenchServeConfig config_for(const FakeOpenAiServer& server, Endpoint endpoint, int64_t n,
                            int32_t input_len, int32_t output_len) {
  BenchServeConfig c;
  c.server = parse_server_url(server.url());
  c.endpoint = endpoint;
  c.client.timeout_s = 30;
  c.body.model = endpoint == Endpoint::kGenerate ? "" : "fake-model";
  RandomWorkload w;
  w.num_prompts = n;
  w.input_len = input_len;
  w.output_len = output_len;
  w.kind = endpoint_takes_ids(endpoint) ? PromptKind::kIds : PromptKind::kMessages;
  c.requests = random_requests(w);
  c.request_rate = kInf;
  c.max_concurrency = 4;
  return c;
}

class BenchServeEndpoints : public ::testing::TestWithParam<Endpoint> {};

TEST_P(BenchServeEndpoints, CountsAndTokenTotalsMatchTheServerExactly) {
  FakeOpenAiServer server;
  const int64_t n = 12;
  const int32_t in = 20, out = 6;
  BenchServeConfig c = config_for(server, GetParam(), n, in, out);
  int64_t last_finished = 0, calls = 0;
  BenchReport r = run_bench_serve(c, [&](int64_t f) {
    last_finished = f;
    ++calls;
  });
  EXPECT_EQ(calls, n);
  EXPECT_EQ(last_finished, n);
  EXPECT_EQ(r.num_prompts, n);
  EXPECT_EQ(r.completed, n) << r.first_error;
  EXPECT_EQ(r.failed, 0);
  EXPECT_EQ(r.output_tokens, n * out);
  EXPECT_EQ(r.input_tokens, n * in);
  EXPECT_EQ(r.output_counted_by_server, n);
  EXPECT_EQ(r.input_counted_by_server, n);
  EXPECT_EQ(r.ttft.count, n);
  EXPECT_EQ(r.tpot.count, n);
  EXPECT_EQ(r.itl.count, n * (out - 1));
  EXPECT_EQ(r.e2e.count, n);
  EXPECT_GT(r.ttft.mean, 0);
  EXPECT_GT(r.itl.mean, 0);
  EXPECT_GE(r.e2e.mean, r.ttft.mean);
  EXPECT_GT(r.duration_s, 0);
  EXPECT_LE(r.peak_in_flight, 4);
  EXPECT_LE(server.max_in_flight(), 4);
  EXPECT_EQ(server.bodies().size(), static_cast<size_t>(n));
}

INSTANTIATE_TEST_SUITE_P(AllEndpoints, BenchServeEndpoints,
                         ::testing::Values(Endpoint::kCompletions, Endpoint::kChat,
                                           Endpoint::kGenerate),
                         [](const ::testing::TestParamInfo<Endpoint>& info) {
                           switch (info.param) {
                             case Endpoint::kCompletions:
                               return "completions";
                             case Endpoint::kChat:
                               return "chat";
                             case Endpoint::kGenerate:
                               return "generate";
                           }
                           return "";
                         });

TEST(BenchServe, WithoutUsageOutputTokensAreTheChunks) {
  FakeServerOptions o;
  o.send_usage = false;
  FakeOpenAiServer server(o);
  for (Endpoint e : {Endpoint::kCompletions, Endpoint::kGenerate}) {
    BenchServeConfig c = config_for(server, e, 5, 8, 4);
    BenchReport r = run_bench_serve(c, nullptr);
    EXPECT_EQ(r.completed, 5) << r.first_error;
    EXPECT_EQ(r.output_tokens, 20);
    EXPECT_EQ(r.output_counted_as_chunks, 5);
    EXPECT_EQ(r.output_counted_by_server, 0);
    EXPECT_EQ(r.input_tokens, 40);  // the prompts' ids
    EXPECT_EQ(r.input_counted_as_ids, 5);
  }
}

TEST(BenchServe, SendsTheBodyItWasAskedFor) {
  FakeOpenAiServer server;
  BenchServeConfig c = config_for(server, Endpoint::kCompletions, 3, 5, 2);
  c.body.ignore_eos = true;
  c.body.vortex = {{"flow", "quest"}, {"topk_ratio", 0.25}};
  c.request_rate = 1000;  // Poisson arrivals, quickly
  c.max_concurrency = 0;
  BenchReport r = run_bench_serve(c, nullptr);
  EXPECT_EQ(r.completed, 3) << r.first_error;
  for (const Json& b : server.bodies()) {
    EXPECT_EQ(b["model"], "fake-model");
    EXPECT_EQ(b["prompt"].size(), 5u);
    EXPECT_EQ(b["max_tokens"], 2);
    EXPECT_EQ(b["ignore_eos"], true);
    EXPECT_EQ(b["vortex"]["flow"], "quest");
    EXPECT_EQ(b["stream_options"]["include_usage"], true);
  }
}

TEST(BenchServe, HttpErrorsAreCountedWithTheServersMessage) {
  FakeServerOptions o;
  o.fail_status = 500;
  FakeOpenAiServer server(o);
  BenchReport r = run_bench_serve(config_for(server, Endpoint::kCompletions, 4, 4, 4), nullptr);
  EXPECT_EQ(r.completed, 0);
  EXPECT_EQ(r.failed, 4);
  EXPECT_EQ(r.first_error, "HTTP 500: the fake server refuses");
  EXPECT_EQ(r.output_tokens, 0);
  EXPECT_EQ(r.ttft.count, 0);
}

TEST(BenchServe, AStreamCutShortIsAFailure) {
  FakeServerOptions o;
  o.close_after_chunks = 2;
  FakeOpenAiServer server(o);
  for (Endpoint e : {Endpoint::kCompletions, Endpoint::kChat, Endpoint::kGenerate}) {
    BenchReport r = run_bench_serve(config_for(server, e, 3, 4, 6), nullptr);
    EXPECT_EQ(r.completed, 0);
    EXPECT_EQ(r.failed, 3);
    // The connection drops inside the chunked body: httplib reports a read failure.
    EXPECT_NE(r.first_error.find("connection broke"), std::string::npos) << r.first_error;
  }
}

TEST(BenchServe, MalformedEventDataIsAFailure) {
  FakeServerOptions o;
  o.malformed = true;
  FakeOpenAiServer server(o);
  BenchReport r = run_bench_serve(config_for(server, Endpoint::kChat, 2, 4, 4), nullptr);
  EXPECT_EQ(r.failed, 2);
  EXPECT_NE(r.first_error.find("malformed stream"), std::string::npos) << r.first_error;
}

TEST(BenchServe, SlowServerTimesOut) {
  FakeServerOptions o;
  o.chunk_delay = std::chrono::milliseconds(200);
  FakeOpenAiServer server(o);
  BenchServeConfig c = config_for(server, Endpoint::kCompletions, 1, 4, 3);
  c.client.timeout_s = 0.25;
  BenchReport r = run_bench_serve(c, nullptr);
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(r.first_error.rfind("timed out after 0.25 s", 0), 0u) << r.first_error;
}

TEST(BenchServe, AskingForTheModelAndReachingTheServer) {
  FakeOpenAiServer server;
  const ServerUrl url = parse_server_url(server.url());
  EXPECT_EQ(first_served_model(url, {}), "fake-model");
  EXPECT_NO_THROW(check_reachable(url, {}));

  FakeServerOptions o;
  o.list_models = false;
  FakeOpenAiServer no_models(o);
  const ServerUrl url2 = parse_server_url(no_models.url());
  EXPECT_NO_THROW(check_reachable(url2, {}));  // a 404 is an answer
  try {
    first_served_model(url2, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              no_models.url() + "/v1/models: HTTP 404: Not Found (give --model)");
  }
}

}  // namespace
}  // namespace vortex::loadgen
