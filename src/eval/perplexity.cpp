#include "eval/perplexity.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace vortex::eval {

namespace {

// A text file, whole; at most 256 MiB (a corpus for perplexity, not a dump of anything).
std::string read_text_file(const std::string& path) {
  constexpr uintmax_t kMaxBytes = uintmax_t{256} << 20;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    fail(path, ": not a readable regular file (--data)");
  if (std::filesystem::file_size(path, ec) > kMaxBytes)
    fail(path, ": larger than 256 MiB (--data)");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot read: ", std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::vector<std::vector<int32_t>> perplexity_documents(const std::vector<std::string>& files,
                                                       const Tokenizer& tokenizer, int32_t context,
                                                       int32_t max_documents) {
  if (files.empty()) fail_usage("--perplexity needs --data FILE[,FILE...] (text files)");
  std::vector<int32_t> stream;
  const std::vector<int32_t> gap = tokenizer.encode("\n\n", /*add_special_tokens=*/false);
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string text = read_text_file(files[i]);
    if (i > 0) stream.insert(stream.end(), gap.begin(), gap.end());
    std::vector<int32_t> ids;
    try {
      ids = tokenizer.encode(text, /*add_special_tokens=*/false);
    } catch (const Error& e) {
      fail(files[i], ": ", e.what(), " (--data)");  // e.g. not UTF-8: name the file
    }
    stream.insert(stream.end(), ids.begin(), ids.end());
    // Enough for every document asked for: the rest of the files is not read.
    if (static_cast<int64_t>(stream.size()) >= int64_t{context} * max_documents) break;
  }
  if (static_cast<int64_t>(stream.size()) < context) {
    fail_usage("--data: the files hold ", stream.size(), " tokens, fewer than one document of ",
               context, " (--context)");
  }
  std::vector<std::vector<int32_t>> docs;
  for (size_t at = 0; at + static_cast<size_t>(context) <= stream.size() &&
                      static_cast<int32_t>(docs.size()) < max_documents;
       at += static_cast<size_t>(context))
    docs.emplace_back(stream.begin() + static_cast<std::ptrdiff_t>(at),
                      stream.begin() + static_cast<std::ptrdiff_t>(at + context));
  return docs;
}

std::vector<EvalRequest> perplexity_requests(const std::vector<std::vector<int32_t>>& documents,
                                             int32_t score_tokens) {
  std::vector<EvalRequest> out;
  for (const std::vector<int32_t>& d : documents) {
    const auto n = static_cast<int32_t>(d.size());
    if (score_tokens < 1 || score_tokens >= n)
      fail_usage("--score-tokens must be in [1, ", n - 1, "] for documents of ", n,
                 " tokens (--context), got ", score_tokens);
    EvalRequest r;
    r.prompt.assign(d.begin(), d.end() - score_tokens);
    r.params.forced_tokens.assign(d.end() - score_tokens, d.end());
    r.params.max_tokens = score_tokens;
    out.push_back(std::move(r));
  }
  return out;
}

int64_t TokenNll::tokens() const {
  int64_t n = 0;
  for (const auto& d : per_document) n += static_cast<int64_t>(d.size());
  return n;
}

double TokenNll::mean() const {
  double sum = 0;
  for (const auto& d : per_document)
    for (double x : d) sum += x;
  const int64_t n = tokens();
  return n > 0 ? sum / static_cast<double>(n) : NAN;
}

double TokenNll::perplexity() const {
  return std::exp(mean());
}

TokenNll token_nll(const EvalRun& run) {
  TokenNll out;
  for (const GenerationResult& r : run.results) {
    std::vector<double> nll;
    for (double lp : r.logprobs) nll.push_back(-lp);
    out.per_document.push_back(std::move(nll));
  }
  return out;
}

NllDifference nll_difference(const TokenNll& flow, const TokenNll& full) {
  VORTEX_ASSERT(flow.per_document.size() == full.per_document.size());
  std::vector<double> units;
  const bool by_document = flow.per_document.size() >= 2;
  for (size_t d = 0; d < flow.per_document.size(); ++d) {
    const std::vector<double>& a = flow.per_document[d];
    const std::vector<double>& b = full.per_document[d];
    VORTEX_ASSERT(a.size() == b.size());
    double sum = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      if (by_document)
        sum += a[i] - b[i];
      else
        units.push_back(a[i] - b[i]);
    }
    if (by_document && !a.empty()) units.push_back(sum / static_cast<double>(a.size()));
  }
  NllDifference out;
  out.over = by_document ? "documents" : "tokens";
  out.units = static_cast<int64_t>(units.size());
  if (units.empty()) return out;
  double mean = 0;
  for (double u : units) mean += u;
  mean /= static_cast<double>(units.size());
  double var = 0;
  for (double u : units) var += (u - mean) * (u - mean);
  out.mean = mean;
  out.ci95 = units.size() > 1 ? 1.96 * std::sqrt(var / static_cast<double>(units.size() - 1) /
                                                 static_cast<double>(units.size()))
                              : NAN;
  return out;
}

}  // namespace vortex::eval
