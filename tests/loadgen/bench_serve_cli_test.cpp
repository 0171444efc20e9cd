// `vortex bench-serve` as a user runs it: help, usage errors that name the flag (exit 2), an
// unreachable server (exit 1, one line naming the URL), and a run against a fake server.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "loadgen/fake_openai_server.h"
#include "support/run_vortex.h"

namespace vortex::loadgen {
namespace {

using vortex::testing::CmdResult;
using vortex::testing::run_vortex;

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(BenchServeCli, HelpListsTheFlags) {
  CmdResult r = run_vortex({"bench-serve", "--help"});
  EXPECT_EQ(r.code, 0) << r.err;
  for (const char* flag :
       {"--url", "--endpoint", "--request-rate", "--max-concurrency", "--dataset-path",
        "--random-range-ratio", "--flow", "--topk-ratio", "--header", "--json", "--timeout-s"}) {
    EXPECT_CONTAINS(r.out, flag);
  }
}

TEST(BenchServeCli, BadFlagsExitTwoNamingTheFlag) {
  const std::string url = "http://127.0.0.1:1";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"bench-serve"}, "--url"},
      {{"bench-serve", "--url", url, "--request-rate", "0"}, "--request-rate"},
      {{"bench-serve", "--url", url, "--request-rate", "fast"}, "--request-rate"},
      {{"bench-serve", "--url", url, "--endpoint", "/v1/embeddings"}, "--endpoint"},
      {{"bench-serve", "--url", url, "--num-prompts", "0"}, "--num-prompts"},
      {{"bench-serve", "--url", url, "--max-concurrency", "-1"}, "--max-concurrency"},
      {{"bench-serve", "--url", url, "--random-range-ratio", "1.5"}, "--random-range-ratio"},
      {{"bench-serve", "--url", url, "--header", "no colon"}, "--header"},
      {{"bench-serve", "--url", url, "--topk-ratio", "2"}, "--topk-ratio"},
      {{"bench-serve", "--url", url, "--timeout-s", "0"}, "--timeout-s"},
      {{"bench-serve", "--url", url, "--dataset", "sharegpt"}, "--dataset"},
      {{"bench-serve", "--url", "127.0.0.1:30000"}, "--url"},
      {{"bench-serve", "--url", url, "--no-such-flag"}, "--no-such-flag"},
  };
  for (const auto& [args, flag] : cases) {
    CmdResult r = run_vortex(args);
    EXPECT_EQ(r.code, 2) << args.back() << ": " << r.err;
    EXPECT_CONTAINS(r.err, flag);
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST(BenchServeCli, UnreachableServerExitsOneWithOneLineNamingTheUrl) {
  // Port 1 (tcpmux) has no listener: the connection is refused at once.
  const std::string url = "http://127.0.0.1:1";
  for (const char* model : {"", "m"}) {
    std::vector<std::string> args = {"bench-serve", "--url", url, "--num-prompts", "2"};
    if (*model) args.insert(args.end(), {"--model", model});
    CmdResult r = run_vortex(args);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_CONTAINS(r.err, "cannot reach " + url);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST(BenchServeCli, ABadDatasetLineExitsOneNamingFileAndLine) {
  const std::string path = ::testing::TempDir() + "bench_serve_cli_bad.jsonl";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("{\"prompt\": \"ok\"}\n{\"prompt\": 3}\n", f);
    std::fclose(f);
  }
  CmdResult r = run_vortex({"bench-serve", "--url", "http://127.0.0.1:1", "--dataset-path", path});
  std::remove(path.c_str());
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, path + ":2:");
}

TEST(BenchServeCli, RunsAgainstAServerAndPrintsJson) {
  testing::FakeOpenAiServer server;
  CmdResult r = run_vortex({"bench-serve", "--url",
                            server.url(),  "--num-prompts",
                            "6",           "--random-input-len",
                            "10",          "--random-output-len",
                            "3",           "--max-concurrency",
                            "2",           "--request-rate",
                            "500",         "--ignore-eos",
                            "--flow",      "quest",
                            "--header",    "Authorization: Bearer k",
                            "--json",      "--disable-progress"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["model"], "fake-model");  // from GET /v1/models
  EXPECT_EQ(j["completed"], 6);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["total_output_tokens"], 18);
  EXPECT_EQ(j["total_input_tokens"], 60);
  EXPECT_EQ(j["max_concurrency"], 2);
  EXPECT_EQ(j["request_rate"], 500.0);
  EXPECT_GT(j["mean_ttft_ms"].get<double>(), 0);
  for (const Json& b : server.bodies()) {
    EXPECT_EQ(b["vortex"], Json({{"flow", "quest"}}));
    EXPECT_EQ(b["ignore_eos"], true);
  }
  for (const std::string& a : server.authorizations()) EXPECT_EQ(a, "Bearer k");

  // The text report, with the progress line on stderr.
  r = run_vortex({"bench-serve", "--url", server.url(), "--num-prompts", "3", "--endpoint",
                  "/v1/chat/completions", "--random-input-len", "4", "--random-output-len", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "Successful requests:");
  EXPECT_CONTAINS(r.out, "Mean TTFT (ms):");
  EXPECT_CONTAINS(r.err, "(3/3)");
}

TEST(BenchServeCli, EveryRequestFailingExitsOneAfterTheReport) {
  testing::FakeServerOptions o;
  o.fail_status = 500;
  testing::FakeOpenAiServer server(o);
  CmdResult r = run_vortex({"bench-serve", "--url", server.url(), "--num-prompts", "2", "--model",
                            "x", "--disable-progress"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.out, "Failed requests:");
  EXPECT_CONTAINS(r.err, "all 2 requests to " + server.url() + " failed");
  EXPECT_CONTAINS(r.err, "HTTP 500: the fake server refuses");
}

}  // namespace
}  // namespace vortex::loadgen
