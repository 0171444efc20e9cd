// `vortex serve`: the model behind an HTTP server that speaks OpenAI's API and SGLang's native
// one (src/server). Ready when it prints "listening on http://HOST:PORT" to stderr; SIGTERM or
// SIGINT stop it gracefully: no new connections or requests, the requests in flight finish
// (for at most --shutdown-timeout-s, then they are aborted), exit 0.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/model_flags.h"
#include "cli/sparse_flags.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine/engine_loop.h"
#include "server/http_server.h"

namespace vortex::cli {

namespace {

struct ServeArgs : ModelFlags {
  EngineFlags engine;
  SparseFlags sparse;
  std::string host = "127.0.0.1";
  int port = 30000;
  std::string served_model_name;
  int32_t max_waiting = 256;
  double max_body_mb = 8;
  double request_timeout_s = 0;
  double shutdown_timeout_s = 30;
};

std::chrono::milliseconds seconds_flag(double s) {
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(s * 1000)));
}

// SIGINT and SIGTERM, once the server is up, only write their number to a pipe (all a signal
// handler may safely do); a thread reads it and shuts the server down. Any thread may take the
// signal, the engine's and the thread pool's included, without a mask to set up first. Before
// the handlers are installed (while the model loads), the signals stop the process as usual.
int g_stop_pipe[2] = {-1, -1};

void on_stop_signal(int sig) {
  const unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = ::write(g_stop_pipe[1], &byte, 1);
}

void install_stop_handlers() {
  if (::pipe(g_stop_pipe) != 0) fail("cannot create a pipe for the signal handlers");
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// The signal the pipe delivered, or 0 for main's own wake-up (run() ended by itself).
int wait_for_stop() {
  unsigned char byte = 0;
  while (::read(g_stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
  }
  return byte;
}

}  // namespace

Action add_serve_command(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve a model over HTTP: OpenAI (/v1/chat/completions, /v1/completions, "
      "/v1/models) and SGLang (/generate, /get_model_info) APIs, /health, /metrics");
  add_model_flags(cmd, *a);
  add_engine_flags(cmd, a->engine);
  add_sparse_flags(cmd, a->sparse, /*several_flows=*/true,
                   "Sparse-attention flow file (repeatable). Requests pick one by its file name "
                   "without .py (\"model\": \"NAME:FLOW\" or \"vortex\": {\"flow\": ...}); "
                   "the first is the default, \"dense\" is full attention. The budget flags "
                   "apply to every flow");
  cmd->add_option("--host", a->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->port, "Port to listen on (0 = any free port, printed at start)")
      ->capture_default_str();
  cmd->add_option("--served-model-name", a->served_model_name,
                  "The model name clients send (default: the model directory's name, or the "
                  "preset)");
  cmd->add_option("--max-waiting", a->max_waiting,
                  "Requests that may wait for a place in the batch; more are answered 503")
      ->capture_default_str();
  cmd->add_option("--max-body-mb", a->max_body_mb, "Largest request body in MiB (else 413)")
      ->capture_default_str();
  cmd->add_option("--request-timeout-s", a->request_timeout_s,
                  "Abort a request still running this long after it arrived (0 = never)")
      ->capture_default_str();
  cmd->add_option("--shutdown-timeout-s", a->shutdown_timeout_s,
                  "On SIGTERM/SIGINT, how long requests in flight may take to finish before "
                  "they are aborted")
      ->capture_default_str();

  return [a]() {
    if (a->port < 0 || a->port > 65535) fail_usage("--port must be in [0, 65535], got ", a->port);
    if (a->max_waiting < 1) fail_usage("--max-waiting must be at least 1, got ", a->max_waiting);
    if (!(a->max_body_mb > 0 && a->max_body_mb <= 4096)) {
      fail_usage("--max-body-mb must be in (0, 4096], got ", a->max_body_mb);
    }
    if (!(a->request_timeout_s >= 0 && a->request_timeout_s < 1e7)) {
      fail_usage("--request-timeout-s must be >= 0 (0 = never), got ", a->request_timeout_s);
    }
    if (!(a->shutdown_timeout_s >= 0 && a->shutdown_timeout_s < 1e7)) {
      fail_usage("--shutdown-timeout-s must be >= 0, got ", a->shutdown_timeout_s);
    }
    EngineOptions eo = engine_options_from_flags(a->engine);

    signal(SIGPIPE, SIG_IGN);  // a client that hangs up is a failed write, not a dead server

    LoadedModel model = a->load_model();
    // The first --flow serves the requests that name none; the budget flags apply to every flow.
    for (size_t i = 0; i < a->sparse.flows.size(); ++i) {
      auto flow = load_sparse_flags(a->sparse.flows[i], a->sparse, model.config, eo.page_size);
      if (i == 0) {
        eo.sparse = std::move(flow);
      } else {
        eo.more_flows.push_back(std::move(flow));
      }
    }
    EngineLoopOptions lo;
    lo.max_waiting = a->max_waiting;
    EngineLoop loop(std::make_unique<Engine>(model, eo), lo);

    const std::vector<std::string> flows = loop.flow_names();
    const std::string name = a->served_model_name.empty()
                                 ? server::default_served_model_name(model.source)
                                 : a->served_model_name;
    server::HttpServerOptions so;
    so.host = a->host;
    so.port = a->port;
    so.max_body_bytes = static_cast<size_t>(a->max_body_mb * (1 << 20));
    so.request_timeout = seconds_flag(a->request_timeout_s);
    // Every streaming client holds a worker while it runs: room for the whole batch, the whole
    // waiting queue, and the short requests (metrics, health) beside them.
    so.threads = static_cast<size_t>(eo.max_batch) + static_cast<size_t>(a->max_waiting) + 8;
    server::HttpServer http(loop, server::served_model_of(model, name, flows), so);
    const int port = http.bind();

    install_stop_handlers();
    std::thread waiter([&http, grace = seconds_flag(a->shutdown_timeout_s)] {
      const int sig = wait_for_stop();
      if (sig == 0) return;  // run() ended by itself
      std::fprintf(stderr, "vortex serve: %s, finishing the requests in flight\n",
                   sig == SIGINT ? "interrupted" : "terminated");
      http.shutdown(grace);
    });
    std::string flow_list;
    for (const std::string& f : flows) flow_list += (flow_list.empty() ? "" : ", ") + f;
    std::fprintf(stderr, "vortex serve: model '%s' (%s%s%s), %d KV pages of %d tokens\n",
                 name.c_str(), model.source.c_str(),
                 flows.empty() ? "" : (flows.size() == 1 ? ", flow " : ", flows "),
                 flow_list.c_str(), loop.metrics().kv_pages_total, eo.page_size);
    std::fprintf(stderr, "listening on http://%s:%d\n", a->host.c_str(), port);
    std::fflush(stderr);
    http.run();
    loop.shutdown(/*abort_in_flight=*/false);
    const unsigned char wake = 0;  // harmless if the waiter already took a signal
    [[maybe_unused]] ssize_t n = ::write(g_stop_pipe[1], &wake, 1);
    waiter.join();
    std::fprintf(stderr, "vortex serve: stopped\n");
    return 0;
  };
}

}  // namespace vortex::cli
