#include "agent/submit_pipeline.h"

#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include "agent/decode_traces.h"
#include "agent/flow_server.h"
#include "agent/results_store.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine/loaded_model.h"
#include "engine/sparse_decode.h"
#include "eval/eval_report.h"
#include "eval/eval_runner.h"
#include "eval/perplexity.h"
#include "eval/task_scoring.h"
#include "eval/tasks/prompt_encoder.h"
#include "eval/tasks/tasks.h"
#include "flow/compiler.h"
#include "flow/source_file.h"
#include "model/presets.h"

namespace vortex::agent {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Everything the stages share: the flow, the model, the samples.
struct Context {
  Context(const SubmitOptions& options, std::string flow_path, SubmitProgress p)
      : o(options), path(std::move(flow_path)), progress(std::move(p)) {}
  const SubmitOptions& o;
  std::string path, source;
  flow::FlowProgram eval_program, workload_program, natural_program;
  flow::CudaFlowSource workload_cuda;
  flow::BudgetPolicy policy;  // the flow's budget with the submitter's overrides
  std::optional<LoadedModel> model;
  std::vector<eval::TaskSample> samples;
  std::vector<eval::EvalRequest> requests;
  std::optional<LoadedModel> natural;  // the natural model and its perplexity documents
  std::vector<std::vector<int32_t>> natural_docs;
  SubmitProgress progress;
  FlowServer* server = nullptr;  // --server: the stages run there
  std::string server_flow;       // the flow's name on it, once verify registered it

  void say(const char* stage, const std::string& message) const {
    if (progress) progress(stage, message);
  }
};

StageResult failed(const char* stage, std::string reason, Json figures = Json::object()) {
  StageResult r;
  r.stage = stage;
  r.status = StageStatus::kFailed;
  r.reason = std::move(reason);
  r.figures = std::move(figures);
  return r;
}

// The first diagnostic of a failed compile, on one line ("file:line:col: error: message"), then
// how many more there were.
std::string first_error(const flow::CompileResult& result, const std::string& source,
                        const std::string& path) {
  const std::string all = flow::format_compile_errors(result, source, path, /*with_source=*/false);
  std::string first = all.substr(0, all.find('\n'));
  if (result.diagnostics.size() > 1)
    first += str_cat(" (and ", result.diagnostics.size() - 1, " more)");
  return first;
}

flow::FlowGeometry geometry_of(const ModelConfig& c, int32_t page_size) {
  return {c.group_size(), c.head_dim, page_size};
}

Json budget_json(const flow::BudgetPolicy& b) {
  return {{"pages", b.pages ? Json(*b.pages) : Json(nullptr)},
          {"ratio", b.pages ? Json(nullptr) : Json(b.effective_ratio())},
          {"floor", b.floor},
          {"cap", b.cap ? Json(*b.cap) : Json(nullptr)},
          {"sink", b.sink},
          {"recent", b.recent},
          {"dense_layers", b.dense_layers}};
}

// The workload's model: a preset, or a model directory.
std::optional<ModelConfig> workload_config(const SubmitOptions& o) {
  if (std::optional<ModelConfig> c = preset_config(o.workload_model)) return c;
  if (fs::is_directory(o.workload_model)) return load_model_config(o.workload_model);
  fail_usage("--workload-model '", o.workload_model,
             "' is neither a preset (e.g. qwen3-1.7b) nor a model directory");
}

// 1. verify: the flow compiles (every target's rules and the limits) for the evaluation model
// and for the workload's preset, and its CUDA kernels generate for the workload.
StageResult verify(Context& c) {
  const SubmitOptions& o = c.o;
  try {
    c.source = flow::read_flow_source_file(c.path);
  } catch (const flow::FlowFileError& e) {
    return failed(kStageVerify, e.what());
  }
  const ModelConfig eval_config = load_model_config(o.model);
  const std::optional<ModelConfig> workload = workload_config(o);
  Json figures = Json::object();
  struct Target {
    const ModelConfig& config;
    std::string name;
    flow::FlowProgram* out;
  };
  std::vector<Target> targets = {Target{eval_config, o.model, &c.eval_program},
                                 Target{*workload, o.workload_model, &c.workload_program}};
  std::optional<ModelConfig> natural_config;
  if (!o.natural_model.empty()) {
    natural_config = load_model_config(o.natural_model);
    targets.push_back(Target{*natural_config, o.natural_model, &c.natural_program});
  }
  for (const Target& t : targets) {
    flow::CompileOptions co;
    co.dump_ir = false;
    co.num_layers = t.config.num_layers;
    const flow::FlowGeometry g = geometry_of(t.config, o.page_size);
    flow::CompileResult r = flow::compile_flow(c.source, c.path, &g, co);
    if (!r.ok()) {
      return failed(kStageVerify, first_error(r, c.source, c.path),
                    {{"model", t.name}, {"errors", r.diagnostics.size()}});
    }
    *t.out = std::move(*r.program);
  }
  try {
    c.policy = flow::apply_budget_overrides(c.eval_program.budget, o.budget);
  } catch (const Error& e) {
    return failed(kStageVerify, str_cat(c.path, ": budget: ", e.what()));
  }
  try {
    c.workload_cuda = flow::generate_cuda_flow(
        c.workload_program, geometry_of(*workload, o.page_size), flow::CudaCodegenOptions{});
  } catch (const Error& e) {
    return failed(kStageVerify, e.what(), {{"model", o.workload_model}, {"target", "cuda"}});
  }
  if (c.server) {
    const std::string name = server_flow_name(c.path);
    c.say(kStageVerify, str_cat("adding the flow to ", c.server->url(), " as '", name, "'"));
    if (std::optional<std::string> refused = c.server->add_flow(name, c.source, c.path, o.budget))
      return failed(kStageVerify, *refused, {{"server", c.server->url()}});
    c.server_flow = name;
  }
  const flow::CudaFlowSource& k = c.workload_cuda;
  StageResult r;
  r.stage = kStageVerify;
  r.status = StageStatus::kPassed;
  r.figures = {{"budget", budget_json(c.policy)},
               {"fields", c.eval_program.fields.size()},
               {"gpu_field_bytes_per_page_head", 2 * k.field_stride + 4 * k.field_scales},
               {"gpu_state_bytes_per_page_head", 4 * k.state_stride},
               {"fused_score_select", !k.select_kernel.empty()},
               {"score_kernels", k.score_kernels.size()}};
  return r;
}

// Loads the evaluation model and generates the suite's samples (once, for both engine stages).
void prepare_samples(Context& c) {
  const SubmitOptions& o = c.o;
  if (c.model) return;
  c.say("setup", "loading " + o.model + " and generating the suite's samples");
  c.model = load_model(o.model, {});
  eval::PromptEncoder encoder(c.model->require_tokenizer(), std::nullopt);
  c.samples = eval::generate_task_samples(o.tasks, o.context, o.samples, o.seed, encoder);
  for (const eval::TaskSample& s : c.samples) {
    eval::EvalRequest r;
    r.prompt = s.prompt_ids;
    r.params.max_tokens = s.max_new_tokens;
    c.requests.push_back(std::move(r));
  }
}

EngineOptions engine_options(const Context& c, Device device,
                             std::shared_ptr<const SparseAttentionConfig> flow) {
  EngineOptions eo;
  eo.device = device;
  eo.page_size = c.o.page_size;
  eo.max_step_tokens = 2048;
  eo.kv_memory_bytes = size_t{1} << 30;
  eo.sparse = std::move(flow);
  return eo;
}

std::shared_ptr<const SparseAttentionConfig> load_flow(const Context& c, bool record_recall) {
  return std::make_shared<const SparseAttentionConfig>(
      load_sparse_attention(c.path, c.o.budget, c.model->config, c.o.page_size, record_recall));
}

std::vector<ServerPrompt> server_prompts(const std::vector<eval::EvalRequest>& requests) {
  std::vector<ServerPrompt> out;
  for (const eval::EvalRequest& r : requests)
    out.push_back({r.prompt, r.params.max_tokens, r.params.ignore_eos});
  return out;
}

// 2. recall: a few decode steps of the suite's first samples with the flow, measuring each
// sparse row's attention recall against full attention (CPU: the recall pass is the CPU
// runner's).
std::string full_cache_key(const SubmitOptions& o);

// The decode traces of the recall samples: from the trace file beside the store when one was
// recorded with the same parameters, else recorded now (and kept there). `note` says which.
DecodeTraces decode_traces(Context& c, const std::vector<eval::EvalRequest>& reqs,
                           ResultsStore* store, std::string& note) {
  std::vector<TracePrompt> prompts;
  for (const eval::EvalRequest& r : reqs) prompts.push_back({r.prompt, r.params.max_tokens});
  std::string path;
  if (store) {
    const SubmitOptions& o = c.o;
    std::string key =
        str_cat("decode-traces|", full_cache_key(o), "|", o.recall_samples, "|", o.recall_tokens);
    const fs::path dir = fs::path(store->path() + ".traces");
    path = (dir / (source_hash(key) + ".bin")).string();
    std::error_code ec;
    if (fs::exists(path, ec)) {
      try {
        DecodeTraces d = read_decode_traces(path, c.model->config);
        note = "replayed from " + path;
        return d;
      } catch (const Error& e) {
        c.say(kStageRecall, str_cat("recording again: ", e.what()));
      }
    }
    fs::create_directories(dir, ec);
  }
  c.say(kStageRecall, "recording full attention's decode traces (once for these samples)");
  DecodeTraces d = record_decode_traces(*c.model, prompts, c.o.page_size);
  note = "recorded";
  if (!path.empty()) {
    try {
      write_decode_traces(d, path);
      note = "recorded into " + path;
    } catch (const Error& e) {
      c.say(kStageRecall, str_cat("not kept: ", e.what()));
    }
  }
  return d;
}

StageResult recall(Context& c, Submission& sub, ResultsStore* store) {
  std::string traces_note;
  const SubmitOptions& o = c.o;
  prepare_samples(c);
  std::vector<eval::EvalRequest> reqs;
  const size_t per_task = static_cast<size_t>(o.samples);
  for (int32_t i = 0; i < o.recall_samples; ++i) {
    // The first sample of each task in turn, then the second, ...
    const size_t task = static_cast<size_t>(i) % o.tasks.size();
    const size_t index = static_cast<size_t>(i) / o.tasks.size();
    if (index >= per_task) break;
    eval::EvalRequest r = c.requests[task * per_task + index];
    r.params.max_tokens = o.recall_tokens;
    r.params.ignore_eos = true;
    reqs.push_back(std::move(r));
  }
  c.say(kStageRecall, str_cat(reqs.size(), " samples x ", o.recall_tokens, " decode steps",
                              c.server ? " on " + c.server->url() : std::string()));
  // {"mean", "p5", "rows", "per_layer"} (engine/sparse_decode.h's recall_summary_json).
  Json summary;
  if (c.server) {
    c.server->generate(server_prompts(reqs), c.server_flow, o.server_concurrency);
    const Json stats = c.server->flow_stats(c.server_flow);
    summary = stats.value("recall", Json());
    if (!summary.is_object())
      fail(c.server->url(), " did not record the flow's recall (a CPU server records it)");
  } else {
    // Full attention's decode of these samples, recorded once (kept beside the results store)
    // and replayed for this flow.
    const DecodeTraces traces = decode_traces(c, reqs, store, traces_note);
    SparseStats stats;
    stats.recall = replay_recall(traces, *load_flow(c, false), o.page_size);
    summary = recall_summary_json(stats);
  }
  const int64_t rows = summary.value("rows", int64_t{0});
  const double mean = rows > 0 ? summary["mean"].get<double>() : kNotMeasured;
  sub.recall = mean;
  Json figures = {{"mean", summary["mean"]},
                  {"p5", summary["p5"]},
                  {"rows", rows},
                  {"per_layer", summary.value("per_layer", Json::array())},
                  {"samples", reqs.size()},
                  {"decode_tokens", o.recall_tokens},
                  {"min_mean", o.min_recall}};
  if (c.server) figures["server"] = c.server->url();
  if (!traces_note.empty()) figures["traces"] = traces_note;
  if (rows == 0) {
    // Every row fit its budget (or no layer is sparse): nothing was selected, recall is 1.
    sub.recall = 1.0;
    figures["mean"] = 1.0;
    figures["note"] = "no row was selective at this context: every row read all its pages";
  }
  if (sub.recall < o.min_recall) {
    return failed(
        kStageRecall,
        str_cat(c.path, ": mean attention recall ", sub.recall, " is below ", o.min_recall,
                " (--min-recall): the pages it selects miss most of full "
                "attention's mass"),
        figures);
  }
  StageResult r;
  r.stage = kStageRecall;
  r.status = StageStatus::kPassed;
  r.figures = std::move(figures);
  return r;
}

// The budget overrides as `vortex bench` flags.
std::vector<std::string> budget_flags(const flow::BudgetOverrides& b) {
  std::vector<std::string> f;
  if (b.pages) f.insert(f.end(), {"--topk-pages", std::to_string(*b.pages)});
  if (b.ratio) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", *b.ratio);
    f.insert(f.end(), {"--topk-ratio", buf});
  }
  if (b.floor) f.insert(f.end(), {"--topk-floor", std::to_string(*b.floor)});
  if (b.cap) f.insert(f.end(), {"--topk-cap", std::to_string(*b.cap)});
  if (b.sink) f.insert(f.end(), {"--sink-pages", std::to_string(*b.sink)});
  if (b.recent) f.insert(f.end(), {"--recent-pages", std::to_string(*b.recent)});
  if (b.dense_layers) {
    std::string layers;
    for (int64_t l : *b.dense_layers) layers += (layers.empty() ? "" : ",") + std::to_string(l);
    f.insert(f.end(), {"--dense-layers", layers.empty() ? "none" : layers});
  }
  return f;
}

// `vortex bench --compare-full` of the flow on the workload (full attention and the flow in one
// process, the same prompts), argv[0] = `binary`.
std::vector<std::string> bench_argv(const SubmitOptions& o, const std::string& binary,
                                    const std::string& flow_path) {
  std::vector<std::string> argv = {binary,
                                   "bench",
                                   "--model",
                                   o.workload_model,
                                   "--random-weights",
                                   "--device",
                                   std::string(device_name(o.device)),
                                   "--batch",
                                   std::to_string(o.workload_batch),
                                   "--input-len",
                                   std::to_string(o.workload_context),
                                   "--output-len",
                                   std::to_string(o.workload_output),
                                   "--max-step-tokens",
                                   std::to_string(std::max(o.workload_context, 512)),
                                   "--page-size",
                                   std::to_string(o.page_size),
                                   "--flow",
                                   flow_path,
                                   "--compare-full",
                                   "--json"};
  for (const std::string& f : budget_flags(o.budget)) argv.push_back(f);
  return argv;
}

// `vortex eval --compare-full` of the flow on the same samples as the accuracy stage.
std::vector<std::string> eval_argv(const SubmitOptions& o, const std::string& flow_path) {
  std::string tasks;
  for (const std::string& t : o.tasks) tasks += (tasks.empty() ? "" : ",") + t;
  std::vector<std::string> argv = {"vortex",         "eval",
                                   "--model",        o.model,
                                   "--tasks",        tasks,
                                   "--context",      std::to_string(o.context),
                                   "--samples",      std::to_string(o.samples),
                                   "--seed",         std::to_string(o.seed),
                                   "--page-size",    std::to_string(o.page_size),
                                   "--device",       std::string(device_name(o.device)),
                                   "--flow",         flow_path,
                                   "--compare-full", "--json"};
  for (const std::string& f : budget_flags(o.budget)) argv.push_back(f);
  return argv;
}

// argv as one shell command line (arguments with anything but [A-Za-z0-9_./,:=+-] quoted).
std::string command_line(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    const bool plain =
        !a.empty() &&
        a.find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./,:=+-") ==
            std::string::npos;
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (char ch : a) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    out += '\'';
  }
  return out;
}

// A progress callback for the accuracy stage: "<what>: N%" every 10%.
auto accuracy_progress(const Context& c, const char* what) {
  return [&c, what, last = -1](int64_t done, int64_t total) mutable {
    const int pct = total > 0 ? static_cast<int>(100 * done / total) : 100;
    if (pct / 10 != last / 10) c.say(kStageAccuracy, str_cat(what, ": ", pct, "%"));
    last = pct;
  };
}

// One run of the suite: per-task accuracy, the mean, the KV read fraction. `flow` null: full
// attention. With --server the samples run there (its loaded flow, or "dense").
Json run_suite(Context& c, std::shared_ptr<const SparseAttentionConfig> flow, const char* what) {
  const auto t0 = Clock::now();
  auto progress = accuracy_progress(c, what);
  std::vector<std::string> texts;
  double kv_read_fraction = 1.0;
  if (c.server) {
    const bool full = flow == nullptr;
    Json before;
    if (!full) before = c.server->flow_stats(c.server_flow);
    texts = c.server->generate(server_prompts(c.requests), full ? "dense" : c.server_flow,
                               c.o.server_concurrency, [&](size_t done, size_t total) {
                                 progress(static_cast<int64_t>(done), static_cast<int64_t>(total));
                               });
    if (!full) {
      const Json after = c.server->flow_stats(c.server_flow);
      const double dense = after.value("dense_pages", 0.0) - before.value("dense_pages", 0.0);
      const double read = after.value("read_pages", 0.0) - before.value("read_pages", 0.0);
      if (dense > 0) kv_read_fraction = read / dense;
    }
  } else {
    Engine engine(*c.model, engine_options(c, c.o.device, std::move(flow)));
    eval::EvalRun run = eval::run_eval_requests(engine, c.requests, progress);
    for (const GenerationResult& r : run.results) texts.push_back(r.text);
    const SparseStats* stats = engine.runner().sparse_stats();
    if (stats) kv_read_fraction = stats->kv_read_fraction();
  }
  std::vector<double> scores;
  for (size_t i = 0; i < c.samples.size(); ++i)
    scores.push_back(eval::score_task_completion(texts[i], c.samples[i].answers));
  const eval::TaskReport report = eval::summarize_task_scores(c.samples, scores);
  Json tasks = Json::object();
  for (const eval::TaskScore& t : report.tasks) tasks[t.task] = t.accuracy;
  return {{"accuracy", report.accuracy},
          {"tasks", tasks},
          {"samples", report.samples},
          {"kv_read_fraction", kv_read_fraction},
          {"seconds", seconds_since(t0)}};
}

// A file's identity for a cache key: its name, size and modification time.
std::string file_signature(const fs::path& p) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  const auto mtime = fs::last_write_time(p, ec).time_since_epoch().count();
  return str_cat(p.filename().string(), ":", size, ":", mtime, ";");
}

// The weights and config of a model directory, as part of a cache key.
std::string weights_signature(const std::string& dir) {
  std::string out;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".safetensors" || e.path().filename() == "config.json")
      out += file_signature(e.path());
  }
  return out;
}

// What full attention's run depends on, as the results store's cache key.
std::string full_cache_key(const SubmitOptions& o) {
  std::error_code ec;
  const std::string weights = weights_signature(o.model);
  std::string tasks;
  for (const std::string& t : o.tasks) tasks += t + ",";
  if (!o.server.empty()) {
    // Full attention through the server: the same checkpoint, whatever build serves it.
    return str_cat("full-accuracy-server|", o.server, "|",
                   fs::weakly_canonical(o.model, ec).string(), "|", weights, "|", tasks, "|",
                   o.context, "|", o.samples, "|", o.seed);
  }
  return str_cat("full-accuracy|", fs::weakly_canonical(o.model, ec).string(), "|", weights, "|",
                 tasks, "|", o.context, "|", o.samples, "|", o.seed, "|", o.page_size, "|",
                 device_name(o.device), "|", o.commit);
}

// What full attention's perplexity on the natural model depends on (cache key).
std::string natural_cache_key(const SubmitOptions& o) {
  std::error_code ec;
  std::string data;
  for (const std::string& f : o.natural_data)
    data += fs::weakly_canonical(f, ec).string() + "=" + file_signature(f);
  return str_cat("full-perplexity|", fs::weakly_canonical(o.natural_model, ec).string(), "|",
                 weights_signature(o.natural_model), "|", data, "|", o.natural_context, "|",
                 o.natural_documents, "|", o.natural_score_tokens, "|", o.page_size, "|",
                 device_name(o.device), "|", o.commit);
}

std::vector<std::string> perplexity_argv(const SubmitOptions& o, const std::string& flow_path) {
  std::string data;
  for (const std::string& f : o.natural_data) data += (data.empty() ? "" : ",") + f;
  std::vector<std::string> argv = {"vortex",
                                   "eval",
                                   "--model",
                                   o.natural_model,
                                   "--perplexity",
                                   "--data",
                                   data,
                                   "--context",
                                   std::to_string(o.natural_context),
                                   "--samples",
                                   std::to_string(o.natural_documents),
                                   "--score-tokens",
                                   std::to_string(o.natural_score_tokens),
                                   "--page-size",
                                   std::to_string(o.page_size),
                                   "--device",
                                   std::string(device_name(o.device)),
                                   "--flow",
                                   flow_path,
                                   "--compare-full",
                                   "--json"};
  for (const std::string& f : budget_flags(o.budget)) argv.push_back(f);
  return argv;
}

// Loads the natural model and cuts its perplexity documents (once).
void load_natural(Context& c) {
  if (c.natural) return;
  const SubmitOptions& o = c.o;
  c.say(kStageAccuracy, "loading the natural model " + o.natural_model);
  c.natural = load_model(o.natural_model, {});
  c.natural_docs = eval::perplexity_documents(o.natural_data, c.natural->require_tokenizer(),
                                              o.natural_context, o.natural_documents);
}

struct NaturalRun {
  eval::TokenNll nll;
  double kv_read_fraction = 1.0;
  double seconds = 0;
};

// The natural model's documents scored teacher-forced; `flow` null: full attention.
NaturalRun run_natural(Context& c, std::shared_ptr<const SparseAttentionConfig> flow,
                       const char* what) {
  const SubmitOptions& o = c.o;
  load_natural(c);
  const auto t0 = Clock::now();
  auto progress = accuracy_progress(c, what);
  Engine engine(*c.natural, engine_options(c, o.device, std::move(flow)));
  NaturalRun r;
  r.nll = eval::token_nll(eval::run_eval_requests(
      engine, eval::perplexity_requests(c.natural_docs, o.natural_score_tokens), progress));
  if (const SparseStats* s = engine.runner().sparse_stats())
    r.kv_read_fraction = s->kv_read_fraction();
  r.seconds = seconds_since(t0);
  return r;
}

// The accuracy stage's second part: perplexity on the natural model, full attention's cached.
// Adds figures["perplexity"]; returns the reason when the flow's perplexity is too high.
std::optional<std::string> natural_perplexity(Context& c, Json& figures, ResultsStore* store) {
  const SubmitOptions& o = c.o;
  const std::string key = natural_cache_key(o);
  std::optional<Json> cached = store ? store->cached(key) : std::nullopt;
  eval::TokenNll full;
  double full_seconds = 0;
  if (cached) {
    full.per_document = (*cached)["nll"].get<std::vector<std::vector<double>>>();
    full_seconds = (*cached)["seconds"].get<double>();
  } else {
    c.say(kStageAccuracy, str_cat("perplexity on ", o.natural_model,
                                  ", full attention (cached for later submissions)"));
    NaturalRun r = run_natural(c, nullptr, "perplexity, full attention");
    full = std::move(r.nll);
    full_seconds = r.seconds;
    if (store) store->put_cached(key, {{"nll", full.per_document}, {"seconds", r.seconds}});
  }
  load_natural(c);
  c.say(kStageAccuracy, str_cat("perplexity on ", o.natural_model, ", the flow"));
  const NaturalRun mine =
      run_natural(c,
                  std::make_shared<const SparseAttentionConfig>(load_sparse_attention(
                      c.path, o.budget, c.natural->config, o.page_size, false)),
                  "perplexity, flow");
  const eval::NllDifference d = eval::nll_difference(mine.nll, full);
  const double ratio = std::exp(mine.nll.mean() - full.mean());
  std::string data;
  for (const std::string& f : o.natural_data) data += (data.empty() ? "" : ",") + f;
  figures["perplexity"] = {{"model", o.natural_model},
                           {"data", data},
                           {"documents", full.per_document.size()},
                           {"context", o.natural_context},
                           {"tokens", full.tokens()},
                           {"full_nll", full.mean()},
                           {"flow_nll", mine.nll.mean()},
                           {"full_perplexity", full.perplexity()},
                           {"flow_perplexity", mine.nll.perplexity()},
                           {"ratio", ratio},
                           {"nll_diff", d.mean},
                           {"nll_diff_ci95", d.ci95},
                           {"over", d.over},
                           {"kv_read_fraction", mine.kv_read_fraction},
                           {"max_increase", o.max_perplexity_increase},
                           {"full_cached", cached.has_value()},
                           {"full_seconds", full_seconds},
                           {"flow_seconds", mine.seconds},
                           {"command", command_line(perplexity_argv(o, c.path))}};
  if (ratio > 1 + o.max_perplexity_increase + 1e-12) {
    return str_cat(c.path, ": perplexity on ", o.natural_model, " is ", ratio,
                   "x full attention's (", mine.nll.perplexity(), " vs ", full.perplexity(),
                   "), more than 1 + --max-perplexity-increase ", o.max_perplexity_increase);
  }
  return std::nullopt;
}

// 3. accuracy: full attention and the flow on the same samples.
StageResult accuracy(Context& c, Submission& sub, ResultsStore* store) {
  const SubmitOptions& o = c.o;
  prepare_samples(c);
  const std::string key = full_cache_key(o);
  std::optional<Json> full = store ? store->cached(key) : std::nullopt;
  bool full_cached = full.has_value();
  if (!full) {
    c.say(kStageAccuracy, str_cat("full attention on ", c.samples.size(),
                                  " samples (cached for later submissions)"));
    full = run_suite(c, nullptr, "full attention");
    if (store) store->put_cached(key, *full);
  }
  c.say(kStageAccuracy, str_cat("the flow on the same ", c.samples.size(), " samples"));
  const Json mine = run_suite(c, load_flow(c, false), "flow");
  sub.full_accuracy = (*full)["accuracy"].get<double>();
  sub.accuracy = mine["accuracy"].get<double>();
  sub.kv_read_fraction = mine["kv_read_fraction"].get<double>();

  Json tasks = Json::object();
  std::string worst_task;
  double worst_drop = -1e9;
  for (const auto& [task, value] : mine["tasks"].items()) {
    const double f = (*full)["tasks"].value(task, kNotMeasured);
    const double drop = f - value.get<double>();
    tasks[task] = {{"full", f}, {"flow", value}, {"drop", drop}};
    if (drop > worst_drop) {
      worst_drop = drop;
      worst_task = task;
    }
  }
  Json figures = {{"accuracy", sub.accuracy},
                  {"full_accuracy", sub.full_accuracy},
                  {"delta", sub.accuracy - sub.full_accuracy},
                  {"tasks", tasks},
                  {"samples", mine["samples"]},
                  {"context", o.context},
                  {"model", o.model},
                  {"kv_read_fraction", sub.kv_read_fraction},
                  {"full_cached", full_cached},
                  {"full_seconds", (*full)["seconds"]},
                  {"flow_seconds", mine["seconds"]},
                  {"max_mean_drop", o.max_mean_drop},
                  {"max_task_drop", o.max_task_drop},
                  {"command", command_line(eval_argv(o, c.path))}};
  // A hair of slack for rounding: accuracies are means of fractions.
  constexpr double kEps = 1e-9;
  if (sub.accuracy < sub.full_accuracy - o.max_mean_drop - kEps) {
    return failed(
        kStageAccuracy,
        str_cat(c.path, ": mean accuracy ", sub.accuracy, " is more than ", o.max_mean_drop,
                " below full attention's ", sub.full_accuracy, " (--max-mean-drop)"),
        figures);
  }
  if (worst_drop > o.max_task_drop + kEps) {
    return failed(
        kStageAccuracy,
        str_cat(c.path, ": task ", worst_task, " drops ", worst_drop,
                " below full attention (more than --max-task-drop ", o.max_task_drop, ")"),
        figures);
  }
  if (!o.natural_model.empty()) {
    if (std::optional<std::string> reason = natural_perplexity(c, figures, store))
      return failed(kStageAccuracy, *reason, figures);
  }
  StageResult r;
  r.stage = kStageAccuracy;
  r.status = StageStatus::kPassed;
  r.figures = std::move(figures);
  return r;
}

// Runs argv[0] with the arguments, no shell; returns its stdout, throws with its stderr's tail
// when it fails.
std::string run_capture(const std::vector<std::string>& argv) {
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) fail("pipe: ", std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawn_file_actions_addclose(&actions, out_pipe[0]);
  posix_spawn_file_actions_addclose(&actions, err_pipe[0]);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    fail("cannot run ", argv[0], ": ", std::strerror(rc));
  }
  // Read both pipes without blocking on either (the child may fill stderr first).
  std::string out, err;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? out : err).append(buf, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string tail = err.size() > 600 ? err.substr(err.size() - 600) : err;
    fail(argv[0], " ", argv.size() > 1 ? argv[1] : "", " failed (status ", status, "): ", tail);
  }
  return out;
}

// 4. throughput, measured: `vortex bench --compare-full` on the workload.
StageResult measured_throughput(Context& c, Submission& sub) {
  const SubmitOptions& o = c.o;
  if (o.vortex_binary.empty()) fail("measuring throughput needs the vortex binary's path");
  const std::vector<std::string> argv = bench_argv(o, o.vortex_binary, c.path);
  c.say(kStageThroughput,
        str_cat("vortex bench --compare-full on ", o.workload_model, ", batch ", o.workload_batch,
                " x ", o.workload_context, " on ", device_name(o.device)));
  const Json j = parse_json(run_capture(argv), "vortex bench --json");
  const Json& runs = j.at("runs");
  if (runs.size() != 2) fail("vortex bench --compare-full gave ", runs.size(), " runs, not 2");
  const Json& full = runs[0];
  const Json& mine = runs[1];
  sub.speedup = mine.at("decode_speedup_vs_full").get<double>();
  sub.speedup_estimated = false;
  StageResult r;
  r.stage = kStageThroughput;
  r.status = StageStatus::kPassed;
  r.figures = {
      {"estimate", false},
      {"speedup", sub.speedup},
      {"device", std::string(device_name(o.device))},
      {"workload",
       {{"model", o.workload_model},
        {"batch", o.workload_batch},
        {"context", o.workload_context},
        {"output", o.workload_output},
        {"page_size", o.page_size}}},
      {"decode_tokens_per_s_full", full.value("decode_tokens_per_s", 0.0)},
      {"decode_tokens_per_s_flow", mine.value("decode_tokens_per_s", 0.0)},
      {"step_ms_full", full.value("decode_step_ms_p50", 0.0)},
      {"step_ms_flow", mine.value("decode_step_ms_p50", 0.0)},
      {"kv_read_fraction", mine.value("kv_read_fraction", 1.0)},
      {"flow_overhead_share",
       mine.contains("flow_overhead_fraction") ? mine["flow_overhead_fraction"] : Json(nullptr)},
      {"command", command_line(bench_argv(o, "vortex", c.path))}};
  return r;
}

// 4. throughput: the estimate from bytes on the reference card.
StageResult throughput(Context& c, Submission& sub) {
  const SubmitOptions& o = c.o;
  if (o.measure) {
    try {
      return measured_throughput(c, sub);
    } catch (const Error& e) {
      return failed(kStageThroughput, str_cat("the measurement failed: ", e.what()));
    }
  }
  const ModelConfig workload = *workload_config(o);
  const flow::BudgetPolicy policy =
      flow::apply_budget_overrides(c.workload_program.budget, o.budget);
  const StepBytes b = estimate_step_bytes(policy, c.workload_cuda, workload, o.page_size,
                                          o.workload_batch, o.workload_context);
  SubmitOptions on_gpu = o;  // the measurement this estimates
  on_gpu.device = Device::kCuda;
  const double t_full = estimated_step_seconds(b.full_total());
  const double t_flow = estimated_step_seconds(b.flow_total());
  sub.speedup = t_full / t_flow;
  sub.speedup_estimated = true;
  StageResult r;
  r.stage = kStageThroughput;
  r.status = StageStatus::kPassed;
  r.figures = {{"estimate", true},
               {"speedup", sub.speedup},
               {"card", kReferenceCard},
               {"workload",
                {{"model", o.workload_model},
                 {"batch", o.workload_batch},
                 {"context", o.workload_context},
                 {"page_size", o.page_size}}},
               {"step_ms_full", 1e3 * t_full},
               {"step_ms_flow", 1e3 * t_flow},
               {"flow_overhead_share", (b.fields + b.state) / b.flow_total()},
               {"kv_read_fraction", (b.dense_kv + b.selected_kv) / b.full_kv},
               {"gb_per_step", b.gigabytes_json()},
               {"model", str_cat("bytes / ", kReferenceBandwidth * 1e-12, " TB/s + ",
                                 kReferenceStepOverhead * 1e3,
                                 " ms per step (calibrated on measured "
                                 "steps; not a measurement)")},
               {"measure_with", command_line(bench_argv(on_gpu, "vortex", c.path))}};
  return r;
}

}  // namespace

SubmitOptions quick_options(SubmitOptions o) {
  o.samples = std::min(o.samples, 5);
  o.recall_samples = std::min(o.recall_samples, 2);
  o.natural_context = std::min(o.natural_context, 2048);
  o.natural_documents = std::min(o.natural_documents, 2);
  o.natural_score_tokens = std::min(o.natural_score_tokens, 32);
  return o;
}

std::vector<std::string> default_natural_data(const std::string& model_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(fs::path(model_dir) / "heldout", ec))
    if (e.path().extension() == ".txt") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  if (out.empty())
    fail_usage("--natural-model ", model_dir,
               ": no heldout/*.txt beside the model; name the text with --natural-data");
  return out;
}

StepBytes estimate_step_bytes(const flow::BudgetPolicy& policy, const flow::CudaFlowSource& cuda,
                              const ModelConfig& m, int32_t page_size, int32_t batch,
                              int32_t context) {
  StepBytes b;
  const double H = m.hidden_size, I = m.intermediate_size, Hq = m.num_heads, Hkv = m.num_kv_heads,
               D = m.head_dim, V = m.vocab_size;
  const double per_layer = H * (Hq + 2 * Hkv) * D + Hq * D * H + 3 * H * I;
  b.weights = 2 * (m.num_layers * per_layer + V * H);
  const int32_t n = (context + page_size - 1) / page_size;
  const double page_kv = 2.0 * Hkv * page_size * D * 2;  // K and V, bf16, every KV head
  const flow::RowPlan plan = flow::plan_row(policy, n);
  const double field_bytes = 2.0 * cuda.field_stride + 4.0 * cuda.field_scales;
  const double state_bytes = 4.0 * cuda.state_stride;
  for (int32_t l = 0; l < m.num_layers; ++l) {
    b.full_kv += batch * n * page_kv;
    if (flow::is_dense_layer(policy, l)) {
      b.dense_kv += batch * n * page_kv;
      continue;
    }
    b.selected_kv += batch * plan.num_selected() * page_kv;
    b.fields += batch * Hkv * plan.num_scoreable() * field_bytes;
    b.state += batch * Hkv * plan.num_scoreable() * 2 * state_bytes;  // read and written
  }
  return b;
}

Json StepBytes::gigabytes_json() const {
  const double gb = 1e-9;
  return {{"weights", weights * gb},         {"full_kv", full_kv * gb}, {"dense_kv", dense_kv * gb},
          {"selected_kv", selected_kv * gb}, {"fields", fields * gb},   {"state", state * gb}};
}

double estimated_step_seconds(double bytes) {
  return bytes / kReferenceBandwidth + kReferenceStepOverhead;
}

Submission run_submission(const std::string& path, const SubmitOptions& submitted,
                          ResultsStore* store, const SubmitProgress& progress) {
  // --server: the served checkpoint is the evaluation model.
  std::unique_ptr<FlowServer> server;
  SubmitOptions options = submitted;
  if (!options.server.empty()) {
    server = std::make_unique<FlowServer>(options.server);
    options.server = server->url();
    options.model = server->model_path();
    if (!fs::is_directory(options.model))
      fail("--server: the served checkpoint '", options.model,
           "' is not a directory here; submit from the machine that serves it (its tokenizer "
           "makes the suite's prompts)");
  }
  if (options.tasks.empty()) fail_usage("--tasks: give at least one task");
  for (const std::string& t : options.tasks) eval::parse_task_list(t);  // unknown: usage error
  Submission sub;
  sub.path = path;
  sub.name = fs::path(path).stem().string();
  sub.machine = options.machine;
  sub.card = options.card;
  sub.commit = options.commit;
  std::string tasks;
  for (const std::string& t : options.tasks) tasks += (tasks.empty() ? "" : ",") + t;
  sub.parameters = {{"model", options.model},
                    {"tasks", tasks},
                    {"context", options.context},
                    {"samples", options.samples},
                    {"seed", options.seed},
                    {"page_size", options.page_size},
                    {"device", std::string(device_name(options.device))},
                    {"min_recall", options.min_recall},
                    {"max_mean_drop", options.max_mean_drop},
                    {"max_task_drop", options.max_task_drop},
                    {"workload", str_cat(options.workload_model, " batch ", options.workload_batch,
                                         " x ", options.workload_context)}};
  if (server) sub.parameters["server"] = server->url();
  if (!options.natural_model.empty()) {
    if (options.natural_data.empty())
      options.natural_data = default_natural_data(options.natural_model);
    std::string data;
    for (const std::string& f : options.natural_data) data += (data.empty() ? "" : ",") + f;
    sub.parameters["natural"] = {{"model", options.natural_model},
                                 {"data", data},
                                 {"context", options.natural_context},
                                 {"documents", options.natural_documents},
                                 {"score_tokens", options.natural_score_tokens},
                                 {"max_perplexity_increase", options.max_perplexity_increase}};
  }
  Context c(options, path, progress);
  c.server = server.get();
  // The flow leaves the server with the verdict, whatever ends it.
  struct RemoveFlow {
    Context& c;
    ~RemoveFlow() {
      if (c.server && !c.server_flow.empty()) c.server->remove_flow(c.server_flow);
    }
  } remove_flow{c};

  auto run_stage = [&](const char* name, auto&& fn) {
    c.say(name, "started");
    const auto t0 = Clock::now();
    StageResult r = fn();
    r.seconds = seconds_since(t0);
    char took[32];
    std::snprintf(took, sizeof took, "%.1f", r.seconds);
    c.say(name, str_cat(stage_status_name(r.status), " in ", took, " s"));
    sub.stages.push_back(std::move(r));
    return sub.stages.back().status != StageStatus::kFailed;
  };
  bool ok = run_stage(kStageVerify, [&] { return verify(c); });
  if (ok) {
    sub.source = c.source;
    sub.parameters["budget"] = budget_json(c.policy);
  } else {
    // Keep what could be read, so that the store recognizes a resubmission of the same file.
    try {
      sub.source = flow::read_flow_source_file(path);
    } catch (const Error&) {
    }
  }
  sub.source_hash = source_hash(sub.source);
  ok = ok && run_stage(kStageRecall, [&] { return recall(c, sub, store); });
  ok = ok && run_stage(kStageAccuracy, [&] { return accuracy(c, sub, store); });
  ok = ok && run_stage(kStageThroughput, [&] { return throughput(c, sub); });
  sub.accepted = ok;
  for (const StageResult& s : sub.stages)
    if (s.status == StageStatus::kFailed) sub.failed_stage = s.stage;
  return sub;
}

}  // namespace vortex::agent
