// bitparity chat-templates (orchestrator/chat_compare.h) against native servers
// in process on loopback gRPC: two servers on the same model render alike; on
// models with different templates (LLaMA 3's against none, i.e. chatml) only
// the model's-own rows differ, and the report names them.
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/chat_compare.h"
#include "orchestrator/compare.h"
#include "orchestrator/report_json.h"
#include "orchestrator/verdict.h"
#include "services/native/native_backend.h"
#include "tests/common/fixtures.h"
#include "tests/orchestrator/json_schema_validator.h"
#include "tests/services/test_server.h"

namespace bitparity {
namespace {

using ::bitparity::testing::FixturePath;
using ::bitparity::testing::LoopbackServer;
using ::testing::HasSubstr;

std::unique_ptr<LoopbackServer> StartNative(const std::string& model) {
  NativeBackendOptions o;
  o.model_path = FixturePath(model);
  o.threads = 1;
  o.max_context = 256;
  auto backend = NativeBackend::Load(o);
  EXPECT_TRUE(backend.ok()) << backend.status();
  if (!backend.ok()) return nullptr;
  return LoopbackServer::Start({}, std::shared_ptr<EngineBackend>(std::move(*backend)));
}

std::unique_ptr<EngineClient> Connect(const LoopbackServer& s, const char* label) {
  Endpoint e;
  e.address = s.address();
  e.label = label;
  auto c = EngineClient::Connect(e, {});
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

TEST(ChatCompareTest, SameModelRendersAlike) {
  REQUIRE_FIXTURES();
  auto a = StartNative("models/tiny-b158-l3.gguf");
  auto b = StartNative("models/tiny-b158-l3.gguf");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto ca = Connect(*a, "A");
  auto cb = Connect(*b, "B");
  ASSERT_NE(ca, nullptr);
  ASSERT_NE(cb, nullptr);
  const ChatCompareResult r = CompareChatTemplates(*ca, *cb);
  EXPECT_EQ(r.different, 0) << RenderChatCompare(r);
  // templates x 4 conversations x add_assistant on/off
  EXPECT_EQ(r.equal, static_cast<int>(ChatCompareTemplates().size()) * 4 * 2);
  EXPECT_THAT(RenderChatCompare(r), HasSubstr("the servers render chats alike"));
}

TEST(ChatCompareTest, DifferentModelTemplatesAreReported) {
  REQUIRE_FIXTURES();
  auto a = StartNative("models/tiny-b158-l3.gguf");  // LLaMA 3's template
  auto b = StartNative("models/tiny-b158.gguf");     // none: chatml
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto ca = Connect(*a, "A");
  auto cb = Connect(*b, "B");
  ASSERT_NE(ca, nullptr);
  ASSERT_NE(cb, nullptr);
  const ChatCompareResult r = CompareChatTemplates(*ca, *cb);
  EXPECT_EQ(r.different, 4 * 2) << RenderChatCompare(r);
  for (const ChatCompareCase& c : r.cases) {
    EXPECT_EQ(c.equal, !c.chat_template.empty()) << c.chat_template << " " << c.conversation;
  }
  const std::string text = RenderChatCompare(r);
  EXPECT_THAT(text, HasSubstr("(model's own)   0/8  equal  DIFFERENT"));
  EXPECT_THAT(text, HasSubstr("A [llama3]"));
  EXPECT_THAT(text, HasSubstr("B [chatml]"));
  EXPECT_THAT(text, HasSubstr("render chats DIFFERENTLY"));
}

// A chat prompt in a prompt set goes through compare: each side renders and
// tokenizes it, the tokenizations are compared, and the drift check runs on it.
TEST(ChatCompareTest, ChatPromptsRunThroughCompare) {
  REQUIRE_FIXTURES();
  auto a = StartNative("models/tiny-b158-l3.gguf");
  auto b = StartNative("models/tiny-b158-l3.gguf");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto ca = Connect(*a, "A");
  auto cb = Connect(*b, "B");
  ASSERT_NE(ca, nullptr);
  ASSERT_NE(cb, nullptr);
  auto set = ParseJsonlPrompts(
      "{\"id\": \"chat\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, "
      "{\"role\": \"user\", \"content\": \"Once upon a time\"}]}\n",
      "chat.jsonl");
  ASSERT_TRUE(set.ok()) << set.status();
  CompareOptions o;
  o.max_new_tokens = 4;
  o.speed = false;
  o.localize = false;
  Progress progress(false);
  auto run = RunCompare(*ca, *cb, *set, o, &progress);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->prompts.size(), 1u);
  const PromptResult& p = run->prompts[0];
  EXPECT_TRUE(p.error_code.empty()) << p.error_message;
  EXPECT_TRUE(p.tokenization.checked);
  EXPECT_TRUE(p.tokenization.agree);
  // "<|start_header_id|>" ... as single special tokens: the rendering was
  // tokenized with parse_special.
  auto ids = ca->TokenizeChat(ChatOf(set->prompts[0]));
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(p.ids, *ids);
  EXPECT_LT(ids->size(), 40u);
  // The report calls it a chat prompt, and stays valid against its schema.
  nlohmann::json report = BuildReport(*run, "bitparity compare (test)");
  FinalizeVerdict(&report);
  EXPECT_EQ(report["prompts"][0]["kind"], "chat");
  std::ifstream in(BITPARITY_SCHEMA_PATH);
  EXPECT_THAT(::bitparity::testing::ValidateJson(report, nlohmann::json::parse(in)), ::testing::IsEmpty());
}

}  // namespace
}  // namespace bitparity
