// base/gpt2_bytes.h: GPT-2's bytes_to_unicode() table, checked against the values
// its definition gives and for being a bijection.
#include "base/gpt2_bytes.h"

#include <set>

#include "gtest/gtest.h"

namespace bitparity {
namespace {

TEST(Gpt2Bytes, KnownSpellings) {
  EXPECT_EQ(Gpt2ByteToCodePoint('A'), 0x41u);
  EXPECT_EQ(Gpt2ByteToCodePoint(' '), 0x120u);   // 'Ġ'
  EXPECT_EQ(Gpt2ByteToCodePoint('\n'), 0x10Au);  // 'Ċ'
  EXPECT_EQ(Gpt2ByteToCodePoint(0x00), 0x100u);
  EXPECT_EQ(Gpt2ByteToCodePoint(0xAD), 0x143u);  // the last unprintable byte
  EXPECT_EQ(Gpt2ByteToCodePoint(0xFF), 0xFFu);
  EXPECT_EQ(Gpt2ByteSpelling(' '), "\xC4\xA0");
  EXPECT_EQ(Gpt2ByteSpelling('a'), "a");
}

TEST(Gpt2Bytes, IsABijectionWithItsInverse) {
  std::set<uint32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = Gpt2ByteToCodePoint(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(cp).second) << b;
    EXPECT_EQ(Gpt2CodePointToByte(cp), b);
  }
  EXPECT_EQ(Gpt2CodePointToByte(0x20), -1);  // a space is spelled U+0120, not itself
  EXPECT_EQ(Gpt2CodePointToByte(0x144), -1);
  EXPECT_EQ(Gpt2CodePointToByte(0x10FFFF), -1);
}

}  // namespace
}  // namespace bitparity
