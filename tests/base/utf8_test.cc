// base/utf8.h: the one validity check and the one repair rule (maximal subparts)
// every part uses, and the streamed-tail rule. Repair expectations are Python's
// bytes.decode("utf-8", errors="replace").
#include "base/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace bitparity {
namespace {

const std::string kR = "\xEF\xBF\xBD";  // U+FFFD
constexpr size_t kNpos = absl::string_view::npos;

TEST(FindInvalidUtf8, AcceptsWellFormedText) {
  EXPECT_EQ(FindInvalidUtf8(""), kNpos);
  EXPECT_EQ(FindInvalidUtf8("plain ascii"), kNpos);
  EXPECT_EQ(FindInvalidUtf8("\xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"), kNpos);
}

TEST(FindInvalidUtf8, NamesTheOffsetOfTheFirstBadSequence) {
  EXPECT_EQ(FindInvalidUtf8("ab\x80"), 2u);            // stray continuation
  EXPECT_EQ(FindInvalidUtf8("a\xC0\xAF"), 1u);         // overlong lead
  EXPECT_EQ(FindInvalidUtf8("\xE0\x80\x80"), 0u);      // overlong 3-byte
  EXPECT_EQ(FindInvalidUtf8("x\xED\xA0\x80"), 1u);     // surrogate
  EXPECT_EQ(FindInvalidUtf8("\xF4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(FindInvalidUtf8("ok\xF0\x9F\x98"), 2u);    // truncated
  EXPECT_EQ(FindInvalidUtf8("\xF5"), 0u);              // never a lead byte
}

TEST(ToValidUtf8, KeepsValidText) {
  EXPECT_EQ(ToValidUtf8("plain"), "plain");
  EXPECT_EQ(ToValidUtf8("\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80"), "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80");
}

TEST(ToValidUtf8, ReplacesMaximalSubparts) {
  EXPECT_EQ(ToValidUtf8("a\xF0\x9F\x98"), "a" + kR);              // truncated 4-byte sequence
  EXPECT_EQ(ToValidUtf8("\x80\x80"), kR + kR);                    // stray continuations
  EXPECT_EQ(ToValidUtf8("\xC0\xAF"), kR + kR);                    // overlong lead
  EXPECT_EQ(ToValidUtf8("\xED\xA0\x80"), kR + kR + kR);           // surrogate
  EXPECT_EQ(ToValidUtf8("\xE2\x82x"), kR + "x");                  // broken 3-byte
  EXPECT_EQ(ToValidUtf8("\xF4\x90\x80\x80"), kR + kR + kR + kR);  // past U+10FFFF
  EXPECT_EQ(ToValidUtf8("\xF0\x9F\x98\xE2\x82\xAC"), kR + "\xE2\x82\xAC");
}

TEST(ToValidUtf8, OutputIsAlwaysValid) {
  // Every two-byte string, and each with a valid suffix.
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      const std::string s = {static_cast<char>(a), static_cast<char>(b), 'z'};
      const std::string fixed = ToValidUtf8(s);
      ASSERT_EQ(FindInvalidUtf8(fixed), kNpos) << a << " " << b;
      ASSERT_EQ(fixed.back(), 'z');
      if (FindInvalidUtf8(s) == kNpos) {
        ASSERT_EQ(fixed, s);
      }
    }
  }
}

TEST(Utf8Codec, DecodeAndAppendRoundTrip) {
  for (uint32_t cp : {0x24u, 0xA2u, 0x20ACu, 0x10348u, 0x10FFFFu}) {
    std::string s;
    AppendUtf8(cp, &s);
    ASSERT_EQ(FindInvalidUtf8(s), kNpos);
    EXPECT_EQ(s.size(), Utf8LeadLength(static_cast<uint8_t>(s[0])));
    size_t pos = 0;
    EXPECT_EQ(DecodeUtf8(s, &pos), cp);
    EXPECT_EQ(pos, s.size());
  }
}

TEST(IncompleteUtf8Tail, CountsOnlyATailThatCanStillComplete) {
  EXPECT_EQ(IncompleteUtf8Tail(""), 0u);
  EXPECT_EQ(IncompleteUtf8Tail("abc"), 0u);
  EXPECT_EQ(IncompleteUtf8Tail("a\xE2"), 1u);
  EXPECT_EQ(IncompleteUtf8Tail("a\xE2\x82"), 2u);
  EXPECT_EQ(IncompleteUtf8Tail("a\xE2\x82\xAC"), 0u);
  EXPECT_EQ(IncompleteUtf8Tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(IncompleteUtf8Tail("\x80"), 0u);  // a stray continuation never completes
}

}  // namespace
}  // namespace bitparity
