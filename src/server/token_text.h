// How one token is shown in logprobs answers: its text (Tokenizer::decode of the token alone, so
// part of a character split over tokens reads as U+FFFD) and its exact bytes (OpenAI's
// "bytes"). Without a tokenizer a token reads "token_id:N", as vLLM writes it.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace vortex::server {

std::string token_text(const Tokenizer* tokenizer, int32_t id);
std::string token_bytes(const Tokenizer* tokenizer, int32_t id);

// A logprob JSON can carry: -inf (a token the model rules out) becomes -9999.0, as vLLM sends.
double finite_logprob(double logprob);

}  // namespace vortex::server
