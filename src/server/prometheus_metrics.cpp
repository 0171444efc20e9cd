#include "server/prometheus_metrics.h"

#include <charconv>
#include <cmath>

namespace vortex::server {

std::string escape_label_value(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string prometheus_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

namespace {

class Exposition {
 public:
  void header(const std::string& name, const char* type, const char* help) {
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name, double value, const std::string& labels = "") {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += prometheus_number(value);
    out_ += '\n';
  }
  void gauge(const std::string& name, const char* help, double value) {
    header(name, "gauge", help);
    sample(name, value);
  }
  void counter(const std::string& name, const char* help, double value) {
    header(name, "counter", help);
    sample(name, value);
  }
  void histogram(const std::string& name, const char* help, const LatencyHistogram& h) {
    header(name, "histogram", help);
    for (size_t i = 0; i < h.bounds.size(); ++i) {
      const double n = i < h.counts.size() ? static_cast<double>(h.counts[i]) : 0.0;
      sample(name + "_bucket", n, "le=\"" + prometheus_number(h.bounds[i]) + "\"");
    }
    sample(name + "_bucket", static_cast<double>(h.count), "le=\"+Inf\"");
    sample(name + "_sum", h.sum);
    sample(name + "_count", static_cast<double>(h.count));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string prometheus_text(const EngineLoopMetrics& m) {
  Exposition e;
  const std::string p = "vortex:";
  e.gauge(p + "num_requests_running", "Requests in the running batch.",
          static_cast<double>(m.running));
  e.gauge(p + "num_requests_waiting", "Requests submitted and not running yet.",
          static_cast<double>(m.waiting));
  e.counter(p + "prompt_tokens_total", "Prompt tokens of the requests admitted.",
            static_cast<double>(m.prompt_tokens));
  e.counter(p + "generation_tokens_total", "Tokens generated.",
            static_cast<double>(m.generation_tokens));

  e.header(p + "requests_finished_total", "counter",
           "Requests finished, by reason (stop, length, abort).");
  for (const char* reason : {"stop", "length", "abort"}) {
    auto it = m.finished_by_reason.find(reason);
    e.sample(p + "requests_finished_total",
             it == m.finished_by_reason.end() ? 0.0 : static_cast<double>(it->second),
             std::string("reason=\"") + reason + "\"");
  }
  for (const auto& [reason, n] : m.finished_by_reason) {
    if (reason != "stop" && reason != "length" && reason != "abort") {
      e.sample(p + "requests_finished_total", static_cast<double>(n),
               "reason=\"" + escape_label_value(reason) + "\"");
    }
  }

  e.header(p + "requests_total", "counter", "Requests admitted, by flow (dense: full attention).");
  if (m.requests_per_flow.empty()) e.sample(p + "requests_total", 0, "flow=\"dense\"");
  for (const auto& [flow, n] : m.requests_per_flow) {
    e.sample(p + "requests_total", static_cast<double>(n),
             "flow=\"" + escape_label_value(flow.empty() ? "dense" : flow) + "\"");
  }

  e.counter(p + "num_preemptions_total", "Requests preempted (recomputed later).",
            static_cast<double>(m.preemptions));
  e.gauge(p + "kv_cache_pages_total", "KV cache pages.", m.kv_pages_total);
  e.gauge(p + "kv_cache_pages_used", "KV cache pages held by requests.", m.kv_pages_used);
  e.gauge(p + "kv_cache_pages_cached",
          "KV cache pages held only by the prefix cache (evicted when requests need them).",
          m.kv_pages_cached);
  e.gauge(p + "kv_cache_pages_free", "KV cache pages neither used nor cached.",
          m.kv_pages_total - m.kv_pages_used - m.kv_pages_cached);
  e.gauge(p + "kv_cache_usage_ratio", "Fraction of the KV cache pages in use.",
          m.kv_pages_total > 0 ? static_cast<double>(m.kv_pages_used) / m.kv_pages_total : 0.0);
  e.counter(p + "prefix_cache_queries_total", "Prompt pages looked up in the prefix cache.",
            static_cast<double>(m.prefix_cache_queries));
  e.counter(p + "prefix_cache_hits_total", "Prompt pages found in the prefix cache.",
            static_cast<double>(m.prefix_cache_hits));
  e.gauge(p + "prefix_cache_hit_rate", "Prefix cache hits over queries (0 before any query).",
          m.prefix_cache_queries > 0 ? static_cast<double>(m.prefix_cache_hits) /
                                           static_cast<double>(m.prefix_cache_queries)
                                     : 0.0);

  e.histogram(p + "time_to_first_token_seconds", "Time from submission to the first token.",
              m.ttft);
  e.histogram(p + "inter_token_latency_seconds", "Time between consecutive tokens of a request.",
              m.inter_token);
  e.histogram(p + "e2e_request_latency_seconds", "Time from submission to the end of a request.",
              m.e2e);
  return e.take();
}

}  // namespace vortex::server
