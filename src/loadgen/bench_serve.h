// An online serving benchmark against any OpenAI-compatible (or SGLang-native) server: the
// requests' bodies, their Poisson arrivals, the run and its report, put together.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loadgen/endpoint.h"
#include "loadgen/http_client.h"
#include "loadgen/report.h"
#include "loadgen/runner.h"
#include "loadgen/workload.h"

namespace vortex::loadgen {

struct BenchServeConfig {
  ServerUrl server;
  Endpoint endpoint = Endpoint::kCompletions;
  ClientOptions client;
  BodyOptions body;  // body.model: the model to name ("" = none)
  std::vector<BenchRequest> requests;
  std::string dataset;      // for the report: "random (ids, input 1024, output 128, ratio 1)"
  double request_rate = 0;  // > 0; infinity = all at once
  int64_t max_concurrency = 0;
  int64_t max_workers = 256;
  uint64_t seed = 1;
};

// Builds every body first (a prompt the endpoint cannot take fails here, naming it), then runs
// the requests and summarises them. Failed requests are counted, never thrown.
BenchReport run_bench_serve(const BenchServeConfig& config, const OnFinished& on_finished);

}  // namespace vortex::loadgen
