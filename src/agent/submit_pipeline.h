// `vortex submit`'s staged verdict of one flow. Stages run cheapest first and stop at the first
// that fails, naming the reason (file:line:col where it has one):
//   verify     the flow compiles for the evaluation model's geometry and for the throughput
//              workload's, under every target's rules (the CUDA generator included) and the
//              resource limits;
// With SubmitOptions::server, verify also registers the flow on that server, and recall and
// accuracy run there (agent/flow_server.h); the flow is removed again at the end.
//   recall     attention recall against full attention on recorded decode traces of the suite's
//              first samples (agent/decode_traces.h: recorded once per evaluation, kept beside
//              the store, replayed for each flow): the share of full attention's softmax mass on
//              the pages the flow selects, per sparse layer: mean and 5th percentile, gated by a
//              minimum mean;
//   accuracy   the fixed synthetic suite with full attention and the flow on the same samples;
//              passes when the mean is at least full's mean - max_mean_drop and no task drops
//              more than max_task_drop (full attention's run is cached in the results store);
//              then, with a natural model, perplexity under sparse decode of held-out text on
//              it (eval/perplexity.h): passes when the flow's perplexity is at most
//              1 + max_perplexity_increase times full attention's (full's NLL cached too);
//   throughput the decode speed-up over full attention on the standard workload: measured by
//              `vortex bench --compare-full` (full attention and the flow in one process) when
//              asked (SubmitOptions::measure, the default on a GPU), else estimated from the
//              bytes a decode step moves (labelled an estimate).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "agent/submission.h"
#include "core/device.h"
#include "flow/budget_planner.h"
#include "flow/codegen/cuda_codegen.h"
#include "model/model_config.h"

namespace vortex::agent {

class ResultsStore;

struct SubmitOptions {
  // The evaluation: model directory, tasks, context, samples per task, seed, page size.
  std::string model = "models/needle";
  std::vector<std::string> tasks = {"niah_single", "niah_multikey", "niah_multivalue", "vt"};
  int32_t context = 4096;
  int32_t samples = 10;
  uint64_t seed = 1;
  int32_t page_size = 16;
  Device device = Device::kCpu;
  flow::BudgetOverrides budget;  // the submitter's overrides of the flow's own budget
  // The accuracy stage's second part: a language model trained on natural text and code, not
  // for any flow (models/natural), scores held-out text teacher-forced under full attention and
  // under the flow (`vortex eval --perplexity`). Empty natural_model: not run. natural_data
  // empty: the model directory's heldout/*.txt. Runs on `device`, also with --server.
  std::string natural_model;
  std::vector<std::string> natural_data;
  int32_t natural_context = 4096;
  int32_t natural_documents = 4;
  int32_t natural_score_tokens = 64;
  // Gates.
  double max_perplexity_increase = 0.02;  // accuracy: flow perplexity <= (1 + this) x full's
  double min_recall = 0.5;                // the recall stage fails below this mean recall
  double max_mean_drop = 0.02;            // accuracy: mean >= full's mean - this
  double max_task_drop = 0.05;            // accuracy: no task below full's by more than this
  // The recall stage's decode steps: this many samples (the first of each task in turn), this
  // many generated tokens each.
  int32_t recall_samples = 4;
  int32_t recall_tokens = 8;
  // The throughput workload: a preset, batch and context (docs/performance.md's headline).
  std::string workload_model = "qwen3-1.7b";
  int32_t workload_batch = 32;
  int32_t workload_context = 16384;
  int32_t workload_output = 256;  // tokens generated per row when measured
  // Measure the throughput with `vortex_binary bench ... --device <device> --compare-full`
  // instead of estimating it.
  bool measure = false;
  std::string vortex_binary;
  // `--server URL`: run the recall and accuracy stages on this running `vortex serve` (its
  // engine warm), with the served checkpoint as the evaluation model (`model` is replaced by
  // its model_path, which must be readable here for the tokenizer).
  std::string server;
  int32_t server_concurrency = 8;  // prompts in flight at once
  // Where the verdict ran (filled by the caller: the CLI knows the build and the machine).
  std::string machine, card, commit;
};

// `vortex submit --quick`: the same stages on fewer samples (about 3 minutes on 2 CPU cores for
// a flow with full attention's run not yet cached).
SubmitOptions quick_options(SubmitOptions o);

// The natural model's held-out text: DIR/heldout/*.txt in name order. A usage error when there
// is none.
std::vector<std::string> default_natural_data(const std::string& model_dir);

// One line of progress: the stage and what it is doing.
using SubmitProgress = std::function<void(const std::string& stage, const std::string& message)>;

// Runs the stages on the flow at `path`. `store` (optional) caches full attention's results
// between submissions; the submission is not stored here (the caller adds it). Bad options
// (unknown task, missing model) throw vortex::Error; a bad flow is a failed stage, not an
// exception.
Submission run_submission(const std::string& path, const SubmitOptions& options,
                          ResultsStore* store, const SubmitProgress& progress = {});

// The throughput stage's estimate, exposed for tests: bytes one decode step of the workload moves
// with full attention and with the flow, and the estimated times (see the .cpp for the model).
struct StepBytes {
  double weights = 0;      // every layer's weights and lm_head, bf16
  double full_kv = 0;      // full attention: every layer reads every page's K and V
  double dense_kv = 0;     // the flow's dense layers: every page
  double selected_kv = 0;  // the flow's sparse layers: the selected pages
  double fields = 0;       // Fields of every scoreable page, every sparse layer
  double state = 0;        // State read and written for every scoreable page
  double flow_total() const { return weights + dense_kv + selected_kv + fields + state; }
  double full_total() const { return weights + full_kv; }
  // Each figure in gigabytes: {"weights", "full_kv", "dense_kv", "selected_kv", "fields",
  // "state"}.
  Json gigabytes_json() const;
};

// The bytes of one decode step of `batch` rows of `context` tokens on `model`, with the flow
// (its budget, its CUDA Field and State layout) and with full attention.
StepBytes estimate_step_bytes(const flow::BudgetPolicy& policy, const flow::CudaFlowSource& cuda,
                              const ModelConfig& model, int32_t page_size, int32_t batch,
                              int32_t context);

// A decode step's estimated time on the reference card (an H100): bytes over the bandwidth a
// full-attention step reaches there, plus the fixed part of a step that is not memory traffic.
// Calibrated on measured steps (docs/performance.md); an estimate, not a measurement.
double estimated_step_seconds(double bytes);
inline constexpr double kReferenceBandwidth = 2.82e12;     // bytes/s
inline constexpr double kReferenceStepOverhead = 1.55e-3;  // s
inline constexpr const char* kReferenceCard = "H100 80GB HBM3";

}  // namespace vortex::agent
