#include "flow/diagnostics.h"

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

std::string_view source_line(std::string_view source, int line) {
  size_t begin = 0;
  for (int i = 1; i < line; ++i) {
    size_t nl = source.find('\n', begin);
    if (nl == std::string_view::npos) return {};
    begin = nl + 1;
  }
  size_t end = source.find('\n', begin);
  std::string_view text = source.substr(begin, end == std::string_view::npos ? end : end - begin);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return text;
}

void render(const Diagnostic& d, std::string_view source, const std::string& filename,
            std::string& out) {
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
  if (d.loc.line <= 0) return;
  std::string_view text = source_line(source, d.loc.line);
  if (text.empty()) return;
  out += "    ";
  out += text;
  out += "\n    ";
  // Keep tabs so the caret lines up under tab-indented source.
  for (int i = 0; i + 1 < d.loc.col && i < static_cast<int>(text.size()); ++i)
    out += text[i] == '\t' ? '\t' : ' ';
  out += "^\n";
}

}  // namespace

std::string format_diagnostics(const std::vector<Diagnostic>& diagnostics, std::string_view source,
                               const std::string& filename) {
  std::string out;
  for (const Diagnostic& d : diagnostics) {
    render(d, source, filename, out);
    for (const Diagnostic& n : d.notes) render(n, source, filename, out);
  }
  return out;
}

}  // namespace vortex::flow
