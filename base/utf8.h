// File: base/utf8.h
//
// UTF-8 rules that every part of bitparity applies the same way: the validity
// check (RFC 3629), the repair rule for text that must be valid (one U+FFFD per
// maximal ill-formed subpart, as the bitnet.v1 contract documents), and the
// rule for a streamed tail whose continuation bytes have not all arrived.
//
//   size_t bad = FindInvalidUtf8(bytes);            // npos when well-formed
//   std::string shown = ToValidUtf8(bytes);         // "a\xF0\x9F\x98" -> "a\uFFFD"
//   size_t hold = IncompleteUtf8Tail(streamed);     // bytes to hold back
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace bitparity {

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

// `bytes` with every ill-formed UTF-8 subsequence replaced by U+FFFD, one per
// maximal subpart (Unicode 15, section 3.9, "U+FFFD Substitution of Maximal
// Subparts"; what Python's bytes.decode(errors="replace") does). Valid text comes
// back unchanged.
std::string ToValidUtf8(absl::string_view bytes);

// Decodes the well-formed sequence at s[*pos] and advances *pos past it.
// REQUIRES: s is well-formed UTF-8 (FindInvalidUtf8 == npos) and *pos < s.size().
uint32_t DecodeUtf8(absl::string_view s, size_t* pos);

// Appends the UTF-8 encoding of `cp` (REQUIRES: cp <= 0x10FFFF).
void AppendUtf8(uint32_t cp, std::string* out);

// Bytes at the end of `s` that start a multi-byte sequence whose continuation bytes
// have not all arrived (0 when the tail is complete or can never complete). Same rule
// as llama.cpp's server: look back over at most 3 continuation bytes for a lead byte.
size_t IncompleteUtf8Tail(absl::string_view s);

}  // namespace bitparity
