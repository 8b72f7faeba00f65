// base/xoshiro.h against the reference implementations' published outputs, so a
// seed means the same stream here as in any other correct implementation.
#include "base/xoshiro.h"

#include "gtest/gtest.h"

namespace bitparity {
namespace {

TEST(SplitMix64, MatchesTheReferenceSequence) {
  // splitmix64.c (Vigna) seeded with 1234567.
  uint64_t state = 1234567;
  EXPECT_EQ(SplitMix64(state), 6457827717110365317ull);
  EXPECT_EQ(SplitMix64(state), 3203168211198807973ull);
  EXPECT_EQ(SplitMix64(state), 9817491932198370423ull);
  EXPECT_EQ(SplitMix64(state), 4593380528125082431ull);
  EXPECT_EQ(SplitMix64(state), 16408922859458223821ull);
}

TEST(Xoshiro256, MatchesTheReferenceSequence) {
  // xoshiro256starstar.c (Blackman, Vigna) from the state {1, 2, 3, 4}.
  Xoshiro256 rng = Xoshiro256::FromState(1, 2, 3, 4);
  const uint64_t expected[] = {11520ull,
                               0ull,
                               1509978240ull,
                               1215971899390074240ull,
                               1216172134540287360ull,
                               607988272756665600ull,
                               16172922978634559625ull,
                               8476171486693032832ull,
                               10595114339597558777ull,
                               2904607092377533576ull};
  for (uint64_t e : expected) EXPECT_EQ(rng.Next(), e);
}

TEST(Xoshiro256, SeedsItsStateWithFourSplitMix64Outputs) {
  uint64_t sm = 1234567;
  const uint64_t a = SplitMix64(sm), b = SplitMix64(sm), c = SplitMix64(sm), d = SplitMix64(sm);
  Xoshiro256 seeded(1234567);
  Xoshiro256 direct = Xoshiro256::FromState(a, b, c, d);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(seeded.Next(), direct.Next());
}

TEST(Xoshiro256, SameSeedSameStreamOtherSeedOtherStream) {
  Xoshiro256 a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace bitparity
