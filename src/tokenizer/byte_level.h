// The GPT-2 byte-level alphabet: every byte maps to one printable code point so that BPE
// vocabularies can be stored as text ("Ġ" is the byte 0x20).
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace vortex::tok {

// UTF-8 of the code point that stands for byte `b`.
const std::string& byte_to_unicode(unsigned char b);

// Maps every byte of `bytes` to its byte-level character.
std::string bytes_to_byte_level(std::string_view bytes);

// Maps a byte-level token back to bytes. A token holding any character outside the alphabet
// is returned as its raw UTF-8, as HF's ByteLevel decoder does.
std::string byte_level_to_bytes(std::string_view token);

}  // namespace vortex::tok
