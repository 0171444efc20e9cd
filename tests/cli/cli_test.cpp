// The `vortex` binary as a user meets it: --help everywhere, usage errors (exit 2), bad input
// (exit 1) with a message naming the file, field or tensor, and correct output on good input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/json_file.h"
#include "support/run_vortex.h"

namespace vortex {
namespace {

namespace fs = std::filesystem;

using testing::CmdResult;

CmdResult vortex(const std::vector<std::string>& args) {
  return testing::run_vortex(args);
}

std::string data(const std::string& rel) {
  return std::string(VORTEX_SOURCE_DIR) + "/tests/data/" + rel;
}

// A tests/data folder as the build unpacks it (VORTEX_PACKED_TEST_DATA in CMakeLists.txt): its
// large files are committed packed, so the source folder lacks them.
std::string unpacked_data(const std::string& rel) {
  return std::string(VORTEX_TEST_DATA_BUILD_DIR) + "/" + rel;
}

// A scratch copy of a test model that a test may damage.
class ModelCopy {
 public:
  explicit ModelCopy(const std::string& name) {
    dir_ = fs::temp_directory_path() / ("vortex_cli_" + name + "_" + std::to_string(getpid()) +
                                        "_" + std::to_string(counter_++));
    fs::remove_all(dir_);
    fs::copy(data("models/" + name), dir_, fs::copy_options::recursive);
  }
  ~ModelCopy() { fs::remove_all(dir_); }
  std::string path() const { return dir_.string(); }
  std::string file(const std::string& f) const { return (dir_ / f).string(); }
  void write(const std::string& f, const std::string& text) const {
    std::ofstream(dir_ / f, std::ios::binary | std::ios::trunc) << text;
  }
  Json json(const std::string& f) const { return read_json_file(file(f)); }

 private:
  fs::path dir_;
  static inline int counter_ = 0;
};

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "in: " << (haystack)

TEST(Cli, EveryCommandHasHelp) {
  CmdResult top = vortex({"--help"});
  EXPECT_EQ(top.code, 0);
  EXPECT_CONTAINS(top.out, "generate");
  EXPECT_CONTAINS(top.out, "tokenize");
  for (const char* cmd : {"generate", "tokenize", "bench", "check"}) {
    CmdResult r = vortex({cmd, "--help"});
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_CONTAINS(r.out, "--model");
  }
}

TEST(Cli, UsageErrorsExitWithTwo) {
  EXPECT_EQ(vortex({}).code, 2);
  CmdResult r = vortex({"generate", "--model", data("models/tiny-qwen3"), "--bogus-flag"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "bogus-flag");
  r = vortex({"generate", "--model", data("models/tiny-qwen3"), "--prompt-ids", "1,x,3"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "'x' is not a token id");
  r = vortex({"generate", "--model", data("models/tiny-qwen3")});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--prompt");
  r = vortex(
      {"generate", "--model", data("models/tiny-qwen3"), "--prompt", "a", "--page-size", "3"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "power of two");
  r = vortex({"generate", "--model", "qwen3-0.6b", "--prompt-ids", "1"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--random-weights");
  r = vortex(
      {"generate", "--model", data("models/tiny-qwen3"), "--prompt", "a", "--device", "tpu"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "unknown device 'tpu'");
  r = vortex({"generate", "--model", data("models/tiny-qwen3"), "--prompt", "a", "--top-p", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "top-p");
}

TEST(Cli, GenerateJsonMatchesTheTransformersReference) {
  Json ref = read_json_file(data("models/tiny-qwen3/reference.json"));
  const Json& c = ref["cases"][0];
  ASSERT_TRUE(c.contains("prompt_text"));
  CmdResult r =
      vortex({"generate", "--model", data("models/tiny-qwen3"), "--prompt",
              c["prompt_text"].get<std::string>(), "--max-tokens", "24", "--ignore-eos", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json out = parse_json(r.out, "generate output");
  EXPECT_EQ(out["token_ids"], c["greedy_ids"]);
  ASSERT_EQ(out["logprobs"].size(), c["greedy_logprobs"].size());
  for (size_t i = 0; i < out["logprobs"].size(); ++i) {
    EXPECT_NEAR(out["logprobs"][i].get<double>(), c["greedy_logprobs"][i].get<double>(), 1e-3);
  }
  EXPECT_EQ(out["prompt_tokens"], c["prompt_ids"].size());
  EXPECT_EQ(out["completion_tokens"], 24);
  EXPECT_TRUE(out["text"].is_string());
  EXPECT_TRUE(out["stats"]["tokens_per_s"].is_number());
  EXPECT_TRUE(out["stats"]["time_s"].is_number());
}

TEST(Cli, GenerateRunsSeveralPromptsAndChat) {
  CmdResult r = vortex({"generate", "--model", data("models/tiny-llama"), "--prompt-ids", "5,6,7",
                        "--prompt", "hello there", "--chat", "Hi!", "--max-tokens", "4", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    Json j = parse_json(line, "generate output line");
    EXPECT_EQ(j["id"], n);
    EXPECT_LE(j["completion_tokens"].get<int>(), 4);
    ++n;
  }
  EXPECT_EQ(n, 3);
}

TEST(Cli, GenerateIsTheSameWithAndWithoutThePrefixCache) {
  // Two prompts sharing their first 40 tokens: the second reuses two full pages of the first
  // when the cache is on (--max-batch 1 runs them one after the other).
  std::string head;
  for (int i = 0; i < 40; ++i) head += std::to_string(3 + (i * 7) % 50) + ",";
  std::vector<std::string> args = {"generate",
                                   "--model",
                                   data("models/tiny-llama"),
                                   "--prompt-ids",
                                   head + "9,8,7",
                                   "--prompt-ids",
                                   head + "1,2",
                                   "--max-tokens",
                                   "6",
                                   "--max-batch",
                                   "1",
                                   "--json"};
  CmdResult on = vortex(args);
  args.push_back("--no-prefix-cache");
  CmdResult off = vortex(args);
  ASSERT_EQ(on.code, 0) << on.err;
  ASSERT_EQ(off.code, 0) << off.err;
  std::istringstream on_lines(on.out), off_lines(off.out);
  std::string a, b;
  int n = 0;
  while (std::getline(on_lines, a) && std::getline(off_lines, b)) {
    Json ja = parse_json(a, "generate output"), jb = parse_json(b, "generate output");
    EXPECT_EQ(ja["token_ids"], jb["token_ids"]);
    if (++n == 2) {
      EXPECT_LT(ja["stats"]["prefill_tokens"].get<int>(), jb["stats"]["prefill_tokens"].get<int>());
    }
  }
  EXPECT_EQ(n, 2);
}

TEST(Cli, TokenizeMatchesHuggingFaceTokenizers) {
  const std::string qwen3 = unpacked_data("tokenizers/qwen3");
  Json ref = read_json_file(qwen3 + "/tokenizer_reference.json");
  int checked = 0;
  for (const Json& c : ref["cases"]) {
    std::string text = c["text"];
    if (text.empty() || checked >= 8) continue;
    CmdResult r = vortex({"tokenize", "--model", qwen3, "--text", text, "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(parse_json(r.out, "tokenize output")["ids"], c["ids"]) << text;
    ++checked;
  }
  EXPECT_EQ(checked, 8);
  CmdResult plain = vortex({"tokenize", "--model", qwen3, "--text", "Hello world"});
  EXPECT_EQ(plain.out, "9707 1879\n");
}

TEST(Cli, MissingOrMalformedConfigIsNamed) {
  CmdResult r = vortex({"generate", "--model", "/nonexistent/model", "--prompt-ids", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "neither a model directory nor a preset");
  ModelCopy m("tiny-qwen3");
  fs::remove(m.file("config.json"));
  r = vortex({"generate", "--model", m.path(), "--prompt-ids", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "config.json");
  m.write("config.json", "{\"model_type\": \"qwen3\",");
  r = vortex({"generate", "--model", m.path(), "--prompt-ids", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "config.json");
  EXPECT_CONTAINS(r.err, "JSON");
}

TEST(Cli, UnsupportedArchitectureListsTheSupportedOnes) {
  ModelCopy m("tiny-qwen3");
  Json cfg = m.json("config.json");
  cfg["model_type"] = "gpt2";
  cfg["architectures"] = {"GPT2LMHeadModel"};
  m.write("config.json", cfg.dump());
  CmdResult r = vortex({"generate", "--model", m.path(), "--prompt-ids", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "GPT2LMHeadModel");
  EXPECT_CONTAINS(r.err, "Qwen3ForCausalLM");
  EXPECT_CONTAINS(r.err, "LlamaForCausalLM");
}

TEST(Cli, TruncatedOrCorruptSafetensorsNameTheFileAndTensor) {
  {
    ModelCopy m("tiny-qwen3");
    fs::resize_file(m.file("model.safetensors"), fs::file_size(m.file("model.safetensors")) - 1000);
    CmdResult r = vortex({"generate", "--model", m.path(), "--prompt-ids", "1"});
    EXPECT_EQ(r.code, 1);
    EXPECT_CONTAINS(r.err, "model.safetensors");
    EXPECT_CONTAINS(r.err, "tensor '");
  }
  {
    ModelCopy m("tiny-qwen3");
    m.write("model.safetensors",
            std::string("\x10\x00\x00\x00\x00\x00\x00\x00{not json}     ", 24));
    CmdResult r = vortex({"generate", "--model", m.path(), "--prompt-ids", "1"});
    EXPECT_EQ(r.code, 1);
    EXPECT_CONTAINS(r.err, "model.safetensors");
  }
  {
    ModelCopy m("tiny-llama");
    fs::remove(m.file("model-00003-of-00008.safetensors"));
    CmdResult r = vortex({"generate", "--model", m.path(), "--prompt-ids", "1"});
    EXPECT_EQ(r.code, 1);
    EXPECT_CONTAINS(r.err, "model-00003-of-00008.safetensors");
  }
}

TEST(Cli, MissingOrWronglyShapedTensorsAreNamed) {
  {
    ModelCopy m("tiny-llama");
    Json index = m.json("model.safetensors.index.json");
    index["weight_map"].erase("model.layers.1.mlp.up_proj.weight");
    m.write("model.safetensors.index.json", index.dump());
    CmdResult r = vortex({"generate", "--model", m.path(), "--prompt-ids", "1"});
    EXPECT_EQ(r.code, 1);
    EXPECT_CONTAINS(r.err, "model.layers.1.mlp.up_proj.weight");
  }
  {
    ModelCopy m("tiny-qwen3");
    Json cfg = m.json("config.json");
    cfg["intermediate_size"] = 128;
    m.write("config.json", cfg.dump());
    CmdResult r = vortex({"generate", "--model", m.path(), "--prompt-ids", "1"});
    EXPECT_EQ(r.code, 1);
    EXPECT_CONTAINS(r.err, "mlp.gate_proj.weight");
    EXPECT_CONTAINS(r.err, "[160, 64]");
  }
}

TEST(Cli, PromptLongerThanTheContextOrUnknownIdsAreRefused) {
  std::string ids = "1";
  for (int i = 0; i < 4100; ++i) ids += ",2";
  CmdResult r = vortex({"generate", "--model", data("models/tiny-qwen3"), "--prompt-ids", ids});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "context");
  r = vortex({"generate", "--model", data("models/tiny-qwen3"), "--prompt-ids", "1,99999"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "99999");
}

TEST(Cli, BenchReportsThroughputLatencyAndTheBandwidthFloor) {
  CmdResult r = vortex({"bench", "--model", data("models/tiny-llama"), "--batch", "3",
                        "--input-len", "40", "--output-len", "6", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json j = parse_json(r.out, "bench output");
  EXPECT_EQ(j["prefill_tokens"], 120);
  EXPECT_EQ(j["decode_tokens"], 15);  // the first token of each request comes from prefill
  EXPECT_EQ(j["decode_steps_measured"], 5);
  for (const char* key :
       {"prefill_tokens_per_s", "decode_tokens_per_s", "decode_step_ms_p50", "decode_step_ms_p95",
        "kv_bytes_per_step_p50", "bandwidth_bytes_per_s", "floor_step_ms_p50", "floor_fraction"}) {
    ASSERT_TRUE(j[key].is_number()) << key;
    EXPECT_GT(j[key].get<double>(), 0) << key;
  }
  EXPECT_CONTAINS(r.err, "100%");
  // One output token comes from the prefill: no decode step to take percentiles or a floor of.
  CmdResult prefill_only = vortex({"bench", "--model", data("models/tiny-llama"), "--batch", "2",
                                   "--input-len", "40", "--output-len", "1"});
  ASSERT_EQ(prefill_only.code, 0) << prefill_only.err;
  EXPECT_CONTAINS(prefill_only.out, "n/a");
  EXPECT_CONTAINS(prefill_only.out, "no step had every request decoding");
  CmdResult bad = vortex({"bench", "--model", data("models/tiny-llama"), "--input-len", "5000"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_CONTAINS(bad.err, "context");
}

TEST(Cli, CheckAcceptsEveryShippedFlowForRealGeometries) {
  std::vector<std::string> flows;
  for (const auto& e : fs::directory_iterator(std::string(VORTEX_SOURCE_DIR) + "/flows")) {
    if (e.path().extension() == ".py") flows.push_back(e.path().string());
  }
  ASSERT_EQ(flows.size(), 7u);
  for (const char* model : {"qwen3-1.7b", "llama-3.1-8b"}) {
    std::vector<std::string> args = {"check"};
    args.insert(args.end(), flows.begin(), flows.end());
    args.insert(args.end(), {"--model", model, "--json"});
    CmdResult r = vortex(args);
    EXPECT_EQ(r.code, 0) << model << ": " << r.err << r.out;
    std::istringstream lines(r.out);
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) {
      Json j = parse_json(line, "check output");
      EXPECT_TRUE(j["ok"].get<bool>()) << line;
      // Every flow but StreamingLLM keeps a summary beside each page.
      if (j["file"].get<std::string>().find("streaming") == std::string::npos) {
        EXPECT_GT(j["overhead_fraction"].get<double>(), 0.0) << line;
      }
      ++n;
    }
    EXPECT_EQ(n, 7) << model;
  }
}

// Each field's storage and the GPU bytes it takes per (page, KV head, layer): bf16 2 a value,
// int8 1 a value plus its 4-byte scale.
TEST(Cli, CheckReportsEachFieldsStorage) {
  CmdResult r =
      vortex({"check", data("flows/codegen/int8_fields.py"), "--model", "qwen3-1.7b", "--json"});
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  const Json j = parse_json(r.out, "check output");
  const Json& fields = j["fields"];
  ASSERT_EQ(fields.size(), 4u) << r.out;
  const std::vector<std::pair<std::string, int64_t>> want = {
      {"bf16", 2}, {"int8", 128 + 4}, {"int8", 1 + 4}, {"int8", 4 * 128 + 4}};
  int64_t total = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(fields[i]["dtype"].get<std::string>(), want[i].first) << r.out;
    EXPECT_EQ(fields[i]["bytes"].get<int64_t>(), want[i].second) << r.out;
    total += want[i].second;
  }
  EXPECT_EQ(j["field_bytes_per_page"].get<int64_t>(), total) << r.out;
  r = vortex({"check", data("flows/codegen/int8_fields.py"), "--model", "qwen3-1.7b"});
  EXPECT_CONTAINS(r.out, "centroid     [1, 128]  int8  132 B");
}

TEST(Cli, CheckReportsFlowErrorsWithTheirLocation) {
  CmdResult r = vortex({"check", data("flows/malformed/for_loop.py")});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, "for_loop.py:12:9: error: loops are not allowed");
  r = vortex({"check", "/nonexistent/flow.py"});
  EXPECT_NE(r.code, 0);
  EXPECT_CONTAINS(r.err + r.out, "flow.py");
}

TEST(Cli, GenerateWithAFlowReportsSparseStatistics) {
  std::string ids = "1";
  for (int i = 0; i < 300; ++i) ids += "," + std::to_string((i * 37) % 1000 + 3);
  CmdResult r =
      vortex({"generate", "--model", data("models/tiny-qwen3"), "--prompt-ids", ids, "--max-tokens",
              "5", "--ignore-eos", "--flow", std::string(VORTEX_SOURCE_DIR) + "/flows/quest.py",
              "--topk-pages", "6", "--record-recall", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json s = parse_json(r.out, "generate output")["stats"];
  EXPECT_LT(s["kv_read_fraction"].get<double>(), 1.0);
  EXPECT_GT(s["kv_read_fraction"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(s["pages_selected_per_row"].get<double>(), 6.0);
  for (const char* key : {"time_summarize_s", "time_score_select_s", "time_decode_attention_s",
                          "recall_mean", "pages_read_per_step"}) {
    EXPECT_TRUE(s[key].is_number()) << key;
  }
  ASSERT_EQ(s["recall_by_layer"].size(), 1u);  // layer 0 dense, layer 1 sparse
  EXPECT_EQ(s["recall_by_layer"][0]["layer"], 1);
  r = vortex({"generate", "--model", data("models/tiny-qwen3"), "--prompt-ids", "1,2", "--flow",
              std::string(VORTEX_SOURCE_DIR) + "/flows/quest.py", "--topk-ratio", "2"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--topk-ratio");
}

TEST(Cli, BenchComparesFlowsWithFullAttention) {
  CmdResult r = vortex({"bench", "--model", data("models/tiny-qwen3"), "--batch", "2",
                        "--input-len", "200", "--output-len", "4", "--flow",
                        std::string(VORTEX_SOURCE_DIR) + "/flows/block_topk.py", "--flow",
                        std::string(VORTEX_SOURCE_DIR) + "/flows/streaming.py", "--compare-full",
                        "--topk-pages", "4", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  Json runs = parse_json(r.out, "bench output")["runs"];
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0]["label"], "full");
  EXPECT_DOUBLE_EQ(runs[0]["decode_speedup_vs_full"].get<double>(), 1.0);
  EXPECT_LT(runs[1]["kv_read_fraction"].get<double>(), 1.0);
  EXPECT_TRUE(runs[2]["decode_speedup_vs_full"].is_number());
}

// The runner's tuning switches are flags of every engine command, validated like the rest: a
// bad value is a usage error naming the flag, good ones are accepted (and, on the CPU, change
// nothing: they steer the CUDA runner).
TEST(Cli, RunnerTuningFlagsAreValidated) {
  const std::string model = data("models/tiny-qwen3");
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--cuda-graphs", "maybe"}, "--cuda-graphs must be on or off, got 'maybe'"},
      {{"--decode-splits", "65"}, "--decode-splits must be in 0..64"},
      {{"--sparse-splits", "-1"}, "--sparse-splits must be in 0..64"},
      {{"--decode-kernel", "mma5"}, "--decode-kernel must be mma3, mma4 or scalar"},
      {{"--gemm", "cutlass"}, "--gemm must be cublas or skinny"},
      {{"--flow-summarize", "step"}, "--flow-summarize must be auto or layer"},
      {{"--flow-select", "both"}, "--flow-select must be auto, fused or separate"},
      {{"--flow-score-blocks", "99"}, "--flow-score-blocks must be in 0..64"},
      {{"--flow-score-lanes", "6"}, "--flow-score-lanes '6'"},
      {{"--profile-every", "-2"}, "--profile-every must be >= 0"},
      {{"--profile-step", "-5"}, "--profile-step must be >= -1"},
  };
  for (const auto& [flags, message] : bad) {
    std::vector<std::string> args = {"generate", "--model", model, "--prompt-ids", "1,2"};
    args.insert(args.end(), flags.begin(), flags.end());
    CmdResult r = vortex(args);
    EXPECT_EQ(r.code, 2) << flags[0];
    EXPECT_CONTAINS(r.err, message);
  }
  CmdResult plain =
      vortex({"generate", "--model", model, "--prompt-ids", "1,2", "--max-tokens", "3", "--json"});
  CmdResult tuned =
      vortex({"generate", "--model", model, "--prompt-ids", "1,2", "--max-tokens", "3", "--json",
              "--cuda-graphs", "off", "--decode-kernel", "scalar", "--gemm", "skinny",
              "--flow-score-lanes", "thread", "--profile-every", "0"});
  ASSERT_EQ(plain.code, 0) << plain.err;
  ASSERT_EQ(tuned.code, 0) << tuned.err;
  EXPECT_EQ(parse_json(plain.out, "plain")["token_ids"],
            parse_json(tuned.out, "tuned")["token_ids"]);
}

TEST(Cli, PresetsRunWithRandomWeights) {
  CmdResult r = vortex({"generate", "--model", "qwen3-0.6b", "--random-weights", "--prompt-ids",
                        "1,2,3", "--max-tokens", "2", "--json", "--kv-memory-gb", "0.05"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(parse_json(r.out, "generate output")["completion_tokens"], 2);
}

TEST(Cli, EvalPerplexityScoresTheSameTokensPerConfiguration) {
  const fs::path text = fs::temp_directory_path() / ("vortex_ppl_" + std::to_string(getpid()));
  {
    std::ofstream out(text);
    for (int i = 0; i < 200; ++i) out << "the page of keys " << i % 7 << " reads a flow\n";
  }
  CmdResult r = vortex({"eval",
                        "--model",
                        data("models/tiny-qwen3"),
                        "--perplexity",
                        "--data",
                        text.string(),
                        "--context",
                        "96",
                        "--samples",
                        "2",
                        "--score-tokens",
                        "8",
                        "--page-size",
                        "4",
                        "--flow",
                        std::string(VORTEX_SOURCE_DIR) + "/flows/quest.py",
                        "--topk-ratio",
                        "0.25",
                        "--compare-full",
                        "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const Json j = parse_json(r.out, "eval --perplexity output");
  EXPECT_EQ(j["documents"], 2);
  ASSERT_EQ(j["runs"].size(), 2u);
  for (const Json& run : j["runs"]) {
    EXPECT_EQ(run["tokens"], 16);
    EXPECT_GT(run["nll_mean"].get<double>(), 0.0);
    EXPECT_NEAR(run["perplexity"].get<double>(), std::exp(run["nll_mean"].get<double>()), 1e-6);
  }
  EXPECT_FALSE(j["runs"][0].contains("vs_full"));
  const Json& d = j["runs"][1]["vs_full"];
  EXPECT_EQ(d["over"], "documents");
  EXPECT_NEAR(d["nll_diff_mean"].get<double>(),
              j["runs"][1]["nll_mean"].get<double>() - j["runs"][0]["nll_mean"].get<double>(),
              1e-9);  // the same number of tokens per document: the mean of means
  EXPECT_LT(j["runs"][1]["kv_read_fraction"].get<double>(), 1.0);

  r = vortex({"eval", "--model", data("models/tiny-qwen3"), "--perplexity"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "--perplexity needs --data");
  r = vortex({"eval", "--model", data("models/tiny-qwen3"), "--perplexity", "--data", text.string(),
              "--context", "100000"});
  EXPECT_EQ(r.code, 2);
  EXPECT_CONTAINS(r.err, "fewer than one document");
  r = vortex({"eval", "--model", data("models/tiny-qwen3"), "--perplexity", "--data",
              text.string() + ".missing", "--context", "64"});
  EXPECT_EQ(r.code, 1);
  EXPECT_CONTAINS(r.err, ".missing: not a readable regular file");
  fs::remove(text);
}

}  // namespace
}  // namespace vortex
