#include "loadgen/dataset_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "loadgen/endpoint.h"

namespace vortex::loadgen {
namespace {

namespace fs = std::filesystem;

class DatasetFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("vortex_loadgen_dataset_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& text) {
    const std::string path = (dir_ / "data.jsonl").string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // The message of the vortex::Error that reading `text` throws.
  std::string error_of(const std::string& text) {
    const std::string path = write(text);
    try {
      read_dataset_file(path, 9);
    } catch (const Error& e) {
      std::string m = e.what();
      EXPECT_EQ(m.rfind(path, 0), 0u) << m;
      return m.substr(path.size());
    }
    ADD_FAILURE() << "no error for: " << text;
    return "";
  }

  fs::path dir_;
};

TEST_F(DatasetFile, ReadsPromptsIdsAndMessagesSkippingBlankLines) {
  const std::string path = write(
      "{\"prompt\": \"hello\", \"max_tokens\": 4}\r\n"
      "\n   \n"
      "{\"prompt\": [1, 2, 3], \"output_len\": 2}\n"
      "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n");
  std::vector<BenchRequest> rows = read_dataset_file(path, 9);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].kind, PromptKind::kText);
  EXPECT_EQ(rows[0].prompt_text, "hello");
  EXPECT_EQ(rows[0].max_tokens, 4);
  EXPECT_EQ(rows[0].where, path + ":1");
  EXPECT_EQ(rows[1].kind, PromptKind::kIds);
  EXPECT_EQ(rows[1].prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(rows[1].max_tokens, 2);
  EXPECT_EQ(rows[1].where, path + ":4");
  EXPECT_EQ(rows[2].kind, PromptKind::kMessages);
  EXPECT_EQ(rows[2].max_tokens, 9);  // the default
}

TEST_F(DatasetFile, ErrorsNameTheFileAndLine) {
  EXPECT_EQ(error_of("{\"prompt\": \"a\"}\n\n{\"prompt\": \"b\",}\n").rfind(":3: invalid JSON", 0),
            0u);
  EXPECT_EQ(error_of("{\"prompt\": \"a\"}\n{\"text\": \"b\"}\n"),
            ":2: has neither \"prompt\" nor \"messages\"");
  EXPECT_EQ(error_of("{\"prompt\": \"a\", \"messages\": []}"),
            ":1: has both \"prompt\" and \"messages\"; give one");
  EXPECT_EQ(error_of("[1, 2]"), ":1: expected a JSON object with \"prompt\" or \"messages\"");
  EXPECT_EQ(error_of("{\"prompt\": \"\"}"), ":1: \"prompt\" is empty");
  EXPECT_EQ(error_of("{\"prompt\": [1, -2]}"),
            ":1: \"prompt\"[1] is -2, not a token id (an integer >= 0)");
  EXPECT_EQ(error_of("{\"prompt\": 5}"),
            ":1: \"prompt\" must be a non-empty string or list of token ids, got 5");
  EXPECT_EQ(error_of("{\"prompt\": \"a\", \"max_tokens\": 0}"),
            ":1: \"max_tokens\" must be an integer >= 1, got 0");
  EXPECT_EQ(error_of("{\"prompt\": \"a\", \"output_len\": \"4\"}"),
            ":1: \"output_len\" must be an integer >= 1, got \"4\"");
  EXPECT_EQ(error_of("{\"prompt\": \"a\", \"max_tokens\": 2, \"output_len\": 2}"),
            ":1: has both \"max_tokens\" and \"output_len\"; give one");
  EXPECT_EQ(error_of("{\"messages\": [{\"role\": \"user\"}]}"),
            ":1: \"messages\"[0] must be an object with a string \"role\" and a \"content\"");
  EXPECT_EQ(error_of("\n \n"), ": no requests (the file has no non-blank line)");
}

TEST_F(DatasetFile, MissingFileIsNamed) {
  const std::string path = (dir_ / "absent.jsonl").string();
  try {
    read_dataset_file(path, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": cannot open the file");
    EXPECT_EQ(e.exit_code(), 1);
  }
}

TEST_F(DatasetFile, TakeRequestsRepeatsTheFileInOrder) {
  std::vector<BenchRequest> rows = read_dataset_file(
      write("{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n{\"prompt\": \"c\"}\n"), 1);
  std::vector<BenchRequest> got = take_requests(rows, 7);
  std::string order;
  for (const BenchRequest& r : got) order += r.prompt_text;
  EXPECT_EQ(order, "abcabca");
  EXPECT_EQ(take_requests(rows, 2).size(), 2u);
}

TEST_F(DatasetFile, EndpointsRefusePromptsTheyCannotTakeNamingTheLine) {
  std::vector<BenchRequest> rows = read_dataset_file(
      write("{\"prompt\": [1, 2]}\n{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n"),
      1);
  EXPECT_NO_THROW(check_endpoint_accepts(Endpoint::kCompletions, rows[0]));
  EXPECT_NO_THROW(check_endpoint_accepts(Endpoint::kGenerate, rows[0]));
  try {
    check_endpoint_accepts(Endpoint::kChat, rows[0]);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data.jsonl:1: the prompt is token ids"),
              std::string::npos)
        << e.what();
  }
  try {
    check_endpoint_accepts(Endpoint::kCompletions, rows[1]);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data.jsonl:2: has \"messages\""), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace vortex::loadgen
