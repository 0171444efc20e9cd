// Long-context perplexity under sparse decode (`vortex eval --perplexity`). Text files are
// tokenized and concatenated, and cut into documents of `context` tokens. Of each document the
// first context - score_tokens tokens are the prompt (prefilled, dense, as every prompt is);
// the last score_tokens are scored one decode step at a time, teacher-forced
// (GenerationParams::forced_tokens), so each token's likelihood comes from the attention a decode
// step has, a flow's page selection included. Full attention and each flow score the same
// tokens; the flow's cost is the difference of the mean negative log-likelihood.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eval/eval_runner.h"
#include "tokenizer/tokenizer.h"

namespace vortex::eval {

// At most `max_documents` consecutive documents of `context` tokens from the files, in order
// (each file's text encoded without special tokens; files joined by a blank line). Throws
// vortex::Error naming the file that cannot be read, and a usage error when the files hold
// fewer tokens than one document.
std::vector<std::vector<int32_t>> perplexity_documents(const std::vector<std::string>& files,
                                                       const Tokenizer& tokenizer, int32_t context,
                                                       int32_t max_documents);

// One request per document: its first context - score_tokens tokens as the prompt, the rest
// forced.
std::vector<EvalRequest> perplexity_requests(const std::vector<std::vector<int32_t>>& documents,
                                             int32_t score_tokens);

// The negative log-likelihood of every scored token, per document (from a run's logprobs).
struct TokenNll {
  std::vector<std::vector<double>> per_document;
  int64_t tokens() const;
  double mean() const;        // over every scored token
  double perplexity() const;  // exp(mean())
};
TokenNll token_nll(const EvalRun& run);

// mean(flow - full) of the per-token NLL, with a 95% confidence half-width. With two or more
// documents the interval is over the documents' mean differences (tokens of one document are
// not independent); with one, over its tokens ("tokens").
struct NllDifference {
  double mean = 0;
  double ci95 = 0;
  int64_t units = 0;
  std::string over;  // "documents" or "tokens"
};
NllDifference nll_difference(const TokenNll& flow, const TokenNll& full);

}  // namespace vortex::eval
