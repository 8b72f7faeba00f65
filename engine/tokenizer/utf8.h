// File: engine/tokenizer/utf8.h
//
// UTF-8 helpers for the tokenizers, and the GPT-2 byte <-> unicode mapping that
// byte-level BPE vocabularies are written in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace bitparity::tokenizer_internal {

// Length of the sequence that `lead` starts, judged by its high nibble only, the way
// llama.cpp splits SPM text into symbols: 0x00-0xBF -> 1 (continuation bytes too),
// 0xC0-0xDF -> 2, 0xE0-0xEF -> 3, 0xF0-0xFF -> 4. Callers clamp at the text end.
inline size_t Utf8LeadLength(uint8_t lead) {
  static constexpr uint8_t kByNibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kByNibble[lead >> 4];
}

// Offset of the first byte that makes `s` ill-formed UTF-8 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF, no truncated sequence), or npos.
size_t FindInvalidUtf8(absl::string_view s);

// Decodes the well-formed sequence at s[*pos] and advances *pos past it.
// REQUIRES: s is well-formed UTF-8 (FindInvalidUtf8 == npos) and *pos < s.size().
uint32_t DecodeUtf8(absl::string_view s, size_t* pos);

// Appends the UTF-8 encoding of `cp` (REQUIRES: cp <= 0x10FFFF).
void AppendUtf8(uint32_t cp, std::string* out);

// Bytes at the end of `s` that start a multi-byte sequence whose continuation bytes
// have not all arrived (0 when the tail is complete or can never complete). Same rule
// as llama.cpp's server: look back over at most 3 continuation bytes for a lead byte.
size_t IncompleteUtf8Tail(absl::string_view s);

// GPT-2 byte-level BPE writes every byte as one printable code point: the printable
// Latin-1 bytes (0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF) as themselves, the other 68 bytes
// as U+0100.. in byte order (space 0x20 -> U+0120 'Ġ', newline 0x0A -> U+010A 'Ċ').
uint32_t ByteToUnicode(uint8_t byte);
// The inverse: the byte, or -1 for a code point outside the mapping.
int UnicodeToByte(uint32_t cp);

}  // namespace bitparity::tokenizer_internal
