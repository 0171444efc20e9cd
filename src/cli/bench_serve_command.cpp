// `vortex bench-serve`: an online serving benchmark against a running server (ours or any
// OpenAI-compatible one): requests at a Poisson rate, streamed, timed chunk by chunk, reported
// as SGLang's and vLLM's serving benchmarks do (TTFT, TPOT, ITL, E2E, throughput).
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "cli/progress.h"
#include "core/error.h"
#include "loadgen/bench_serve.h"
#include "loadgen/dataset_file.h"

namespace vortex::cli {

namespace {

struct BudgetArgs {
  int64_t pages = 0, floor = 0, cap = 0, sink = 0, recent = 0;
  double ratio = 0;
  CLI::Option *pages_opt = nullptr, *ratio_opt = nullptr, *floor_opt = nullptr, *cap_opt = nullptr,
              *sink_opt = nullptr, *recent_opt = nullptr;
};

struct BenchServeArgs {
  std::string url, endpoint = "/v1/completions", model;
  int64_t num_prompts = 1000;
  std::string request_rate = "inf";
  int64_t max_concurrency = 0;
  std::string dataset = "random", dataset_path;
  int32_t input_len = 1024, output_len = 128, vocab_size = 2048;
  double range_ratio = 1.0;
  bool ignore_eos = false;
  std::string flow;
  BudgetArgs budget;
  uint64_t seed = 1;
  bool json = false, disable_progress = false;
  double timeout_s = 3600;
  std::vector<std::string> headers;
  CLI::Option *num_prompts_opt = nullptr, *dataset_opt = nullptr;
};

// Threads when --max-concurrency is unbounded: one per request in flight.
constexpr int64_t kMaxWorkers = 256;

double parse_rate(const std::string& text) {
  if (text == "inf") return std::numeric_limits<double>::infinity();
  size_t used = 0;
  double rate = 0;
  try {
    rate = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !(rate > 0) || std::isinf(rate)) {
    fail_usage("--request-rate: '", printable(text), "' is not a rate > 0 (requests/s) or inf");
  }
  return rate;
}

std::vector<std::pair<std::string, std::string>> parse_headers(
    const std::vector<std::string>& headers) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& h : headers) {
    const size_t colon = h.find(':');
    std::string name = colon == std::string::npos ? "" : h.substr(0, colon);
    if (name.empty() || name.find_first_of(" \t\r\n") != std::string::npos ||
        h.find_first_of("\r\n") != std::string::npos) {
      fail_usage("--header: '", printable(h),
                 "' is not NAME:VALUE (e.g. 'Authorization: Bearer X')");
    }
    std::string value = h.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

// The "vortex" extension object, or null when no flow or budget flag was given.
Json vortex_extension(const BenchServeArgs& a) {
  const BudgetArgs& b = a.budget;
  Json ext = Json::object();
  if (!a.flow.empty()) ext["flow"] = a.flow;
  if (b.pages_opt->count()) {
    if (b.pages < 0) fail_usage("--topk-pages must be >= 0");
    ext["topk_pages"] = b.pages;
  }
  if (b.ratio_opt->count()) {
    if (!(b.ratio > 0 && b.ratio <= 1)) fail_usage("--topk-ratio must be in (0, 1]");
    if (b.pages_opt->count()) fail_usage("--topk-ratio and --topk-pages exclude each other");
    ext["topk_ratio"] = b.ratio;
  }
  const std::pair<CLI::Option*, std::pair<const char*, int64_t>> counts[] = {
      {b.floor_opt, {"topk_floor", b.floor}},
      {b.cap_opt, {"topk_cap", b.cap}},
      {b.sink_opt, {"sink_pages", b.sink}},
      {b.recent_opt, {"recent_pages", b.recent}}};
  for (const auto& [opt, field] : counts) {
    if (!opt->count()) continue;
    if (field.second < 0) fail_usage(opt->get_name(), " must be >= 0");
    ext[field.first] = field.second;
  }
  return ext.empty() ? Json() : ext;
}

void check_flags(const BenchServeArgs& a) {
  if (a.num_prompts < 1) fail_usage("--num-prompts must be at least 1");
  if (a.max_concurrency < 0) fail_usage("--max-concurrency must be >= 0 (0 = unbounded)");
  if (a.input_len < 1) fail_usage("--random-input-len must be at least 1");
  if (a.output_len < 1) fail_usage("--random-output-len must be at least 1");
  if (!(a.range_ratio >= 0 && a.range_ratio <= 1)) {
    fail_usage("--random-range-ratio must be in [0, 1]");
  }
  if (a.vocab_size < 1) fail_usage("--random-vocab-size must be at least 1");
  if (!(a.timeout_s > 0)) fail_usage("--timeout-s must be > 0");
  if (a.dataset == "random" && !a.dataset_path.empty() && a.dataset_opt->count()) {
    fail_usage("--dataset random takes no --dataset-path");
  }
  if (a.dataset == "jsonl" && a.dataset_path.empty()) {
    fail_usage("--dataset jsonl needs --dataset-path FILE.jsonl");
  }
}

// The requests and how the report names them.
std::pair<std::vector<loadgen::BenchRequest>, std::string> make_requests(
    const BenchServeArgs& a, loadgen::Endpoint endpoint) {
  if (!a.dataset_path.empty()) {
    auto rows = loadgen::read_dataset_file(a.dataset_path, a.output_len);
    for (const auto& r : rows) loadgen::check_endpoint_accepts(endpoint, r);
    const int64_t n =
        a.num_prompts_opt->count() ? a.num_prompts : static_cast<int64_t>(rows.size());
    return {loadgen::take_requests(rows, n), a.dataset_path};
  }
  loadgen::RandomWorkload w;
  w.num_prompts = a.num_prompts;
  w.input_len = a.input_len;
  w.output_len = a.output_len;
  w.range_ratio = a.range_ratio;
  w.vocab_size = a.vocab_size;
  w.seed = a.seed;
  const bool ids = loadgen::endpoint_takes_ids(endpoint);
  w.kind = ids ? loadgen::PromptKind::kIds : loadgen::PromptKind::kMessages;
  std::string name = str_cat("random (", ids ? "token ids" : "words", ", input ", a.input_len,
                             ", output ", a.output_len, ", range ratio ", a.range_ratio, ")");
  return {loadgen::random_requests(w), name};
}

}  // namespace

Action add_bench_serve_command(CLI::App& app) {
  auto a = std::make_shared<BenchServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench-serve",
      "Benchmark a running server (vortex serve, SGLang, vLLM, any OpenAI-compatible API): "
      "requests at a rate, streamed; TTFT, TPOT, ITL, latency and throughput");
  cmd->add_option("--url", a->url, "Base URL of the server, e.g. http://127.0.0.1:30000")
      ->required();
  cmd->add_option("--endpoint", a->endpoint,
                  "/v1/completions, /v1/chat/completions or /generate (SGLang's native API)")
      ->capture_default_str();
  cmd->add_option("--model", a->model, "Model name to send (default: the first of GET /v1/models)");
  a->num_prompts_opt =
      cmd->add_option("--num-prompts", a->num_prompts,
                      "Requests to send (with --dataset-path: default every line; the file "
                      "repeats when shorter)")
          ->capture_default_str();
  cmd->add_option("--request-rate", a->request_rate,
                  "Requests/s, Poisson arrivals; inf sends all at once")
      ->capture_default_str();
  cmd->add_option("--max-concurrency", a->max_concurrency,
                  "At most this many requests in flight (0 = unbounded, up to 256)")
      ->capture_default_str();
  a->dataset_opt =
      cmd->add_option("--dataset", a->dataset, "random, or jsonl (implied by --dataset-path)")
          ->check(CLI::IsMember({"random", "jsonl"}))
          ->capture_default_str();
  cmd->add_option("--dataset-path", a->dataset_path,
                  "JSON-lines prompts: {\"prompt\": text or ids | \"messages\": [...], "
                  "\"max_tokens\" or \"output_len\": N}");
  cmd->add_option("--random-input-len", a->input_len, "Prompt tokens (random dataset)")
      ->capture_default_str();
  cmd->add_option("--random-output-len", a->output_len,
                  "Output tokens (random dataset; also for dataset lines without max_tokens)")
      ->capture_default_str();
  cmd->add_option("--random-range-ratio", a->range_ratio, "Lengths uniform in [len * ratio, len]")
      ->capture_default_str();
  cmd->add_option("--random-vocab-size", a->vocab_size, "Random prompt ids are drawn from [0, N)")
      ->capture_default_str();
  cmd->add_flag("--ignore-eos", a->ignore_eos,
                "Send ignore_eos, so every output has its requested length");
  cmd->add_option("--flow", a->flow, "Flow the server should use (sent as \"vortex\": {\"flow\"})");
  BudgetArgs& b = a->budget;
  b.pages_opt = cmd->add_option("--topk-pages", b.pages, "Budget override: pages per row");
  b.ratio_opt = cmd->add_option("--topk-ratio", b.ratio, "Budget override: fraction of pages");
  b.floor_opt = cmd->add_option("--topk-floor", b.floor, "Budget override: smallest budget");
  b.cap_opt = cmd->add_option("--topk-cap", b.cap, "Budget override: largest budget");
  b.sink_opt = cmd->add_option("--sink-pages", b.sink, "Budget override: first pages kept");
  b.recent_opt = cmd->add_option("--recent-pages", b.recent, "Budget override: last pages kept");
  cmd->add_option("--seed", a->seed, "Seed of the prompts and the arrival times")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print the results as one JSON object");
  cmd->add_flag("--disable-progress", a->disable_progress, "No progress line on stderr");
  cmd->add_option("--timeout-s", a->timeout_s, "Per-request limit in seconds")
      ->capture_default_str();
  cmd->add_option("--header", a->headers, "Extra HTTP header NAME:VALUE (repeatable)");

  return [a]() {
    check_flags(*a);
    loadgen::BenchServeConfig c;
    c.endpoint = loadgen::parse_endpoint(a->endpoint);
    c.server = loadgen::parse_server_url(a->url);
    c.request_rate = parse_rate(a->request_rate);
    c.client.headers = parse_headers(a->headers);
    c.client.timeout_s = a->timeout_s;
    c.body.ignore_eos = a->ignore_eos;
    c.body.vortex = vortex_extension(*a);
    c.max_concurrency = a->max_concurrency;
    c.max_workers = kMaxWorkers;
    c.seed = a->seed;
    std::tie(c.requests, c.dataset) = make_requests(*a, c.endpoint);

    // SGLang's /generate takes no model; the OpenAI endpoints need one.
    if (!a->model.empty()) {
      c.body.model = a->model;
      loadgen::check_reachable(c.server, c.client);
    } else if (c.endpoint == loadgen::Endpoint::kGenerate) {
      loadgen::check_reachable(c.server, c.client);
    } else {
      c.body.model = loadgen::first_served_model(c.server, c.client);
    }

    std::optional<Progress> progress;
    if (!a->disable_progress) {
      progress.emplace("requests", static_cast<int64_t>(c.requests.size()));
      progress->update(0);
    }
    const loadgen::BenchReport report = loadgen::run_bench_serve(c, [&](int64_t finished) {
      if (progress) progress->update(finished);
    });
    std::fflush(stderr);
    if (a->json) {
      std::printf("%s\n", loadgen::report_json(report).dump().c_str());
    } else {
      std::printf("%s", loadgen::report_text(report).c_str());
    }
    std::fflush(stdout);
    if (report.completed == 0) {
      fail("all ", report.failed, " requests to ", c.server.url,
           " failed; the first: ", report.first_error);
    }
    return 0;
  };
}

}  // namespace vortex::cli
