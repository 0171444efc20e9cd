#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "core/json_file.h"
#include "engine/loaded_model.h"

namespace vortex::cli {

namespace {
struct TokenizeArgs {
  std::string model;
  std::string text;
  bool no_special = false;
  bool json = false;
};
}  // namespace

Action add_tokenize_command(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Print the token ids of a text");
  cmd->add_option("--model", args->model, "Model directory with tokenizer.json")->required();
  cmd->add_option("--text", args->text, "Text to tokenize")->required();
  cmd->add_flag("--no-special", args->no_special,
                "Do not add the tokenizer's special tokens (e.g. a leading <|begin_of_text|>)");
  cmd->add_flag("--json", args->json, "Print {\"ids\": [...]}");
  return [args]() {
    Tokenizer tok = load_tokenizer_of(args->model);
    std::vector<int32_t> ids = tok.encode(args->text, !args->no_special);
    if (args->json) {
      Json out = {{"ids", ids}};
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::string line;
      for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
      std::printf("%s\n", line.c_str());
    }
    return 0;
  };
}

}  // namespace vortex::cli
