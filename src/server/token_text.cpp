#include "server/token_text.h"

#include <cmath>

#include "tokenizer/byte_level.h"

namespace vortex::server {

std::string token_text(const Tokenizer* tokenizer, int32_t id) {
  if (!tokenizer) return "token_id:" + std::to_string(id);
  try {
    return tokenizer->decode({id});
  } catch (const std::exception&) {  // an id the tokenizer does not know (padding rows)
    return "token_id:" + std::to_string(id);
  }
}

std::string token_bytes(const Tokenizer* tokenizer, int32_t id) {
  if (!tokenizer) return token_text(tokenizer, id);
  try {
    // Byte-level BPE stores each byte as one printable character; added tokens are plain text,
    // which the mapping leaves as it is.
    return tok::byte_level_to_bytes(tokenizer->id_to_token(id));
  } catch (const std::exception&) {
    return token_text(tokenizer, id);
  }
}

double finite_logprob(double logprob) {
  return std::isfinite(logprob) ? logprob : -9999.0;
}

}  // namespace vortex::server
