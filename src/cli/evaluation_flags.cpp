#include "cli/evaluation_flags.h"

#include <filesystem>
#include <thread>
#include <utility>

#include "cli/comma_list.h"
#include "cli/version.h"
#include "core/error.h"
#include "eval/tasks/tasks.h"

namespace vortex::cli {

const CLI::Validator& non_negative_integer() {
  static const CLI::Validator v(
      [](std::string& s) {
        return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos
                   ? std::string()
                   : "must be a non-negative integer, got '" + s + "'";
      },
      "UINT");
  return v;
}

void add_evaluation_flags(CLI::App* cmd, EvaluationFlags& f, const std::string& seed_flag) {
  agent::SubmitOptions& o = f.options;
  cmd->add_option("--model", o.model, "The evaluation model (a directory)")->capture_default_str();
  cmd->add_option("--tasks", f.tasks, "The suite's tasks, comma-separated ('all' = every task)")
      ->capture_default_str();
  f.context_opt = cmd->add_option("--context", o.context, "Prompt length of each sample in tokens")
                      ->capture_default_str();
  cmd->add_option("--samples", o.samples, "Samples per task")->capture_default_str();
  cmd->add_option(seed_flag, o.seed, "Seed of the suite's generated samples")
      ->check(non_negative_integer())
      ->capture_default_str();
  cmd->add_option("--page-size", o.page_size, "KV page size in tokens")->capture_default_str();
  cmd->add_option("--device", f.device,
                  "Where the accuracy stage runs: cpu or cuda (recall always runs on the CPU)")
      ->capture_default_str();
  cmd->add_option("--min-recall", o.min_recall,
                  "Recall stage: the smallest mean attention recall that passes")
      ->capture_default_str();
  cmd->add_option("--max-mean-drop", o.max_mean_drop,
                  "Accuracy stage: how far the mean may fall below full attention's")
      ->capture_default_str();
  cmd->add_option("--max-task-drop", o.max_task_drop,
                  "Accuracy stage: how far any one task may fall below full attention's")
      ->capture_default_str();
  cmd->add_option("--natural-model", f.natural_model,
                  "Accuracy stage, second part: perplexity under sparse decode on this language "
                  "model, trained on natural text and code and not for any flow ('auto': "
                  "models/natural when it exists; 'none': skip)")
      ->capture_default_str();
  cmd->add_option("--natural-data", f.natural_data,
                  "Text files (comma-separated) the natural model scores (default: the model "
                  "directory's heldout/*.txt)");
  cmd->add_option("--natural-context", o.natural_context,
                  "Tokens of each perplexity document (the last --natural-score-tokens of them "
                  "are scored one decode step at a time)")
      ->capture_default_str();
  cmd->add_option("--natural-documents", o.natural_documents, "Perplexity documents")
      ->capture_default_str();
  cmd->add_option("--natural-score-tokens", o.natural_score_tokens,
                  "Tokens scored at the end of each perplexity document")
      ->capture_default_str();
  cmd->add_option("--max-perplexity-increase", o.max_perplexity_increase,
                  "Accuracy stage: the flow's perplexity on the natural model may be at most "
                  "(1 + this) x full attention's")
      ->capture_default_str();
  cmd->add_flag("--measure", f.measure,
                "Throughput stage: measure the speed-up with `vortex bench --compare-full` on "
                "--device (the default with --device cuda) instead of estimating it from bytes");
  cmd->add_flag("--estimate", f.estimate,
                "Throughput stage: estimate from bytes even with --device cuda");
  cmd->add_option("--workload-model", o.workload_model,
                  "Throughput stage: the workload's model preset or directory (random weights; "
                  "the flow must also compile for it)")
      ->capture_default_str();
  cmd->add_option("--workload-batch", o.workload_batch, "Throughput stage: rows decoding at once")
      ->capture_default_str();
  cmd->add_option("--workload-context", o.workload_context,
                  "Throughput stage: prompt tokens of each row")
      ->capture_default_str();
  cmd->add_option("--workload-output", o.workload_output,
                  "Throughput stage (--measure): tokens each row generates")
      ->capture_default_str();
  cmd->add_option("--server", o.server,
                  "Run the recall and accuracy stages on a running `vortex serve` at this URL "
                  "(http://HOST:PORT), its engine warm: each flow is added there (POST "
                  "/v1/flows), judged through it and removed. The evaluation model is the served "
                  "checkpoint (its directory must be readable here); the server must take new "
                  "flows (vortex serve --device cpu)");
}

agent::SubmitOptions evaluation_options(const EvaluationFlags& f) {
  agent::SubmitOptions o = f.options;
  if (o.context < 256 || o.context > 1 << 20)
    fail_usage("--context must be in [256, 1048576], got ", o.context);
  if (o.samples < 1 || o.samples > 10000)
    fail_usage("--samples must be in [1, 10000], got ", o.samples);
  if (o.page_size <= 0 || (o.page_size & (o.page_size - 1)) != 0 || o.page_size > 4096)
    fail_usage("--page-size must be a power of two up to 4096, got ", o.page_size);
  for (const auto& [name, v] : {std::pair<const char*, double>{"--min-recall", o.min_recall},
                                {"--max-mean-drop", o.max_mean_drop},
                                {"--max-task-drop", o.max_task_drop}}) {
    if (!(v >= 0 && v <= 1)) fail_usage(name, " must be in [0, 1], got ", v);
  }
  o.tasks = eval::parse_task_list(f.tasks);
  if (f.natural_model == "auto") {
    o.natural_model = std::filesystem::is_directory("models/natural") ? "models/natural" : "";
  } else if (f.natural_model != "none") {
    if (!std::filesystem::is_directory(f.natural_model))
      fail_usage("--natural-model: '", f.natural_model, "' is not a directory ('none' skips)");
    o.natural_model = f.natural_model;
  }
  if (!o.natural_model.empty()) {
    if (!(o.max_perplexity_increase >= 0))
      fail_usage("--max-perplexity-increase must be >= 0, got ", o.max_perplexity_increase);
    if (o.natural_documents < 1 || o.natural_documents > 10000)
      fail_usage("--natural-documents must be in [1, 10000], got ", o.natural_documents);
    if (o.natural_context < 16 || o.natural_context > 1 << 20)
      fail_usage("--natural-context must be in [16, 1048576], got ", o.natural_context);
    if (o.natural_score_tokens < 1 || o.natural_score_tokens >= o.natural_context)
      fail_usage("--natural-score-tokens must be in [1, --natural-context), got ",
                 o.natural_score_tokens);
    o.natural_data = split_comma_list(f.natural_data);
    if (o.natural_data.empty()) o.natural_data = agent::default_natural_data(o.natural_model);
    for (const std::string& file : o.natural_data)
      if (!std::filesystem::is_regular_file(file))
        fail_usage("--natural-data: '", file, "' is not a readable file");
  } else if (!f.natural_data.empty()) {
    fail_usage("--natural-data needs a natural model (--natural-model DIR)");
  }
  try {
    o.device = parse_device(f.device);
  } catch (const Error& e) {
    fail_usage("--device: ", e.what());
  }
  if (f.measure && f.estimate) fail_usage("--measure and --estimate exclude each other");
  // On a GPU the throughput is measured unless --estimate; on the CPU only with --measure.
  o.measure = f.measure || (o.device == Device::kCuda && !f.estimate);
  if (o.measure) {
    std::error_code ec;
    o.vortex_binary = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    if (ec) fail("--measure: cannot find this program's path (/proc/self/exe): ", ec.message());
  }
  if (o.workload_batch < 1 || o.workload_batch > 4096)
    fail_usage("--workload-batch must be in [1, 4096], got ", o.workload_batch);
  if (o.workload_context < 16 || o.workload_context > (1 << 22))
    fail_usage("--workload-context must be in [16, 4194304], got ", o.workload_context);
  if (o.workload_output < 2 || o.workload_output > 65536)
    fail_usage("--workload-output must be in [2, 65536], got ", o.workload_output);
  o.machine = str_cat(cpu_model_name(), ", ", std::thread::hardware_concurrency(), " threads");
  o.commit = str_cat("vortex ", kVersion);
  return o;
}

}  // namespace vortex::cli
