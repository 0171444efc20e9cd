#include "tokenizer/utf8.h"

#include <algorithm>

#include <utf8proc.h>

namespace vortex::tok {

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

char32_t next_code_point(std::string_view text, size_t& pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const size_t len = utf8_char_len(lead);
  char32_t cp = len == 1   ? lead
                : len == 2 ? (lead & 0x1F)
                : len == 3 ? (lead & 0x0F)
                           : (lead & 0x07);
  for (size_t i = 1; i < len && pos + i < text.size(); ++i) {
    cp = (cp << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3F);
  }
  // Never past the end, even for a lead byte whose sequence the text cuts short (a chat
  // message is not checked for UTF-8 before the template trims it).
  pos = std::min(pos + len, text.size());
  return cp;
}

namespace {

enum class Scan { kValid, kInvalid, kTruncated };

// Examines the character starting at `pos`: a valid character (`len` = its length), an
// ill-formed maximal subpart (`len` = bytes to replace by one U+FFFD), or a valid prefix cut
// short by the end of the input.
Scan scan_char(std::string_view s, size_t pos, size_t& len) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    len = 1;
    return Scan::kValid;
  }
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    len = 1;
    return Scan::kInvalid;
  }
  for (size_t i = 1; i < need; ++i) {
    if (pos + i >= s.size()) {
      len = i;
      return Scan::kTruncated;
    }
    const auto b = static_cast<unsigned char>(s[pos + i]);
    const bool ok = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      len = i;
      return Scan::kInvalid;
    }
  }
  len = need;
  return Scan::kValid;
}

}  // namespace

size_t find_invalid_utf8(std::string_view text) {
  size_t pos = 0, len = 0;
  while (pos < text.size()) {
    if (scan_char(text, pos, len) != Scan::kValid) return pos;
    pos += len;
  }
  return std::string_view::npos;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0, len = 0;
  while (pos < bytes.size()) {
    if (scan_char(bytes, pos, len) == Scan::kValid) {
      out.append(bytes.substr(pos, len));
    } else {
      out.append("\xEF\xBF\xBD");
    }
    pos += len;
  }
  return out;
}

size_t utf8_complete_prefix(std::string_view bytes) {
  size_t pos = 0, len = 0;
  while (pos < bytes.size()) {
    if (scan_char(bytes, pos, len) == Scan::kTruncated) return pos;
    pos += len;
  }
  return bytes.size();
}

bool is_unicode_whitespace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

bool is_word_char(char32_t cp) {
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return cp == 0x200C || cp == 0x200D;  // joiners count as word characters in \w
  }
}

}  // namespace vortex::tok
