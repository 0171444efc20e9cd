// The HTTP front of `vortex serve` (cpp-httplib): routes, status codes and streaming. What each
// route answers is decided by the pure functions of the protocol files; this only moves bytes.
//
//   POST /v1/chat/completions, /v1/completions   OpenAI (openai_protocol.h)
//   POST /generate                               SGLang (sglang_protocol.h)
//   GET  /v1/models                              the model, and "MODEL:FLOW" per loaded flow
//   GET  /get_model_info, /model_info            SGLang's model info
//   GET  /health                                 200 while serving, 503 once shutting down
//   GET  /metrics                                Prometheus text (prometheus_metrics.h)
//   POST /v1/flows, GET /v1/flows,               flows added, listed and removed while serving
//   DELETE /v1/flows/NAME                        (flow_api.h; CPU engines)
// Errors are OpenAI's shape (error_response.h): 400 bad body (malformed JSON names the byte),
// 404 unknown path or model, 405 wrong method (with Allow), 413 body over the limit, 503 when
// the waiting queue is full (Retry-After) or the server is shutting down.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "engine/engine_loop.h"
#include "server/served_model.h"

namespace vortex::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 30000;  // 0: a free port (bind() returns it)
  size_t max_body_bytes = size_t{8} << 20;
  // A request still running this long after it arrived is aborted (finish_reason "abort");
  // zero: no limit.
  std::chrono::milliseconds request_timeout{0};
  // HTTP worker threads: every streaming client holds one while its request runs, so at least
  // the engine's batch plus its waiting queue.
  size_t threads = 64;
};

class HttpServer {
 public:
  HttpServer(EngineLoop& loop, ServedModel model, HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; returns the port (the real one for port 0). Throws
  // vortex::Error naming the address when it cannot.
  int bind();
  // Serves until shutdown(); returns once every request being handled has been answered.
  void run();
  // Thread-safe. Stops accepting connections and new generation requests (503), lets the
  // requests in flight finish for up to `grace`, then cancels those still running (they end
  // with finish_reason "abort"). Returns once they have all ended; run() then returns.
  void shutdown(std::chrono::milliseconds grace);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vortex::server
