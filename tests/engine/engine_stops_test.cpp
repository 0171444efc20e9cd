// Requests end on eos ids, stop strings and their token limit; bad prompts are refused with a
// message that says what is wrong.
#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/engine.h"
#include "engine/loaded_model.h"

namespace vortex {
namespace {

LoadedModel tiny_qwen3() {
  return load_model(std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3", {});
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

GenerationResult generate(const LoadedModel& m, std::vector<int32_t> prompt, GenerationParams gp) {
  Engine e(m, EngineOptions{});
  e.add_request(std::move(prompt), gp);
  return e.run_to_completion().at(0);
}

TEST(EngineStops, EosEndsTheRequestAndIsReported) {
  LoadedModel m = tiny_qwen3();
  GenerationParams gp;
  gp.max_tokens = 30;
  gp.ignore_eos = true;
  GenerationResult free_run = generate(m, {10, 20, 30}, gp);
  ASSERT_EQ(free_run.token_ids.size(), 30u);
  // Declare the 5th generated token an eos id: generation must stop right there.
  int32_t fifth = free_run.token_ids[4];
  m.config.eos_token_ids = {fifth};
  gp.ignore_eos = false;
  GenerationResult stopped = generate(m, {10, 20, 30}, gp);
  size_t first = 0;
  while (free_run.token_ids[first] != fifth) ++first;
  EXPECT_EQ(stopped.token_ids.size(), first + 1);
  EXPECT_EQ(stopped.finish_reason, FinishReason::kStop);
}

TEST(EngineStops, StopStringTruncatesTheText) {
  LoadedModel m = tiny_qwen3();
  GenerationParams gp;
  gp.max_tokens = 24;
  gp.ignore_eos = true;
  GenerationResult free_run = generate(m, {10, 20, 30}, gp);
  ASSERT_GE(free_run.text.size(), 4u);
  std::string stop = free_run.text.substr(free_run.text.size() / 2, 2);
  gp.stop = {stop};
  std::string streamed;
  Engine e(m, EngineOptions{});
  e.add_request({10, 20, 30}, gp, [&](TokenEvent&& ev) { streamed += ev.text; });
  GenerationResult r = e.run_to_completion().at(0);
  EXPECT_EQ(r.finish_reason, FinishReason::kStop);
  EXPECT_EQ(r.text, free_run.text.substr(0, free_run.text.find(stop)));
  EXPECT_EQ(streamed, r.text);
}

TEST(EngineStops, MaxTokensEndsWithLength) {
  LoadedModel m = tiny_qwen3();
  GenerationParams gp;
  gp.max_tokens = 3;
  gp.ignore_eos = true;
  GenerationResult r = generate(m, {1, 2}, gp);
  EXPECT_EQ(r.token_ids.size(), 3u);
  EXPECT_EQ(r.finish_reason, FinishReason::kLength);
}

TEST(EngineStops, GenerationStopsAtTheContextLength) {
  LoadedModel m = tiny_qwen3();
  m.config.max_position_embeddings = 20;
  GenerationParams gp;
  gp.max_tokens = 100;
  gp.ignore_eos = true;
  GenerationResult r = generate(m, std::vector<int32_t>(15, 3), gp);
  EXPECT_EQ(r.token_ids.size(), 5u);
  EXPECT_EQ(r.finish_reason, FinishReason::kLength);
}

TEST(EngineStops, BadPromptsAreRefusedWithAReason) {
  LoadedModel m = tiny_qwen3();
  Engine e(m, EngineOptions{});
  EXPECT_NE(error_of([&] {
              e.add_request({1, 5000, 2}, {});
            }).find("prompt token 1 has id 5000"),
            std::string::npos);
  EXPECT_NE(error_of([&] { e.add_request({-1}, {}); }).find("outside the model's vocabulary"),
            std::string::npos);
  EXPECT_NE(error_of([&] { e.add_request({}, {}); }).find("empty"), std::string::npos);
  EXPECT_NE(error_of([&] {
              e.add_request(std::vector<int32_t>(4096, 1), {});
            }).find("context is 4096 tokens"),
            std::string::npos);
  EXPECT_FALSE(e.has_unfinished());
}

}  // namespace
}  // namespace vortex
