// Hostile model directories through the `vortex` binary: every case ends in one line on stderr
// naming the file and what is wrong, with exit code 1 (2 for a malformed flag), never a crash, a
// hang or an unbounded allocation.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/json_file.h"
#include "support/run_vortex.h"

namespace vortex {
namespace {

namespace fs = std::filesystem;

using testing::CmdResult;

std::string data(const std::string& rel) {
  return std::string(VORTEX_SOURCE_DIR) + "/tests/data/" + rel;
}

// A scratch copy of a test model to damage.
class ModelCopy {
 public:
  explicit ModelCopy(const std::string& name) {
    static int counter = 0;
    dir_ =
        fs::temp_directory_path() / ("vortex_hostile_" + name + "_" + std::to_string(::getpid()) +
                                     "_" + std::to_string(counter++));
    fs::remove_all(dir_);
    fs::copy(data("models/" + name), dir_, fs::copy_options::recursive);
  }
  ~ModelCopy() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  std::string path() const { return dir_.string(); }
  std::string file(const std::string& f) const { return (dir_ / f).string(); }
  void write(const std::string& f, const std::string& text) const {
    std::ofstream(dir_ / f, std::ios::binary | std::ios::trunc) << text;
  }
  Json json(const std::string& f) const { return read_json_file(file(f)); }
  void write_json(const std::string& f, const Json& j) const { write(f, j.dump()); }

 private:
  fs::path dir_;
};

// Asserts the message is one line "vortex: error: ..." that contains every part.
void expect_one_line_error(const CmdResult& r, int code, const std::vector<std::string>& parts) {
  EXPECT_EQ(r.code, code) << r.err;
  EXPECT_EQ(r.err.rfind("vortex: error: ", 0), 0u) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
  EXPECT_LT(r.err.size(), 1000u) << r.err;
  for (const std::string& part : parts) {
    EXPECT_NE(r.err.find(part), std::string::npos) << "'" << part << "' not in: " << r.err;
  }
}

CmdResult generate(const ModelCopy& m) {
  return testing::run_vortex(
      {"generate", "--model", m.path(), "--prompt-ids", "1", "--max-tokens", "1"});
}

TEST(HostileCli, DeeplyNestedConfigIsAnErrorNotAStackOverflow) {
  ModelCopy m("tiny-qwen3");
  m.write("config.json", "{\"a\": " + std::string(1 << 20, '['));
  expect_one_line_error(generate(m), 1,
                        {m.file("config.json"), "JSON nested deeper than 128 levels"});
}

TEST(HostileCli, ConfigIntegersAndProductsOutOfRange) {
  ModelCopy m("tiny-qwen3");
  Json cfg = m.json("config.json");
  cfg["vocab_size"] = 2000000000;
  m.write_json("config.json", cfg);
  expect_one_line_error(
      generate(m), 1,
      {m.file("config.json"), "field 'vocab_size' is 2000000000, over the limit of 1048576"});
  cfg = m.json("config.json");
  cfg["vocab_size"] = 1024;
  cfg["num_attention_heads"] = 1024;
  cfg["num_key_value_heads"] = 1024;
  cfg["head_dim"] = 1024;
  m.write_json("config.json", cfg);
  expect_one_line_error(generate(m), 1, {"num_attention_heads (1024) * head_dim (1024)"});
  cfg = m.json("config.json");
  cfg["num_attention_heads"] = 4;
  cfg["num_key_value_heads"] = 2;
  cfg["head_dim"] = 32;
  cfg["rms_norm_eps"] = -1.0;
  m.write_json("config.json", cfg);
  expect_one_line_error(generate(m), 1, {"field 'rms_norm_eps' must be positive"});
}

TEST(HostileCli, EosIdsNearInt32MaxAreRefused) {
  ModelCopy m("tiny-qwen3");
  m.write("generation_config.json", R"({"eos_token_id": [2, 2147483647]})");
  expect_one_line_error(generate(m), 1,
                        {m.file("generation_config.json"), "holds token id 2147483647"});
}

TEST(HostileCli, HugeEmptyOrSpecialConfigFilesAreRefusedWithoutReading) {
  {
    ModelCopy m("tiny-qwen3");
    m.write("config.json", "{");
    fs::resize_file(m.file("config.json"), uint64_t{2} << 30);  // sparse
    expect_one_line_error(generate(m), 1,
                          {m.file("config.json"), "is 2147483648 bytes, over the limit"});
  }
  {
    ModelCopy m("tiny-qwen3");
    fs::remove(m.file("config.json"));
    ASSERT_EQ(::mkfifo(m.file("config.json").c_str(), 0600), 0);
    expect_one_line_error(generate(m), 1, {m.file("config.json"), "is not a regular file"});
  }
  {
    ModelCopy m("tiny-qwen3");
    m.write("config.json", "");
    expect_one_line_error(generate(m), 1, {m.file("config.json"), "is empty"});
  }
}

TEST(HostileCli, SafetensorsHeaderLengthAndFileKindAreChecked) {
  {
    ModelCopy m("tiny-qwen3");
    m.write("model.safetensors", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10));
    expect_one_line_error(generate(m), 1,
                          {m.file("model.safetensors"), "header length",
                           "over the limit of "
                           "100000000 bytes"});
  }
  {
    ModelCopy m("tiny-qwen3");
    fs::remove(m.file("model.safetensors"));
    fs::create_directory(m.file("model.safetensors"));
    expect_one_line_error(generate(m), 1,
                          {m.file("model.safetensors") + ": is a directory, expected a file"});
  }
  {
    ModelCopy m("tiny-qwen3");
    fs::remove(m.file("model.safetensors"));
    ASSERT_EQ(::mkfifo(m.file("model.safetensors").c_str(), 0600), 0);
    expect_one_line_error(generate(m), 1,
                          {m.file("model.safetensors") + ": is a FIFO, expected a file"});
  }
}

TEST(HostileCli, ShardNamesThatLeaveTheModelDirectoryAreRefused) {
  for (const char* shard : {"../model-00001-of-00008.safetensors", "/etc/passwd"}) {
    ModelCopy m("tiny-llama");
    Json index = m.json("model.safetensors.index.json");
    index["weight_map"]["model.embed_tokens.weight"] = shard;
    m.write_json("model.safetensors.index.json", index);
    expect_one_line_error(
        generate(m), 1,
        {m.file("model.safetensors.index.json"),
         "gives tensor 'model.embed_tokens.weight' the shard '" + std::string(shard) + "'"});
  }
}

TEST(HostileCli, TokenizerIdNearInt32MaxIsRefusedWithoutAllocating) {
  ModelCopy m("tiny-qwen3");
  Json tok = m.json("tokenizer.json");
  const std::string token = tok["model"]["vocab"].begin().key();
  tok["model"]["vocab"][token] = 2000000000;
  m.write_json("tokenizer.json", tok);
  expect_one_line_error(generate(m), 1,
                        {m.file("tokenizer.json"), "has id 2000000000, over the limit of 1048575"});
  CmdResult r = testing::run_vortex({"tokenize", "--model", m.path(), "--text", "hi"});
  expect_one_line_error(r, 1, {m.file("tokenizer.json"), "has id 2000000000"});
}

TEST(HostileCli, NestedTokenizerSequencesAreRefused) {
  ModelCopy m("tiny-qwen3");
  Json tok = m.json("tokenizer.json");
  Json spec = {{"type", "NFC"}};
  for (int i = 0; i < 40; ++i) spec = {{"type", "Sequence"}, {"normalizers", Json::array({spec})}};
  tok["normalizer"] = spec;
  m.write_json("tokenizer.json", tok);
  CmdResult r = testing::run_vortex({"tokenize", "--model", m.path(), "--text", "hi"});
  expect_one_line_error(r, 1, {m.file("tokenizer.json"), "Sequences nested deeper than 16 levels"});
}

TEST(HostileCli, CatastrophicPreTokenizerRegexErrorsInsteadOfHanging) {
  ModelCopy m("tiny-qwen3");
  Json tok = m.json("tokenizer.json");
  tok["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(a+)+$"}}}, {"behavior", "Isolated"}};
  m.write_json("tokenizer.json", tok);
  CmdResult r =
      testing::run_vortex({"tokenize", "--model", m.path(), "--text", std::string(60, 'a') + "b"});
  expect_one_line_error(r, 1,
                        {m.file("tokenizer.json"), "regex matching failed", "backtracks too much"});
}

TEST(HostileCli, HostileChatTemplateConfigIsNamed) {
  ModelCopy m("tiny-qwen3");
  m.write("tokenizer_config.json", std::string(1 << 20, '['));
  expect_one_line_error(generate(m), 1,
                        {m.file("tokenizer_config.json"), "JSON nested deeper than 128 levels"});
  // A huge but well-formed template is read (in linear time) and the chat runs; the quote keeps
  // the text from being taken as a default system prompt.
  Json cfg = {
      {"chat_template", "<|im_start|>system\\n'" + std::string(4 << 20, 's') + "<|im_end|>"}};
  m.write_json("tokenizer_config.json", cfg);
  CmdResult r = testing::run_vortex(
      {"generate", "--model", m.path(), "--chat", "hi", "--max-tokens", "1", "--json"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(HostileCli, PromptIdsOutsideTheVocabularyOrInt32AreRefused) {
  const std::string model = data("models/tiny-qwen3");
  CmdResult r = testing::run_vortex({"generate", "--model", model, "--prompt-ids", "1,2000000000"});
  expect_one_line_error(r, 1,
                        {"--prompt-ids: token id 2000000000 is outside the vocabulary of '" +
                         model + "' (vocab_size 1024)"});
  r = testing::run_vortex({"generate", "--model", model, "--prompt-ids", "2147483648"});
  expect_one_line_error(r, 2, {"--prompt-ids: '2147483648' is not a token id"});
  r = testing::run_vortex({"generate", "--model", model, "--prompt-ids=-1"});
  expect_one_line_error(r, 2, {"--prompt-ids: '-1' is not a token id"});
  r = testing::run_vortex({"generate", "--model", model, "--prompt-ids", "99999999999999999999"});
  expect_one_line_error(r, 2, {"is not a token id"});
}

}  // namespace
}  // namespace vortex
