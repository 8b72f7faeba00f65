// File: base/fp16.h
//
// IEEE binary16 (F16) and bfloat16 (BF16) <-> float32, bit-exact with what
// bitnet.cpp's x86 build computes:
//   - float -> f16 follows the F16C instruction (vcvtps2ph, round to nearest even):
//     overflow goes to +-inf, tiny values become f16 subnormals or +-0, and a NaN
//     keeps its sign and top 9 payload bits with the quiet bit forced on.
//   - f16 -> float is exact (every f16 is a float); a signalling NaN comes back quiet,
//     as F16C's vcvtph2ps returns it.
//   - float -> bf16 is ggml's ggml_compute_fp32_to_bf16: round to nearest even on the
//     top 16 bits; a NaN keeps its top bits and is forced quiet (| 0x40).
//   - bf16 -> float is a 16-bit shift (exact).
//
// Units: raw bit patterns are uint16_t (the way GGUF stores them).
// Thread safety: pure functions.
//
//   uint16_t h = bitparity::Fp32ToFp16(0.1f);   // 0x2E66
//   float f = bitparity::Fp16ToFp32(h);         // 0.0999755859375f
#pragma once

#include <cstdint>
#include <cstring>

namespace bitparity {

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

inline float BitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

inline float Fp16ToFp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) {
    // inf; or NaN, which F16C (and so ggml's table) returns quiet: payload kept, bit 22 set.
    return BitsToFloat(sign | 0x7F800000u | (mant << 13) | (mant != 0 ? 0x400000u : 0u));
  }
  if (exp != 0) return BitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return BitsToFloat(sign);  // +-0
  // Subnormal: value = mant * 2^-24; normalise it into a float.
  int e = 113;  // exponent field of 2^-14 in float is 113
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    --e;
  }
  return BitsToFloat(sign | (static_cast<uint32_t>(e) << 23) | ((mant & 0x3FFu) << 13));
}

inline uint16_t Fp32ToFp16(float f) {
  const uint32_t u = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) {  // NaN: keep the top payload bits, force quiet (as F16C does)
    return static_cast<uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
  }
  if (a >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds to >= 65520: inf
  if (a >= 0x38800000u) {  // normal f16 range (>= 2^-14)
    // Rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even;
    // a mantissa carry correctly bumps the exponent.
    const uint32_t r = a - 0x38000000u;
    const uint32_t half = 0xFFFu + ((r >> 13) & 1u);
    return static_cast<uint16_t>(sign | ((r + half) >> 13));
  }
  if (a < 0x33000000u) return sign;  // < 2^-25: rounds to 0 (2^-25 itself ties to even 0)
  // Subnormal f16: value / 2^-24 rounded to nearest even.
  const uint32_t exp = a >> 23;                        // 102..112
  const uint32_t mant = (a & 0x7FFFFFu) | 0x800000u;  // 24-bit significand
  const uint32_t shift = 126 - exp;                    // 14..24
  uint32_t q = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1);
  const uint32_t halfway = 1u << (shift - 1);
  if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
  return static_cast<uint16_t>(sign | q);
}

inline float Bf16ToFp32(uint16_t b) { return BitsToFloat(static_cast<uint32_t>(b) << 16); }

inline uint16_t Fp32ToBf16(float f) {
  const uint32_t u = FloatBits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 64u);  // quiet NaN
  return static_cast<uint16_t>((u + (0x7FFFu + ((u >> 16) & 1u))) >> 16);
}

}  // namespace bitparity
