// Chat templates rendered natively must equal what transformers renders with Jinja.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "core/error.h"
#include "tokenizer/test_files.h"
#include "tokenizer/tokenizer.h"

namespace vortex {
namespace {

using Messages = std::vector<ChatMessage>;

std::string qwen3_config() {
  return testing::qwen3_dir() + "/tokenizer_config.json";
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ChatTemplate, DetectsQwen3FromTheRealConfig) {
  EXPECT_EQ(ChatTemplate::load(qwen3_config()).family(), "qwen3");
}

TEST(ChatTemplate, Qwen3SystemAndUserWithGenerationPrompt) {
  const ChatTemplate t = ChatTemplate::load(qwen3_config());
  const Messages messages = {{"system", "You are terse."}, {"user", "Hi"}};
  EXPECT_EQ(t.apply(messages),
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(t.apply(messages, /*add_generation_prompt=*/false),
            "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(t.apply({{"user", "Hi"}}, true, /*enable_thinking=*/false),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(ChatTemplate, Qwen3DropsThinkingOfTurnsBeforeTheLastQuery) {
  const ChatTemplate t = ChatTemplate::load(qwen3_config());
  const Messages messages = {{"user", "q1"},
                             {"assistant", "<think>\nr1\n</think>\n\na1"},
                             {"user", "q2"},
                             {"assistant", "<think>\nr2\n</think>\n\na2"}};
  EXPECT_EQ(t.apply(messages, false),
            "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n"
            "<|im_start|>user\nq2<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nr2\n</think>\n\na2<|im_end|>\n");
}

TEST(ChatTemplate, Qwen3GroupsToolResultsIntoOneUserTurn) {
  const ChatTemplate t = ChatTemplate::from_family("qwen3");
  const Messages messages = {{"user", "q"}, {"tool", "r1"}, {"tool", "r2"}};
  EXPECT_EQ(t.apply(messages, false),
            "<|im_start|>user\nq<|im_end|>\n<|im_start|>user\n<tool_response>\nr1\n"
            "</tool_response>\n<tool_response>\nr2\n</tool_response><|im_end|>\n");
}

TEST(ChatTemplate, ChatmlKeepsTheTemplatesDefaultSystemPrompt) {
  const std::string path = testing::write_temp_json(
      "tokenizer_config.json",
      {{"chat_template",
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
        "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
        "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
        "{% endif %}"}});
  const ChatTemplate t = ChatTemplate::load(path);
  EXPECT_EQ(t.family(), "chatml");
  EXPECT_EQ(t.apply({{"user", "Hi"}}),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.apply({{"system", "S"}, {"user", "Hi"}}, false),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplate, Llama3StripsContentAndStartsWithBos) {
  const ChatTemplate t = ChatTemplate::from_family("llama3");
  EXPECT_EQ(t.family(), "llama3");
  EXPECT_EQ(t.apply({{"system", "Be brief. "}, {"user", "\n Hi \t"}}),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama31AddsTheKnowledgeDateSystemBlock) {
  const std::string path = testing::write_temp_json(
      "tokenizer_config.json",
      {{"bos_token", {{"content", "<|begin_of_text|>"}}},
       {"chat_template",
        "{{- bos_token }}{%- if not date_string is defined %}{%- set date_string = \"26 Jul "
        "2024\" %}{%- endif %}{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}"
        "{{- \"Cutting Knowledge Date: December 2023\\n\" }}{{- \"Today Date: \" + date_string "
        "+ \"\\n\\n\" }}"}});
  const ChatTemplate t = ChatTemplate::load(path);
  EXPECT_EQ(t.family(), "llama3.1");
  EXPECT_EQ(t.apply({{"system", "S"}, {"user", "Hi"}}, false),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
  EXPECT_EQ(t.apply({{"user", "Hi"}}, false),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
            "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST(ChatTemplate, RenderedTextEncodesWithoutAddingSpecialTokensTwice) {
  const Tokenizer tok = Tokenizer::load(testing::qwen3_dir() + "/tokenizer.json");
  const std::string text = ChatTemplate::load(qwen3_config()).apply({{"user", "Hi"}});
  const auto ids = tok.encode(text, /*add_special_tokens=*/false);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 151644);
  EXPECT_EQ(tok.decode(ids), text);
}

TEST(ChatTemplate, MissingTemplateSaysTheModelHasNone) {
  const std::string path =
      testing::write_temp_json("tokenizer_config.json", {{"bos_token", "<s>"}});
  const std::string message = error_of([&] { ChatTemplate::load(path); });
  EXPECT_NE(message.find("no chat template"), std::string::npos) << message;
  EXPECT_NE(message.find(path), std::string::npos) << message;
}

TEST(ChatTemplate, UnrecognisedTemplateListsTheFamilies) {
  const std::string path = testing::write_temp_json(
      "tokenizer_config.json", {{"chat_template",
                                 "{% for m in messages %}[INST] {{ m.content }}"
                                 " [/INST]{% endfor %}"}});
  const std::string message = error_of([&] { ChatTemplate::load(path); });
  for (const char* family : {"qwen3", "chatml", "llama3", "llama3.1"}) {
    EXPECT_NE(message.find(family), std::string::npos) << message;
  }
  EXPECT_NE(error_of([] { ChatTemplate::from_family("mistral"); }).find("llama3"),
            std::string::npos);
}

TEST(ChatTemplate, MissingConfigFileNamesThePath) {
  const std::string message =
      error_of([] { ChatTemplate::load("no-such-dir/tokenizer_config.json"); });
  EXPECT_NE(message.find("no-such-dir/tokenizer_config.json"), std::string::npos) << message;
}

// ---- Hostile tokenizer_config.json files.

std::string system_turn_of(const ChatTemplate& t) {
  return t.apply({{"user", "hi"}}, /*add_generation_prompt=*/false);
}

TEST(ChatTemplateHostile, HugeTemplatesAreScannedWithoutRecursion) {
  // std::regex recursed once per character over these: megabytes overflowed the stack.
  const std::string body(3 << 20, 'x');
  std::string path = testing::write_temp_json(
      "tokenizer_config.json", {{"chat_template", "<|im_start|>system\\n" + body + "<|im_end|>"}});
  EXPECT_EQ(system_turn_of(ChatTemplate::load(path)),
            "<|im_start|>system\n" + body + "<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n");
  // Many openings, each spoiled by a quote before the close: no default system prompt, and the
  // scan stays linear.
  std::string spoiled;
  for (int i = 0; i < 200000; ++i) spoiled += "<|im_start|>system\\n'";
  path = testing::write_temp_json("tokenizer_config.json",
                                  {{"chat_template", spoiled + "<|im_end|>"}});
  EXPECT_EQ(system_turn_of(ChatTemplate::load(path)), "<|im_start|>user\nhi<|im_end|>\n");
  // The Llama-3.1 fields: an unterminated date string, a knowledge date running to the end.
  path = testing::write_temp_json(
      "tokenizer_config.json",
      {{"chat_template", "<|start_header_id|>Cutting Knowledge Date: " + std::string(1 << 20, 'k') +
                             "{% set date_string = \"" + std::string(1 << 20, 'd')}});
  const ChatTemplate llama = ChatTemplate::load(path);
  EXPECT_EQ(llama.family(), "llama3.1");
  EXPECT_NE(system_turn_of(llama).find("Today Date: 26 Jul 2024"), std::string::npos);
}

TEST(ChatTemplateHostile, MalformedFieldsAreNamed) {
  auto load_error = [](const Json& config) {
    const std::string path = testing::write_temp_json("tokenizer_config.json", config);
    const std::string message = error_of([&] { ChatTemplate::load(path); });
    return message.rfind(path, 0) == 0 ? message.substr(path.size()) : message;
  };
  EXPECT_EQ(load_error({{"chat_template", 42}}),
            ": field 'chat_template' must be a string or a list of named templates");
  EXPECT_EQ(load_error({{"chat_template", Json::array({{{"name", 7}, {"template", "x"}}, 3})}}),
            ": field 'chat_template' has no template named 'default'");
  EXPECT_EQ(load_error({{"chat_template", "<|start_header_id|>"},
                        {"bos_token", std::string(kMaxAddedTokenBytes + 1, 'b')}}),
            ": field 'bos_token' is 4097 bytes, over the limit of 4096");
  EXPECT_EQ(load_error(Json::array({1, 2})),
            ": the model has no chat template (field 'chat_template' is missing)");
  const std::string deep =
      testing::write_temp_file("tokenizer_config.json", std::string(100000, '['));
  EXPECT_NE(error_of([&] { ChatTemplate::load(deep); }).find("JSON nested deeper than 128"),
            std::string::npos);
}

// chat_reference.json beside a tokenizer_config.json holds transformers' renderings. The parameter
// is the folder (the real Qwen3 one as the build unpacks it).
class ChatReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatReferenceTest, MatchesTransformersOnEveryCase) {
  const std::string dir = GetParam();
  const std::string reference_path = dir + "/chat_reference.json";
  if (!std::filesystem::exists(reference_path)) {
    GTEST_SKIP() << "no reference file yet: " << reference_path;
  }
  const ChatTemplate t = ChatTemplate::load(dir + "/tokenizer_config.json");
  const Json reference = read_json_file(reference_path);
  ASSERT_FALSE(reference.at("cases").empty()) << reference_path;
  for (const auto& c : reference["cases"]) {
    Messages messages;
    for (const auto& m : c.at("messages")) {
      messages.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
    }
    EXPECT_EQ(t.apply(messages, c.at("add_generation_prompt").get<bool>()),
              c.at("text").get<std::string>())
        << c.dump();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Templates, ChatReferenceTest,
    ::testing::Values(testing::qwen3_dir(),
                      std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3",
                      std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-llama"),
    [](const auto& info) {
      std::string name = info.param.substr(info.param.rfind('/') + 1);
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

}  // namespace
}  // namespace vortex
