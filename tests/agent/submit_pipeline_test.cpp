// The staged verdict (agent/submit_pipeline.h): a broken flow stops at verify with a located
// reason; each gate rejects at its own stage; a flow that passes gets every stage's figures;
// full attention's run is cached in the store; the throughput estimate adds up its bytes.
#include "agent/submit_pipeline.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "agent/results_store.h"
#include "flow/compiler.h"
#include "flow/source_file.h"
#include "model/presets.h"

namespace vortex::agent {
namespace {

namespace fs = std::filesystem;

std::string source_path(const std::string& rel) {
  return std::string(VORTEX_SOURCE_DIR) + "/" + rel;
}

fs::path temp_file(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / (std::to_string(getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p;
}

// The tiny test checkpoint (random weights: its accuracy is 0 with any attention), short
// samples, pages of 4 tokens so that a budget of 1/8 selects.
SubmitOptions tiny_options() {
  SubmitOptions o;
  o.model = source_path("tests/data/models/tiny-qwen3");
  o.tasks = {"niah_single", "vt"};
  o.context = 512;
  o.samples = 2;
  o.page_size = 4;
  o.recall_samples = 2;
  o.recall_tokens = 4;
  o.budget.ratio = 0.125;
  // A random model spreads its attention evenly, so a selective flow's recall is about the share
  // of pages it reads: no recall gate here (TheRecallGateRejectsAtRecall has one).
  o.min_recall = 0;
  return o;
}

const StageResult* stage(const Submission& s, const std::string& name) {
  for (const StageResult& st : s.stages)
    if (st.stage == name) return &st;
  return nullptr;
}

TEST(SubmitPipeline, ABrokenFlowStopsAtVerifyWithItsLine) {
  const fs::path p = temp_file("broken.py", "def score(q, k):\n    return q @ k.nope(\n");
  const Submission s = run_submission(p.string(), tiny_options(), nullptr);
  ASSERT_EQ(s.stages.size(), 1u);
  EXPECT_EQ(s.stages[0].stage, kStageVerify);
  EXPECT_EQ(s.stages[0].status, StageStatus::kFailed);
  EXPECT_FALSE(s.accepted);
  EXPECT_EQ(s.failed_stage, kStageVerify);
  EXPECT_NE(s.stages[0].reason.find(p.string() + ":2:"), std::string::npos) << s.stages[0].reason;
  EXPECT_FALSE(s.source.empty()) << "the source is kept, so a resubmission is recognized";
  fs::remove(p);
}

TEST(SubmitPipeline, AMissingFileStopsAtVerifyNamingIt) {
  const Submission s = run_submission("/nonexistent/flow.py", tiny_options(), nullptr);
  ASSERT_EQ(s.stages.size(), 1u);
  EXPECT_EQ(s.failed_stage, kStageVerify);
  EXPECT_NE(s.stages[0].reason.find("/nonexistent/flow.py"), std::string::npos);
}

TEST(SubmitPipeline, AGoodFlowGetsEveryStageAndFullAttentionIsCached) {
  const fs::path db = fs::temp_directory_path() / (std::to_string(getpid()) + "_submit.db");
  fs::remove(db);
  ResultsStore store(db.string());
  const SubmitOptions o = tiny_options();
  const Submission s = run_submission(source_path("flows/quest.py"), o, &store);
  ASSERT_EQ(s.stages.size(), 4u);
  for (const StageResult& st : s.stages)
    EXPECT_EQ(st.status, StageStatus::kPassed) << st.stage << ": " << st.reason;
  EXPECT_TRUE(s.accepted);
  EXPECT_EQ(s.name, "quest");
  // Recall: measured on selective rows, in (0, 1].
  const StageResult* recall = stage(s, kStageRecall);
  ASSERT_NE(recall, nullptr);
  EXPECT_GT(recall->figures["rows"].get<int64_t>(), 0);
  EXPECT_GT(s.recall, 0.0);
  EXPECT_LE(s.recall, 1.0 + 1e-6);
  // Accuracy: both runs on the same samples; the flow read fewer pages.
  const StageResult* acc = stage(s, kStageAccuracy);
  ASSERT_NE(acc, nullptr);
  EXPECT_FALSE(acc->figures["full_cached"].get<bool>());
  EXPECT_TRUE(std::isfinite(s.accuracy));
  EXPECT_TRUE(std::isfinite(s.full_accuracy));
  EXPECT_LT(s.kv_read_fraction, 1.0);
  EXPECT_EQ(acc->figures["tasks"].size(), 2u);
  // Throughput: an estimate, labelled, above 1 for a selective budget.
  EXPECT_TRUE(s.speedup_estimated);
  EXPECT_GT(s.speedup, 1.0);
  EXPECT_TRUE(stage(s, kStageThroughput)->figures["estimate"].get<bool>());
  // Each figure says how to reproduce it alone: `vortex eval --compare-full` on the same samples,
  // and the `vortex bench --compare-full` a GPU would measure.
  const std::string eval = acc->figures["command"].get<std::string>();
  EXPECT_EQ(eval.rfind("vortex eval --model ", 0), 0u) << eval;
  for (const std::string& part :
       {str_cat("--context ", o.context), str_cat("--samples ", o.samples), std::string("--flow "),
        std::string("--compare-full"), std::string("--tasks niah_single,vt")})
    EXPECT_NE(eval.find(part), std::string::npos) << part << " in " << eval;
  const std::string bench = stage(s, kStageThroughput)->figures["measure_with"].get<std::string>();
  EXPECT_EQ(bench.rfind("vortex bench --model qwen3-1.7b --random-weights --device cuda ", 0), 0u)
      << bench;
  EXPECT_NE(bench.find("--compare-full"), std::string::npos) << bench;
  // The second submission reuses full attention's run.
  const Submission again = run_submission(source_path("flows/block_topk.py"), o, &store);
  ASSERT_NE(stage(again, kStageAccuracy), nullptr);
  EXPECT_TRUE(stage(again, kStageAccuracy)->figures["full_cached"].get<bool>());
  EXPECT_EQ(again.full_accuracy, s.full_accuracy);
  fs::remove(db);
}

TEST(SubmitPipeline, TheRecallGateRejectsAtRecall) {
  SubmitOptions o = tiny_options();
  o.min_recall = 1.0;  // no selective flow keeps all of full attention's mass on a random model
  const Submission s = run_submission(source_path("flows/streaming.py"), o, nullptr);
  EXPECT_FALSE(s.accepted);
  EXPECT_EQ(s.failed_stage, kStageRecall);
  EXPECT_EQ(s.stages.size(), 2u);
  EXPECT_NE(s.stages.back().reason.find("--min-recall"), std::string::npos);
}

// On the trained model, streaming (sink and recent pages only) loses the needle: rejected at
// the accuracy gate, naming the figures.
TEST(SubmitPipeline, TheAccuracyGateRejectsAFlowThatLosesTheNeedle) {
  SubmitOptions o;
  o.model = source_path("models/needle");
  o.tasks = {"niah_single"};
  o.context = 4096;  // the window (64 pages) holds a quarter of it
  o.samples = 3;
  o.min_recall = 0;
  o.budget.ratio = 0.0625;
  const Submission s = run_submission(source_path("flows/streaming.py"), o, nullptr);
  EXPECT_EQ(s.failed_stage, kStageAccuracy) << (s.stages.empty() ? "" : s.stages.back().reason);
  ASSERT_EQ(s.stages.size(), 3u);
  EXPECT_LT(s.accuracy, s.full_accuracy - o.max_mean_drop);
  EXPECT_NE(s.stages.back().reason.find("--max-mean-drop"), std::string::npos);
}

// With a natural model the accuracy stage also scores held-out text teacher-forced under full
// attention and the flow (here the tiny checkpoint and a licence text): the figures are those of
// `vortex eval --perplexity --compare-full`, full attention's NLL is cached, and the gate
// compares the perplexity ratio with 1 + max_perplexity_increase.
TEST(SubmitPipeline, TheNaturalModelsPerplexityIsPartOfTheAccuracyStage) {
  const fs::path db = fs::temp_directory_path() / (std::to_string(getpid()) + "_natural.db");
  fs::remove(db);
  ResultsStore store(db.string());
  SubmitOptions o = tiny_options();
  o.natural_model = source_path("tests/data/models/tiny-qwen3");
  o.natural_data = {source_path("tests/data/perplexity/gpl-3.txt")};
  o.natural_context = 256;
  o.natural_documents = 2;
  o.natural_score_tokens = 24;
  o.max_perplexity_increase = 1.0;
  const Submission s = run_submission(source_path("flows/quest.py"), o, &store);
  ASSERT_TRUE(s.accepted) << s.failed_stage << ": " << s.stages.back().reason;
  const Json p = stage(s, kStageAccuracy)->figures["perplexity"];
  ASSERT_TRUE(p.is_object());
  EXPECT_EQ(p["documents"].get<int64_t>(), 2);
  EXPECT_EQ(p["tokens"].get<int64_t>(), 48);
  EXPECT_FALSE(p["full_cached"].get<bool>());
  EXPECT_LT(p["kv_read_fraction"].get<double>(), 1.0);
  const double full = p["full_nll"].get<double>(), flow = p["flow_nll"].get<double>();
  EXPECT_NEAR(p["nll_diff"].get<double>(), flow - full, 1e-9);
  EXPECT_NEAR(p["ratio"].get<double>(), std::exp(flow - full), 1e-9);
  EXPECT_EQ(p["over"].get<std::string>(), "documents");
  const std::string cmd = p["command"].get<std::string>();
  for (const std::string& part : {std::string("vortex eval --model "), std::string("--perplexity"),
                                  std::string("--context 256"), std::string("--samples 2"),
                                  std::string("--score-tokens 24"), std::string("--compare-full")})
    EXPECT_NE(cmd.find(part), std::string::npos) << part << " in " << cmd;
  EXPECT_EQ(s.parameters["natural"]["documents"].get<int64_t>(), 2);

  // Just above the measured ratio passes, just below fails; full attention comes from the cache.
  const double increase = p["ratio"].get<double>() - 1.0;
  o.max_perplexity_increase = increase + 1e-6;
  const Submission pass = run_submission(source_path("flows/quest.py"), o, &store);
  EXPECT_TRUE(pass.accepted) << pass.stages.back().reason;
  EXPECT_TRUE(stage(pass, kStageAccuracy)->figures["perplexity"]["full_cached"].get<bool>());
  EXPECT_EQ(stage(pass, kStageAccuracy)->figures["perplexity"]["full_nll"].get<double>(), full);
  o.max_perplexity_increase = increase - 1e-6;
  const Submission fail = run_submission(source_path("flows/quest.py"), o, &store);
  EXPECT_FALSE(fail.accepted);
  EXPECT_EQ(fail.failed_stage, kStageAccuracy);
  EXPECT_NE(fail.stages.back().reason.find("--max-perplexity-increase"), std::string::npos)
      << fail.stages.back().reason;
  EXPECT_TRUE(stage(fail, kStageAccuracy)->figures["perplexity"].is_object());
  fs::remove(db);
}

// --measure: the throughput comes from `vortex bench --compare-full` (here on the CPU, with the
// tiny checkpoint as the workload), not from bytes.
TEST(SubmitPipeline, MeasuredThroughputRunsBenchCompareFull) {
  SubmitOptions o = tiny_options();
  o.measure = true;
  o.vortex_binary = VORTEX_BINARY;
  o.workload_model = source_path("tests/data/models/tiny-qwen3");
  o.workload_batch = 2;
  o.workload_context = 256;
  o.workload_output = 8;
  const Submission s = run_submission(source_path("flows/block_topk.py"), o, nullptr);
  ASSERT_TRUE(s.accepted) << (s.stages.empty() ? "" : s.stages.back().reason);
  const StageResult* t = stage(s, kStageThroughput);
  ASSERT_NE(t, nullptr);
  EXPECT_FALSE(s.speedup_estimated);
  EXPECT_FALSE(t->figures["estimate"].get<bool>());
  EXPECT_GT(s.speedup, 0.0);
  EXPECT_GT(t->figures["step_ms_full"].get<double>(), 0.0);
  EXPECT_LT(t->figures["kv_read_fraction"].get<double>(), 1.0);
  // A budget override reaches the bench: a full budget reads every page.
  o.budget.ratio = 1.0;
  const Submission all = run_submission(source_path("flows/block_topk.py"), o, nullptr);
  ASSERT_NE(stage(all, kStageThroughput), nullptr);
  EXPECT_DOUBLE_EQ(stage(all, kStageThroughput)->figures["kv_read_fraction"].get<double>(), 1.0);
}

TEST(SubmitPipeline, StepBytesAddUp) {
  const ModelConfig m = *preset_config("qwen3-1.7b");
  const std::string source = flow::read_flow_source_file(source_path("flows/block_topk.py"));
  const flow::FlowGeometry g{m.group_size(), m.head_dim, 16};
  flow::CompileOptions co;
  co.dump_ir = false;
  co.num_layers = m.num_layers;
  flow::CompileResult r = flow::compile_flow(source, "block_topk.py", &g, co);
  ASSERT_TRUE(r.ok());
  const flow::CudaFlowSource cuda = flow::generate_cuda_flow(*r.program, g, {});
  flow::BudgetPolicy p = r.program->budget;
  p.ratio = 0.0625;
  p.pages.reset();
  p.dense_layers = {0};
  const StepBytes b = estimate_step_bytes(p, cuda, m, 16, 32, 16384);
  const double page_kv = 2.0 * m.num_kv_heads * 16 * m.head_dim * 2;
  EXPECT_DOUBLE_EQ(b.full_kv, 32.0 * m.num_layers * 1024 * page_kv);
  EXPECT_DOUBLE_EQ(b.dense_kv, 32.0 * 1024 * page_kv);  // layer 0
  const flow::RowPlan plan = flow::plan_row(p, 1024);
  EXPECT_DOUBLE_EQ(b.selected_kv, 32.0 * (m.num_layers - 1) * plan.num_selected() * page_kv);
  EXPECT_DOUBLE_EQ(b.fields, 32.0 * (m.num_layers - 1) * m.num_kv_heads * plan.num_scoreable() *
                                 (2.0 * cuda.field_stride + 4.0 * cuda.field_scales));
  EXPECT_EQ(b.state, 0.0);  // block_topk keeps no State
  EXPECT_GT(estimated_step_seconds(b.full_total()), estimated_step_seconds(b.flow_total()));
}

}  // namespace
}  // namespace vortex::agent
