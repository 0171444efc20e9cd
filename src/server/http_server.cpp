#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <set>

#include "server/error_response.h"
#include "server/flow_api.h"
#include "server/generation_call.h"
#include "server/openai_protocol.h"
#include "server/peer_socket.h"
#include "server/prometheus_metrics.h"
#include "server/routes.h"
#include "server/sglang_protocol.h"

namespace vortex::server {

namespace {

void send_json(httplib::Response& res, const Json& body, int status = 200) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
}

void send_error(httplib::Response& res, const HttpError& e) {
  if (e.status() == 503) res.set_header("Retry-After", "1");
  send_json(res, error_json(e), e.status());
}

// httplib 0.11 listens with a backlog of 5: a burst of clients connecting at once overflows it
// and the kernel drops (or resets) connections. Calling listen() again on the bound socket
// raises the backlog (Linux keeps the socket and updates the limit).
class Listener : public httplib::Server {
 public:
  void raise_backlog(int backlog) { ::listen(svr_sock_, backlog); }
};

constexpr int kListenBacklog = 1024;

}  // namespace

struct HttpServer::Impl {
  EngineLoop& loop;
  // What requests are checked against; replaced (never changed in place) when a flow is added
  // or removed, so a request keeps the snapshot it started with for its whole answer.
  mutable std::mutex model_mu;
  std::shared_ptr<const ServedModel> served;
  HttpServerOptions options;
  Listener svr;
  std::atomic<bool> draining{false};
  std::mutex mu;
  std::condition_variable idle;
  std::set<GenerationCall*> calls;  // generation requests being handled

  Impl(EngineLoop& l, ServedModel m, HttpServerOptions o) : loop(l), options(std::move(o)) {
    if (m.created == 0) m.created = static_cast<int64_t>(std::time(nullptr));
    served = std::make_shared<const ServedModel>(std::move(m));
  }

  std::shared_ptr<const ServedModel> current_model() const {
    std::lock_guard<std::mutex> lock(model_mu);
    return served;
  }

  // After a flow was added or removed: the engine's flows become the served model's.
  void refresh_flows() {
    std::lock_guard<std::mutex> lock(model_mu);
    auto next = std::make_shared<ServedModel>(*served);
    next->flows = loop.flow_names();
    served = std::move(next);
  }

  Json parse_body(const httplib::Request& hreq) {
    try {
      return parse_json(hreq.body, "request body");
    } catch (const Error& e) {
      throw HttpError(400, e.what());
    }
  }

  // POST /v1/flows: verify and compile the flow for the served model, then register it with the
  // engine between two steps; 201 with the flow, or 400 with located diagnostics.
  void add_flow(const httplib::Request& hreq, httplib::Response& res) {
    if (draining || !loop.accepting()) throw HttpError(503, "the server is shutting down");
    const FlowUpload upload = parse_flow_upload(parse_body(hreq));
    const std::shared_ptr<const SparseAttentionConfig> config =
        compile_flow_upload(upload, loop.model().config, loop.engine_options().page_size);
    try {
      loop.add_flow(config, upload.name);
    } catch (const Error& e) {
      const std::string what = e.what();
      throw HttpError(what.find("already loaded") != std::string::npos ? 409 : 400, what, "name");
    }
    refresh_flows();
    Json body = {{"id", upload.name},
                 {"object", "flow"},
                 {"fields", config->program.fields.size()},
                 {"record_recall", config->record_recall},
                 {"created", true}};
    send_json(res, body, 201);
  }

  // GET /v1/flows/NAME: the flow's statistics since it was loaded.
  void flow_stats(const std::string& name, httplib::Response& res) {
    const std::vector<std::string> names = loop.flow_names();
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw HttpError(404, str_cat("no flow named '", printable(name, 80), "' is loaded"), "",
                      "flow_not_found");
    SparseStats stats;
    try {
      stats = loop.flow_stats(name);
    } catch (const Error& e) {
      const std::string what = e.what();
      throw HttpError(what.find("no flow named") != std::string::npos ? 404 : 503, what);
    }
    send_json(res, {{"id", name},
                    {"object", "flow"},
                    {"default", name == loop.flow_name()},
                    {"stats", flow_stats_json(stats)}});
  }

  void remove_flow(const std::string& name, httplib::Response& res) {
    try {
      loop.remove_flow(name);
    } catch (const Error& e) {
      const std::string what = e.what();
      if (what.find("no flow named") != std::string::npos)
        throw HttpError(404, what, "", "flow_not_found");
      throw HttpError(409, what);
    }
    refresh_flows();
    send_json(res, {{"id", name}, {"object", "flow"}, {"deleted", true}});
  }

  // Registers `call` while it runs, so shutdown() can wait for it and cancel it. It holds the
  // call: the call outlives its entry in `calls`, whatever order its other owners go in.
  class Registration {
   public:
    Registration(Impl& impl, std::shared_ptr<GenerationCall> call)
        : impl_(impl), call_(std::move(call)) {
      std::lock_guard<std::mutex> lock(impl_.mu);
      impl_.calls.insert(call_.get());
    }
    ~Registration() {
      std::lock_guard<std::mutex> lock(impl_.mu);
      impl_.calls.erase(call_.get());
      impl_.idle.notify_all();
    }

   private:
    Impl& impl_;
    std::shared_ptr<GenerationCall> call_;
  };

  void generation(const httplib::Request& hreq, httplib::Response& res, Api api) {
    if (draining) throw HttpError(503, "the server is shutting down");
    if (!loop.accepting()) throw HttpError(503, "the engine has stopped (see the server's log)");
    const Json body = parse_body(hreq);
    const std::shared_ptr<const ServedModel> served_now = current_model();
    const ServedModel& model = *served_now;
    ApiRequest req;
    std::string id;
    switch (api) {
      case Api::kChatCompletions:
        req = parse_chat_request(body, model);
        id = new_response_id("chatcmpl-");
        break;
      case Api::kCompletions:
        req = parse_completion_request(body, model);
        id = new_response_id("cmpl-");
        break;
      case Api::kGenerate:
        req = parse_generate_request(body, model);
        id = new_response_id("");
        break;
    }
    const int64_t created = static_cast<int64_t>(std::time(nullptr));
    std::shared_ptr<ResponseFormatter> formatter =
        api == Api::kGenerate
            ? std::shared_ptr<ResponseFormatter>(make_sglang_formatter(req, model, id))
            : make_openai_formatter(req, model, id, created);
    std::optional<GenerationCall::Clock::time_point> deadline;
    if (options.request_timeout.count() > 0) {
      deadline = GenerationCall::Clock::now() + options.request_timeout;
    }
    const bool stream = req.stream;
    auto call = std::make_shared<GenerationCall>(loop, std::move(req), deadline);
    try {
      call->submit();
    } catch (const QueueFullError& e) {
      throw HttpError(503, e.what(), "", "queue_full");
    } catch (const Error& e) {
      throw HttpError(400, e.what());
    }
    // Registered from here until its answer is written, so shutdown() waits for it.
    auto reg = std::make_shared<Registration>(*this, call);
    if (!stream) {
      // A client that hangs up before its answer is ready frees its pages too (a stream notices
      // at its next write; this one is watched on its socket).
      std::function<bool()> client_gone;
      if (std::optional<PeerSocket> peer = PeerSocket::find(hreq.local_addr, hreq.local_port,
                                                            hreq.remote_addr, hreq.remote_port)) {
        client_gone = [peer = *peer] { return peer.hung_up(); };
      }
      send_json(res, run_to_answer(*call, *formatter, client_gone));
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    // The whole stream is written in one provider call: httplib stops calling a provider once
    // the server stops listening, and a stream in flight must run to its end on shutdown.
    res.set_chunked_content_provider(
        "text/event-stream",
        [call, formatter, served_now](size_t, httplib::DataSink& sink) {
          if (run_stream(*call, *formatter, [&](const std::string& text) {
                return sink.write(text.data(), text.size());
              })) {
            sink.done();
            return true;
          }
          return false;  // the client went away: the call is cancelled, the connection closed
        },
        // Also when the provider never ran (the client left before the headers were written).
        [call, reg](bool) { call->cancel(); });
  }

  // SGLang's deeper check: the engine really generates (one greedy token of a one-token
  // prompt, within 20 s), not only that the server answers.
  void health_generate(httplib::Response& res) {
    if (draining || !loop.accepting()) {
      throw HttpError(503, "the server is shutting down or its engine failed");
    }
    ApiRequest req;
    req.api = Api::kGenerate;
    ChoiceJob job;
    job.prompt = {0};
    job.params.max_tokens = 1;
    job.params.ignore_eos = true;
    job.params.sampling.temperature = 0;
    job.params.flow = "dense";
    req.jobs.push_back(std::move(job));
    auto call = std::make_shared<GenerationCall>(
        loop, std::move(req), GenerationCall::Clock::now() + std::chrono::seconds(20));
    try {
      call->submit();
    } catch (const Error& e) {  // a full queue, or the engine stopping
      throw HttpError(503, str_cat("the engine cannot take a request: ", e.what()));
    }
    Registration reg(*this, call);
    while (!call->done()) call->next();
    const ChoiceOutput& out = call->outputs().at(0);
    if (out.token_ids.size() != 1) {
      throw HttpError(503, str_cat("the engine did not generate (",
                                   out.abort_reason.empty() ? out.finish_reason : out.abort_reason,
                                   out.error.empty() ? "" : ": " + out.error, ")"));
    }
    res.status = 200;
    res.set_content("", "text/plain");
  }

  void routes() {
    auto guard = [this](auto fn) {
      return [this, fn](const httplib::Request& req, httplib::Response& res) {
        try {
          fn(req, res);
        } catch (const FlowCompileError& e) {
          send_json(res, flow_compile_error_json(e), e.status());
        } catch (const HttpError& e) {
          send_error(res, e);
        } catch (const Error& e) {
          send_error(res, HttpError(400, e.what()));
        } catch (const std::bad_alloc&) {
          send_error(res, HttpError(500, "out of memory"));
        } catch (const std::exception& e) {
          send_error(res, HttpError(500, str_cat("internal error: ", e.what())));
        }
      };
    };
    svr.Post("/v1/chat/completions",
             guard([this](const auto& q, auto& r) { generation(q, r, Api::kChatCompletions); }));
    svr.Post("/v1/completions",
             guard([this](const auto& q, auto& r) { generation(q, r, Api::kCompletions); }));
    svr.Post("/generate",
             guard([this](const auto& q, auto& r) { generation(q, r, Api::kGenerate); }));
    svr.Get("/v1/models",
            guard([this](const auto&, auto& r) { send_json(r, models_json(*current_model())); }));
    svr.Get("/v1/models/(.+)", guard([this](const httplib::Request& q, auto& r) {
              const std::string id = q.matches[1];
              const std::shared_ptr<const ServedModel> model = current_model();
              flow_of_model(id, *model);  // 404 model_not_found unless served
              const Json models = models_json(*model);
              for (const Json& m : models["data"]) {
                if (m["id"] == id) send_json(r, m);
              }
            }));
    for (const char* path : {"/get_model_info", "/model_info"}) {
      svr.Get(path, guard([this](const auto&, auto& r) {
                send_json(r, model_info_json(*current_model()));
              }));
    }
    svr.Get("/health", guard([this](const auto&, auto& r) {
              if (draining || !loop.accepting()) {
                throw HttpError(503, "the server is shutting down or its engine failed");
              }
              r.status = 200;
              r.set_content("", "text/plain");
            }));
    svr.Get("/health_generate", guard([this](const auto&, auto& r) { health_generate(r); }));
    svr.Get("/v1/flows", guard([this](const auto&, auto& r) {
              send_json(r, flows_json(loop.flow_names(), loop.flow_name()));
            }));
    svr.Post("/v1/flows", guard([this](const auto& q, auto& r) { add_flow(q, r); }));
    svr.Get("/v1/flows/(.+)",
            guard([this](const httplib::Request& q, auto& r) { flow_stats(q.matches[1], r); }));
    svr.Delete("/v1/flows/(.+)",
               guard([this](const httplib::Request& q, auto& r) { remove_flow(q.matches[1], r); }));
    svr.Get("/metrics", guard([this](const auto&, auto& r) {
              r.set_content(prometheus_text(loop.metrics()), "text/plain; version=0.0.4");
            }));
    // Everything else: 404, or 405 for a known path. Registered last, for every method httplib
    // dispatches, so that a body is read (or refused with 413) before the answer.
    const auto unmatched = [](const httplib::Request& req, httplib::Response& res) {
      HttpError e = unmatched_route_error(req.method, req.path);
      if (e.status() == 405) res.set_header("Allow", allowed_methods(req.path));
      send_error(res, e);
    };
    svr.Get(".*", unmatched);
    svr.Post(".*", unmatched);
    svr.Put(".*", unmatched);
    svr.Patch(".*", unmatched);
    svr.Delete(".*", unmatched);
    svr.Options(".*", unmatched);
    // Errors httplib answers itself (413 over the body limit, 400 for a bad request line):
    // give them OpenAI's body too.
    svr.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty() || res.is_chunked_content_provider_) return;
      std::string message = status_text(res.status);
      if (res.status == 413) {
        message = str_cat("the request body is larger than the limit of ", options.max_body_bytes,
                          " bytes (--max-body-mb)");
      } else if (res.status == 404) {
        message = unmatched_route_error(req.method, req.path).what();
      }
      send_json(res, error_json(HttpError(res.status, message)), res.status);
    });
  }
};

HttpServer::HttpServer(EngineLoop& loop, ServedModel model, HttpServerOptions options)
    : impl_(std::make_unique<Impl>(loop, std::move(model), std::move(options))) {
  auto& svr = impl_->svr;
  const size_t threads = std::max<size_t>(impl_->options.threads, 4);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(impl_->options.max_body_bytes);
  svr.set_keep_alive_max_count(1000);
  svr.set_tcp_nodelay(true);  // streamed tokens leave at once
  impl_->routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  auto& svr = impl_->svr;
  const HttpServerOptions& o = impl_->options;
  int port = o.port;
  if (o.port == 0) {
    port = svr.bind_to_any_port(o.host);
    if (port < 0) fail("cannot listen on ", o.host, " (any port)");
  } else if (!svr.bind_to_port(o.host, o.port)) {
    fail("cannot listen on ", o.host, ":", o.port, " (in use, or not an address of this machine)");
  }
  svr.raise_backlog(kListenBacklog);
  return port;
}

void HttpServer::run() {
  impl_->svr.listen_after_bind();
}

void HttpServer::shutdown(std::chrono::milliseconds grace) {
  Impl& s = *impl_;
  s.draining = true;
  s.svr.stop();
  std::unique_lock<std::mutex> lock(s.mu);
  if (!s.idle.wait_for(lock, grace, [&] { return s.calls.empty(); })) {
    for (GenerationCall* call : s.calls) call->cancel();
    s.idle.wait(lock, [&] { return s.calls.empty(); });
  }
}

}  // namespace vortex::server
