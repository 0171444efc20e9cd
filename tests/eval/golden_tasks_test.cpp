// Pins generated samples byte for byte: a change to the word lists, templates, seeding or
// length fitting shows up here (and means a model trained on older dumps sees a new
// distribution). After an intended change, regenerate the file with
//   VORTEX_UPDATE_GOLDEN=1 build/test_eval_golden_tasks
// and say so in the commit.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "engine/loaded_model.h"
#include "eval/tasks/tasks.h"

namespace vortex::eval {
namespace {

const std::string kGolden =
    std::string(VORTEX_SOURCE_DIR) + "/tests/data/eval/golden_tasks_tiny_qwen3.jsonl";

std::vector<TaskSample> current_samples() {
  const PromptEncoder encoder(
      load_tokenizer_of(std::string(VORTEX_SOURCE_DIR) + "/tests/data/models/tiny-qwen3"),
      std::nullopt);
  return generate_task_samples(task_names(), 400, 2, 7, encoder);
}

TEST(GoldenTasks, GeneratorOutputIsUnchanged) {
  const std::vector<TaskSample> samples = current_samples();
  if (std::getenv("VORTEX_UPDATE_GOLDEN")) {
    std::ofstream out(kGolden, std::ios::binary | std::ios::trunc);
    for (const TaskSample& s : samples) out << task_sample_to_json(s).dump() << '\n';
    GTEST_SKIP() << "rewrote " << kGolden;
  }
  std::ifstream in(kGolden, std::ios::binary);
  ASSERT_TRUE(in) << "missing " << kGolden;
  std::string line;
  size_t i = 0;
  for (int n = 1; std::getline(in, line); ++n, ++i) {
    ASSERT_LT(i, samples.size()) << "the golden file has more samples than the generator";
    const Json golden = Json::parse(line);
    const Json now = task_sample_to_json(samples[i]);
    EXPECT_EQ(now["prompt"], golden["prompt"]) << "line " << n << " (" << golden["task"] << ")";
    EXPECT_EQ(now, golden) << "line " << n;
    // What the training script reads back is what was generated.
    EXPECT_EQ(task_sample_to_json(task_sample_from_json(golden, "golden:" + std::to_string(n))),
              golden);
  }
  EXPECT_EQ(i, samples.size());
}

}  // namespace
}  // namespace vortex::eval
