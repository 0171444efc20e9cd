// Perplexity under sparse decode (eval/perplexity.h): documents cut from text files, prompts and
// forced continuations, the NLL of teacher-forced decode steps equal to the model's own
// distribution over the same tokens (a dense prefill of the whole document gives the same
// logprobs position by position), and the paired difference with its interval.
#include "eval/perplexity.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "engine/engine.h"
#include "engine/sampler.h"

namespace vortex::eval {
namespace {

namespace fs = std::filesystem;

const LoadedModel& tiny() {
  static const LoadedModel m =
      load_model(std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3", {});
  return m;
}

std::string write_temp(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / (std::to_string(getpid()) + "_" + name);
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

std::string prose(int words) {
  static const char* kWords[] = {"the", "page",  "of",   "keys",  "attention", "reads",
                                 "a",   "model", "flow", "every", "decode",    "step"};
  std::string s;
  for (int i = 0; i < words; ++i) s += std::string(kWords[(i * 7 + i / 5) % 12]) + " ";
  return s;
}

TEST(Perplexity, DocumentsAreConsecutiveWindowsOfTheFilesTokens) {
  const Tokenizer& tok = tiny().require_tokenizer();
  const std::string a = write_temp("a.txt", prose(300)), b = write_temp("b.txt", prose(200));
  const auto docs = perplexity_documents({a, b}, tok, 64, 100);
  std::vector<int32_t> stream = tok.encode(prose(300), false);
  const auto gap = tok.encode("\n\n", false), second = tok.encode(prose(200), false);
  stream.insert(stream.end(), gap.begin(), gap.end());
  stream.insert(stream.end(), second.begin(), second.end());
  ASSERT_EQ(docs.size(), stream.size() / 64);
  for (size_t d = 0; d < docs.size(); ++d)
    EXPECT_EQ(docs[d], std::vector<int32_t>(stream.begin() + d * 64, stream.begin() + d * 64 + 64));
  EXPECT_EQ(perplexity_documents({a, b}, tok, 64, 2).size(), 2u);

  const auto reqs = perplexity_requests(docs, 16);
  ASSERT_EQ(reqs.size(), docs.size());
  EXPECT_EQ(reqs[0].prompt.size(), 48u);
  EXPECT_EQ(reqs[0].params.forced_tokens,
            std::vector<int32_t>(docs[0].begin() + 48, docs[0].end()));

  EXPECT_THROW(perplexity_documents({a}, tok, 100000, 1), Error);  // too short
  EXPECT_THROW(perplexity_documents({a + ".missing"}, tok, 64, 1), Error);
  // Text that is not UTF-8 is refused naming its file.
  const std::string latin1 = write_temp("latin1.txt", prose(100) + "caf\xe9 " + prose(100));
  try {
    perplexity_documents({a, latin1}, tok, 64, 100);
    ADD_FAILURE() << "a file that is not UTF-8 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(latin1 + ": "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos) << e.what();
  }
  fs::remove(latin1);
  EXPECT_THROW(perplexity_requests(docs, 64), Error);  // nothing left to prefill
  fs::remove(a);
  fs::remove(b);
}

// Teacher-forced decode with full attention scores each token with the distribution a dense
// forward pass over the document gives at that position: checked against a one-token-longer
// prompt per position (the engine's own prefill logits, an independent path through prefill).
TEST(Perplexity, TeacherForcedNllEqualsTheModelsLogprobsAtEachPosition) {
  const Tokenizer& tok = tiny().require_tokenizer();
  const std::string f = write_temp("c.txt", prose(200));
  const auto docs = perplexity_documents({f}, tok, 80, 1);
  fs::remove(f);
  const int32_t S = 6;
  const auto reqs = perplexity_requests(docs, S);
  EngineOptions eo;
  eo.page_size = 4;
  Engine engine(tiny(), eo);
  const TokenNll nll = token_nll(run_eval_requests(engine, reqs));
  ASSERT_EQ(nll.tokens(), S);
  for (int32_t i = 0; i < S; ++i) {
    // The prompt up to the scored token; its first generated token's logprob is for token i.
    GenerationParams p;
    p.forced_tokens = {docs[0][80 - S + i]};
    EvalRequest r;
    r.prompt.assign(docs[0].begin(), docs[0].begin() + (80 - S + i));
    r.params = p;
    Engine fresh(tiny(), eo);
    const double want = -run_eval_requests(fresh, {r}).results[0].logprobs[0];
    EXPECT_NEAR(nll.per_document[0][static_cast<size_t>(i)], want, 1e-4) << "token " << i;
  }
  EXPECT_NEAR(nll.perplexity(), std::exp(nll.mean()), 1e-12);
}

TEST(Perplexity, TheDifferenceIsPairedAndItsIntervalIsOverDocuments) {
  TokenNll full, flow;
  full.per_document = {{1.0, 2.0}, {1.0, 1.0}, {2.0, 2.0}};
  flow.per_document = {{1.5, 2.5}, {1.0, 1.2}, {2.1, 2.3}};
  const NllDifference d = nll_difference(flow, full);
  EXPECT_EQ(d.over, "documents");
  EXPECT_EQ(d.units, 3);
  // Per-document mean differences 0.5, 0.1, 0.2: mean 0.2667, sd 0.2082.
  EXPECT_NEAR(d.mean, (0.5 + 0.1 + 0.2) / 3, 1e-12);
  EXPECT_NEAR(d.ci95, 1.96 * 0.208166599946613 / std::sqrt(3.0), 1e-9);
  TokenNll one_full, one_flow;
  one_full.per_document = {{1.0, 1.0, 1.0, 1.0}};
  one_flow.per_document = {{1.1, 1.3, 1.1, 1.3}};
  const NllDifference t = nll_difference(one_flow, one_full);
  EXPECT_EQ(t.over, "tokens");
  EXPECT_EQ(t.units, 4);
  EXPECT_NEAR(t.mean, 0.2, 1e-12);
}

}  // namespace
}  // namespace vortex::eval
