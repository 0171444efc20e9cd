#include "flow/diagnostics.h"

#include <algorithm>

namespace vortex::flow {

void DiagnosticSink::error(SourceLoc loc, std::string message, std::vector<Diagnostic> notes) {
  diagnostics_.push_back(Diagnostic{Severity::kError, loc, std::move(message), std::move(notes)});
  if (++error_count_ >= kMaxErrors) {
    diagnostics_.push_back(
        Diagnostic{Severity::kError,
                   SourceLoc{},
                   "too many errors; stopping after " + std::to_string(kMaxErrors),
                   {}});
    throw CompileAborted{};
  }
}

Diagnostic DiagnosticSink::note(SourceLoc loc, std::string message) {
  return Diagnostic{Severity::kNote, loc, std::move(message), {}};
}

namespace {

// Line `line` (1-based) of the source; "\r\n", "\r" and "\n" each end a line, as in the lexer.
std::string_view source_line(std::string_view source, int line) {
  size_t begin = 0;
  for (int i = 1; i < line; ++i) {
    size_t nl = source.find_first_of("\r\n", begin);
    if (nl == std::string_view::npos) return {};
    begin = nl + (source.substr(nl, 2) == "\r\n" ? 2 : 1);
  }
  size_t end = source.find_first_of("\r\n", begin);
  std::string_view text = source.substr(begin, end == std::string_view::npos ? end : end - begin);
  if (line == 1 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // the BOM
  return text;
}

// Whether `text` is well-formed UTF-8 (a window cut inside a character counts as well formed).
bool valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && i < 3 && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) ++i;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    const size_t len = c < 0x80                 ? 1
                       : c >= 0xC2 && c <= 0xDF ? 2
                       : c >= 0xE0 && c <= 0xEF ? 3
                       : c >= 0xF0 && c <= 0xF4 ? 4
                                                : 0;
    if (len == 0) return false;
    for (size_t k = 1; k < len && i + k < text.size(); ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return false;
    i += len;
  }
  return true;
}

// Lines longer than this are shown as a window around the column, so one diagnostic stays a
// few lines of output whatever the source holds.
constexpr int kMaxShownColumns = 160;

void render(const Diagnostic& d, std::string_view source, const std::string& filename,
            bool with_source, std::string& out) {
  out += filename;
  if (d.loc.line > 0) {
    out += ":";
    out += std::to_string(d.loc.line);
    out += ":";
    out += std::to_string(d.loc.col);
  }
  out += d.severity == Severity::kError ? ": error: " : ": note: ";
  out += d.message;
  out += "\n";
  if (!with_source || d.loc.line <= 0) return;
  std::string_view text = source_line(source, d.loc.line);
  if (text.empty()) return;
  int col = d.loc.col;
  std::string prefix, suffix;
  if (static_cast<int>(text.size()) > kMaxShownColumns) {
    const int first = std::clamp(col - 1 - kMaxShownColumns / 2, 0,
                                 static_cast<int>(text.size()) - kMaxShownColumns);
    if (first > 0) prefix = "...";
    if (first + kMaxShownColumns < static_cast<int>(text.size())) suffix = "...";
    text = text.substr(static_cast<size_t>(first), kMaxShownColumns);
    col = col - first + static_cast<int>(prefix.size());
  }
  // The line as shown: control characters (a NUL would end the output) and bytes of invalid
  // UTF-8 become '?', one column each, so the caret still lines up.
  const bool utf8 = valid_utf8(text);
  std::string shown_text(text);
  for (char& c : shown_text) {
    const auto b = static_cast<unsigned char>(c);
    if ((b < 0x20 && c != '\t') || b == 0x7F || (b >= 0x80 && !utf8)) c = '?';
  }
  out += "    ";
  out += prefix;
  out += shown_text;
  out += suffix;
  out += "\n    ";
  // Keep tabs so the caret lines up under tab-indented source.
  const std::string shown = prefix + shown_text;
  for (int i = 0; i + 1 < col && i < static_cast<int>(shown.size()); ++i)
    out += shown[static_cast<size_t>(i)] == '\t' ? '\t' : ' ';
  out += "^\n";
}

}  // namespace

std::string format_diagnostics(const std::vector<Diagnostic>& diagnostics, std::string_view source,
                               const std::string& filename, bool with_source) {
  std::string out;
  for (const Diagnostic& d : diagnostics) {
    render(d, source, filename, with_source, out);
    if (!with_source) continue;
    for (const Diagnostic& n : d.notes) render(n, source, filename, with_source, out);
  }
  return out;
}

}  // namespace vortex::flow
