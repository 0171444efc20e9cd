// `vortex eval` end to end on the tiny random model: the report's structure, the dump that the
// training script reads, datasets, and the errors a user can hit. The random model answers
// nothing right, so accuracy is only checked to be a number in [0, 1].
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "support/run_vortex.h"

namespace vortex {
namespace {

namespace fs = std::filesystem;

using testing::CmdResult;

CmdResult vortex(const std::vector<std::string>& args) { return testing::run_vortex(args); }

const std::string kModel = std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3";

std::string temp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("vortex_eval_" + std::to_string(getpid()) + "_" + name))
      .string();
}

std::vector<Json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<Json> rows;
  std::string line;
  while (std::getline(in, line)) rows.push_back(Json::parse(line));
  return rows;
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "in: " << (haystack)

TEST(EvalCli, TasksReportAccuracyPerTaskAndThroughput) {
  CmdResult r = vortex({"eval", "--model", kModel, "--tasks", "all", "--context", "400",
                        "--samples", "2", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["context"], 400);
  EXPECT_EQ(j["samples"], 10);
  EXPECT_EQ(j["flow"], "full");
  EXPECT_EQ(j["kv_read_fraction"], 1.0);
  EXPECT_GE(j["accuracy"].get<double>(), 0.0);
  EXPECT_LE(j["accuracy"].get<double>(), 1.0);
  EXPECT_GT(j["tokens_per_s"].get<double>(), 0.0);
  EXPECT_EQ(j["prefill_tokens"], 10 * 400);
  ASSERT_EQ(j["tasks"].size(), 5u);
  for (const char* t : {"niah_single", "niah_multikey", "niah_multivalue", "vt", "cwe"}) {
    ASSERT_TRUE(j["tasks"].contains(t)) << t;
    EXPECT_EQ(j["tasks"][t]["samples"], 2);
    EXPECT_EQ(j["tasks"][t]["prompt_tokens_mean"], 400.0);
    EXPECT_GE(j["tasks"][t]["accuracy"].get<double>(), 0.0);
  }
  EXPECT_CONTAINS(r.err, "eval: 100%");
}

TEST(EvalCli, TableListsTasksAndOverall) {
  CmdResult r = vortex({"eval", "--model", kModel, "--tasks", "niah_single,vt", "--context", "300",
                        "--samples", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "context 300, full attention");
  EXPECT_CONTAINS(r.out, "niah_single");
  EXPECT_CONTAINS(r.out, "overall");
  EXPECT_CONTAINS(r.out, "tokens/s");
}

TEST(EvalCli, SparseFlowReportsKvReadAndRecall) {
  CmdResult r =
      vortex({"eval", "--model", kModel, "--tasks", "niah_single", "--context", "600", "--samples",
              "2", "--flow", std::string(VORTEX_SOURCE_DIR) + "/flows/quest.py", "--topk-pages",
              "4", "--record-recall", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_LT(j["kv_read_fraction"].get<double>(), 1.0);
  EXPECT_TRUE(j.contains("recall_mean"));
}

// --compare-full with several flows: every configuration runs the same samples, so each entry of
// "runs" equals the report of a run with that configuration alone.
TEST(EvalCli, CompareFullRunsEveryConfigurationOnTheSameSamples) {
  const std::string quest = std::string(VORTEX_SOURCE_DIR) + "/flows/quest.py";
  const std::string streaming = std::string(VORTEX_SOURCE_DIR) + "/flows/streaming.py";
  const std::vector<std::string> common = {"eval",      "--model",  kModel, "--tasks",
                                           "niah_single,vt", "--context", "600",  "--samples",
                                           "2",         "--topk-pages", "4"};
  const std::string preds = temp_path("compare_preds.jsonl");
  std::vector<std::string> args = common;
  for (const char* extra : {"--compare-full", "--flow", quest.c_str(), "--flow",
                            streaming.c_str(), "--json", "--predictions", preds.c_str()}) {
    args.push_back(extra);
  }
  CmdResult r = vortex(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const Json j = Json::parse(r.out);
  ASSERT_EQ(j["runs"].size(), 3u);
  EXPECT_EQ(j["runs"][0]["flow"], "full");
  EXPECT_EQ(j["runs"][1]["flow"], quest);
  EXPECT_EQ(j["runs"][2]["flow"], streaming);
  EXPECT_EQ(j["runs"][0]["kv_read_fraction"], 1.0);
  EXPECT_LT(j["runs"][1]["kv_read_fraction"].get<double>(), 1.0);

  const std::vector<std::string> alone[] = {{}, {"--flow", quest}, {"--flow", streaming}};
  for (size_t i = 0; i < 3; ++i) {
    std::vector<std::string> one = common;
    one.insert(one.end(), alone[i].begin(), alone[i].end());
    one.push_back("--json");
    CmdResult s = vortex(one);
    ASSERT_EQ(s.code, 0) << s.err;
    const Json single = Json::parse(s.out);
    EXPECT_EQ(j["runs"][i]["tasks"], single["tasks"]) << i;
    EXPECT_EQ(j["runs"][i]["kv_read_fraction"], single["kv_read_fraction"]) << i;
    EXPECT_EQ(j["runs"][i]["decode_tokens"], single["decode_tokens"]) << i;
  }

  // Predictions: every sample of every configuration, tagged with its configuration.
  const std::vector<Json> rows = read_jsonl(preds);
  ASSERT_EQ(rows.size(), 3u * 4u);
  EXPECT_EQ(rows.front()["flow"], "full");
  EXPECT_EQ(rows.back()["flow"], streaming);
  fs::remove(preds);

  // The table names every configuration.
  args = common;
  for (const char* extra : {"--compare-full", "--flow", quest.c_str()}) args.push_back(extra);
  r = vortex(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "full");
  EXPECT_CONTAINS(r.out, "quest");
  EXPECT_CONTAINS(r.out, "decode tok/s");
}

TEST(EvalCli, DumpedTasksEvaluateToTheSameRun) {
  const std::string dump = temp_path("dump.jsonl");
  CmdResult d =
      vortex({"eval", "--model", kModel, "--tasks", "niah_multikey,cwe", "--context", "500",
              "--samples", "2", "--seed", "5", "--dump-tasks", dump, "--dump-ids"});
  ASSERT_EQ(d.code, 0) << d.err;
  const std::vector<Json> rows = read_jsonl(dump);
  ASSERT_EQ(rows.size(), 4u);
  for (const Json& row : rows) {
    for (const char* f : {"task", "index", "seed", "context", "prompt", "target", "answers",
                          "prompt_tokens", "max_new_tokens", "chat"}) {
      EXPECT_TRUE(row.contains(f)) << f;
    }
    EXPECT_EQ(row["context"], 500);
    EXPECT_EQ(row["prompt_ids"].size(), row["prompt_tokens"].get<size_t>());
    EXPECT_FALSE(row["target_ids"].empty());
  }
  EXPECT_EQ(rows[0]["task"], "niah_multikey");
  EXPECT_EQ(rows[3]["task"], "cwe");

  const std::string p1 = temp_path("p1.jsonl"), p2 = temp_path("p2.jsonl");
  CmdResult a =
      vortex({"eval", "--model", kModel, "--task-file", dump, "--predictions", p1, "--json"});
  CmdResult b = vortex({"eval", "--model", kModel, "--tasks", "niah_multikey,cwe", "--context",
                        "500", "--samples", "2", "--seed", "5", "--predictions", p2, "--json"});
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(read_jsonl(p1), read_jsonl(p2));
  EXPECT_EQ(Json::parse(a.out)["task_file"], dump);
  fs::remove(dump);
  fs::remove(p1);
  fs::remove(p2);
}

TEST(EvalCli, DatasetReportsMeanAndPassAtK) {
  const std::string data = std::string(VORTEX_SOURCE_DIR) + "/tests/data/eval/qa_small.jsonl";
  const std::string preds = temp_path("qa_preds.jsonl");
  CmdResult r = vortex({"eval", "--model", kModel, "--data", data, "--trials", "3", "--temperature",
                        "0.7", "--max-tokens", "6", "--predictions", preds, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["problems"], 3);
  EXPECT_EQ(j["trials"], 3);
  for (const char* k : {"mean_at_k", "pass_at_k", "pass_at_1", "accuracy"}) {
    EXPECT_GE(j[k].get<double>(), 0.0) << k;
    EXPECT_LE(j[k].get<double>(), 1.0) << k;
  }
  EXPECT_GE(j["pass_at_k"].get<double>(), j["mean_at_k"].get<double>());
  const std::vector<Json> rows = read_jsonl(preds);
  ASSERT_EQ(rows.size(), 9u);
  EXPECT_EQ(rows[0]["id"], "sum");
  EXPECT_EQ(rows[3]["answer"], "1969");
  EXPECT_EQ(rows[8]["trial"], 2);
  // Trials sample with their own seeds.
  EXPECT_TRUE(rows[0]["completion"] != rows[1]["completion"] ||
              rows[1]["completion"] != rows[2]["completion"]);
  fs::remove(preds);
}

TEST(EvalCli, BadDatasetLinesNameTheFileAndLine) {
  const std::string data = temp_path("bad.jsonl");
  std::ofstream(data) << "{\"question\": \"q\", \"answer\": 1}\n{\"question\": \"q\"}\n";
  CmdResult r = vortex({"eval", "--model", kModel, "--data", data});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, data + ":2: no 'answer' field");
  fs::remove(data);
}

TEST(EvalCli, UsageErrors) {
  CmdResult r = vortex({"eval", "--model", kModel, "--tasks", "niah,vt"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "unknown task 'niah'");
  // tiny-qwen3 has a context of 4096 tokens.
  r = vortex(
      {"eval", "--model", kModel, "--tasks", "niah_single", "--context", "4096", "--samples", "1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "exceed the model's context of 4096");
  r = vortex({"eval", "--model", kModel, "--samples", "0"});
  EXPECT_EQ(r.code, 2);
  r = vortex({"eval", "--model", kModel, "--data", "x.jsonl", "--dump-tasks", "y.jsonl"});
  EXPECT_EQ(r.code, 2);
  r = vortex({"eval", "--model", kModel, "--tasks", "vt", "--context", "40", "--samples", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "vt: a context of 40 tokens is too short");
  r = vortex({"eval", "--model", "qwen3-0.6b", "--dump-tasks", temp_path("never.jsonl")});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "has no tokenizer");
  r = vortex({"eval", "--model", kModel, "--tasks", "vt", "--vt-chains", "9"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--vt-chains must be in 1..8");
  r = vortex({"eval", "--model", kModel, "--compare-full"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--compare-full needs --flow");
  r = vortex({"eval", "--model", kModel, "--data", "x.jsonl", "--flow", "a.py", "--flow", "b.py"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--data evaluates one attention configuration");
  r = vortex({"eval", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_CONTAINS(r.out, "--dump-tasks");
  EXPECT_CONTAINS(r.out, "--topk-ratio");
  EXPECT_CONTAINS(r.out, "--compare-full");
}

}  // namespace
}  // namespace vortex
