// F16 / BF16 conversions: known values, every special class, ties, and an exhaustive
// round trip of all 65536 f16 patterns.
#include <cmath>
#include <cstdint>
#include <limits>

#include "base/fp16.h"
#include "gtest/gtest.h"

namespace bitparity {
namespace {

TEST(Fp16Test, KnownValuesConvertExactly) {
  EXPECT_EQ(Fp32ToFp16(0.0f), 0x0000);
  EXPECT_EQ(Fp32ToFp16(-0.0f), 0x8000);
  EXPECT_EQ(Fp32ToFp16(1.0f), 0x3C00);
  EXPECT_EQ(Fp32ToFp16(-2.0f), 0xC000);
  EXPECT_EQ(Fp32ToFp16(0.1f), 0x2E66);
  EXPECT_EQ(Fp32ToFp16(65504.0f), 0x7BFF);  // largest finite
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1023.0f, -24)), 0x03FF);  // largest subnormal
  EXPECT_EQ(Fp16ToFp32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(Fp16ToFp32(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(Fp16ToFp32(0x7BFF), 65504.0f);
  EXPECT_EQ(Fp16ToFp32(0x2E66), 0.0999755859375f);
  EXPECT_TRUE(std::signbit(Fp16ToFp32(0x8000)));
}

TEST(Fp16Test, OverflowAndInfinityGoToInfinity) {
  EXPECT_EQ(Fp32ToFp16(65519.996f), 0x7BFF);  // below the halfway point to 65536
  EXPECT_EQ(Fp32ToFp16(65520.0f), 0x7C00);    // the tie rounds to even: infinity
  EXPECT_EQ(Fp32ToFp16(1e10f), 0x7C00);
  EXPECT_EQ(Fp32ToFp16(-1e10f), 0xFC00);
  EXPECT_EQ(Fp32ToFp16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(Fp32ToFp16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_TRUE(std::isinf(Fp16ToFp32(0x7C00)));
}

TEST(Fp16Test, NanStaysNanAndIsQuieted) {
  const uint16_t h = Fp32ToFp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(h & 0x7C00, 0x7C00);
  EXPECT_NE(h & 0x03FF, 0);
  EXPECT_EQ(Fp32ToFp16(BitsToFloat(0x7F800001u)), 0x7E00);  // signalling NaN -> quiet
  EXPECT_EQ(Fp32ToFp16(BitsToFloat(0xFFC00000u)), 0xFE00);  // sign kept
  EXPECT_TRUE(std::isnan(Fp16ToFp32(0x7E00)));
  EXPECT_TRUE(std::isnan(Fp16ToFp32(0x7C01)));
}

TEST(Fp16Test, TiesRoundToEven) {
  // 1 + 2^-11 is halfway between 1 (even) and 1 + 2^-10 (odd).
  EXPECT_EQ(Fp32ToFp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  // 1 + 3 * 2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
  EXPECT_EQ(Fp32ToFp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  // Just above a tie rounds up.
  EXPECT_EQ(Fp32ToFp16(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3C01);
  // Subnormal ties: 0.5 ulp -> 0 (even), 1.5 ulp -> 2, 2.5 ulp -> 2.
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(Fp32ToFp16(std::ldexp(3.0f, -25)), 0x0002);
  EXPECT_EQ(Fp32ToFp16(std::ldexp(5.0f, -25)), 0x0002);
  EXPECT_EQ(Fp32ToFp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  // A subnormal that rounds up into the smallest normal.
  EXPECT_EQ(Fp32ToFp16(std::ldexp(2047.0f, -25)), 0x0400);
}

TEST(Fp16Test, EveryF16RoundTripsThroughFloat) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = Fp16ToFp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      // NaNs come back quiet with the payload kept.
      EXPECT_EQ(Fp32ToFp16(f), static_cast<uint16_t>(h | 0x0200)) << std::hex << h;
    } else {
      EXPECT_EQ(Fp32ToFp16(f), h) << std::hex << h;
    }
  }
}

TEST(Bf16Test, KnownValuesAndRounding) {
  EXPECT_EQ(Fp32ToBf16(1.0f), 0x3F80);
  EXPECT_EQ(Fp32ToBf16(-0.0f), 0x8000);
  EXPECT_EQ(Bf16ToFp32(0x3F80), 1.0f);
  EXPECT_EQ(Bf16ToFp32(0x0001), BitsToFloat(0x00010000u));  // subnormals are kept
  EXPECT_EQ(Fp32ToBf16(BitsToFloat(0x3F808000u)), 0x3F80);  // tie, even stays
  EXPECT_EQ(Fp32ToBf16(BitsToFloat(0x3F818000u)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(Fp32ToBf16(BitsToFloat(0x3F808001u)), 0x3F81);  // above the tie
  EXPECT_EQ(Fp32ToBf16(BitsToFloat(0x7F7FFFFFu)), 0x7F80);  // max float rounds to inf
  EXPECT_EQ(Fp32ToBf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(Fp32ToBf16(BitsToFloat(0x7F800001u)), 0x7FC0);  // NaN forced quiet
  EXPECT_EQ(Fp32ToBf16(BitsToFloat(0xFFC12345u)), 0xFFC1);
}

}  // namespace
}  // namespace bitparity
