// The result of an online benchmark: throughput, TTFT, TPOT, ITL and end-to-end latency, as
// text for people and as one JSON object for scripts.
#pragma once

#include <cstdint>
#include <string>

#include "core/json_file.h"
#include "loadgen/runner.h"
#include "loadgen/stats.h"

namespace vortex::loadgen {

struct BenchSetup {
  std::string url, endpoint, model, dataset;
  double request_rate = 0;      // requests/s; infinity = all at once
  int64_t max_concurrency = 0;  // 0 = unbounded
};

struct BenchReport {
  BenchSetup setup;
  int64_t num_prompts = 0, workers = 0;
  double duration_s = 0;
  int64_t completed = 0, failed = 0;
  std::string first_error;  // of the failure that happened first
  // Tokens of the completed requests, and where their counts came from.
  int64_t input_tokens = 0, output_tokens = 0;
  int64_t output_counted_by_server = 0, output_counted_as_chunks = 0;
  int64_t input_counted_by_server = 0, input_counted_as_ids = 0, input_not_counted = 0;
  double mean_in_flight = 0;  // time-weighted: the requests' latencies over the duration
  int64_t peak_in_flight = 0;
  // Seconds. TPOT per request: (e2e - ttft) / (output tokens - 1); ITL: every gap between
  // content chunks.
  Distribution ttft, tpot, itl, e2e;

  double request_throughput() const;
  double input_throughput() const;
  double output_throughput() const;
};

BenchReport summarize_run(const RunOutcome& run, const BenchSetup& setup);

// Flat keys as SGLang's bench_serving writes them (mean_ttft_ms, p99_itl_ms, ...).
Json report_json(const BenchReport& r);
std::string report_text(const BenchReport& r);

}  // namespace vortex::loadgen
