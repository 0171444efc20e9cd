// UTF-8 helpers shared by the tokenizer: decoding code points, HF-compatible lossy conversion
// (one U+FFFD per maximal ill-formed subpart, like Rust's String::from_utf8_lossy) and the
// Unicode character classes that added-token matching needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vortex::tok {

// Appends the UTF-8 encoding of code point `cp` to `out`.
void append_utf8(std::string& out, char32_t cp);

// Length in bytes of the UTF-8 character that starts with byte `lead` (1 for invalid leads).
inline size_t utf8_char_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// Decodes the code point at `pos` of valid UTF-8 text and advances `pos` past it. On invalid
// text the code point is unspecified, but `pos` never passes the end.
char32_t next_code_point(std::string_view text, size_t& pos);

// Byte offset of the first ill-formed byte, or npos when `text` is valid UTF-8.
size_t find_invalid_utf8(std::string_view text);

// Converts bytes to valid UTF-8, replacing each maximal ill-formed subpart with U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// Length of the longest prefix of `bytes` that ends on a character boundary where a
// left-to-right decoder would also stand: only a trailing sequence that is a valid but incomplete
// start of a character is excluded, so utf8_lossy(prefix) + utf8_lossy(rest) == utf8_lossy(all).
size_t utf8_complete_prefix(std::string_view bytes);

// Unicode White_Space (what Rust's char::is_whitespace tests).
bool is_unicode_whitespace(char32_t cp);

// A "word" character as regex \w sees it: letters, marks, decimal digits, connector punctuation.
bool is_word_char(char32_t cp);

}  // namespace vortex::tok
