#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace vortex {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_(skip_special_tokens) {}

std::string StreamDecoder::push(int32_t id) {
  const Tokenizer::Impl& impl = *tokenizer_.impl_;
  const std::string& token = impl.token_of(id);
  if (skip_special_ && impl.is_special(id)) return {};
  if (!first_) pending_.append(impl.decoder.separator());
  pending_.append(impl.decoder.token_bytes(token));
  first_ = false;
  const size_t complete = tok::utf8_complete_prefix(pending_);
  std::string text = tok::utf8_lossy(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return text;
}

std::string StreamDecoder::flush() {
  std::string text = tok::utf8_lossy(pending_);
  pending_.clear();
  first_ = true;
  return text;
}

}  // namespace vortex
