#include "tokenizer/chat_template.h"

#include <ctime>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace vortex {
namespace {

constexpr const char* kFamilies = "qwen3, chatml, llama3, llama3.1";

bool python_space(char32_t cp) {
  // Python's str.isspace() (used by Jinja's trim) also counts the separators U+001C..U+001F.
  return tok::is_unicode_whitespace(cp) || (cp >= 0x1C && cp <= 0x1F);
}

// Jinja's `trim`: Python str.strip() with no argument.
std::string trim(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    size_t next = begin;
    if (!python_space(tok::next_code_point(s, next))) break;
    begin = next;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!python_space(tok::next_code_point(s, pos))) break;
    end = start;
  }
  return std::string(s.substr(begin, end - begin));
}

std::string_view lstrip_newlines(std::string_view s) {
  while (!s.empty() && s.front() == '\n') s.remove_prefix(1);
  return s;
}

std::string_view rstrip_newlines(std::string_view s) {
  while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Undoes the escapes of a Jinja string literal that templates use (\n, \t, \', \", \\).
std::string unescape_jinja(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char c = s[++i];
      out.push_back(c == 'n' ? '\n' : c == 't' ? '\t' : c);
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The pieces of template text below are found by plain scans rather than std::regex, whose
// backtracking recurses once per character: a long template would overflow the stack.

// What `<|im_start|>system\n([^'"]*?)<|im_end|>` captures: the text of the first system turn
// written literally in the template, without a quote inside (so not a Jinja expression).
std::string literal_system_prompt(std::string_view text) {
  constexpr std::string_view kOpen = "<|im_start|>system\\n", kClose = "<|im_end|>";
  size_t from = 0;
  size_t close = 0;  // the first close after the current opening; reused while still ahead
  bool have_close = false;
  while (true) {
    const size_t open = text.find(kOpen, from);
    if (open == std::string_view::npos) return "";
    const size_t begin = open + kOpen.size();
    if (!have_close || close < begin) {
      close = text.find(kClose, begin);
      if (close == std::string_view::npos) return "";
      have_close = true;
    }
    const size_t quote = text.substr(begin, close - begin).find_first_of("'\"");
    if (quote == std::string_view::npos) return std::string(text.substr(begin, close - begin));
    // Every opening before the quote would run into it too: carry on after it. Each byte is
    // then scanned a bounded number of times, however many openings the template holds.
    from = begin + quote + 1;
  }
}

// The first non-empty run of characters after `prefix` up to (not including) one of `stops`.
// With `closed_by`, the run must end at that character; without, it may run to the end.
std::string text_after(std::string_view text, std::string_view prefix, std::string_view stops,
                       char closed_by = 0) {
  size_t from = 0;
  while (true) {
    const size_t at = text.find(prefix, from);
    if (at == std::string_view::npos) return "";
    const size_t begin = at + prefix.size();
    const size_t end = text.find_first_of(stops, begin);
    if (end == std::string_view::npos) {
      // No stop anywhere after: no later occurrence can be closed either.
      return closed_by != 0 ? "" : std::string(text.substr(begin));
    }
    if (end > begin && (closed_by == 0 || text[end] == closed_by)) {
      return std::string(text.substr(begin, end - begin));
    }
    from = end;
  }
}

std::string today_date() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%d %b %Y", &tm);
  return buffer;
}

std::string token_string(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return value["content"].get<std::string>();
  }
  return "";
}

}  // namespace

ChatTemplate ChatTemplate::load(const std::string& path) {
  try {
    return load_config(read_json_file(path), path);
  } catch (const Json::exception& e) {
    fail(path, ": malformed tokenizer_config.json: ", e.what());
  }
}

ChatTemplate ChatTemplate::load_config(const Json& config, const std::string& path) {
  if (!config.is_object() || !config.contains("chat_template") ||
      config["chat_template"].is_null()) {
    fail(path, ": the model has no chat template (field 'chat_template' is missing)");
  }
  const Json& field = config["chat_template"];
  std::string text;
  if (field.is_string()) {
    text = field.get<std::string>();
  } else if (field.is_array()) {
    // Some configs list named templates; the one named "default" is what HF applies.
    for (const auto& entry : field) {
      if (entry.is_object() && entry.contains("name") && entry["name"].is_string() &&
          entry["name"].get_ref<const std::string&>() == "default" && entry.contains("template") &&
          entry["template"].is_string()) {
        text = entry["template"].get<std::string>();
      }
    }
    if (text.empty()) fail(path, ": field 'chat_template' has no template named 'default'");
  } else {
    fail(path, ": field 'chat_template' must be a string or a list of named templates");
  }
  const std::string bos = config.contains("bos_token") ? token_string(config["bos_token"]) : "";
  // It starts every Llama prompt; a real one is a short special token.
  if (bos.size() > kMaxAddedTokenBytes) {
    fail(path, ": field 'bos_token' is ", bos.size(), " bytes, over the limit of ",
         kMaxAddedTokenBytes);
  }

  if (text.find("<|im_start|>") != std::string::npos) {
    if (text.find("</think>") != std::string::npos) return from_family("qwen3", bos);
    ChatTemplate t = from_family("chatml", bos);
    t.default_system_ = unescape_jinja(literal_system_prompt(text));
    return t;
  }
  if (text.find("<|start_header_id|>") != std::string::npos) {
    if (text.find("Cutting Knowledge Date") == std::string::npos) {
      return from_family("llama3", bos);
    }
    ChatTemplate t = from_family("llama3.1", bos);
    const std::string knowledge = text_after(text, "Cutting Knowledge Date: ", "\\\"'\n");
    if (!knowledge.empty()) t.knowledge_date_ = knowledge;
    // Templates that call strftime_now get today's date from transformers (an empty
    // today_date_ means that); the others fall back to a literal date.
    if (text.find("strftime_now") != std::string::npos) {
      t.today_date_.clear();
    } else if (const std::string date = text_after(text, "set date_string = \"", "\"", '"');
               !date.empty()) {
      t.today_date_ = date;
    }
    return t;
  }
  fail(path, ": field 'chat_template': unrecognised chat template (supported families: ", kFamilies,
       ")");
}

ChatTemplate ChatTemplate::from_family(const std::string& family, const std::string& bos_token) {
  ChatTemplate t;
  t.family_ = family;
  t.bos_token_ = bos_token;
  if (family == "llama3" || family == "llama3.1") {
    if (t.bos_token_.empty()) t.bos_token_ = "<|begin_of_text|>";
    if (family == "llama3.1") {
      t.knowledge_date_ = "December 2023";
      t.today_date_ = "26 Jul 2024";
    }
    return t;
  }
  if (family == "qwen3" || family == "chatml") return t;
  fail("unknown chat template family '", family, "' (supported families: ", kFamilies, ")");
}

std::string ChatTemplate::apply(const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt, bool enable_thinking) const {
  if (family_ == "qwen3") return render_qwen3(messages, add_generation_prompt, enable_thinking);
  if (family_ == "chatml") return render_chatml(messages, add_generation_prompt);
  return render_llama3(messages, add_generation_prompt);
}

std::string ChatTemplate::render_chatml(const std::vector<ChatMessage>& messages,
                                        bool add_generation_prompt) const {
  std::string out;
  if (!default_system_.empty() && (messages.empty() || messages[0].role != "system")) {
    out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
  }
  for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string ChatTemplate::render_qwen3(const std::vector<ChatMessage>& messages,
                                       bool add_generation_prompt, bool enable_thinking) const {
  std::string out;
  const size_t n = messages.size();
  if (n > 0 && messages[0].role == "system") {
    out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
  }
  // Thinking is shown only for assistant turns after the last real user query (tool results
  // wrapped as user messages do not count as queries).
  size_t last_query = n == 0 ? 0 : n - 1;
  for (size_t i = n; i-- > 0;) {
    const auto& m = messages[i];
    if (m.role == "user" &&
        !(starts_with(m.content, "<tool_response>") && ends_with(m.content, "</tool_response>"))) {
      last_query = i;
      break;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const auto& m = messages[i];
    if (m.role == "user" || (m.role == "system" && i != 0)) {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    } else if (m.role == "assistant") {
      std::string_view content = m.content;
      std::string_view reasoning;
      if (const size_t close = content.find("</think>"); close != std::string_view::npos) {
        const std::string_view before = rstrip_newlines(content.substr(0, close));
        const size_t open = before.rfind("<think>");
        reasoning =
            lstrip_newlines(open == std::string_view::npos ? before : before.substr(open + 7));
        content = lstrip_newlines(content.substr(content.rfind("</think>") + 8));
      }
      out += "<|im_start|>" + m.role + "\n";
      if (i > last_query && (i + 1 == n || !reasoning.empty())) {
        out += "<think>\n";
        out += rstrip_newlines(lstrip_newlines(reasoning));
        out += "\n</think>\n\n";
        out += lstrip_newlines(content);
      } else {
        out += content;
      }
      out += "<|im_end|>\n";
    } else if (m.role == "tool") {
      if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      if (i + 1 == n || messages[i + 1].role != "tool") out += "<|im_end|>\n";
    }
  }
  if (add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (!enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

std::string ChatTemplate::render_llama3(const std::vector<ChatMessage>& messages,
                                        bool add_generation_prompt) const {
  auto turn = [](const std::string& role, const std::string& content) {
    return "<|start_header_id|>" + role + "<|end_header_id|>\n\n" + trim(content) + "<|eot_id|>";
  };
  std::string out;
  size_t first = 0;
  if (family_ == "llama3.1") {
    out += bos_token_;
    std::string system;
    if (!messages.empty() && messages[0].role == "system") {
      system = trim(messages[0].content);
      first = 1;
    }
    out += "<|start_header_id|>system<|end_header_id|>\n\n";
    out += "Cutting Knowledge Date: " + knowledge_date_ + "\n";
    out += "Today Date: " + (today_date_.empty() ? today_date() : today_date_) + "\n\n";
    out += system + "<|eot_id|>";
  } else if (!messages.empty()) {
    out += bos_token_;  // Llama-3.0 puts bos before the first message only
  }
  for (size_t i = first; i < messages.size(); ++i)
    out += turn(messages[i].role, messages[i].content);
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

}  // namespace vortex
