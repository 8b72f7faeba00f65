// Tests of GenerationText (base/generation_text.h): the text rules every server
// applies while generating (engine/model/generate.cc, the bitnet.cpp worker).
#include "base/generation_text.h"

#include "gtest/gtest.h"

namespace bitparity {
namespace {

TEST(GenerationText, PassesCompleteTextThrough) {
  GenerationText t({});
  EXPECT_EQ(t.Push("Hello", true, false).text, "Hello");
  EXPECT_EQ(t.Push(" world", true, false).text, " world");
  EXPECT_EQ(t.text(), "Hello world");
}

TEST(GenerationText, HoldsBackIncompleteUtf8UntilItCompletes) {
  GenerationText t({});
  EXPECT_EQ(t.Push("a\xE2\x82", true, false).text, "");  // euro sign, 2 of 3 bytes
  EXPECT_EQ(t.Push("\xAC", true, false).text, "a\xE2\x82\xAC");
}

TEST(GenerationText, LastStepReleasesAnIncompleteTail) {
  GenerationText t({});
  EXPECT_EQ(t.Push("x\xF0\x9F", true, true).text, "x\xF0\x9F");
}

TEST(GenerationText, EndTokenAddsNoTextAndDropsAnIncompleteTail) {
  GenerationText t({});
  EXPECT_EQ(t.Push("ok\xE2", true, false).text, "");
  EXPECT_EQ(t.Push("<eos piece ignored>", false, false).text, "");
  EXPECT_EQ(t.text(), "");
}

TEST(GenerationText, StopSequenceEndsAndIsCutOff) {
  GenerationText t({"END"});
  EXPECT_EQ(t.Push("abc", true, false).text, "abc");
  GenerationText::Step s = t.Push("xyENDzz", true, false);
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.text, "xy");
  EXPECT_EQ(t.text(), "abcxy");
}

TEST(GenerationText, StopSequenceAcrossTokensIsHeldThenCut) {
  GenerationText t({"END"});
  GenerationText::Step a = t.Push("abE", true, false);
  EXPECT_FALSE(a.stopped);
  EXPECT_EQ(a.text, "ab");  // "E" may start the stop
  GenerationText::Step b = t.Push("N", true, false);
  EXPECT_EQ(b.text, "");
  GenerationText::Step c = t.Push("D!", true, false);
  EXPECT_TRUE(c.stopped);
  EXPECT_EQ(c.text, "");
  EXPECT_EQ(t.text(), "ab");
}

TEST(GenerationText, HeldPrefixIsReleasedWhenItDoesNotBecomeAStop) {
  GenerationText t({"END"});
  EXPECT_EQ(t.Push("aE", true, false).text, "a");
  EXPECT_EQ(t.Push("x", true, false).text, "Ex");
}

TEST(GenerationText, LastStepReleasesHeldStopPrefix) {
  GenerationText t({"END"});
  EXPECT_EQ(t.Push("aEN", true, true).text, "aEN");
}

TEST(HeldBackForStops, HoldsTheLongestSuffixThatStartsAStop) {
  EXPECT_EQ(HeldBackForStops("hello wor", {"world"}), 3u);
  EXPECT_EQ(HeldBackForStops("hello wor", {"world", "r"}), 3u);
  EXPECT_EQ(HeldBackForStops("abc", {"x"}), 0u);
  EXPECT_EQ(HeldBackForStops("abc", {"c"}), 0u);  // a whole stop is a match, not a prefix
  EXPECT_EQ(HeldBackForStops("ab", {"", "bcd"}), 1u);
  EXPECT_EQ(HeldBackForStops("", {"abc"}), 0u);
}

}  // namespace
}  // namespace bitparity
