// The parts a loaded Tokenizer is made of; shared by tokenizer.cpp and stream_decoder.cpp.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace vortex {

struct Tokenizer::Impl {
  std::string path;
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::BpeModel> model;
  tok::AddedVocabulary added;
  tok::PostProcessor post_processor;
  tok::Decoder decoder;
  std::unordered_map<int32_t, const tok::AddedToken*> added_by_id;
  tok::StringIdMap added_by_content;
  int32_t vocab_size = 0;

  // The stored token of `id`; throws naming the id and the vocab size when there is none.
  const std::string& token_of(int32_t id) const;
  bool is_special(int32_t id) const;
};

}  // namespace vortex
