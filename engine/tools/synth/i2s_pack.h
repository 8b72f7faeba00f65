// File: engine/tools/synth/i2s_pack.h
//
// Packs ternary weights into I2_S exactly as bitnet.cpp's quantize_i2_s writes them
// on x86 (QK_I2_S = 128), so that synthetic models load and multiply like converted
// ones:
//   - codes: -1 -> 0, 0 -> 1, +1 -> 2 (2 bits each);
//   - the tensor, flattened row-major, is cut into 128-element blocks of 32 bytes:
//       byte[g] = c[g] << 6 | c[32 + g] << 4 | c[64 + g] << 2 | c[96 + g],  g in 0..31
//   - after the n/4 packed bytes: one float32 scale, then zeros up to n/4 + 32 bytes.
// Streaming-friendly: blocks can be packed one at a time and the trailer written last.
// engine/quant/i2s.h holds the engine's decoder; tests check the two agree.
//
// Thread safety: pure functions.
#pragma once

#include <array>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace bitparity::synth {

constexpr int64_t kI2sBlockElems = 128;
constexpr int64_t kI2sBlockBytes = kI2sBlockElems / 4;  // 32
constexpr int64_t kI2sTrailerBytes = 32;                 // float32 scale + 28 zero bytes

// Packs 128 trits (each -1, 0 or +1) into one 32-byte block.
// REQUIRES: every trit is -1, 0 or +1 (checked by PackI2s, not here).
void PackI2sBlock(const int8_t* trits, uint8_t* out);

// The 32 bytes that follow the packed data.
std::array<uint8_t, kI2sTrailerBytes> I2sTrailer(float scale);

// Packs a whole tensor into `out` (n/4 + 32 bytes). InvalidArgument if n is not a
// multiple of 128, out has the wrong size, or a trit is outside {-1, 0, +1}.
absl::Status PackI2s(absl::Span<const int8_t> trits, float scale, absl::Span<uint8_t> out);

}  // namespace bitparity::synth
