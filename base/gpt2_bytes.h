// File: base/gpt2_bytes.h
//
// GPT-2's byte-level spelling (its bytes_to_unicode()): every byte stands for one
// printable code point, so that byte-level BPE vocabularies can be written as
// text. The printable Latin-1 bytes (0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF) stand for
// themselves; the other 68 bytes become U+0100.. in byte order (space 0x20 ->
// U+0120 'Ġ', newline 0x0A -> U+010A 'Ċ'). The BPE tokenizer, the synthetic
// vocabularies and the bitnet.cpp worker's vocabulary checks all read it here.
//
//   Gpt2ByteToCodePoint(' ')   // 0x120
//   Gpt2ByteSpelling(' ')      // "\xC4\xA0" ("Ġ")
//   Gpt2CodePointToByte(0x120) // 0x20
//
// Thread safety: pure functions (the tables are built once, thread-safely).
#pragma once

#include <cstdint>
#include <string>

namespace bitparity {

// The code point that stands for `byte`.
uint32_t Gpt2ByteToCodePoint(uint8_t byte);

// The inverse: the byte, or -1 for a code point outside the mapping.
int Gpt2CodePointToByte(uint32_t cp);

// The UTF-8 text of Gpt2ByteToCodePoint(byte) (one or two bytes).
std::string Gpt2ByteSpelling(uint8_t byte);

}  // namespace bitparity
