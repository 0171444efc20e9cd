// Continuous batching gives each request exactly the tokens (and logprobs) it gets alone, with
// requests of different lengths arriving at different steps, and under page pressure that
// forces preemption and recompute.
#include <gtest/gtest.h>

#include <map>

#include "core/rng.h"
#include "engine/engine.h"
#include "engine/loaded_model.h"

namespace vortex {
namespace {

LoadedModel tiny(const char* name) {
  return load_model(std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/" + name, {});
}

struct Job {
  std::vector<int32_t> prompt;
  int32_t max_tokens;
  int64_t arrival_step;
  SamplingParams sampling;
};

std::vector<Job> make_jobs(int32_t vocab, int n, uint64_t seed) {
  Rng rng(seed);
  std::vector<Job> jobs;
  for (int i = 0; i < n; ++i) {
    Job j;
    int32_t len = 1 + static_cast<int32_t>(rng.next_u64() % 90);
    for (int32_t t = 0; t < len; ++t)
      j.prompt.push_back(static_cast<int32_t>(rng.next_u64() % vocab));
    j.max_tokens = 1 + static_cast<int32_t>(rng.next_u64() % 40);
    j.arrival_step = static_cast<int64_t>(rng.next_u64() % 30);
    if (i % 3 == 2) {  // some requests sample, with their own seed
      j.sampling.temperature = 0.8f;
      j.sampling.top_p = 0.9f;
      j.sampling.seed = 1000 + i;
    }
    jobs.push_back(j);
  }
  return jobs;
}

GenerationResult run_alone(const LoadedModel& m, const Job& j, int32_t page_size) {
  EngineOptions eo;
  eo.page_size = page_size;
  Engine e(m, eo);
  GenerationParams gp;
  gp.max_tokens = j.max_tokens;
  gp.sampling = j.sampling;
  gp.ignore_eos = true;
  e.add_request(j.prompt, gp);
  return e.run_to_completion().at(0);
}

// Runs all jobs in one engine, each added at its arrival step.
std::vector<GenerationResult> run_together(const LoadedModel& m, const std::vector<Job>& jobs,
                                           const EngineOptions& eo, EngineStats* stats) {
  Engine e(m, eo);
  std::map<int64_t, size_t> job_of;
  std::vector<GenerationResult> out(jobs.size());
  size_t added = 0;
  for (int64_t step = 0; added < jobs.size() || e.has_unfinished(); ++step) {
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (jobs[i].arrival_step == step) {
        GenerationParams gp;
        gp.max_tokens = jobs[i].max_tokens;
        gp.sampling = jobs[i].sampling;
        gp.ignore_eos = true;
        job_of[e.add_request(jobs[i].prompt, gp)] = i;
        ++added;
      }
    }
    for (GenerationResult& r : e.step()) out[job_of.at(r.id)] = std::move(r);
  }
  *stats = e.stats();
  return out;
}

void expect_same(const std::vector<Job>& jobs, const std::vector<GenerationResult>& together,
                 const LoadedModel& m, int32_t page_size) {
  for (size_t i = 0; i < jobs.size(); ++i) {
    GenerationResult alone = run_alone(m, jobs[i], page_size);
    SCOPED_TRACE("job " + std::to_string(i));
    EXPECT_EQ(together[i].token_ids, alone.token_ids);
    EXPECT_EQ(together[i].logprobs, alone.logprobs);  // bit-exact: kernels are batch-invariant
  }
}

TEST(ContinuousBatching, StaggeredArrivalsGiveEachRequestItsSoloTokens) {
  LoadedModel m = tiny("tiny-qwen3");
  std::vector<Job> jobs = make_jobs(m.config.vocab_size, 12, 7);
  EngineOptions eo;
  eo.max_step_tokens = 48;  // forces chunked prefill mixed with decodes
  eo.max_batch = 16;
  EngineStats stats;
  std::vector<GenerationResult> together = run_together(m, jobs, eo, &stats);
  EXPECT_EQ(stats.preemptions, 0);
  expect_same(jobs, together, m, eo.page_size);
}

TEST(ContinuousBatching, PagePressurePreemptsAndRecomputesWithoutChangingResults) {
  LoadedModel m = tiny("tiny-llama");
  std::vector<Job> jobs = make_jobs(m.config.vocab_size, 10, 11);
  EngineOptions eo;
  eo.page_size = 4;
  eo.num_pages = 40;  // 160 tokens for ten requests of up to 130 tokens each
  eo.max_step_tokens = 32;
  eo.max_batch = 8;
  EngineStats stats;
  std::vector<GenerationResult> together = run_together(m, jobs, eo, &stats);
  EXPECT_GT(stats.preemptions, 0) << "the pool was meant to be too small";
  int preempted = 0;
  for (const GenerationResult& r : together) preempted += r.num_preemptions > 0;
  EXPECT_GT(preempted, 0);
  expect_same(jobs, together, m, eo.page_size);
}

TEST(ContinuousBatching, PrefillFirstChangesTheScheduleButNotTheResults) {
  LoadedModel m = tiny("tiny-qwen3");
  std::vector<Job> jobs = make_jobs(m.config.vocab_size, 10, 13);
  EngineOptions eo;
  eo.max_step_tokens = 48;
  eo.max_batch = 16;
  EngineStats decode_first_stats, prefill_first_stats;
  std::vector<GenerationResult> decode_first = run_together(m, jobs, eo, &decode_first_stats);
  eo.prefill_first = true;
  std::vector<GenerationResult> prefill_first = run_together(m, jobs, eo, &prefill_first_stats);
  // Same work in a different order: prefill steps no longer carry decodes.
  EXPECT_EQ(decode_first_stats.preemptions, 0);
  EXPECT_EQ(prefill_first_stats.preemptions, 0);
  EXPECT_EQ(prefill_first_stats.prefill_tokens, decode_first_stats.prefill_tokens);
  EXPECT_EQ(prefill_first_stats.decode_tokens, decode_first_stats.decode_tokens);
  EXPECT_NE(prefill_first_stats.steps, decode_first_stats.steps);
  for (size_t i = 0; i < jobs.size(); ++i) {
    SCOPED_TRACE("job " + std::to_string(i));
    EXPECT_EQ(prefill_first[i].token_ids, decode_first[i].token_ids);
    EXPECT_EQ(prefill_first[i].logprobs, decode_first[i].logprobs);
  }
  expect_same(jobs, prefill_first, m, eo.page_size);

  // Under page pressure too, with its preemptions and recomputes.
  LoadedModel llama = tiny("tiny-llama");
  std::vector<Job> pressed = make_jobs(llama.config.vocab_size, 10, 11);
  EngineOptions tight;
  tight.page_size = 4;
  tight.num_pages = 40;
  tight.max_step_tokens = 32;
  tight.max_batch = 8;
  tight.prefill_first = true;
  EngineStats stats;
  std::vector<GenerationResult> together = run_together(llama, pressed, tight, &stats);
  EXPECT_GT(stats.preemptions, 0) << "the pool was meant to be too small";
  expect_same(pressed, together, llama, tight.page_size);
}

TEST(ContinuousBatching, ARequestThatCanNeverFitIsRejectedAtAdmission) {
  LoadedModel m = tiny("tiny-qwen3");
  EngineOptions eo;
  eo.page_size = 4;
  eo.num_pages = 4;  // 16 tokens in all
  Engine e(m, eo);
  std::vector<int32_t> prompt(40, 5);
  EXPECT_THROW(e.add_request(prompt, GenerationParams{}), Error);
}

}  // namespace
}  // namespace vortex
