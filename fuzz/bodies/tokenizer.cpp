#include <string>
#include <vector>

#include "bodies/temp_input.h"
#include "fuzz_targets.h"
#include "tokenizer/tokenizer.h"

namespace vortex::fuzz {
namespace {

// Text that reaches every stage: spaces and newlines for the pre-tokenizer's regex, contractions
// and digits, non-ASCII for NFC and byte-level, and the special tokens of the shipped families.
constexpr const char* kTexts[] = {
    "Hello, world!",
    "  two spaces\n\n\tand a tab; it's 1234567 o'clock   ",
    "caf\xc3\xa9 na\xc3\xafve \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x99\x82 e\xcc\x81",
    "<|im_start|>user\nHi<|im_end|>\n<|begin_of_text|><|eot_id|><s></s><unk>",
    "",
};

void round_trip(const Tokenizer& tok, std::string_view text) {
  for (bool special : {true, false}) {
    const std::vector<int32_t> ids = tok.encode(text, special);
    for (int32_t id : ids) {
      (void)tok.is_special(id);
      (void)tok.token_to_id(tok.id_to_token(id));
    }
    const std::string decoded = tok.decode(ids);
    (void)tok.decode(ids, /*skip_special_tokens=*/true);
    // StreamDecoder promises that its pieces add up to decode() of all the ids.
    StreamDecoder stream(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    if (streamed != decoded)
      throw FuzzInvariantError("streamed decode '" + streamed + "' differs from decode '" +
                               decoded + "'");
  }
}

}  // namespace

void fuzz_tokenizer(std::string_view data) {
  // Tokenizer::load reads a path: there is no in-memory loader.
  const Tokenizer tok = Tokenizer::load(write_scratch_file("tokenizer.json", data));
  (void)tok.vocab_size();
  std::vector<std::string_view> texts(std::begin(kTexts), std::end(kTexts));
  // The input's own bytes hold the vocabulary and the added tokens' text, so encoding a piece of
  // it exercises them.
  texts.push_back(data.substr(0, 256));
  // A refusal of one text (invalid UTF-8, an id the vocabulary lacks) must not stop the others.
  for (std::string_view text : texts) {
    try {
      round_trip(tok, text);
    } catch (const Error&) {
    }
  }
}

}  // namespace vortex::fuzz
