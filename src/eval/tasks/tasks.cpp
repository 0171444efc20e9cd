#include "eval/tasks/tasks.h"

#include <algorithm>

#include "core/error.h"
#include "core/thread_pool.h"
#include "eval/tasks/task_generators.h"
#include "eval/tasks/task_random.h"

namespace vortex::eval {

namespace {

using Generator = TaskBody (*)(int32_t, Rng&, const PromptEncoder&, const TaskVariant&);

struct TaskEntry {
  const char* name;
  Generator generate;
};

const TaskEntry kTasks[] = {
    {"niah_single", make_niah_single},
    {"niah_multikey", make_niah_multikey},
    {"niah_multivalue", make_niah_multivalue},
    {"vt", make_variable_tracking},
    {"cwe", make_common_words},
};

// Room after the target for a model to stop (eos, newline) without being cut short.
constexpr int32_t kGenerationMargin = 8;

std::string known_tasks() {
  std::string out;
  for (const std::string& n : task_names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

void check_task_variant(const TaskVariant& v) {
  if (v.vt_chains < 1 || v.vt_chains > 8) {
    fail_usage("--vt-chains must be in 1..8, got ", v.vt_chains);
  }
  if (v.vt_hops < 0 || v.vt_hops > 16) fail_usage("--vt-hops must be in 0..16, got ", v.vt_hops);
  if (v.vt_value_digits < 1 || v.vt_value_digits > 9) {
    fail_usage("--vt-value-digits must be in 1..9, got ", v.vt_value_digits);
  }
}

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const TaskEntry& t : kTasks) v.emplace_back(t.name);
    return v;
  }();
  return names;
}

std::vector<std::string> parse_task_list(const std::string& list) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    std::string item =
        list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    if (item == "all") {
      out.insert(out.end(), task_names().begin(), task_names().end());
    } else if (std::find(task_names().begin(), task_names().end(), item) != task_names().end()) {
      out.push_back(item);
    } else {
      fail_usage("--tasks: unknown task '", item, "' (tasks: ", known_tasks(), ", or all)");
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  // A task named twice runs once.
  std::vector<std::string> unique;
  for (const std::string& t : out) {
    if (std::find(unique.begin(), unique.end(), t) == unique.end()) unique.push_back(t);
  }
  return unique;
}

TaskSample generate_task_sample(const std::string& task, int32_t context, uint64_t seed,
                                const PromptEncoder& encoder, const TaskVariant& variant) {
  const TaskEntry* entry = nullptr;
  for (const TaskEntry& t : kTasks) {
    if (task == t.name) entry = &t;
  }
  if (!entry) fail("unknown task '", task, "' (tasks: ", known_tasks(), ")");
  if (context < 1) fail(task, ": the context must be at least 1 token, got ", context);
  check_task_variant(variant);
  Rng rng(seed);
  TaskBody body = entry->generate(context, rng, encoder, variant);

  TaskSample s;
  s.task = task;
  s.seed = seed;
  s.context = context;
  s.prompt = encoder.render(body.body);
  s.answers = body.answers;
  std::string answer_text;
  for (const std::string& a : body.answers) answer_text += (answer_text.empty() ? "" : ", ") + a;
  s.target = (encoder.chat() ? "" : " ") + answer_text;
  s.prompt_ids = encoder.encode(body.body);
  s.prompt_tokens = static_cast<int32_t>(s.prompt_ids.size());
  s.target_ids = encoder.tokenizer().encode(s.target, /*add_special_tokens=*/false);
  s.max_new_tokens = static_cast<int32_t>(s.target_ids.size()) + kGenerationMargin;
  s.chat = encoder.chat();
  return s;
}

std::vector<TaskSample> generate_task_samples(const std::vector<std::string>& tasks,
                                              int32_t context, int32_t samples, uint64_t seed,
                                              const PromptEncoder& encoder,
                                              const TaskVariant& variant) {
  if (samples < 1) fail_usage("the number of samples must be at least 1, got ", samples);
  const size_t per_task = static_cast<size_t>(samples);
  std::vector<TaskSample> out(tasks.size() * per_task);
  ThreadPool::global().parallel_for(
      static_cast<int64_t>(out.size()), 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const std::string& task = tasks[static_cast<size_t>(i) / per_task];
          const auto index = static_cast<int64_t>(static_cast<size_t>(i) % per_task);
          TaskSample s =
              generate_task_sample(task, context, sample_seed(seed, task, index), encoder, variant);
          s.index = index;
          out[static_cast<size_t>(i)] = std::move(s);
        }
      });
  return out;
}

}  // namespace vortex::eval
