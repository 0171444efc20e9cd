#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "core/json_file.h"
#include "engine/loaded_model.h"

namespace vortex::cli {

namespace {
struct TokenizeArgs {
  std::string model;
  std::string text;
  std::string file;
  std::string jsonl;
  bool no_special = false;
  bool json = false;
};

void print_ids(const std::vector<int32_t>& ids, bool json) {
  if (json) {
    Json out = {{"ids", ids}};
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
  std::printf("%s\n", line.c_str());
}

std::string read_all(const std::string& path) {
  if (path == "-") {
    std::ostringstream s;
    s << std::cin.rdbuf();
    return s.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot read: ", std::strerror(errno), " (--file)");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) fail(path, ": read error (--file)");
  return s.str();
}

// One {"ids": [...]} line per input line, in order; a line that is not a JSON object with a
// string "text" stops the run with its file and line number (the lines before it are printed).
void tokenize_jsonl(const Tokenizer& tok, const std::string& path, bool add_special) {
  std::ifstream file;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) fail(path, ": cannot read: ", std::strerror(errno), " (--jsonl)");
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = path + ":" + std::to_string(n);
    if (line.find_first_not_of(" \t") == std::string::npos)
      fail(where, ": empty line (every line must be a JSON object with a \"text\" string)");
    const Json row = parse_json(line, where);
    if (!row.is_object() || !row.contains("text") || !row["text"].is_string())
      fail(where, ": not a JSON object with a \"text\" string");
    print_ids(tok.encode(row["text"].get<std::string>(), add_special), true);
  }
  if (in.bad()) fail(path, ": read error (--jsonl)");
}
}  // namespace

Action add_tokenize_command(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Print the token ids of a text, a text file or each line of a JSON Lines file");
  cmd->add_option("--model", args->model, "Model directory with tokenizer.json")->required();
  CLI::Option* text = cmd->add_option("--text", args->text, "Text to tokenize");
  CLI::Option* file =
      cmd->add_option("--file", args->file, "Tokenize a whole text file (- reads standard input)");
  CLI::Option* jsonl = cmd->add_option(
      "--jsonl", args->jsonl,
      "Tokenize the \"text\" string of every line of a JSON Lines file (- reads standard "
      "input); prints one {\"ids\": [...]} line per input line, in order");
  text->excludes(file)->excludes(jsonl);
  file->excludes(jsonl);
  cmd->add_flag("--no-special", args->no_special,
                "Do not add the tokenizer's special tokens (e.g. a leading <|begin_of_text|>)");
  cmd->add_flag("--json", args->json, "Print {\"ids\": [...]}");
  return [args, text, file, jsonl]() {
    if (!*text && !*file && !*jsonl)
      fail_usage("tokenize needs one of --text, --file or --jsonl (see vortex tokenize --help)");
    Tokenizer tok = load_tokenizer_of(args->model);
    if (*jsonl) {
      tokenize_jsonl(tok, args->jsonl, !args->no_special);
      return 0;
    }
    if (*file) {
      const std::string input = read_all(args->file);
      std::vector<int32_t> ids;
      try {
        ids = tok.encode(input, !args->no_special);
      } catch (const Error& e) {
        fail(args->file, ": ", e.what(), " (--file)");  // e.g. not UTF-8: name the file
      }
      print_ids(ids, args->json);
      return 0;
    }
    print_ids(tok.encode(args->text, !args->no_special), args->json);
    return 0;
  };
}

}  // namespace vortex::cli
