#include "agent/flow_server.h"

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <mutex>
#include <regex>
#include <thread>

#include "core/error.h"

namespace vortex::agent {

namespace {

// Per request, from sending to the whole answer: a prompt of the suite takes seconds, a long
// one on a loaded CPU server minutes.
constexpr time_t kTimeoutSeconds = 1800;

std::unique_ptr<httplib::Client> connect(const std::string& origin) {
  auto c = std::make_unique<httplib::Client>(origin);
  c->set_connection_timeout(30, 0);
  c->set_read_timeout(kTimeoutSeconds, 0);
  c->set_write_timeout(kTimeoutSeconds, 0);
  c->set_keep_alive(true);
  return c;
}

// The answer's JSON, or a vortex::Error naming the request and the server's message.
Json answer_json(const httplib::Result& res, const std::string& what, const std::string& url) {
  if (!res) fail("cannot reach ", url, ": ", httplib::to_string(res.error()), " (", what, ")");
  try {
    return parse_json(res->body, what);
  } catch (const Error&) {
    fail(url, ": ", what, " answered HTTP ", res->status, " with a body that is not JSON");
  }
}

std::string error_message(const Json& body) {
  if (body.is_object() && body.contains("error") && body["error"].is_object() &&
      body["error"].value("message", Json()).is_string())
    return body["error"]["message"].get<std::string>();
  return printable(body.dump(), 300);
}

Json budget_json(const flow::BudgetOverrides& b) {
  Json j = Json::object();
  if (b.pages) j["topk_pages"] = *b.pages;
  if (b.ratio) j["topk_ratio"] = *b.ratio;
  if (b.floor) j["topk_floor"] = *b.floor;
  if (b.cap) j["topk_cap"] = *b.cap;
  if (b.sink) j["sink_pages"] = *b.sink;
  if (b.recent) j["recent_pages"] = *b.recent;
  if (b.dense_layers) j["dense_layers"] = *b.dense_layers;
  return j;
}

}  // namespace

struct FlowServer::Impl {
  std::string origin;
  std::mutex mu;  // guards `client` (calls other than generate's workers)
  std::unique_ptr<httplib::Client> client;
};

FlowServer::FlowServer(const std::string& url) : impl_(std::make_unique<Impl>()) {
  static const std::regex kUrl(
      R"(^(https?://[A-Za-z0-9.\-]+|https?://\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?$)");
  std::smatch m;
  if (!std::regex_match(url, m, kUrl)) {
    fail_usage("--server: '", printable(url, 120),
               "' is not a server's base URL (http://HOST:PORT, as `vortex serve` prints it)");
  }
  url_ = url;
  while (!url_.empty() && url_.back() == '/') url_.pop_back();
  impl_->origin = url_;
  impl_->client = connect(impl_->origin);
  const Json info = answer_json(impl_->client->Get("/get_model_info"), "GET /get_model_info", url_);
  if (!info.is_object() || !info.value("model_path", Json()).is_string())
    fail(url_, "/get_model_info: no string \"model_path\": is this a vortex serve?");
  model_path_ = info["model_path"].get<std::string>();
  model_name_ = info.value("served_model_name", Json()).is_string()
                    ? info["served_model_name"].get<std::string>()
                    : std::filesystem::path(model_path_).filename().string();
}

FlowServer::~FlowServer() = default;

std::optional<std::string> FlowServer::add_flow(const std::string& name, const std::string& source,
                                                const std::string& display_path,
                                                const flow::BudgetOverrides& budget) {
  Json body = {{"name", name}, {"source", source}, {"record_recall", true}};
  const Json b = budget_json(budget);
  if (!b.empty()) body["budget"] = b;
  std::lock_guard<std::mutex> lock(impl_->mu);
  const httplib::Result res = impl_->client->Post("/v1/flows", body.dump(), "application/json");
  const Json answer = answer_json(res, "POST /v1/flows", url_);
  if (res->status == 201) return std::nullopt;
  const std::string message = error_message(answer);
  const Json& err = answer.value("error", Json::object());
  if (res->status == 400 && err.value("code", Json()) == "flow_compile_error" &&
      answer.value("diagnostics", Json()).is_array() && !answer["diagnostics"].empty()) {
    const Json& d = answer["diagnostics"][0];
    std::string line = str_cat(display_path, ":", d.value("line", 0), ":", d.value("col", 0),
                               ": error: ", d.value("message", std::string()));
    if (answer["diagnostics"].size() > 1)
      line += str_cat(" (and ", answer["diagnostics"].size() - 1, " more)");
    return str_cat(line, " (on the server at ", url_, ")");
  }
  if (res->status == 400 && err.value("param", Json()) == "budget")
    return str_cat(display_path, ": ", message, " (on the server at ", url_, ")");
  fail(url_, " did not take the flow (HTTP ", res->status, "): ", message);
}

Json FlowServer::flow_stats(const std::string& name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const std::string path = "/v1/flows/" + name;
  const httplib::Result res = impl_->client->Get(path);
  const Json answer = answer_json(res, "GET " + path, url_);
  if (res->status != 200 || !answer.value("stats", Json()).is_object())
    fail(url_, path, ": HTTP ", res->status, ": ", error_message(answer));
  return answer["stats"];
}

void FlowServer::remove_flow(const std::string& name) noexcept {
  try {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->client->Delete("/v1/flows/" + name);
  } catch (...) {
  }
}

std::vector<std::string> FlowServer::generate(const std::vector<ServerPrompt>& prompts,
                                              const std::string& flow, int concurrency,
                                              const std::function<void(size_t, size_t)>& progress) {
  std::vector<std::string> texts(prompts.size());
  std::atomic<size_t> next{0};
  std::mutex mu;
  size_t done = 0;
  std::string first_error;
  auto worker = [&] {
    std::unique_ptr<httplib::Client> c = connect(impl_->origin);
    for (size_t i = next++; i < prompts.size(); i = next++) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!first_error.empty()) return;
      }
      const ServerPrompt& p = prompts[i];
      const Json body = {{"input_ids", p.ids},
                         {"sampling_params",
                          {{"max_new_tokens", p.max_tokens},
                           {"temperature", 0},
                           {"ignore_eos", p.ignore_eos},
                           {"vortex", {{"flow", flow}}}}}};
      std::string error;
      try {
        const httplib::Result res = c->Post("/generate", body.dump(), "application/json");
        const Json answer = answer_json(res, "POST /generate", url_);
        if (res->status != 200 || !answer.value("text", Json()).is_string())
          error = str_cat("HTTP ", res->status, ": ", error_message(answer));
        else
          texts[i] = answer["text"].get<std::string>();
      } catch (const Error& e) {
        error = e.what();
      }
      std::lock_guard<std::mutex> lock(mu);
      if (!error.empty()) {
        if (first_error.empty())
          first_error = str_cat(url_, "/generate: prompt ", i, " (flow '", flow, "'): ", error);
        return;
      }
      ++done;
      if (progress) progress(done, prompts.size());
    }
  };
  const int n = std::max(1, std::min<int>(concurrency, static_cast<int>(prompts.size())));
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  if (!first_error.empty()) fail(first_error);
  return texts;
}

std::string server_flow_name(const std::string& path) {
  static std::atomic<int> counter{0};
  std::string stem = std::filesystem::path(path).stem().string();
  for (char& ch : stem)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-' && ch != '.')
      ch = '_';
  if (stem.size() > 32) stem.resize(32);
  if (stem.empty()) stem = "flow";
  return str_cat("submit-", stem, "-", getpid(), "-", counter++);
}

}  // namespace vortex::agent
