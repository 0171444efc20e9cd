// Greedy continuations and per-token logprobs of the test checkpoints equal Hugging Face
// transformers' (made by scripts/make_references.py: f32, full recompute, no KV cache).
#include <gtest/gtest.h>

#include <string>

#include "core/json_file.h"
#include "engine/engine.h"
#include "engine/loaded_model.h"

namespace vortex {
namespace {

std::string model_dir(const std::string& name) {
  return std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/" + name;
}

class HfReference : public ::testing::TestWithParam<std::tuple<std::string, int32_t>> {};

TEST_P(HfReference, GreedyIdsAndLogprobsMatchTransformers) {
  const auto& [name, page_size] = GetParam();
  LoadedModel model = load_model(model_dir(name), {});
  Json ref = read_json_file(model_dir(name) + "/reference.json");
  EngineOptions eo;
  eo.page_size = page_size;
  eo.max_step_tokens = 64;  // long prompts are prefilled in several chunks
  Engine engine(model, eo);
  std::vector<Json> cases(ref["cases"].begin(), ref["cases"].end());
  for (const Json& c : cases) {
    GenerationParams gp;
    gp.max_tokens = static_cast<int32_t>(c["greedy_ids"].size());
    gp.ignore_eos = true;  // the reference does not stop at eos
    engine.add_request(c["prompt_ids"].get<std::vector<int32_t>>(), gp);
  }
  std::vector<GenerationResult> results = engine.run_to_completion();
  ASSERT_EQ(results.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i) + " (" + std::to_string(cases[i]["prompt_ids"].size()) +
                 " prompt tokens)");
    EXPECT_EQ(results[i].token_ids, cases[i]["greedy_ids"].get<std::vector<int32_t>>());
    std::vector<double> lp = cases[i]["greedy_logprobs"].get<std::vector<double>>();
    ASSERT_EQ(results[i].logprobs.size(), lp.size());
    for (size_t t = 0; t < lp.size(); ++t) EXPECT_NEAR(results[i].logprobs[t], lp[t], 1e-3) << t;
  }
}

TEST(HfReference, TextPromptsTokenizeAsTransformersDid) {
  for (const char* name : {"tiny-qwen3", "tiny-llama"}) {
    LoadedModel model = load_model(model_dir(name), {});
    Json ref = read_json_file(model_dir(name) + "/reference.json");
    int checked = 0;
    for (const Json& c : ref["cases"]) {
      if (!c.contains("prompt_text")) continue;
      EXPECT_EQ(model.require_tokenizer().encode(c["prompt_text"].get<std::string>(), false),
                c["prompt_ids"].get<std::vector<int32_t>>());
      ++checked;
    }
    EXPECT_GT(checked, 0) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, HfReference,
                         ::testing::Combine(::testing::Values("tiny-qwen3", "tiny-llama"),
                                            ::testing::Values(16, 4, 64)),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param) + "_page" +
                                           std::to_string(std::get<1>(info.param));
                           for (char& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace vortex
