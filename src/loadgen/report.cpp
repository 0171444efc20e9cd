#include "loadgen/report.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "core/error.h"

namespace vortex::loadgen {
namespace {

double per_second(double amount, double seconds) {
  return seconds > 0 ? amount / seconds : 0.0;
}

std::string rate_text(double rate) {
  return std::isinf(rate) ? std::string("inf") : str_cat(rate);
}

std::string count_sources(int64_t server, const char* server_name, int64_t local,
                          const char* local_name, int64_t none = 0) {
  std::string out;
  auto add = [&](int64_t n, const char* name) {
    if (n == 0) return;
    if (!out.empty()) out += ", ";
    out += str_cat(name, " (", n, ")");
  };
  add(server, server_name);
  add(local, local_name);
  add(none, "not counted: text prompt, no usage");
  return out.empty() ? "-" : out;
}

}  // namespace

double BenchReport::request_throughput() const {
  return per_second(completed, duration_s);
}
double BenchReport::input_throughput() const {
  return per_second(static_cast<double>(input_tokens), duration_s);
}
double BenchReport::output_throughput() const {
  return per_second(static_cast<double>(output_tokens), duration_s);
}

BenchReport summarize_run(const RunOutcome& run, const BenchSetup& setup) {
  BenchReport r;
  r.setup = setup;
  r.num_prompts = static_cast<int64_t>(run.results.size());
  r.workers = run.workers;
  r.duration_s = run.duration_s;
  r.peak_in_flight = run.peak_in_flight;
  std::vector<double> ttft, tpot, itl, e2e;
  double busy_s = 0, first_failure_at = std::numeric_limits<double>::infinity();
  for (const RequestResult& q : run.results) {
    busy_s += q.end_s - q.start_s;
    if (!q.ok) {
      ++r.failed;
      if (q.end_s < first_failure_at) {
        first_failure_at = q.end_s;
        r.first_error = q.error;
      }
      continue;
    }
    ++r.completed;
    r.output_tokens += q.output_tokens;
    r.input_tokens += q.input_tokens;
    ++(q.output_from_server ? r.output_counted_by_server : r.output_counted_as_chunks);
    if (q.input_from_server) {
      ++r.input_counted_by_server;
    } else if (q.input_tokens > 0) {
      ++r.input_counted_as_ids;
    } else {
      ++r.input_not_counted;
    }
    e2e.push_back(q.e2e_s);
    if (q.ttft_s >= 0) {
      ttft.push_back(q.ttft_s);
      if (q.output_tokens > 1) {
        tpot.push_back((q.e2e_s - q.ttft_s) / static_cast<double>(q.output_tokens - 1));
      }
    }
    itl.insert(itl.end(), q.chunk_gaps_s.begin(), q.chunk_gaps_s.end());
  }
  r.mean_in_flight = per_second(busy_s, run.duration_s);
  r.ttft = describe(std::move(ttft));
  r.tpot = describe(std::move(tpot));
  r.itl = describe(std::move(itl));
  r.e2e = describe(std::move(e2e));
  return r;
}

Json report_json(const BenchReport& r) {
  Json j = {
      {"url", r.setup.url},
      {"endpoint", r.setup.endpoint},
      {"model", r.setup.model},
      {"dataset", r.setup.dataset},
      {"num_prompts", r.num_prompts},
      // JSON has no infinity; "inf" as the flag spells it.
      {"request_rate", std::isinf(r.setup.request_rate) ? Json("inf") : Json(r.setup.request_rate)},
      {"max_concurrency", r.setup.max_concurrency > 0 ? Json(r.setup.max_concurrency) : Json()},
      {"workers", r.workers},
      {"duration_s", r.duration_s},
      {"completed", r.completed},
      {"failed", r.failed},
      {"first_error", r.failed > 0 ? Json(r.first_error) : Json()},
      {"total_input_tokens", r.input_tokens},
      {"total_output_tokens", r.output_tokens},
      {"output_tokens_counted_by_server", r.output_counted_by_server},
      {"output_tokens_counted_as_chunks", r.output_counted_as_chunks},
      {"input_tokens_counted_by_server", r.input_counted_by_server},
      {"input_tokens_counted_as_ids", r.input_counted_as_ids},
      {"input_tokens_not_counted", r.input_not_counted},
      {"request_throughput", r.request_throughput()},
      {"input_throughput", r.input_throughput()},
      {"output_throughput", r.output_throughput()},
      {"total_throughput", r.input_throughput() + r.output_throughput()},
      {"concurrency", r.mean_in_flight},
      {"peak_concurrency", r.peak_in_flight},
  };
  auto add = [&](const char* name, const Distribution& d) {
    j[str_cat("mean_", name, "_ms")] = d.mean * 1e3;
    j[str_cat("median_", name, "_ms")] = d.median * 1e3;
    j[str_cat("p95_", name, "_ms")] = d.p95 * 1e3;
    j[str_cat("p99_", name, "_ms")] = d.p99 * 1e3;
    j[str_cat(name, "_count")] = d.count;
  };
  add("ttft", r.ttft);
  add("tpot", r.tpot);
  add("itl", r.itl);
  add("e2e_latency", r.e2e);
  return j;
}

std::string report_text(const BenchReport& r) {
  std::string out;
  auto line = [&](const std::string& name, const std::string& value) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%-40s %s\n", (name + ":").c_str(), value.c_str());
    out += buf;
  };
  auto num = [](double v, int decimals = 2) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return std::string(buf);
  };
  auto title = [&](const std::string& t) {
    const size_t width = 60;
    const size_t pad = t.size() + 2 < width ? width - t.size() - 2 : 0;
    out += std::string(pad / 2, '-') + " " + t + " " + std::string(pad - pad / 2, '-') + "\n";
  };
  auto section = [&](const char* name, const char* label, const Distribution& d) {
    title(name);
    if (d.count == 0) {
      line(str_cat(label, " (ms)"), "n/a");
      return;
    }
    line(str_cat("Mean ", label, " (ms)"), num(d.mean * 1e3));
    line(str_cat("Median ", label, " (ms)"), num(d.median * 1e3));
    line(str_cat("P95 ", label, " (ms)"), num(d.p95 * 1e3));
    line(str_cat("P99 ", label, " (ms)"), num(d.p99 * 1e3));
  };

  out += std::string(19, '=') + " Serving Benchmark Result " + std::string(15, '=') + "\n";
  line("Endpoint", r.setup.url + r.setup.endpoint);
  line("Model", r.setup.model.empty() ? "-" : r.setup.model);
  line("Dataset", r.setup.dataset);
  line("Request rate (req/s)", rate_text(r.setup.request_rate));
  line("Max concurrency", r.setup.max_concurrency > 0
                              ? str_cat(r.setup.max_concurrency)
                              : str_cat("unbounded (", r.workers, " workers)"));
  line("Successful requests", str_cat(r.completed));
  line("Failed requests", str_cat(r.failed));
  if (r.failed > 0) line("First error", r.first_error);
  line("Benchmark duration (s)", num(r.duration_s));
  line("Total input tokens", str_cat(r.input_tokens));
  line("Total output tokens", str_cat(r.output_tokens));
  line("Input tokens counted",
       count_sources(r.input_counted_by_server, "server usage", r.input_counted_as_ids,
                     "prompt ids", r.input_not_counted));
  line("Output tokens counted", count_sources(r.output_counted_by_server, "server usage",
                                              r.output_counted_as_chunks, "stream chunks"));
  line("Request throughput (req/s)", num(r.request_throughput()));
  line("Input token throughput (tok/s)", num(r.input_throughput()));
  line("Output token throughput (tok/s)", num(r.output_throughput()));
  line("Total token throughput (tok/s)", num(r.input_throughput() + r.output_throughput()));
  line("Concurrency (mean in flight)", num(r.mean_in_flight));
  line("Peak in flight", str_cat(r.peak_in_flight));
  section("End-to-End Latency", "E2E", r.e2e);
  section("Time to First Token", "TTFT", r.ttft);
  section("Time per Output Token (excl. 1st token)", "TPOT", r.tpot);
  section("Inter-chunk Latency", "ITL", r.itl);
  out += std::string(60, '=') + "\n";
  return out;
}

}  // namespace vortex::loadgen
