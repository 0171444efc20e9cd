#include "tokenizer/tokenizer.h"

#include "core/error.h"
#include "core/json_file.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace vortex {

Tokenizer Tokenizer::load(const std::string& path) {
  try {
    return Tokenizer(build(path));
  } catch (const Json::exception& e) {
    // A field of an unexpected JSON type that no check above caught.
    fail(path, ": malformed tokenizer.json: ", printable(e.what(), 200));
  }
}

std::shared_ptr<const Tokenizer::Impl> Tokenizer::build(const std::string& path) {
  const Json json = read_json_file(path);
  if (!json.is_object()) fail(path, ": expected a JSON object at the top level");
  if (!json.contains("model")) fail(path, ": field 'model' is missing");
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  const Json null;
  auto field = [&](const char* key) -> const Json& {
    return json.contains(key) ? json[key] : null;
  };
  impl->normalizer = tok::make_normalizer(field("normalizer"), path);
  impl->pre_tokenizer = tok::make_pre_tokenizer(field("pre_tokenizer"), path);
  impl->model = std::make_unique<tok::BpeModel>(json["model"], path);
  impl->added =
      tok::AddedVocabulary(field("added_tokens"), *impl->model, impl->normalizer.get(), path);
  impl->post_processor = tok::PostProcessor(field("post_processor"), path);
  impl->decoder = tok::Decoder(field("decoder"), path);

  int32_t max_id = impl->model->max_id();
  for (const auto& token : impl->added.tokens()) {
    impl->added_by_id.emplace(token.id, &token);
    impl->added_by_content.emplace(token.content, token.id);
    max_id = std::max(max_id, token.id);
  }
  impl->vocab_size = max_id + 1;
  // Ids the post-processor adds must decode, as every id encode() returns does.
  for (const auto& [id, field] : impl->post_processor.ids()) {
    if (!impl->added_by_id.count(id) && !impl->model->id_to_token(id)) {
      fail(path, ": field '", field, "' is token id ", id,
           ", which is not in the vocabulary (size ", impl->vocab_size, ")");
    }
  }
  return impl;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& impl = *impl_;
  if (const size_t bad = tok::find_invalid_utf8(text); bad != std::string_view::npos) {
    fail("tokenizer: text to encode is not valid UTF-8 (byte ", bad, " of ", text.size(), ")");
  }
  const tok::RegexBudgetScope regex_budget;  // one budget for all the pattern searches below
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<std::string> pieces;
  for (const auto& segment : impl.added.split_raw(text)) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      continue;
    }
    const std::string normalized =
        impl.normalizer ? impl.normalizer->normalize(segment.text) : std::string(segment.text);
    for (const auto& part : impl.added.split_normalized(normalized)) {
      if (part.id >= 0) {
        ids.push_back(part.id);
        continue;
      }
      pieces.assign(1, std::string(part.text));
      if (impl.pre_tokenizer) impl.pre_tokenizer->apply(pieces);
      for (const auto& piece : pieces) impl.model->tokenize(piece, ids);
    }
  }
  if (add_special_tokens) return impl.post_processor.apply(std::move(ids));
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  const Impl& impl = *impl_;
  std::string bytes;
  bool first = true;
  for (int32_t id : ids) {
    const std::string& token = impl.token_of(id);
    if (skip_special_tokens && impl.is_special(id)) continue;
    if (!first) bytes.append(impl.decoder.separator());
    bytes.append(impl.decoder.token_bytes(token));
    first = false;
  }
  return tok::utf8_lossy(bytes);
}

int32_t Tokenizer::vocab_size() const {
  return impl_->vocab_size;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end()) {
    return it->second;
  }
  return impl_->model->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  return impl_->token_of(id);
}

bool Tokenizer::is_special(int32_t id) const {
  return impl_->is_special(id);
}

const std::string& Tokenizer::Impl::token_of(int32_t id) const {
  if (const auto it = added_by_id.find(id); it != added_by_id.end()) return it->second->content;
  if (const std::string* token = model->id_to_token(id)) return *token;
  fail("tokenizer: unknown token id ", id, " (vocab size ", vocab_size, ", ", path, ")");
}

bool Tokenizer::Impl::is_special(int32_t id) const {
  const auto it = added_by_id.find(id);
  return it != added_by_id.end() && it->second->special;
}

}  // namespace vortex
