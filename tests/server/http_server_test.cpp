// The server end to end in one process: a real EngineLoop over tiny-qwen3 behind the HTTP
// server on 127.0.0.1 (a free port), driven by httplib's client. Greedy answers must equal the
// Engine's and `vortex generate`'s; streams must carry the same tokens as whole answers; bad
// requests get OpenAI's error shape naming the field; a client that leaves mid-stream frees
// its pages; a full queue is a 503; shutdown lets streams in flight finish.
#include "server/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "engine/sparse_decode.h"
#include "server_test_util.h"
#include "support/run_vortex.h"

namespace vortex::server {
namespace {

using testing::tiny_model;
using namespace std::chrono_literals;

EngineOptions tiny_engine(int32_t max_batch = 8) {
  EngineOptions eo;
  eo.num_pages = 512;
  eo.max_batch = max_batch;
  eo.max_step_tokens = 256;
  return eo;
}

class TestServer {
 public:
  explicit TestServer(EngineOptions eo = tiny_engine(), int32_t max_waiting = 64,
                      size_t max_body_bytes = size_t{8} << 20,
                      std::chrono::milliseconds request_timeout = 0ms) {
    EngineLoopOptions lo;
    lo.max_waiting = max_waiting;
    loop_ = std::make_unique<EngineLoop>(std::make_unique<Engine>(tiny_model(), eo), lo);
    HttpServerOptions so;
    so.host = "127.0.0.1";
    so.port = 0;
    so.max_body_bytes = max_body_bytes;
    so.threads = 16;
    so.request_timeout = request_timeout;
    const std::vector<std::string> flows = loop_->flow_names();
    server_ =
        std::make_unique<HttpServer>(*loop_, served_model_of(tiny_model(), "tiny", flows), so);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->run(); });
  }
  ~TestServer() {
    stop(1000ms);
    loop_->shutdown(/*abort_in_flight=*/true);
  }
  void stop(std::chrono::milliseconds grace) {
    if (!thread_.joinable()) return;
    server_->shutdown(grace);
    thread_.join();
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }
  Json post(const std::string& path, const Json& body, int expect_status = 200) const {
    httplib::Client c = client();
    httplib::Result r = c.Post(path.c_str(), body.dump(), "application/json");
    EXPECT_TRUE(r) << path;
    if (!r) return Json();
    EXPECT_EQ(r->status, expect_status) << path << " " << body.dump() << " -> " << r->body;
    return Json::parse(r->body);
  }
  // Streams `body` to `path`; `on_chunk` sees each SSE data payload ("[DONE]" included) and
  // returns false to hang up.
  int stream(const std::string& path, const Json& body,
             const std::function<bool(const std::string&)>& on_chunk) const {
    httplib::Client c = client();
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    std::string pending;
    bool go_on = true;
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      pending.append(data, n);
      size_t end;
      while (go_on && (end = pending.find("\n\n")) != std::string::npos) {
        std::string event = pending.substr(0, end);
        pending.erase(0, end + 2);
        EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
        go_on = on_chunk(event.substr(6));
      }
      return go_on;
    };
    httplib::Response res;
    httplib::Error err = httplib::Error::Success;
    c.send(req, res, err);
    return res.status;
  }
  EngineLoop& loop() { return *loop_; }
  int port() const { return port_; }

  // Waits (bounded) until the loop's snapshot satisfies `pred`.
  bool wait_for(const std::function<bool(const EngineLoopMetrics&)>& pred) {
    for (int i = 0; i < 3000; ++i) {
      if (pred(loop_->metrics())) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

 private:
  std::unique_ptr<EngineLoop> loop_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  std::thread thread_;
};

// The greedy tokens the Engine itself generates for `prompt`.
std::vector<int32_t> engine_greedy(const std::vector<int32_t>& prompt, int32_t max_tokens) {
  Engine engine(tiny_model(), tiny_engine());
  GenerationParams gp;
  gp.max_tokens = max_tokens;
  gp.ignore_eos = true;
  engine.add_request(prompt, gp);
  return engine.run_to_completion().at(0).token_ids;
}

// `vortex generate --json` run as a user would.
Json generate_json(const std::vector<std::string>& args) {
  std::vector<std::string> all = {"generate", "--model",
                                  std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3",
                                  "--json", "--ignore-eos"};
  all.insert(all.end(), args.begin(), args.end());
  vortex::testing::CmdResult r = vortex::testing::run_vortex(all);
  EXPECT_EQ(r.code, 0) << r.err;
  return Json::parse(r.out);
}

TEST(HttpServer, GreedyAnswersEqualTheEngineAndVortexGenerate) {
  TestServer s;
  const std::string prompt = "The quick brown fox";
  Json c = s.post("/v1/completions", {{"model", "tiny"},
                                      {"prompt", prompt},
                                      {"max_tokens", 12},
                                      {"temperature", 0},
                                      {"ignore_eos", true},
                                      {"return_token_ids", true}});
  const std::vector<int32_t> ids = c["choices"][0]["token_ids"].get<std::vector<int32_t>>();
  EXPECT_EQ(ids, engine_greedy(tiny_model().tokenizer->encode(prompt), 12));
  Json gen = generate_json({"--prompt", prompt, "--max-tokens", "12"});
  EXPECT_EQ(Json(ids), gen["token_ids"]);
  EXPECT_EQ(c["choices"][0]["text"], gen["text"]);
  EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(c["usage"]["completion_tokens"], 12);

  Json chat =
      s.post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Hi!"}}}},
                                      {"max_tokens", 6},
                                      {"temperature", 0},
                                      {"ignore_eos", true},
                                      {"return_token_ids", true}});
  Json gen_chat = generate_json({"--chat", "Hi!", "--max-tokens", "6"});
  EXPECT_EQ(chat["choices"][0]["token_ids"], gen_chat["token_ids"]);
  EXPECT_EQ(chat["choices"][0]["message"]["content"], gen_chat["text"]);
  EXPECT_EQ(chat["usage"]["prompt_tokens"], gen_chat["prompt_tokens"]);

  Json sg = s.post(
      "/generate",
      {{"input_ids", {5, 6, 7}},
       {"sampling_params", {{"max_new_tokens", 9}, {"temperature", 0}, {"ignore_eos", true}}}});
  EXPECT_EQ(sg["output_ids"].get<std::vector<int32_t>>(), engine_greedy({5, 6, 7}, 9));
  EXPECT_EQ(sg["meta_info"]["finish_reason"]["type"], "length");
  EXPECT_EQ(sg["meta_info"]["prompt_tokens"], 3);
}

TEST(HttpServer, StreamsCarryTheSameTokensAsWholeAnswers) {
  TestServer s;
  struct Case {
    std::string path;
    Json body;
  };
  const Json sampling = {{"temperature", 0}, {"ignore_eos", true}};
  std::vector<Case> cases = {
      {"/v1/completions",
       {{"prompt", "Once upon"}, {"max_tokens", 10}, {"return_token_ids", true}}},
      {"/v1/chat/completions",
       {{"messages", {{{"role", "user"}, {"content", "Tell me"}}}},
        {"max_tokens", 10},
        {"return_token_ids", true},
        {"stream_options", {{"include_usage", true}}}}},
      {"/generate", {{"text", "Once upon"}, {"sampling_params", {{"max_new_tokens", 10}}}}},
  };
  for (Case& c : cases) {
    if (c.path == "/generate") {
      c.body["sampling_params"].update(sampling);
    } else {
      c.body.update(sampling);
    }
    const Json whole = s.post(c.path, c.body);
    Json streamed_body = c.body;
    streamed_body["stream"] = true;
    std::string text, finish;
    std::vector<int32_t> ids;
    bool done = false, usage = false;
    int status = s.stream(c.path, streamed_body, [&](const std::string& data) {
      if (data == "[DONE]") {
        done = true;
        return true;
      }
      Json j = Json::parse(data);
      if (c.path == "/generate") {
        text = j["text"];  // cumulative
        ids = j["output_ids"].get<std::vector<int32_t>>();
        if (!j["meta_info"]["finish_reason"].is_null()) {
          finish = j["meta_info"]["finish_reason"]["type"];
        }
        return true;
      }
      if (j.contains("usage") && !j["usage"].is_null()) {
        usage = true;
        EXPECT_EQ(j["usage"]["completion_tokens"], 10);
        return true;
      }
      const Json& ch = j["choices"][0];
      if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
      if (c.path == "/v1/chat/completions") {
        if (ch["delta"].contains("content")) text += ch["delta"]["content"].get<std::string>();
      } else {
        text += ch["text"].get<std::string>();
      }
      if (ch.contains("token_ids")) {
        for (int32_t t : ch["token_ids"]) ids.push_back(t);
      }
      return true;
    });
    EXPECT_EQ(status, 200) << c.path;
    EXPECT_TRUE(done) << c.path;
    EXPECT_EQ(finish, "length") << c.path;
    if (c.path == "/generate") {
      EXPECT_EQ(text, whole["text"]);
      EXPECT_EQ(Json(ids), whole["output_ids"]);
    } else {
      const Json& w = whole["choices"][0];
      EXPECT_EQ(text, c.path == "/v1/completions" ? w["text"] : w["message"]["content"]);
      EXPECT_EQ(Json(ids), w["token_ids"]) << c.path;
    }
    EXPECT_EQ(usage, c.path == "/v1/chat/completions");
  }
}

TEST(HttpServer, SeededSamplesAreReproducibleAndNumberedBySeed) {
  TestServer s;
  const Json base = {{"prompt", {5, 6}},
                     {"max_tokens", 8},
                     {"temperature", 1.0},
                     {"ignore_eos", true},
                     {"return_token_ids", true}};
  Json two = base;
  two["n"] = 2;
  two["seed"] = 3;
  Json pair = s.post("/v1/completions", two);
  ASSERT_EQ(pair["choices"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    Json one = base;
    one["seed"] = 3 + i;
    EXPECT_EQ(s.post("/v1/completions", one)["choices"][0]["token_ids"],
              pair["choices"][i]["token_ids"]);
  }
}

TEST(HttpServer, BadRequestsGetOpenAisErrorNamingTheField) {
  TestServer s(tiny_engine(), 64, /*max_body_bytes=*/64 << 10);
  struct Bad {
    const char* path;
    std::string body;
    int status;
    const char* param;    // nullptr: null
    const char* message;  // a part of it
  };
  std::vector<int> long_prompt(4096, 5);
  const std::vector<Bad> bad = {
      {"/v1/completions", "{\"prompt\": \"x\",", 400, nullptr, "invalid JSON at byte"},
      {"/v1/chat/completions", "[1, 2]", 400, nullptr, "must be a JSON object"},
      {"/v1/completions", R"({"prompt": "x", "temperature": "hot"})", 400, "temperature",
       "expected a number"},
      {"/v1/chat/completions",
       R"({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]})", 404, "model",
       "'gpt-4' does not exist"},
      {"/v1/completions", R"({"prompt": "x", "vortex": {"flow": "quest"}})", 400, "vortex.flow",
       "no flow named 'quest'"},
      {"/generate", Json{{"input_ids", long_prompt}}.dump(), 400, "input_ids",
       "context is 4096 tokens"},
      {"/v1/completions", R"({"prompt": "x", "max_tokens": 0})", 400, "max_tokens", "[1, "},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": "x"}], "n": 99})", 400,
       "n", "[1, 16]"},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 50})",
       400, "top_logprobs", "[0, 20]"},
      {"/generate", R"({"text": "x", "sampling_params": {"top_p": 7}})", 400,
       "sampling_params.top_p", "(0, 1]"},
      {"/v1/completions", std::string(100 << 10, ' '), 413, nullptr, "larger than the limit"},
      {"/v1/embeddings", "{}", 404, nullptr, "Invalid URL (POST /v1/embeddings)"},
  };
  for (const Bad& b : bad) {
    httplib::Client c = s.client();
    httplib::Result r = c.Post(b.path, b.body, "application/json");
    ASSERT_TRUE(r) << b.path;
    EXPECT_EQ(r->status, b.status) << b.path << " " << b.body.substr(0, 100) << " -> " << r->body;
    Json j = Json::parse(r->body);
    ASSERT_TRUE(j.contains("error")) << r->body;
    const Json& e = j["error"];
    EXPECT_EQ(e["type"], "invalid_request_error") << r->body;
    EXPECT_TRUE(e.contains("code"));
    if (b.param) {
      EXPECT_EQ(e["param"], b.param) << r->body;
    } else {
      EXPECT_TRUE(e["param"].is_null()) << r->body;
    }
    EXPECT_CONTAINS(e["message"].get<std::string>(), b.message);
  }
  httplib::Client c = s.client();
  httplib::Result r = c.Get("/v1/chat/completions");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "POST");
  EXPECT_TRUE(Json::parse(r->body).contains("error"));
  // The server is still healthy after all that.
  EXPECT_EQ(c.Get("/health")->status, 200);
}

TEST(HttpServer, ModelsInfoHealthAndMetrics) {
  TestServer s;
  httplib::Client c = s.client();
  Json models = Json::parse(c.Get("/v1/models")->body);
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_EQ(c.Get("/v1/models/tiny")->status, 200);
  httplib::Result missing = c.Get("/v1/models/other");
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(Json::parse(missing->body)["error"]["code"], "model_not_found");
  Json info = Json::parse(c.Get("/get_model_info")->body);
  EXPECT_EQ(info["is_generation"], true);
  EXPECT_EQ(info["model_path"], tiny_model().source);
  EXPECT_EQ(c.Get("/health")->status, 200);
  EXPECT_EQ(c.Get("/health_generate")->status, 200);  // one token through the engine
  ASSERT_TRUE(s.wait_for([](const EngineLoopMetrics& m) { return m.requests_finished == 1; }));
  // ignore_eos: a sampled eos would end it with "stop" instead of "length".
  s.post("/v1/completions", {{"prompt", {1, 2}}, {"max_tokens", 2}, {"ignore_eos", true}});
  // The loop publishes its figures after the step that finished the request, which may come a
  // moment after the answer.
  ASSERT_TRUE(s.wait_for([](const EngineLoopMetrics& m) { return m.requests_finished == 2; }));
  httplib::Result m = c.Get("/metrics");
  EXPECT_EQ(m->status, 200);
  EXPECT_CONTAINS(m->body, "vortex:generation_tokens_total 3\n");
  EXPECT_CONTAINS(m->body, "vortex:requests_finished_total{reason=\"length\"} 2\n");
}

TEST(HttpServer, AClientLeavingMidStreamFreesItsPages) {
  TestServer s;
  int chunks = 0;
  s.stream("/v1/completions",
           {{"prompt", "x"}, {"max_tokens", 3000}, {"ignore_eos", true}, {"stream", true}},
           [&](const std::string&) { return ++chunks < 3; });
  EXPECT_EQ(chunks, 3);
  // Its next writes fail: the server cancels it, and the pages come back.
  EXPECT_TRUE(s.wait_for([](const EngineLoopMetrics& m) {
    auto abort = m.finished_by_reason.find("abort");
    return abort != m.finished_by_reason.end() && abort->second == 1 && m.running == 0 &&
           m.kv_pages_used == 0;
  }));
  EXPECT_LT(s.loop().metrics().generation_tokens, 3000);
  httplib::Client c = s.client();
  EXPECT_CONTAINS(c.Get("/metrics")->body, "vortex:kv_cache_pages_used 0\n");
}

TEST(HttpServer, AClientLeavingBeforeANonStreamingAnswerFreesItsPages) {
  TestServer s;
  httplib::Client c = s.client();
  c.set_read_timeout(0, 200'000);  // gives up (and closes the socket) long before 4000 tokens
  httplib::Result r = c.Post(
      "/v1/completions", Json({{"prompt", {5}}, {"max_tokens", 4000}, {"ignore_eos", true}}).dump(),
      "application/json");
  EXPECT_FALSE(r);  // timed out
  c.stop();
  // The server watches the socket while it computes: the request is cancelled within a poll
  // and a step, not run to its 4000 tokens.
  EXPECT_TRUE(s.wait_for([](const EngineLoopMetrics& m) {
    auto abort = m.finished_by_reason.find("abort");
    return abort != m.finished_by_reason.end() && abort->second == 1 && m.running == 0 &&
           m.kv_pages_used == 0;
  }));
  EXPECT_LT(s.loop().metrics().generation_tokens, 4000);
  // A client that stays gets its whole answer.
  Json ok = s.post("/v1/completions", {{"prompt", {5}}, {"max_tokens", 8}, {"ignore_eos", true}});
  EXPECT_EQ(ok["usage"]["completion_tokens"], 8);
}

TEST(HttpServer, AFullQueueIs503WithRetryAfter) {
  TestServer s(tiny_engine(/*max_batch=*/1), /*max_waiting=*/1);
  std::atomic<bool> hang_up{false};
  auto long_stream = [&] {
    s.stream("/v1/completions",
             {{"prompt", "x"}, {"max_tokens", 3000}, {"ignore_eos", true}, {"stream", true}},
             [&](const std::string&) { return !hang_up; });
  };
  std::thread running(long_stream);
  ASSERT_TRUE(s.wait_for([](const EngineLoopMetrics& m) { return m.running == 1; }));
  std::thread waiting(long_stream);
  ASSERT_TRUE(s.wait_for([](const EngineLoopMetrics& m) { return m.waiting == 1; }));
  httplib::Client c = s.client();
  httplib::Result r = c.Post("/v1/completions", R"({"prompt": "x"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_EQ(Json::parse(r->body)["error"]["code"], "queue_full");
  hang_up = true;
  running.join();
  waiting.join();
  EXPECT_TRUE(s.wait_for([](const EngineLoopMetrics& m) {
    return m.running == 0 && m.waiting == 0 && m.kv_pages_used == 0;
  }));
}

TEST(HttpServer, AFlowIsPickedByModelNameOrTheVortexField) {
  EngineOptions eo = tiny_engine();
  eo.sparse = std::make_shared<const SparseAttentionConfig>(
      load_sparse_attention(std::string(VORTEX_SOURCE_DIR) + "/flows/block_topk.py", {},
                            tiny_model().config, eo.page_size, /*record_recall=*/false));
  TestServer s(eo);
  httplib::Client c = s.client();
  Json models = Json::parse(c.Get("/v1/models")->body);
  ASSERT_EQ(models["data"].size(), 2u);
  EXPECT_EQ(models["data"][1]["id"], "tiny:block_topk");
  const Json body = {{"prompt", {5, 6, 7}}, {"max_tokens", 4}, {"temperature", 0}};
  Json by_name = body;
  by_name["model"] = "tiny:block_topk";
  EXPECT_EQ(s.post("/v1/completions", by_name)["model"], "tiny:block_topk");
  Json by_field = body;
  by_field["vortex"] = {{"flow", "block_topk"}};
  s.post("/v1/completions", by_field);
  Json dense = body;
  dense["vortex"] = {{"flow", "dense"}};
  s.post("/v1/completions", dense);
  Json unknown = body;
  unknown["vortex"] = {{"flow", "quest"}};
  EXPECT_EQ(s.post("/v1/completions", unknown, 400)["error"]["param"], "vortex.flow");
  Json other_model = body;
  other_model["model"] = "tiny:quest";
  EXPECT_EQ(s.post("/v1/completions", other_model, 404)["error"]["code"], "model_not_found");
  const std::string metrics = c.Get("/metrics")->body;
  EXPECT_CONTAINS(metrics, "vortex:requests_total{flow=\"block_topk\"} 2\n");
  EXPECT_CONTAINS(metrics, "vortex:requests_total{flow=\"dense\"} 1\n");
}

// Two flows loaded: requests pick one per request, with or without their own budget, and get
// the tokens `vortex generate` gives with that flow and budget.
TEST(HttpServer, RequestsPickAmongSeveralFlowsWithTheirOwnBudgets) {
  EngineOptions eo = tiny_engine();
  eo.page_size = 4;  // rows of many pages, so the flows select
  auto load = [&](const char* name) {
    flow::BudgetOverrides quarter;
    quarter.ratio = 0.25;
    return std::make_shared<const SparseAttentionConfig>(
        load_sparse_attention(std::string(VORTEX_SOURCE_DIR) + "/flows/" + name + ".py", quarter,
                              tiny_model().config, eo.page_size, /*record_recall=*/false));
  };
  eo.sparse = load("block_topk");
  eo.more_flows = {load("quest")};
  TestServer s(eo);
  httplib::Client c = s.client();
  Json models = Json::parse(c.Get("/v1/models")->body);
  ASSERT_EQ(models["data"].size(), 3u);
  EXPECT_EQ(models["data"][1]["id"], "tiny:block_topk");
  EXPECT_EQ(models["data"][2]["id"], "tiny:quest");
  std::vector<int32_t> prompt;
  for (int i = 0; i < 60; ++i) prompt.push_back((i * 29 + 7) % 400);
  const Json body = {{"prompt", prompt},
                     {"max_tokens", 10},
                     {"temperature", 0},
                     {"ignore_eos", true},
                     {"return_token_ids", true}};
  auto ids = [&](Json b) { return s.post("/v1/completions", b)["choices"][0]["token_ids"]; };
  auto generated = [&](const std::vector<std::string>& flow_args) {
    std::vector<std::string> args = {"--page-size", "4", "--max-tokens", "10", "--prompt-ids"};
    std::string list;
    for (int32_t t : prompt) list += (list.empty() ? "" : ",") + std::to_string(t);
    args.push_back(list);
    args.insert(args.end(), flow_args.begin(), flow_args.end());
    return generate_json(args)["token_ids"];
  };
  const std::string flows = std::string(VORTEX_SOURCE_DIR) + "/flows/";
  Json quest = body;
  quest["model"] = "tiny:quest";
  EXPECT_EQ(ids(quest), generated({"--flow", flows + "quest.py", "--topk-ratio", "0.25"}));
  Json quest_half = body;
  quest_half["vortex"] = {{"flow", "quest"}, {"topk_ratio", 0.5}, {"sink_pages", 0}};
  EXPECT_EQ(ids(quest_half),
            generated({"--flow", flows + "quest.py", "--topk-ratio", "0.5", "--sink-pages", "0"}));
  Json topk_pages = body;  // the default flow, with a page count instead of its ratio
  topk_pages["vortex"] = {{"topk_pages", 3}};
  EXPECT_EQ(ids(topk_pages), generated({"--flow", flows + "block_topk.py", "--topk-pages", "3"}));
  Json dense = body;
  dense["vortex"] = {{"flow", "dense"}};
  EXPECT_EQ(ids(dense), generated({}));
  Json dense_budget = dense;
  dense_budget["vortex"]["topk_ratio"] = 0.5;
  EXPECT_EQ(s.post("/v1/completions", dense_budget, 400)["error"]["param"], "vortex");
  const std::string metrics = c.Get("/metrics")->body;
  EXPECT_CONTAINS(metrics, "vortex:requests_total{flow=\"quest\"} 2\n");
  EXPECT_CONTAINS(metrics, "vortex:requests_total{flow=\"block_topk\"} 1\n");
}

TEST(HttpServer, ARequestPastItsTimeoutEndsAborted) {
  TestServer s(tiny_engine(), 64, size_t{8} << 20, /*request_timeout=*/100ms);
  // Thousands of tokens take far longer than 100 ms: the deadline ends them.
  Json c =
      s.post("/v1/completions",
             {{"prompt", {5}}, {"max_tokens", 4000}, {"ignore_eos", true}, {"temperature", 0}});
  EXPECT_EQ(c["choices"][0]["finish_reason"], "abort");
  EXPECT_LT(c["usage"]["completion_tokens"].get<int>(), 4000);
  Json g = s.post(
      "/generate",
      {{"input_ids", {5}}, {"sampling_params", {{"max_new_tokens", 4000}, {"ignore_eos", true}}}});
  EXPECT_EQ(g["meta_info"]["finish_reason"], Json({{"type", "abort"}, {"message", "deadline"}}));
  EXPECT_TRUE(s.wait_for([](const EngineLoopMetrics& m) { return m.kv_pages_used == 0; }));
}

TEST(HttpServer, ShutdownLetsStreamsInFlightFinish) {
  TestServer s;
  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  std::string finish;
  bool done = false;
  std::thread client([&] {
    s.stream("/v1/completions",
             {{"prompt", "x"}, {"max_tokens", 40}, {"ignore_eos", true}, {"stream", true}},
             [&](const std::string& data) {
               std::lock_guard<std::mutex> lock(mu);
               started = true;
               cv.notify_all();
               if (data == "[DONE]") {
                 done = true;
               } else if (!Json::parse(data)["choices"][0]["finish_reason"].is_null()) {
                 finish = Json::parse(data)["choices"][0]["finish_reason"];
               }
               return true;
             });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return started; });
  }
  s.stop(30000ms);
  client.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(finish, "length");  // finished, not aborted
  httplib::Client c = s.client();
  EXPECT_FALSE(c.Get("/health"));  // no longer listening
}

TEST(HttpServer, ShutdownAbortsWhatOutlastsTheGracePeriod) {
  TestServer s;
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, done = false;
  std::string finish;
  std::thread client([&] {
    s.stream("/generate",
             {{"input_ids", {5}},
              {"stream", true},
              {"sampling_params", {{"max_new_tokens", 4000}, {"ignore_eos", true}}}},
             [&](const std::string& data) {
               std::lock_guard<std::mutex> lock(mu);
               started = true;
               cv.notify_all();
               if (data == "[DONE]") {
                 done = true;
               } else if (Json j = Json::parse(data); !j["meta_info"]["finish_reason"].is_null()) {
                 finish = j["meta_info"]["finish_reason"]["type"];
               }
               return true;
             });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return started; });
  }
  s.stop(50ms);  // far less than 4000 tokens take
  client.join();
  EXPECT_TRUE(done);  // the stream still ends properly
  EXPECT_EQ(finish, "abort");
  EXPECT_TRUE(s.wait_for([](const EngineLoopMetrics& m) { return m.kv_pages_used == 0; }));
}

}  // namespace
}  // namespace vortex::server
