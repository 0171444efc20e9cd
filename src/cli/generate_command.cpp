#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/model_flags.h"
#include "cli/sparse_flags.h"
#include "core/error.h"
#include "core/json_file.h"
#include "engine/engine.h"
#include "engine/loaded_model.h"

namespace vortex::cli {

namespace {

struct GenerateArgs : ModelFlags {
  std::vector<std::string> prompts, prompt_ids, chats;
  std::string system;
  int32_t max_tokens = 64;
  float temperature = 0.0f, top_p = 1.0f, min_p = 0.0f;
  int32_t top_k = 0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  EngineFlags engine;
  bool json = false;
  SparseFlags sparse;
};

// The ids of one --prompt-ids value; a malformed list is a usage error. Ids outside the
// vocabulary are refused once the model is known (check_prompt_ids).
std::vector<int32_t> parse_ids(const std::string& list) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    std::string item =
        list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    // Allow spaces around items: "1, 2, 3".
    size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0 || v > INT32_MAX) {
      fail_usage("--prompt-ids: '", printable(item, 40),
                 "' is not a token id (expected a comma-separated list of non-negative integers "
                 "such as 1,2,3)");
    }
    ids.push_back(static_cast<int32_t>(v));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

// Checked here, before anything is sized by the prompt, so the message names the flag.
void check_prompt_ids(const std::vector<int32_t>& ids, const LoadedModel& model) {
  for (int32_t id : ids) {
    if (id >= model.config.vocab_size) {
      fail("--prompt-ids: token id ", id, " is outside the vocabulary of '", model.source,
           "' (vocab_size ", model.config.vocab_size, ")");
    }
  }
}

Json result_json(const GenerationResult& r) {
  Json lp = Json::array();
  for (double v : r.logprobs) lp.push_back(v);
  return {{"id", r.id},
          {"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.token_ids.size()},
          {"token_ids", r.token_ids},
          {"logprobs", lp},
          {"text", r.text},
          {"finish_reason", finish_reason_name(r.finish_reason)},
          {"preemptions", r.num_preemptions}};
}

}  // namespace

Action add_generate_command(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* cmd =
      app.add_subcommand("generate", "Generate text for one or more prompts (continuous batching)");
  add_model_flags(cmd, *a);
  cmd->add_option("--prompt", a->prompts, "Prompt text (repeat for several requests)");
  cmd->add_option("--prompt-ids", a->prompt_ids, "Prompt as token ids, e.g. 1,2,3 (repeatable)");
  cmd->add_option("--chat", a->chats,
                  "A user message, formatted with the model's chat template (repeatable)");
  cmd->add_option("--system", a->system, "System message for --chat");
  cmd->add_option("--max-tokens", a->max_tokens, "Tokens to generate per request")
      ->capture_default_str();
  cmd->add_option("--temperature", a->temperature, "Sampling temperature; 0 = greedy")
      ->capture_default_str();
  cmd->add_option("--top-p", a->top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  cmd->add_option("--top-k", a->top_k, "Keep the k most likely tokens (0 = off)")
      ->capture_default_str();
  cmd->add_option("--min-p", a->min_p, "Drop tokens below min-p times the top probability")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "Sampling seed (0 = random when sampling)")
      ->capture_default_str();
  cmd->add_option("--stop", a->stop, "Stop string (repeatable); not included in the text");
  cmd->add_flag("--ignore-eos", a->ignore_eos, "Keep generating after end-of-sequence tokens");
  add_engine_flags(cmd, a->engine);
  cmd->add_flag("--json", a->json,
                "Print one JSON object per request (token_ids, logprobs, text, stats)");
  add_sparse_flags(cmd, a->sparse, /*several_flows=*/false);

  return [a]() {
    if (a->prompts.empty() && a->prompt_ids.empty() && a->chats.empty()) {
      fail_usage("generate: give a prompt with --prompt, --prompt-ids or --chat");
    }
    EngineOptions eo = engine_options_from_flags(a->engine);
    std::vector<std::vector<int32_t>> id_prompts;  // parsed first: usage errors come before loading
    for (const std::string& p : a->prompt_ids) id_prompts.push_back(parse_ids(p));
    LoadedModel model = a->load_model();

    std::vector<std::vector<int32_t>> prompts;
    for (const std::string& p : a->prompts) prompts.push_back(model.require_tokenizer().encode(p));
    for (std::vector<int32_t>& ids : id_prompts) {
      check_prompt_ids(ids, model);
      prompts.push_back(std::move(ids));
    }
    for (const std::string& c : a->chats) {
      if (!model.chat_template) {
        fail("model '", a->model, "' has no chat template (tokenizer_config.json): use --prompt");
      }
      std::vector<ChatMessage> msgs;
      if (!a->system.empty()) msgs.push_back({"system", a->system});
      msgs.push_back({"user", c});
      std::string text = model.chat_template->apply(msgs, /*add_generation_prompt=*/true);
      prompts.push_back(model.require_tokenizer().encode(text, /*add_special_tokens=*/false));
    }

    if (!a->sparse.flows.empty()) {
      eo.sparse = load_sparse_flags(a->sparse.flows[0], a->sparse, model.config, eo.page_size);
    }
    Engine engine(model, eo);

    GenerationParams gp;
    gp.max_tokens = a->max_tokens;
    gp.sampling.temperature = a->temperature;
    gp.sampling.top_k = a->top_k;
    gp.sampling.top_p = a->top_p;
    gp.sampling.min_p = a->min_p;
    gp.sampling.seed = a->seed;
    gp.stop = a->stop;
    gp.ignore_eos = a->ignore_eos;
    const bool stream = !a->json && prompts.size() == 1;
    TokenCallback print_text;
    if (stream) {
      print_text = [](TokenEvent&& e) {
        std::fwrite(e.text.data(), 1, e.text.size(), stdout);
        std::fflush(stdout);
      };
    }
    for (size_t i = 0; i < prompts.size(); ++i) {
      // Requests with a seed get distinct, reproducible streams.
      GenerationParams p = gp;
      if (p.sampling.seed != 0) p.sampling.seed += i;
      engine.add_request(prompts[i], p, print_text);
    }
    std::vector<GenerationResult> results = engine.run_to_completion();
    const EngineStats& s = engine.stats();
    int64_t generated = 0;
    for (const GenerationResult& r : results) generated += static_cast<int64_t>(r.token_ids.size());
    Json stats = {{"time_s", s.wall_seconds},
                  {"tokens_per_s", s.wall_seconds > 0 ? generated / s.wall_seconds : 0.0},
                  {"steps", s.steps},
                  {"prefill_tokens", s.prefill_tokens},
                  {"decode_tokens", s.decode_tokens},
                  {"preemptions", s.preemptions},
                  {"kv_pages", engine.num_pages()},
                  {"page_size", eo.page_size},
                  {"kv_read_fraction", 1.0}};
    if (const SparseStats* ss = engine.runner().sparse_stats()) {
      stats["flow"] = a->sparse.flows[0];
      stats.update(sparse_stats_json(*ss));
    }
    if (a->json) {
      for (const GenerationResult& r : results) {
        Json j = result_json(r);
        j["stats"] = stats;
        std::printf("%s\n", j.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
      }
      return 0;
    }
    if (stream) {
      std::printf("\n");
      std::fflush(stdout);
    } else {
      for (const GenerationResult& r : results) {
        std::printf("--- request %lld (%s) ---\n%s\n", static_cast<long long>(r.id),
                    finish_reason_name(r.finish_reason), r.text.c_str());
        if (!model.tokenizer) {
          std::string ids;
          for (int32_t t : r.token_ids) ids += std::to_string(t) + " ";
          std::printf("%s\n", ids.c_str());
        }
      }
    }
    if (stream && !model.tokenizer) {
      std::string ids;
      for (int32_t t : results.at(0).token_ids) ids += std::to_string(t) + " ";
      std::printf("%s\n", ids.c_str());
    }
    std::fflush(stdout);
    std::fprintf(stderr, "%lld requests, %lld tokens generated in %.2f s (%.1f tokens/s)",
                 static_cast<long long>(results.size()), static_cast<long long>(generated),
                 s.wall_seconds, s.wall_seconds > 0 ? generated / s.wall_seconds : 0.0);
    if (stats.contains("flow")) {
      std::fprintf(stderr, ", flow %s read %.1f%% of the KV pages",
                   stats["flow"].get<std::string>().c_str(),
                   100.0 * stats["kv_read_fraction"].get<double>());
      if (stats.contains("recall_mean"))
        std::fprintf(stderr, ", attention recall %.3f", stats["recall_mean"].get<double>());
    }
    std::fprintf(stderr, "\n");
    return 0;
  };
}

}  // namespace vortex::cli
