#include "loadgen/bench_serve.h"

#include "loadgen/arrivals.h"

namespace vortex::loadgen {

BenchReport run_bench_serve(const BenchServeConfig& c, const OnFinished& on_finished) {
  // Serialised up front: building a body of thousands of ids is not the server's latency.
  std::vector<std::string> bodies;
  bodies.reserve(c.requests.size());
  for (const BenchRequest& r : c.requests) {
    bodies.push_back(request_body(c.endpoint, r, c.body).dump());
  }
  RunOptions run;
  run.arrival_offsets_s =
      poisson_arrival_offsets(static_cast<int64_t>(c.requests.size()), c.request_rate, c.seed);
  run.max_concurrency = c.max_concurrency;
  run.max_workers = c.max_workers;
  const WorkerFactory make_worker = [&]() -> SendFn {
    auto client = std::make_shared<StreamingClient>(c.server, c.client);
    return [&, client](size_t i) {
      const BenchRequest& r = c.requests[i];
      const int64_t ids =
          r.kind == PromptKind::kIds ? static_cast<int64_t>(r.prompt_ids.size()) : 0;
      return client->post_stream(c.endpoint, bodies[i], ids);
    };
  };
  const RunOutcome outcome = run_load(run, make_worker, on_finished);
  BenchSetup setup;
  setup.url = c.server.url;
  setup.endpoint = endpoint_path(c.endpoint);
  setup.model = c.body.model;
  setup.dataset = c.dataset;
  setup.request_rate = c.request_rate;
  setup.max_concurrency = c.max_concurrency;
  return summarize_run(outcome, setup);
}

}  // namespace vortex::loadgen
