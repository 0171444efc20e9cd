// `vortex eval`: accuracy. The synthetic suite (--tasks) generates RULER-style samples with the
// model's tokenizer at --context tokens and scores greedy answers; --data scores a jsonl
// question/answer dataset by final answer with --trials K (mean@K, pass@K); --perplexity scores
// text files' tokens under sparse decode (eval/perplexity.h); --dump-tasks writes the generated
// samples for the training script instead of running them.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/decode_traces.h"
#include "cli/comma_list.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/model_flags.h"
#include "cli/sparse_flags.h"
#include "core/error.h"
#include "core/json_file.h"
#include "engine/engine.h"
#include "engine/loaded_model.h"
#include "eval/eval_report.h"
#include "eval/eval_runner.h"
#include "eval/final_answer.h"
#include "eval/jsonl.h"
#include "eval/perplexity.h"
#include "eval/qa_dataset.h"
#include "eval/task_scoring.h"
#include "eval/tasks/task_random.h"
#include "eval/tasks/tasks.h"

namespace vortex::cli {

namespace {

namespace fs = std::filesystem;

constexpr int32_t kDataDefaultMaxTokens = 2048;
constexpr const char* kDefaultQuestionTemplate =
    "{question}\n\nPlease reason step by step, and put your final answer within \\boxed{}.";

struct EvalArgs : ModelFlags {
  std::string tasks = "all";
  int32_t context = 4096;
  int32_t samples = 20;
  uint64_t seed = 1;
  bool chat = false;
  std::string system;
  std::string dump_tasks, task_file, data, predictions;
  bool dump_ids = false;
  std::string question_template = kDefaultQuestionTemplate;
  int32_t trials = 1;
  double temperature = 0.0, top_p = 1.0;
  int32_t top_k = 0;
  int32_t max_tokens = 0;
  EngineFlags engine;
  EngineOptions base_engine_options;  // from `engine`, once validated
  bool json = false;
  bool compare_full = false;
  bool perplexity = false;
  int32_t score_tokens = 128;
  bool recall_replay = false;
  int32_t recall_tokens = 8;
  std::string recall_traces;
  eval::TaskVariant variant;
  SparseFlags sparse;

  // The attention configurations to evaluate, in order: "" is full attention.
  std::vector<std::string> configs() const {
    std::vector<std::string> out;
    if (sparse.flows.empty() || compare_full) out.push_back("");
    for (const std::string& f : sparse.flows) out.push_back(f);
    return out;
  }
};

// One line on stderr, redrawn in place on a terminal, else printed every 10%.
class Progress {
 public:
  Progress(std::string what, bool quiet)
      : what_(std::move(what)), tty_(isatty(2) != 0), quiet_(quiet) {}
  void update(int64_t done, int64_t total) {
    if (quiet_ || total <= 0) return;
    const int pct = static_cast<int>(100 * done / total);
    if (pct == last_) return;
    if (tty_) {
      std::fprintf(stderr, "\r%s: %3d%%", what_.c_str(), pct);
      if (done >= total) std::fprintf(stderr, "\n");
    } else if (pct / 10 != last_ / 10 || pct == 100) {
      std::fprintf(stderr, "%s: %d%%\n", what_.c_str(), pct);
    }
    std::fflush(stderr);
    last_ = pct;
  }

 private:
  std::string what_;
  bool tty_, quiet_;
  int last_ = -1;
};

void write_jsonl(const std::string& path, const std::vector<Json>& rows) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(path, ": cannot open for writing");
  for (const Json& r : rows) out << r.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
  if (!out) fail(path, ": write failed");
}

std::optional<ChatTemplate> chat_template_of(const std::string& model_dir) {
  const fs::path cfg = fs::path(model_dir) / "tokenizer_config.json";
  if (!fs::exists(cfg))
    fail("model '", model_dir,
         "' has no tokenizer_config.json: --chat needs "
         "its chat template");
  return ChatTemplate::load(cfg.string());
}

// --dump-tasks: only the tokenizer (and chat template) are needed, not the weights.
int dump_tasks(const EvalArgs& a) {
  const std::vector<std::string> tasks = eval::parse_task_list(a.tasks);
  eval::PromptEncoder encoder(load_tokenizer_of(a.model),
                              a.chat ? chat_template_of(a.model) : std::nullopt);
  std::vector<eval::TaskSample> samples =
      eval::generate_task_samples(tasks, a.context, a.samples, a.seed, encoder, a.variant);
  std::vector<Json> rows;
  for (const eval::TaskSample& s : samples)
    rows.push_back(eval::task_sample_to_json(s, a.dump_ids));
  write_jsonl(a.dump_tasks, rows);
  if (!a.json) {
    std::fprintf(stderr, "wrote %zu samples (%zu tasks x %d) at context %d to %s\n", samples.size(),
                 tasks.size(), a.samples, a.context, a.dump_tasks.c_str());
  }
  return 0;
}

std::vector<eval::TaskSample> read_task_file(const std::string& path) {
  std::vector<eval::TaskSample> samples;
  eval::read_jsonl(path, [&](const Json& j, const std::string& where) {
    samples.push_back(eval::task_sample_from_json(j, where));
  });
  if (samples.empty()) fail(path, ": holds no sample");
  return samples;
}

// Eval prefills whole task prompts: a larger step budget than generate's.
EngineFlagSet eval_engine_flags() {
  EngineFlagSet set;
  set.default_max_step_tokens = 2048;
  return set;
}

// Engine options for one attention configuration (`flow` empty = full attention).
EngineOptions engine_options(const EvalArgs& a, const LoadedModel& model, const std::string& flow) {
  EngineOptions eo = a.base_engine_options;
  if (!flow.empty()) eo.sparse = load_sparse_flags(flow, a.sparse, model.config, eo.page_size);
  return eo;
}

// Throughput and sparse-attention figures shared by both modes.
Json run_stats(const eval::EvalTiming& t, Engine& engine, const std::string& flow) {
  const int64_t tokens = t.prefill_tokens + t.decode_tokens;
  Json j = {
      {"time_s", t.seconds},
      {"tokens_per_s", t.seconds > 0 ? tokens / t.seconds : 0.0},
      {"prefill_tokens", t.prefill_tokens},
      {"prefill_tokens_per_s", t.prefill_seconds > 0 ? t.prefill_tokens / t.prefill_seconds : 0.0},
      {"decode_tokens", t.decode_tokens},
      {"decode_tokens_per_s", t.decode_seconds > 0 ? t.decode_tokens / t.decode_seconds : 0.0},
      {"generated_tokens", t.generated_tokens},
      {"preemptions", engine.stats().preemptions},
      {"flow", flow.empty() ? "full" : flow},
      {"kv_read_fraction", 1.0}};
  if (const SparseStats* ss = engine.runner().sparse_stats()) j.update(sparse_stats_json(*ss));
  return j;
}

void print_run_stats(const Json& s) {
  std::printf("  %.2f s, %lld tokens (%.1f tokens/s; prefill %.1f/s, decode %.1f/s)\n",
              s["time_s"].get<double>(),
              static_cast<long long>(s["prefill_tokens"].get<int64_t>() +
                                     s["decode_tokens"].get<int64_t>()),
              s["tokens_per_s"].get<double>(), s["prefill_tokens_per_s"].get<double>(),
              s["decode_tokens_per_s"].get<double>());
  if (s["flow"] != "full") {
    std::printf("  flow %s read %.1f%% of the KV pages", s["flow"].get<std::string>().c_str(),
                100.0 * s["kv_read_fraction"].get<double>());
    if (s.contains("recall_mean")) {
      std::printf(", attention recall %.3f", s["recall_mean"].get<double>());
    }
    std::printf("\n");
  }
}

void check_fits(const LoadedModel& model, int64_t prompt_tokens, int64_t max_tokens,
                const std::string& what) {
  const int64_t limit = model.config.max_position_embeddings;
  if (prompt_tokens + max_tokens > limit) {
    fail_usage(what, ": ", prompt_tokens, " prompt tokens plus ", max_tokens,
               " to generate exceed the model's context of ", limit,
               " tokens (max_position_embeddings): lower --context or --max-tokens");
  }
}

// One attention configuration over the samples: the report as `--json` prints it.
Json evaluate_tasks(const EvalArgs& a, const LoadedModel& model,
                    const std::vector<eval::TaskSample>& samples,
                    const std::vector<eval::EvalRequest>& requests, const std::string& flow,
                    std::vector<Json>* predictions) {
  Engine engine(model, engine_options(a, model, flow));
  Progress progress(flow.empty() ? "eval" : "eval " + fs::path(flow).stem().string(),
                    /*quiet=*/false);
  eval::EvalRun run = eval::run_eval_requests(
      engine, requests, [&](int64_t done, int64_t total) { progress.update(done, total); });

  std::vector<double> scores;
  for (size_t i = 0; i < samples.size(); ++i) {
    const std::string& completion = run.results[i].text;
    scores.push_back(eval::score_task_completion(completion, samples[i].answers));
    predictions->push_back({{"task", samples[i].task},
                            {"index", samples[i].index},
                            {"seed", std::to_string(samples[i].seed)},
                            {"flow", flow.empty() ? "full" : flow},
                            {"prompt_tokens", requests[i].prompt.size()},
                            {"answers", samples[i].answers},
                            {"completion", completion},
                            {"score", scores.back()}});
  }
  const eval::TaskReport report = eval::summarize_task_scores(samples, scores);
  Json tasks = Json::object();
  for (const eval::TaskScore& t : report.tasks) {
    tasks[t.task] = {{"accuracy", t.accuracy},
                     {"samples", t.samples},
                     {"prompt_tokens_mean", t.prompt_tokens_mean}};
  }
  Json out = {{"model", a.model},
              {"context", a.task_file.empty() ? Json(a.context) : Json(nullptr)},
              {"seed", a.seed},
              {"chat", a.chat},
              {"accuracy", report.accuracy},
              {"samples", report.samples},
              {"tasks", tasks}};
  if (!a.task_file.empty()) out["task_file"] = a.task_file;
  out.update(run_stats(run.timing, engine, flow));
  return out;
}

void print_task_report(const EvalArgs& a, const Json& r) {
  std::printf(
      "vortex eval: %s, %s, %s attention\n", a.model.c_str(),
      a.task_file.empty() ? ("context " + std::to_string(a.context)).c_str() : a.task_file.c_str(),
      r["flow"].get<std::string>().c_str());
  std::printf("  %-18s %9s %8s %14s\n", "task", "accuracy", "samples", "prompt tokens");
  for (const auto& [task, t] : r["tasks"].items()) {
    std::printf("  %-18s %9.3f %8lld %14.1f\n", task.c_str(), t["accuracy"].get<double>(),
                static_cast<long long>(t["samples"].get<int64_t>()),
                t["prompt_tokens_mean"].get<double>());
  }
  std::printf("  %-18s %9.3f %8lld\n", "overall", r["accuracy"].get<double>(),
              static_cast<long long>(r["samples"].get<int64_t>()));
  print_run_stats(r);
}

// Several configurations side by side: one row per configuration.
void print_comparison(const EvalArgs& a, const std::vector<Json>& runs) {
  std::printf(
      "vortex eval: %s, %s, %lld samples per configuration\n", a.model.c_str(),
      a.task_file.empty() ? ("context " + std::to_string(a.context)).c_str() : a.task_file.c_str(),
      static_cast<long long>(runs.front()["samples"].get<int64_t>()));
  std::printf("  %-16s %8s", "attention", "KV read");
  for (const auto& [task, t] : runs.front()["tasks"].items()) {
    std::printf(" %15s", task.c_str());
  }
  std::printf(" %8s %14s\n", "overall", "decode tok/s");
  for (const Json& r : runs) {
    const std::string flow = r["flow"].get<std::string>();
    const double kv = r.contains("kv_read_fraction_sparse_layers")
                          ? r["kv_read_fraction_sparse_layers"].get<double>()
                          : r["kv_read_fraction"].get<double>();
    std::printf("  %-16s %7.1f%%", fs::path(flow).stem().string().c_str(), 100.0 * kv);
    for (const auto& [task, t] : r["tasks"].items()) {
      std::printf(" %15.3f", t["accuracy"].get<double>());
    }
    std::printf(" %8.3f %14.1f\n", r["accuracy"].get<double>(),
                r["decode_tokens_per_s"].get<double>());
  }
  std::printf("  (KV read: share of the KV pages decode attention read in the sparse layers)\n");
}

// --recall-replay: full attention's decode of the samples recorded once (CPU), then every flow's
// attention recall replayed on that one trajectory (agent/decode_traces.h), without running the
// model again per flow. No accuracy: only the share of full attention's mass each flow keeps.
int run_recall_replay(const EvalArgs& a, const LoadedModel& model,
                      const std::vector<eval::EvalRequest>& requests) {
  if (a.sparse.flows.empty()) fail_usage("--recall-replay needs at least one --flow");
  if (a.recall_tokens < 1) fail_usage("--recall-tokens must be at least 1, got ", a.recall_tokens);
  const int32_t page_size = a.base_engine_options.page_size;
  std::vector<agent::TracePrompt> prompts;
  for (const eval::EvalRequest& r : requests) prompts.push_back({r.prompt, 1 + a.recall_tokens});
  agent::DecodeTraces traces;
  if (!a.recall_traces.empty() && fs::exists(a.recall_traces)) {
    traces = agent::read_decode_traces(a.recall_traces, model.config);
    if (traces.traces.size() != prompts.size())
      fail(a.recall_traces, ": holds ", traces.traces.size(), " traces, not the ", prompts.size(),
           " samples asked for (a file of other settings: remove it or name another)");
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (traces.traces[i].prompt_len != static_cast<int32_t>(prompts[i].ids.size()) ||
          traces.traces[i].steps != a.recall_tokens)
        fail(a.recall_traces, ": trace ", i,
             " is of another sample or step count than asked "
             "for (remove the file or name another)");
    }
    std::fprintf(stderr, "read %zu recorded traces from %s\n", prompts.size(),
                 a.recall_traces.c_str());
  } else {
    std::fprintf(stderr, "recording full attention's decode of %zu samples (%d steps each)\n",
                 prompts.size(), a.recall_tokens);
    traces = agent::record_decode_traces(model, prompts, page_size);
    if (!a.recall_traces.empty()) agent::write_decode_traces(traces, a.recall_traces);
  }
  std::vector<Json> runs;
  for (const std::string& flow : a.sparse.flows) {
    SparseStats stats;
    stats.recall = agent::replay_recall(
        traces, *load_sparse_flags(flow, a.sparse, model.config, page_size), page_size);
    const Json s = recall_summary_json(stats);
    const bool selective = s.value("rows", int64_t{0}) > 0;
    runs.push_back({{"flow", flow},
                    {"recall_mean", selective ? s["mean"] : Json(1.0)},
                    {"recall_p5", selective ? s["p5"] : Json(1.0)},
                    {"rows", s.value("rows", int64_t{0})},
                    {"recall_by_layer", s.value("per_layer", Json::array())}});
  }
  if (a.json) {
    std::printf("%s\n", Json({{"model", a.model},
                              {"context", a.context},
                              {"samples", requests.size()},
                              {"decode_steps", a.recall_tokens},
                              {"page_size", page_size},
                              {"runs", runs}})
                            .dump()
                            .c_str());
    return 0;
  }
  std::printf("vortex eval --recall-replay: %s, %zu samples, %d decode steps each, pages of %d\n",
              a.model.c_str(), requests.size(), a.recall_tokens, page_size);
  std::printf("  %-20s %8s %8s %10s\n", "flow", "recall", "p5", "rows");
  for (const Json& r : runs) {
    std::printf("  %-20s %8.3f %8.3f %10lld\n",
                fs::path(r["flow"].get<std::string>()).stem().string().c_str(),
                r["recall_mean"].get<double>(), r["recall_p5"].get<double>(),
                static_cast<long long>(r["rows"].get<int64_t>()));
  }
  std::printf(
      "  (recall: the share of full attention's softmax mass on the selected pages, per "
      "sparse layer and KV head row of each decode step; p5: its 5th percentile)\n");
  return 0;
}

int run_tasks(const EvalArgs& a) {
  LoadedModel model = a.load_model();
  const Tokenizer& tokenizer = model.require_tokenizer();

  std::vector<eval::TaskSample> samples;
  if (!a.task_file.empty()) {
    samples = read_task_file(a.task_file);
  } else {
    const std::vector<std::string> tasks = eval::parse_task_list(a.tasks);
    if (a.chat && !model.chat_template) {
      fail("model '", a.model, "' has no chat template (tokenizer_config.json): drop --chat");
    }
    eval::PromptEncoder encoder(tokenizer, a.chat ? model.chat_template : std::nullopt);
    std::fprintf(stderr, "generating %zu samples at context %d\n",
                 tasks.size() * static_cast<size_t>(a.samples), a.context);
    samples = eval::generate_task_samples(tasks, a.context, a.samples, a.seed, encoder, a.variant);
  }

  std::vector<eval::EvalRequest> requests;
  for (const eval::TaskSample& s : samples) {
    eval::EvalRequest r;
    if (a.task_file.empty()) {
      r.prompt = s.prompt_ids;
    } else {
      r.prompt = tokenizer.encode(s.prompt, /*add_special_tokens=*/!s.chat);
      if (!s.prompt_ids.empty() && s.prompt_ids != r.prompt) {
        fail(a.task_file, ": sample ", s.task, " ", s.index,
             " was tokenized by another tokenizer "
             "than model '",
             a.model, "'s (its prompt_ids differ)");
      }
    }
    r.params.max_tokens = a.max_tokens > 0 ? a.max_tokens : s.max_new_tokens;
    check_fits(model, static_cast<int64_t>(r.prompt.size()), r.params.max_tokens,
               s.task + " sample " + std::to_string(s.index));
    requests.push_back(std::move(r));
  }

  if (a.recall_replay) return run_recall_replay(a, model, requests);
  // Every configuration runs the same samples with a fresh engine (and KV cache).
  const std::vector<std::string> configs = a.configs();
  std::vector<Json> runs, predictions;
  for (const std::string& flow : configs) {
    runs.push_back(evaluate_tasks(a, model, samples, requests, flow, &predictions));
  }
  if (!a.predictions.empty()) write_jsonl(a.predictions, predictions);

  if (configs.size() == 1) {
    if (a.json) {
      std::printf("%s\n", runs.front().dump().c_str());
    } else {
      print_task_report(a, runs.front());
    }
    return 0;
  }
  if (a.json) {
    const Json out = {{"model", a.model},
                      {"context", a.task_file.empty() ? Json(a.context) : Json(nullptr)},
                      {"seed", a.seed},
                      {"runs", runs}};
    std::printf("%s\n", out.dump().c_str());
  } else {
    print_comparison(a, runs);
  }
  return 0;
}

std::string figure4(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

// --perplexity: every configuration scores the same documents' last --score-tokens tokens.
int run_perplexity(const EvalArgs& a) {
  LoadedModel model = a.load_model();
  const std::vector<std::string> files = split_comma_list(a.data);
  const std::vector<std::vector<int32_t>> docs =
      eval::perplexity_documents(files, model.require_tokenizer(), a.context, a.samples);
  check_fits(model, a.context, 0, "--context");
  const std::vector<eval::EvalRequest> requests = eval::perplexity_requests(docs, a.score_tokens);
  std::fprintf(stderr, "%zu documents of %d tokens: %d prefilled, %d scored each\n", docs.size(),
               a.context, a.context - a.score_tokens, a.score_tokens);
  std::vector<Json> runs;
  std::optional<eval::TokenNll> full;
  for (const std::string& flow : a.configs()) {
    Engine engine(model, engine_options(a, model, flow));
    Progress progress(flow.empty() ? "perplexity" : "perplexity " + fs::path(flow).stem().string(),
                      /*quiet=*/false);
    const eval::EvalRun run = eval::run_eval_requests(
        engine, requests, [&](int64_t done, int64_t total) { progress.update(done, total); });
    const eval::TokenNll nll = eval::token_nll(run);
    Json r = {{"nll_mean", nll.mean()}, {"perplexity", nll.perplexity()}, {"tokens", nll.tokens()}};
    r.update(run_stats(run.timing, engine, flow));
    if (flow.empty()) {
      full = nll;
    } else if (full) {
      const eval::NllDifference d = eval::nll_difference(nll, *full);
      r["vs_full"] = {{"nll_diff_mean", d.mean},
                      {"nll_diff_ci95", std::isfinite(d.ci95) ? Json(d.ci95) : Json(nullptr)},
                      {"over", d.over},
                      {"units", d.units},
                      {"perplexity_ratio", std::exp(d.mean)}};
    }
    runs.push_back(std::move(r));
  }
  if (a.json) {
    Json out = {{"model", a.model},         {"data", files},
                {"context", a.context},     {"score_tokens", a.score_tokens},
                {"documents", docs.size()}, {"runs", runs}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf(
      "vortex eval --perplexity: %s, %zu documents of %d tokens (%d prefilled, %d scored "
      "one decode step at a time)\n",
      a.model.c_str(), docs.size(), a.context, a.context - a.score_tokens, a.score_tokens);
  std::printf("  %-16s %8s %10s %11s   %s\n", "attention", "KV read", "NLL/token", "perplexity",
              "vs full: NLL difference (95% CI), perplexity");
  for (const Json& r : runs) {
    const std::string flow = r["flow"].get<std::string>();
    const double kv = r.contains("kv_read_fraction_sparse_layers")
                          ? r["kv_read_fraction_sparse_layers"].get<double>()
                          : r["kv_read_fraction"].get<double>();
    std::printf("  %-16s %7.1f%% %10.4f %11.3f", fs::path(flow).stem().string().c_str(), 100.0 * kv,
                r["nll_mean"].get<double>(), r["perplexity"].get<double>());
    if (r.contains("vs_full")) {
      const Json& d = r["vs_full"];
      const std::string ci = d["nll_diff_ci95"].is_number()
                                 ? str_cat(" +/- ", figure4(d["nll_diff_ci95"].get<double>()))
                                 : std::string();
      std::printf("   %+.4f%s over %lld %s, %+.2f%%", d["nll_diff_mean"].get<double>(), ci.c_str(),
                  static_cast<long long>(d["units"].get<int64_t>()),
                  d["over"].get<std::string>().c_str(),
                  100.0 * (d["perplexity_ratio"].get<double>() - 1.0));
    }
    std::printf("\n");
  }
  return 0;
}

std::string render_question(const std::string& tmpl, const std::string& question) {
  std::string out = tmpl;
  const std::string key = "{question}";
  for (size_t at = out.find(key); at != std::string::npos;
       at = out.find(key, at + question.size())) {
    out.replace(at, key.size(), question);
  }
  return out;
}

int run_data(const EvalArgs& a) {
  if (a.trials < 1) fail_usage("--trials must be at least 1, got ", a.trials);
  if (a.question_template.find("{question}") == std::string::npos) {
    fail_usage("--question-template must contain {question}");
  }
  const std::vector<eval::QaItem> items = eval::load_qa_jsonl(a.data);
  LoadedModel model = a.load_model();
  const Tokenizer& tokenizer = model.require_tokenizer();
  if (a.chat && !model.chat_template) {
    fail("model '", a.model, "' has no chat template (tokenizer_config.json): drop --chat");
  }

  const int32_t max_tokens = a.max_tokens > 0 ? a.max_tokens : kDataDefaultMaxTokens;
  std::vector<eval::EvalRequest> requests;
  for (size_t p = 0; p < items.size(); ++p) {
    const std::string body = render_question(a.question_template, items[p].question);
    std::vector<int32_t> prompt;
    if (a.chat) {
      std::vector<ChatMessage> msgs;
      if (!a.system.empty()) msgs.push_back({"system", a.system});
      msgs.push_back({"user", body});
      prompt = tokenizer.encode(model.chat_template->apply(msgs, true), false);
    } else {
      prompt = tokenizer.encode(body, true);
    }
    const int64_t room = model.config.max_position_embeddings - static_cast<int64_t>(prompt.size());
    if (room < 1) {
      fail(a.data, ":", items[p].line, ": the question takes ", prompt.size(),
           " tokens, more than the model's context of ", model.config.max_position_embeddings);
    }
    for (int32_t t = 0; t < a.trials; ++t) {
      eval::EvalRequest r;
      r.prompt = prompt;
      // The engine stops a request at the model's context, so long budgets are safe.
      r.params.max_tokens = static_cast<int32_t>(std::min<int64_t>(max_tokens, room));
      r.params.sampling.temperature = static_cast<float>(a.temperature);
      r.params.sampling.top_p = static_cast<float>(a.top_p);
      r.params.sampling.top_k = a.top_k;
      // Every trial its own reproducible stream (seed 0 would mean "random").
      r.params.sampling.seed =
          eval::sample_seed(a.seed, "trial", static_cast<int64_t>(p) * a.trials + t) | 1;
      requests.push_back(std::move(r));
    }
  }
  const std::string flow = a.sparse.flows.empty() ? "" : a.sparse.flows[0];
  Engine engine(model, engine_options(a, model, flow));
  Progress progress("eval", /*quiet=*/false);
  eval::EvalRun run = eval::run_eval_requests(
      engine, requests, [&](int64_t done, int64_t total) { progress.update(done, total); });

  std::vector<int64_t> correct(items.size(), 0);
  std::vector<Json> predictions;
  for (size_t i = 0; i < requests.size(); ++i) {
    const size_t p = i / static_cast<size_t>(a.trials);
    const std::string& text = run.results[i].text;
    const std::optional<std::string> extracted = eval::extract_final_answer(text);
    const bool ok = extracted && eval::final_answers_match(*extracted, items[p].answer);
    correct[p] += ok ? 1 : 0;
    predictions.push_back({{"id", items[p].id},
                           {"trial", i % static_cast<size_t>(a.trials)},
                           {"answer", items[p].answer},
                           {"extracted", extracted ? Json(*extracted) : Json(nullptr)},
                           {"correct", ok},
                           {"completion", text}});
  }
  if (!a.predictions.empty()) write_jsonl(a.predictions, predictions);
  const eval::QaReport report = eval::summarize_qa(correct, a.trials);
  const Json stats = run_stats(run.timing, engine, flow);
  if (a.json) {
    Json out = {{"model", a.model},
                {"data", a.data},
                {"problems", report.problems},
                {"trials", report.trials},
                {"accuracy", report.mean_at_k},
                {"mean_at_k", report.mean_at_k},
                {"pass_at_k", report.pass_at_k},
                {"pass_at_1", report.pass_at_1},
                {"temperature", a.temperature},
                {"top_p", a.top_p},
                {"seed", a.seed}};
    out.update(stats);
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf("vortex eval: %s on %s, %lld problems x %d trials, %s attention\n", a.model.c_str(),
              a.data.c_str(), static_cast<long long>(report.problems), a.trials,
              a.sparse.flows.empty() ? "full" : a.sparse.flows[0].c_str());
  std::printf("  mean@%d %.3f   pass@%d %.3f\n", a.trials, report.mean_at_k, a.trials,
              report.pass_at_k);
  print_run_stats(stats);
  return 0;
}

}  // namespace

Action add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Accuracy: synthetic long-context tasks (RULER-style) or a jsonl Q/A dataset");
  add_model_flags(cmd, *a);
  cmd->add_option("--tasks", a->tasks,
                  "Comma-separated tasks: niah_single, niah_multikey, niah_multivalue, vt, cwe, "
                  "or all")
      ->capture_default_str();
  cmd->add_option("--context", a->context, "Prompt length of each sample in tokens")
      ->capture_default_str();
  cmd->add_option("--samples", a->samples, "Samples per task")->capture_default_str();
  cmd->add_option("--seed", a->seed, "Seed of the generated samples (and of sampling)")
      ->capture_default_str();
  cmd->add_flag("--chat", a->chat, "Wrap each prompt as a user turn of the model's chat template");
  cmd->add_option("--vt-chains", a->variant.vt_chains,
                  "vt variant for training curricula: chains of assignments (the queried one "
                  "and distractors; evaluation's default 2)")
      ->capture_default_str();
  cmd->add_option("--vt-hops", a->variant.vt_hops,
                  "vt variant for training curricula: assignments after the first in each chain "
                  "(evaluation's default 4)")
      ->capture_default_str();
  cmd->add_option("--vt-value-digits", a->variant.vt_value_digits,
                  "vt variant for training curricula: digits of each chain's value "
                  "(evaluation's default 5)")
      ->capture_default_str();
  cmd->add_option("--system", a->system, "System message with --chat and --data");
  cmd->add_option("--dump-tasks", a->dump_tasks,
                  "Write the generated samples to this jsonl file and exit (needs only the "
                  "tokenizer)");
  cmd->add_flag("--dump-ids", a->dump_ids,
                "With --dump-tasks, also write prompt_ids and target_ids (Vortex's tokenization)");
  cmd->add_option("--task-file", a->task_file,
                  "Evaluate samples read from a --dump-tasks file instead of generating them");
  cmd->add_option("--data", a->data,
                  "Question/answer jsonl dataset (fields question|problem and answer)");
  cmd->add_option("--question-template", a->question_template,
                  "Prompt for --data; {question} is replaced by the question");
  cmd->add_option("--trials", a->trials, "Samples per question with --data (mean@K, pass@K)")
      ->capture_default_str();
  cmd->add_option("--temperature", a->temperature, "Sampling temperature; 0 = greedy")
      ->capture_default_str();
  cmd->add_option("--top-p", a->top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  cmd->add_option("--top-k", a->top_k, "Keep the k most likely tokens (0 = off)")
      ->capture_default_str();
  cmd->add_option("--max-tokens", a->max_tokens,
                  "Tokens to generate per sample (0 = the task's answer length plus a margin, or "
                  "2048 with --data)")
      ->capture_default_str();
  cmd->add_option("--predictions", a->predictions,
                  "Also write every sample's completion and score to this jsonl file");
  add_engine_flags(cmd, a->engine, eval_engine_flags());
  cmd->add_flag("--json", a->json, "Print the results as one JSON object");
  add_sparse_flags(cmd, a->sparse, /*several_flows=*/true);
  cmd->add_flag("--perplexity", a->perplexity,
                "Perplexity under sparse decode: --data names text files (comma-separated), cut "
                "into --samples documents of --context tokens; each document's last "
                "--score-tokens tokens are scored one decode step at a time, teacher-forced, "
                "with full attention and each --flow");
  cmd->add_option("--score-tokens", a->score_tokens,
                  "With --perplexity: tokens scored per document (the rest is the prompt)")
      ->capture_default_str();
  cmd->add_flag("--recall-replay", a->recall_replay,
                "Attention recall only, for every --flow, on one recorded trajectory: full "
                "attention decodes each sample --recall-tokens steps once (CPU), and each flow's "
                "page selection is replayed on it (no accuracy; far faster than --record-recall "
                "per flow at long contexts)");
  cmd->add_option("--recall-tokens", a->recall_tokens,
                  "With --recall-replay: decode steps recorded per sample")
      ->capture_default_str();
  cmd->add_option("--recall-traces", a->recall_traces,
                  "With --recall-replay: keep the recorded trajectory in this file and reuse it "
                  "when it exists (other budgets, other flows, the same samples)");
  cmd->add_flag("--compare-full", a->compare_full,
                "With --flow (repeatable): also evaluate full attention on the same samples and "
                "print every configuration side by side (--json: a \"runs\" list)");

  return [a]() {
    if (a->samples < 1) fail_usage("--samples must be at least 1, got ", a->samples);
    if (a->context < 1) fail_usage("--context must be at least 1, got ", a->context);
    if (a->max_tokens < 0) fail_usage("--max-tokens must be >= 0, got ", a->max_tokens);
    a->base_engine_options = engine_options_from_flags(a->engine, eval_engine_flags());
    eval::check_task_variant(a->variant);
    const int modes = !a->dump_tasks.empty() + !a->task_file.empty() + !a->data.empty();
    if (modes > 1) fail_usage("--dump-tasks, --task-file and --data exclude each other");
    if (a->compare_full && a->sparse.flows.empty()) fail_usage("--compare-full needs --flow");
    if (!a->dump_tasks.empty()) return dump_tasks(*a);
    if (a->perplexity) {
      if (!a->task_file.empty()) fail_usage("--perplexity reads --data, not --task-file");
      return run_perplexity(*a);
    }
    if (!a->data.empty()) {
      if (a->sparse.flows.size() > 1 || a->compare_full) {
        fail_usage(
            "--data evaluates one attention configuration: give at most one --flow and "
            "no --compare-full");
      }
      return run_data(*a);
    }
    return run_tasks(*a);
  };
}

}  // namespace vortex::cli
