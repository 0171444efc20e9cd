// The synthetic task generators: deterministic from a seed, prompts of the requested token
// length under the model's tokenizer, answers that the prompt really supports.
#include "eval/tasks/tasks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "engine/loaded_model.h"
#include "eval/tasks/task_random.h"

namespace vortex::eval {
namespace {

const std::string kTinyQwen3 = std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3";
const std::string kTinyLlama = std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-llama";

const PromptEncoder& qwen3_encoder() {
  static const PromptEncoder encoder(load_tokenizer_of(kTinyQwen3), std::nullopt);
  return encoder;
}

size_t count_of(const std::string& text, const std::string& word) {
  size_t n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) ++n;
  return n;
}

// The queried chain of a vt prompt whose question names `value`: VAR a0 = value, then
// VAR ai = VAR a(i-1), each after the one it names.
void expect_chain_in_order(const std::string& prompt, const std::vector<std::string>& chain,
                           const std::string& value) {
  size_t at = prompt.find("VAR " + chain[0] + " = " + value + ".");
  ASSERT_NE(at, std::string::npos);
  for (size_t i = 1; i < chain.size(); ++i) {
    size_t next = prompt.find("VAR " + chain[i] + " = VAR " + chain[i - 1] + ".");
    ASSERT_NE(next, std::string::npos);
    EXPECT_GT(next, at);
    at = next;
  }
}

TEST(Tasks, TheSameSeedGivesTheSameSample) {
  for (const std::string& task : task_names()) {
    TaskSample a = generate_task_sample(task, 600, 1234, qwen3_encoder());
    TaskSample b = generate_task_sample(task, 600, 1234, qwen3_encoder());
    EXPECT_EQ(task_sample_to_json(a), task_sample_to_json(b)) << task;
    TaskSample c = generate_task_sample(task, 600, 1235, qwen3_encoder());
    EXPECT_NE(a.prompt, c.prompt) << task;
    EXPECT_NE(a.answers, c.answers) << task;
  }
}

TEST(Tasks, BatchGenerationIsIndependentOfTheThreadCount) {
  const std::vector<std::string> tasks = {"niah_single", "vt", "cwe"};
  ThreadPool::set_global_threads(1);
  std::vector<TaskSample> one = generate_task_samples(tasks, 500, 3, 9, qwen3_encoder());
  ThreadPool::set_global_threads(3);
  std::vector<TaskSample> three = generate_task_samples(tasks, 500, 3, 9, qwen3_encoder());
  ASSERT_EQ(one.size(), 9u);
  ASSERT_EQ(three.size(), 9u);
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(task_sample_to_json(one[i]), task_sample_to_json(three[i]));
    // Ordered by task, then index; each sample can be regenerated alone from its seed.
    EXPECT_EQ(one[i].task, tasks[i / 3]);
    EXPECT_EQ(one[i].index, static_cast<int64_t>(i % 3));
    EXPECT_EQ(one[i].seed, sample_seed(9, one[i].task, one[i].index));
    TaskSample alone = generate_task_sample(one[i].task, 500, one[i].seed, qwen3_encoder());
    EXPECT_EQ(alone.prompt, one[i].prompt);
  }
}

TEST(Tasks, SampleSeedsDifferAcrossTasksIndicesAndRunSeeds) {
  std::set<uint64_t> seeds;
  for (const std::string& task : task_names()) {
    for (int64_t i = 0; i < 50; ++i) {
      seeds.insert(sample_seed(1, task, i));
      seeds.insert(sample_seed(2, task, i));
    }
  }
  EXPECT_EQ(seeds.size(), task_names().size() * 100);
}

TEST(Tasks, PromptsHitTheRequestedTokenCount) {
  for (int32_t context : {400, 1000, 3000}) {
    for (const std::string& task : task_names()) {
      for (uint64_t seed = 0; seed < 6; ++seed) {
        TaskSample s = generate_task_sample(task, context, seed, qwen3_encoder());
        const auto ids = qwen3_encoder().tokenizer().encode(s.prompt, true);
        EXPECT_EQ(ids, s.prompt_ids);
        EXPECT_EQ(static_cast<int32_t>(ids.size()), s.prompt_tokens);
        EXPECT_EQ(s.target_ids, qwen3_encoder().tokenizer().encode(s.target, false));
        EXPECT_LE(s.prompt_tokens, context) << task << " seed " << seed;
        EXPECT_GE(s.prompt_tokens, context - 4) << task << " seed " << seed;
        EXPECT_EQ(s.context, context);
      }
    }
  }
}

TEST(Tasks, LengthCountsTheTokenizersSpecialTokensAndTheChatTemplate) {
  // Llama's tokenizer adds <|begin_of_text|>; the count is of the real model input.
  const PromptEncoder llama(load_tokenizer_of(kTinyLlama), std::nullopt);
  EXPECT_GE(llama.overhead(), 1);
  TaskSample s = generate_task_sample("niah_single", 700, 5, llama);
  EXPECT_EQ(static_cast<int32_t>(llama.tokenizer().encode(s.prompt, true).size()), s.prompt_tokens);
  EXPECT_LE(s.prompt_tokens, 700);
  EXPECT_GE(s.prompt_tokens, 696);

  LoadedModel m = load_model(kTinyQwen3, {});
  const PromptEncoder chat(*m.tokenizer, m.chat_template);
  EXPECT_GT(chat.overhead(), 3);
  TaskSample c = generate_task_sample("vt", 700, 5, chat);
  EXPECT_TRUE(c.chat);
  EXPECT_EQ(c.prompt.rfind("<|im_start|>user\n", 0), 0u) << c.prompt.substr(0, 40);
  EXPECT_NE(c.prompt.find("<|im_start|>assistant\n"), std::string::npos);
  EXPECT_EQ(static_cast<int32_t>(m.tokenizer->encode(c.prompt, false).size()), c.prompt_tokens);
  EXPECT_LE(c.prompt_tokens, 700);
  EXPECT_GE(c.prompt_tokens, 696);
  // In chat mode the answer starts the assistant turn: no leading space.
  EXPECT_NE(c.target.front(), ' ');
}

TEST(Tasks, RealQwen3TokenizerHitsLongContexts) {
  // Unpacked by the build from the committed tokenizer.json.tar.xz.
  const PromptEncoder qwen3(
      Tokenizer::load(std::string(VORTEX_TEST_DATA_BUILD_DIR) + "/tokenizers/qwen3/tokenizer.json"),
      std::nullopt);
  for (const std::string& task : task_names()) {
    TaskSample s = generate_task_sample(task, 8192, 11, qwen3);
    EXPECT_LE(s.prompt_tokens, 8192) << task;
    EXPECT_GE(s.prompt_tokens, 8188) << task;
  }
}

TEST(Tasks, NiahSingleHidesTheAskedValueOnce) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    TaskSample s = generate_task_sample("niah_single", 800, seed, qwen3_encoder());
    ASSERT_EQ(s.answers.size(), 1u);
    EXPECT_TRUE(std::regex_match(s.answers[0], std::regex("[1-9][0-9]{6}")));
    EXPECT_EQ(count_of(s.prompt, "is: " + s.answers[0] + "."), 1u);
    EXPECT_EQ(s.target, " " + s.answers[0]);
    EXPECT_EQ(s.prompt.substr(s.prompt.size() - 7), "Answer:");
    // The key asked about is the key of the needle.
    std::smatch m;
    ASSERT_TRUE(
        std::regex_search(s.prompt, m, std::regex("numbers for ([a-z]+-[a-z]+) is: ([0-9]+)")));
    EXPECT_EQ(m[2].str(), s.answers[0]);
    EXPECT_NE(s.prompt.find("magic number for " + m[1].str() + " mentioned"), std::string::npos);
  }
}

TEST(Tasks, NiahMultikeyAsksOneOfFourDistinctKeys) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    TaskSample s = generate_task_sample("niah_multikey", 800, seed, qwen3_encoder());
    std::regex needle("numbers for ([a-z]+-[a-z]+) is: ([0-9]+)\\.");
    std::map<std::string, std::string> value_of;
    for (auto it = std::sregex_iterator(s.prompt.begin(), s.prompt.end(), needle);
         it != std::sregex_iterator(); ++it) {
      value_of[(*it)[1].str()] = (*it)[2].str();
    }
    ASSERT_EQ(value_of.size(), 4u);
    std::smatch q;
    ASSERT_TRUE(
        std::regex_search(s.prompt, q, std::regex("magic number for ([a-z]+-[a-z]+) mentioned")));
    EXPECT_EQ(s.answers, std::vector<std::string>{value_of.at(q[1].str())});
  }
}

TEST(Tasks, NiahMultivalueListsAllValuesInTextOrder) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    TaskSample s = generate_task_sample("niah_multivalue", 800, seed, qwen3_encoder());
    ASSERT_EQ(s.answers.size(), 4u);
    size_t last = 0;
    for (const std::string& v : s.answers) {
      size_t at = s.prompt.find("is: " + v + ".");
      ASSERT_NE(at, std::string::npos);
      EXPECT_GT(at, last);
      last = at;
    }
    EXPECT_EQ(s.target,
              " " + s.answers[0] + ", " + s.answers[1] + ", " + s.answers[2] + ", " + s.answers[3]);
  }
}

TEST(Tasks, VariableTrackingAnswersFollowTheQueriedChain) {
  for (uint64_t seed = 0; seed < 10; ++seed) {
    TaskSample s = generate_task_sample("vt", 800, seed, qwen3_encoder());
    ASSERT_EQ(s.answers.size(), 5u);
    std::smatch q;
    ASSERT_TRUE(std::regex_search(s.prompt, q, std::regex("assigned the value ([0-9]{5}) ")));
    ASSERT_NO_FATAL_FAILURE(expect_chain_in_order(s.prompt, s.answers, q[1].str()));
    // A second chain holds another value.
    EXPECT_EQ(count_of(s.prompt, "VAR "), 10u + 8u);
  }
}

// Training variants of vt: more chains or fewer hops from the same generator; the default
// variant is exactly the evaluation's task.
TEST(Tasks, VariableTrackingVariantsChangeChainsAndHops) {
  for (uint64_t seed = 0; seed < 5; ++seed) {
    const TaskSample plain = generate_task_sample("vt", 800, seed, qwen3_encoder());
    const TaskSample dflt = generate_task_sample("vt", 800, seed, qwen3_encoder(), TaskVariant{});
    EXPECT_EQ(plain.prompt, dflt.prompt);
    EXPECT_EQ(plain.answers, dflt.answers);

    for (const auto& [chains, hops] : {std::pair{4, 1}, std::pair{1, 0}, std::pair{3, 6}}) {
      TaskVariant v;
      v.vt_chains = chains;
      v.vt_hops = hops;
      const TaskSample s = generate_task_sample("vt", 900, seed, qwen3_encoder(), v);
      ASSERT_EQ(s.answers.size(), static_cast<size_t>(hops + 1)) << chains << " " << hops;
      std::smatch q;
      ASSERT_TRUE(std::regex_search(s.prompt, q, std::regex("assigned the value ([0-9]+) ")));
      EXPECT_EQ(q[1].str().size(), 5u);
      ASSERT_NO_FATAL_FAILURE(expect_chain_in_order(s.prompt, s.answers, q[1].str()));
      // Every chain: its head, then `hops` references (each "VAR x = VAR y." counts twice).
      EXPECT_EQ(count_of(s.prompt, "VAR "), static_cast<size_t>(chains * (1 + 2 * hops)));
      EXPECT_EQ(count_of(s.prompt, "VAR " + s.answers[0] + " = "), 1u);
    }
  }
  // Shorter values: the question names a value of that many digits that heads the answer's chain,
  // and every chain's value differs (8 chains of 1-digit values still fit).
  for (uint64_t seed = 0; seed < 5; ++seed) {
    for (const int digits : {1, 2, 9}) {
      TaskVariant v;
      v.vt_chains = 8;
      v.vt_hops = 0;
      v.vt_value_digits = digits;
      const TaskSample s = generate_task_sample("vt", 700, seed, qwen3_encoder(), v);
      std::smatch q;
      ASSERT_TRUE(std::regex_search(s.prompt, q, std::regex("assigned the value ([0-9]+) ")));
      EXPECT_EQ(q[1].str().size(), static_cast<size_t>(digits));
      ASSERT_EQ(s.answers.size(), 1u);
      EXPECT_NE(s.prompt.find("VAR " + s.answers[0] + " = " + q[1].str() + "."), std::string::npos);
      std::set<std::string> values;
      const std::regex head("VAR [A-Z]+ = ([0-9]+)\\.");
      for (auto m = std::sregex_iterator(s.prompt.begin(), s.prompt.end(), head);
           m != std::sregex_iterator(); ++m) {
        EXPECT_EQ((*m)[1].str().size(), static_cast<size_t>(digits));
        values.insert((*m)[1].str());
      }
      EXPECT_EQ(values.size(), 8u) << "digits " << digits << " seed " << seed;
    }
  }
  TaskVariant bad;
  bad.vt_value_digits = 0;
  EXPECT_THROW(generate_task_sample("vt", 800, 1, qwen3_encoder(), bad), Error);
  bad.vt_value_digits = 10;
  EXPECT_THROW(generate_task_sample("vt", 800, 1, qwen3_encoder(), bad), Error);
  bad = TaskVariant{};
  bad.vt_chains = 0;
  EXPECT_THROW(generate_task_sample("vt", 800, 1, qwen3_encoder(), bad), Error);
  bad = TaskVariant{};
  bad.vt_hops = 17;
  EXPECT_THROW(generate_task_sample("vt", 800, 1, qwen3_encoder(), bad), Error);
}

TEST(Tasks, CommonWordsAreTheMostFrequentByAMargin) {
  for (int32_t context : {400, 2000}) {
    for (uint64_t seed = 0; seed < 5; ++seed) {
      TaskSample s = generate_task_sample("cwe", context, seed, qwen3_encoder());
      ASSERT_EQ(s.answers.size(), 10u);
      const size_t begin = s.prompt.find("\n\n") + 2, end = s.prompt.rfind("\n\nWhat");
      std::map<std::string, int> freq;
      std::string list = s.prompt.substr(begin, end - begin);
      for (size_t p = 0; p < list.size();) {
        size_t sp = list.find(' ', p);
        if (sp == std::string::npos) sp = list.size();
        ++freq[list.substr(p, sp - p)];
        p = sp + 1;
      }
      int least_common = 1 << 30, most_other = 0;
      for (const auto& [w, n] : freq) {
        bool common = std::find(s.answers.begin(), s.answers.end(), w) != s.answers.end();
        if (common)
          least_common = std::min(least_common, n);
        else
          most_other = std::max(most_other, n);
      }
      EXPECT_GE(least_common, most_other + 2) << "context " << context << " seed " << seed;
    }
  }
}

TEST(Tasks, TooShortAContextIsAnErrorNamingTheTask) {
  try {
    generate_task_sample("niah_multikey", 50, 1, qwen3_encoder());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("niah_multikey: a context of 50 tokens is too short"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(generate_task_sample("cwe", 200, 1, qwen3_encoder()), Error);
  EXPECT_THROW(generate_task_sample("needle", 1000, 1, qwen3_encoder()), Error);
}

TEST(Tasks, TaskListsParseAllAndRejectUnknownNames) {
  EXPECT_EQ(parse_task_list("all"), task_names());
  EXPECT_EQ(parse_task_list("vt, niah_single,vt"), (std::vector<std::string>{"vt", "niah_single"}));
  try {
    parse_task_list("niah_single,qa");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(std::string(e.what()).find("unknown task 'qa'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("niah_multivalue"), std::string::npos);
  }
}

}  // namespace
}  // namespace vortex::eval
