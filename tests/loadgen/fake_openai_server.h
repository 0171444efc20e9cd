// An in-process stand-in for an OpenAI-compatible / SGLang server on 127.0.0.1 (an ephemeral
// port): each streamed response has exactly max_tokens content chunks, so a benchmark's counts
// can be checked exactly. Options make it misbehave the ways real servers do.
#pragma once

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/json_file.h"

namespace vortex::loadgen::testing {

struct FakeServerOptions {
  std::chrono::microseconds chunk_delay{500};  // before each content chunk
  bool send_usage = true;                      // usage chunk (OpenAI) / meta_info (/generate)
  int fail_status = 0;          // answer every generation request with this status instead
  int close_after_chunks = -1;  // >= 0: drop the connection after this many chunks
  bool malformed = false;       // a data line that is not JSON after the first chunk
  bool list_models = true;      // GET /v1/models lists "fake-model"; else 404
};

class FakeOpenAiServer {
 public:
  explicit FakeOpenAiServer(FakeServerOptions options = {}) : options_(options) {
    server_.new_task_queue = [] { return new httplib::ThreadPool(16); };
    server_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      if (!options_.list_models) {
        res.status = 404;
        res.set_content(R"({"detail":"Not Found"})", "application/json");
        return;
      }
      res.set_content(R"({"object":"list","data":[{"id":"fake-model","object":"model"}]})",
                      "application/json");
    });
    for (const char* path : {"/v1/completions", "/v1/chat/completions", "/generate"}) {
      server_.Post(path, [this, path](const httplib::Request& req, httplib::Response& res) {
        handle(path, req, res);
      });
    }
    port_ = server_.bind_to_any_port("127.0.0.1");
    // The socket listens from here on; connections wait in its backlog until the loop runs.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }

  ~FakeOpenAiServer() {
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::vector<Json> bodies() const {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  // The Authorization header of each generation request ("" when none).
  std::vector<std::string> authorizations() const {
    std::lock_guard lock(mu_);
    return authorizations_;
  }
  int max_in_flight() const {
    std::lock_guard lock(mu_);
    return max_in_flight_;
  }

 private:
  void handle(const std::string& path, const httplib::Request& req, httplib::Response& res) {
    Json body = Json::parse(req.body, nullptr, false);
    {
      std::lock_guard lock(mu_);
      bodies_.push_back(body);
      authorizations_.push_back(req.get_header_value("Authorization"));
    }
    if (options_.fail_status != 0) {
      res.status = options_.fail_status;
      res.set_content(R"({"error":{"message":"the fake server refuses","code":500}})",
                      "application/json");
      return;
    }
    const bool generate = path == "/generate", chat = path == "/v1/chat/completions";
    const int n = generate ? body["sampling_params"]["max_new_tokens"].get<int>()
                           : body["max_tokens"].get<int>();
    int prompt_tokens = 0;
    if (chat) {
      const std::string text = body["messages"][0]["content"].get<std::string>();
      prompt_tokens = 1 + static_cast<int>(std::count(text.begin(), text.end(), ' '));
    } else {
      const Json& p = generate ? body["input_ids"] : body["prompt"];
      prompt_tokens = static_cast<int>(p.size());
    }
    std::vector<std::string> events = stream_events(path, n, prompt_tokens);
    {
      std::lock_guard lock(mu_);
      max_in_flight_ = std::max(max_in_flight_, ++in_flight_);
    }
    auto next = std::make_shared<size_t>(0);
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, events = std::move(events), next, n](size_t, httplib::DataSink& sink) {
          const size_t i = (*next)++;
          if (i >= events.size()) {
            sink.done();
            return true;
          }
          if (options_.close_after_chunks >= 0 &&
              i == static_cast<size_t>(options_.close_after_chunks) + 1) {
            return false;  // the connection drops without the stream's end
          }
          if (i >= 1 && i <= static_cast<size_t>(n))
            std::this_thread::sleep_for(options_.chunk_delay);
          sink.write(events[i].data(), events[i].size());
          return true;
        },
        [this](bool) {
          std::lock_guard lock(mu_);
          --in_flight_;
        });
  }

  // Event 0 is a preamble (a comment, and a role delta for chat), events 1..n the content
  // chunks, then the finish chunk, usage and [DONE].
  std::vector<std::string> stream_events(const std::string& path, int n, int prompt_tokens) {
    std::vector<std::string> ev;
    const Json usage = {{"prompt_tokens", prompt_tokens},
                        {"completion_tokens", n},
                        {"total_tokens", prompt_tokens + n}};
    auto data = [](const Json& j) { return "data: " + j.dump() + "\n\n"; };
    if (path == "/v1/chat/completions") {
      // CRLF line ends here, LF elsewhere: both occur in the wild.
      ev.push_back(
          ": keep-alive\r\n\r\ndata: " +
          Json{{"choices", {{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}}}}}
              .dump() +
          "\r\n\r\n");
      for (int i = 0; i < n; ++i) {
        ev.push_back(
            "data: " + Json{{"choices", {{{"index", 0}, {"delta", {{"content", " w"}}}}}}}.dump() +
            "\r\n\r\n");
      }
      ev.push_back(data(
          {{"choices", {{{"index", 0}, {"delta", Json::object()}, {"finish_reason", "length"}}}}}));
      if (options_.send_usage) ev.push_back(data({{"choices", Json::array()}, {"usage", usage}}));
    } else if (path == "/v1/completions") {
      ev.push_back(": keep-alive\n\n");
      for (int i = 0; i < n; ++i) {
        // vLLM sends "usage": null in every chunk but the last.
        ev.push_back(
            data({{"choices", {{{"index", 0}, {"text", " t"}, {"finish_reason", nullptr}}}},
                  {"usage", nullptr}}));
      }
      ev.push_back(
          data({{"choices", {{{"index", 0}, {"text", ""}, {"finish_reason", "length"}}}}}));
      if (options_.send_usage) ev.push_back(data({{"choices", Json::array()}, {"usage", usage}}));
    } else {
      ev.push_back(": ping\n\n");
      std::string text;
      for (int i = 1; i <= n; ++i) {
        text += " g";
        Json j = {{"text", text}};
        if (options_.send_usage) {
          j["meta_info"] = {{"prompt_tokens", prompt_tokens}, {"completion_tokens", i}};
        }
        ev.push_back(data(j));
      }
    }
    if (options_.malformed && ev.size() > 2) ev[2] = "data: {not json\n\n";
    ev.push_back("data: [DONE]\n\n");
    return ev;
  }

  FakeServerOptions options_;
  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Json> bodies_;
  std::vector<std::string> authorizations_;
  int in_flight_ = 0, max_in_flight_ = 0;
};

}  // namespace vortex::loadgen::testing
