#include "tokenizer/byte_level.h"

#include <unordered_map>

#include "tokenizer/utf8.h"

namespace vortex::tok {
namespace {

struct ByteTables {
  std::array<std::string, 256> to_unicode;
  std::unordered_map<char32_t, unsigned char> to_byte;

  ByteTables() {
    // Printable Latin-1 bytes stand for themselves; the rest are shifted to U+0100 onwards, in
    // byte order, so that none of them is whitespace or a control character.
    char32_t next_free = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const char32_t cp = printable ? static_cast<char32_t>(b) : next_free++;
      append_utf8(to_unicode[b], cp);
      to_byte[cp] = static_cast<unsigned char>(b);
    }
  }
};

const ByteTables& tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

const std::string& byte_to_unicode(unsigned char b) {
  return tables().to_unicode[b];
}

std::string bytes_to_byte_level(std::string_view bytes) {
  const auto& t = tables().to_unicode;
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out.append(t[static_cast<unsigned char>(c)]);
  return out;
}

std::string byte_level_to_bytes(std::string_view token) {
  const auto& map = tables().to_byte;
  std::string out;
  out.reserve(token.size());
  size_t pos = 0;
  while (pos < token.size()) {
    const auto it = map.find(next_code_point(token, pos));
    if (it == map.end()) return std::string(token);
    out.push_back(static_cast<char>(it->second));
  }
  return out;
}

}  // namespace vortex::tok
