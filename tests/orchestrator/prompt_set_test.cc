#include "orchestrator/prompt_set.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bitparity {
namespace {

using ::testing::HasSubstr;

TEST(PromptSet, ParsesJsonlTextAndIdsPrompts) {
  auto s = ParseJsonlPrompts("{\"id\": \"a\", \"text\": \"hello\"}\n\n{\"id\": 7, \"ids\": [1, 2, 3]}\n", "t.jsonl");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->prompts.size(), 2u);
  EXPECT_EQ(s->prompts[0].id, "a");
  EXPECT_EQ(*s->prompts[0].text, "hello");
  EXPECT_EQ(s->prompts[1].id, "7");
  EXPECT_FALSE(s->prompts[1].is_text());
  EXPECT_EQ(s->prompts[1].ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(s->sha256.size(), 64u);
}

TEST(PromptSet, RejectsMalformedJsonlNamingTheLine) {
  auto bad = ParseJsonlPrompts("{\"text\": \"x\"}\n{not json}\n", "p.jsonl");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("p.jsonl:2"));
  auto both = ParseJsonlPrompts("{\"text\": \"x\", \"ids\": [1]}\n", "p.jsonl");
  EXPECT_THAT(std::string(both.status().message()), HasSubstr("exactly one"));
  auto neg = ParseJsonlPrompts("{\"ids\": [1, -2]}\n", "p.jsonl");
  EXPECT_FALSE(neg.ok());
  auto dup = ParseJsonlPrompts("{\"id\": \"x\", \"text\": \"a\"}\n{\"id\": \"x\", \"text\": \"b\"}\n", "p.jsonl");
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("duplicate"));
  EXPECT_FALSE(ParseJsonlPrompts("\n\n", "empty.jsonl").ok());
}

TEST(PromptSet, ParsesJsonlChatPrompts) {
  auto s = ParseJsonlPrompts(
      "{\"id\": \"c\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, "
      "{\"role\": \"user\", \"content\": \"Hi\"}], \"chat_template\": \"llama3\"}\n",
      "c.jsonl");
  ASSERT_TRUE(s.ok()) << s.status();
  const Prompt& p = s->prompts[0];
  EXPECT_TRUE(p.is_chat());
  EXPECT_FALSE(p.is_text());
  ASSERT_EQ(p.chat.size(), 2u);
  EXPECT_EQ(p.chat[1].role, "user");
  EXPECT_EQ(p.chat[1].content, "Hi");
  EXPECT_EQ(p.chat_template, "llama3");
}

TEST(PromptSet, RejectsMalformedChatPrompts) {
  EXPECT_THAT(std::string(ParseJsonlPrompts("{\"messages\": []}\n", "c.jsonl").status().message()),
              HasSubstr("non-empty array"));
  EXPECT_THAT(std::string(ParseJsonlPrompts("{\"messages\": [{\"role\": \"user\"}]}\n", "c.jsonl")
                              .status()
                              .message()),
              HasSubstr("{\"role\": string, \"content\": string}"));
  EXPECT_THAT(std::string(ParseJsonlPrompts("{\"text\": \"x\", \"messages\": [{\"role\": \"user\", "
                                            "\"content\": \"x\"}]}\n",
                                            "c.jsonl")
                              .status()
                              .message()),
              HasSubstr("exactly one"));
}

TEST(PromptSet, PlainTextIsOnePromptPerNonEmptyLine) {
  auto s = ParsePlainPrompts("first line\n\n  \nsecond line\r\n", "p.txt");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->prompts.size(), 2u);
  EXPECT_EQ(s->prompts[0].id, "line-1");
  EXPECT_EQ(*s->prompts[1].text, "second line");
  EXPECT_EQ(s->prompts[1].id, "line-4");
}

TEST(PromptSet, MissingFileIsNotFound) {
  EXPECT_EQ(LoadPromptFile("/nonexistent/prompts.jsonl").status().code(), absl::StatusCode::kNotFound);
}

TEST(PromptSet, BuiltInDefaultSetIsVariedAndLargeEnough) {
  auto s = DefaultPromptSet();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GE(s->prompts.size(), 40u);
  EXPECT_EQ(s->source, "builtin:default");
  std::set<std::string> cats;
  size_t longest = 0;
  bool non_ascii = false;
  for (const auto& p : s->prompts) {
    cats.insert(p.category);
    ASSERT_TRUE(p.is_text());
    longest = std::max(longest, p.text->size());
    for (unsigned char c : *p.text) non_ascii = non_ascii || c >= 0x80;
  }
  for (const char* c : {"prose", "code", "numbers", "unicode", "long"}) EXPECT_TRUE(cats.count(c)) << c;
  EXPECT_GE(longest, 1000u);
  EXPECT_TRUE(non_ascii);
}

TEST(PromptSet, LimitKeepsTheFirstPrompts) {
  auto s = DefaultPromptSet();
  ASSERT_TRUE(s.ok());
  const std::string first = s->prompts[0].id;
  LimitPrompts(&*s, 3);
  EXPECT_EQ(s->prompts.size(), 3u);
  EXPECT_EQ(s->prompts[0].id, first);
}

}  // namespace
}  // namespace bitparity
