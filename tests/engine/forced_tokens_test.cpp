// Teacher forcing (GenerationParams::forced_tokens): forcing the tokens greedy decoding chose
// gives back greedy decoding's logprobs, with full attention and with a flow; forcing other
// tokens gives each its own logprob; EOS and max_tokens do not end it; bad ids are refused.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "engine/engine.h"

namespace vortex {
namespace {

const LoadedModel& tiny() {
  static const LoadedModel m =
      load_model(std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3", {});
  return m;
}

std::vector<int32_t> prompt() {
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < 90; ++i) ids.push_back((i * 53) % 800 + 3);
  return ids;
}

GenerationResult run(Engine& engine, const GenerationParams& params) {
  engine.add_request(prompt(), params, nullptr);
  std::vector<GenerationResult> done = engine.run_to_completion();
  EXPECT_EQ(done.size(), 1u);
  return done.empty() ? GenerationResult{} : done[0];
}

TEST(ForcedTokens, ForcingGreedysTokensGivesGreedysLogprobs) {
  for (bool sparse : {false, true}) {
    SCOPED_TRACE(sparse ? "quest at 1/4" : "full attention");
    EngineOptions eo;
    eo.page_size = 4;
    if (sparse) {
      flow::BudgetOverrides b;
      b.ratio = 0.25;
      eo.sparse = std::make_shared<const SparseAttentionConfig>(load_sparse_attention(
          std::string(VORTEX_SOURCE_DIR) + "/flows/quest.py", b, tiny().config, 4, false));
    }
    Engine engine(tiny(), eo);
    GenerationParams greedy;
    greedy.max_tokens = 12;
    greedy.ignore_eos = true;
    const GenerationResult g = run(engine, greedy);
    ASSERT_EQ(g.token_ids.size(), 12u);
    GenerationParams forced;
    forced.forced_tokens = g.token_ids;
    forced.max_tokens = 1;  // ignored: the forced tokens decide
    const GenerationResult f = run(engine, forced);
    EXPECT_EQ(f.token_ids, g.token_ids);
    ASSERT_EQ(f.logprobs.size(), g.logprobs.size());
    for (size_t i = 0; i < f.logprobs.size(); ++i)
      EXPECT_NEAR(f.logprobs[i], g.logprobs[i], 1e-9) << "token " << i;

    // Other tokens: the same steps, each token with its own (lower) likelihood.
    std::vector<int32_t> other = g.token_ids;
    for (int32_t& t : other) t = (t + 17) % tiny().config.vocab_size;
    if (!tiny().config.eos_token_ids.empty())
      other.push_back(tiny().config.eos_token_ids[0]);  // EOS does not stop it
    other.push_back(5);
    forced.forced_tokens = other;
    const GenerationResult o = run(engine, forced);
    EXPECT_EQ(o.token_ids, other);
    ASSERT_EQ(o.logprobs.size(), other.size());
    EXPECT_LT(o.logprobs[0], g.logprobs[0]);  // greedy's first token is the most likely
  }
}

TEST(ForcedTokens, BadIdsAreRefusedNamingTheToken) {
  Engine engine(tiny(), EngineOptions{});
  GenerationParams p;
  p.forced_tokens = {5, tiny().config.vocab_size};
  try {
    engine.add_request(prompt(), p, nullptr);
    ADD_FAILURE() << "an id outside the vocabulary was forced";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("forced token 1 has id"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vortex
