// Chat input (Input.chat) and the ApplyChatTemplate RPC through the shared
// service, in three parts:
//   1. The native server on the fixture models over loopback gRPC: the model's
//      template (tiny-b158-l3 carries LLaMA 3's), the chatml default (tiny-b158
//      has none), a named template, and Generate / EvalLogits with a chat giving
//      the same ids as the rendered text with parse_special.
//   2. Validation, each rule with its gRPC status.
//   3. The service's wording for a backend that recognises no template, and the
//      two copies of the built-in name list kept equal.
#include <memory>
#include <string>

#include "engine/chat/chat_template.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/chat_input.h"
#include "services/native/native_backend.h"
#include "tests/common/fixtures.h"
#include "tests/services/status_matchers.h"
#include "tests/services/test_server.h"

namespace bitparity {
namespace {

namespace v1 = ::bitnet::v1;
using ::bitparity::testing::FixturePath;
using ::bitparity::testing::IsOk;
using ::bitparity::testing::LoopbackServer;
using ::bitparity::testing::StatusIs;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

v1::ChatMessages Conversation() {
  v1::ChatMessages chat;
  auto add = [&](const char* role, const char* content) {
    v1::ChatMessage* m = chat.add_messages();
    m->set_role(role);
    m->set_content(content);
  };
  add("system", "You are a storyteller.");
  add("user", "  Tell me about a cat.  ");
  add("assistant", "Once upon a time there was a cat.");
  add("user", u8"And then? \u00e9\u4e16");
  return chat;
}

class ChatServiceTest : public ::testing::Test {
 protected:
  // One server per model, shared by the suite (loading is the slow part).
  static void SetUpTestSuite() {
    if (!::bitparity::testing::HaveFixtures()) return;
    l3_ = Start("models/tiny-b158-l3.gguf").release();
    plain_ = Start("models/tiny-b158.gguf").release();
  }
  static void TearDownTestSuite() {
    delete l3_;
    delete plain_;
    l3_ = plain_ = nullptr;
  }
  static std::unique_ptr<LoopbackServer> Start(const std::string& model) {
    NativeBackendOptions o;
    o.model_path = FixturePath(model);
    o.threads = 1;
    o.max_context = 512;
    auto backend = NativeBackend::Load(o);
    EXPECT_TRUE(backend.ok()) << backend.status();
    if (!backend.ok()) return nullptr;
    return LoopbackServer::Start({}, std::shared_ptr<EngineBackend>(std::move(*backend)));
  }
  void SetUp() override {
    REQUIRE_FIXTURES();
    ASSERT_NE(l3_, nullptr);
    ASSERT_NE(plain_, nullptr);
  }

  static grpc::Status Apply(LoopbackServer* server, const v1::ChatMessages& chat,
                            v1::ApplyChatTemplateResponse* resp) {
    v1::ApplyChatTemplateRequest req;
    *req.mutable_chat() = chat;
    grpc::ClientContext ctx;
    return server->Stub()->ApplyChatTemplate(&ctx, req, resp);
  }

  static LoopbackServer* l3_;
  static LoopbackServer* plain_;
};

LoopbackServer* ChatServiceTest::l3_ = nullptr;
LoopbackServer* ChatServiceTest::plain_ = nullptr;

// ---------------------------------------------------------------------------
// 1. Rendering and generation on the native server
// ---------------------------------------------------------------------------

TEST_F(ChatServiceTest, ModelTemplateIsDetectedAsLlama3) {
  v1::ApplyChatTemplateResponse resp;
  ASSERT_THAT(Apply(l3_, Conversation(), &resp), IsOk());
  EXPECT_EQ(resp.source(), v1::CHAT_TEMPLATE_SOURCE_MODEL);
  EXPECT_EQ(resp.template_name(), "llama3");
  EXPECT_EQ(resp.text(),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are a storyteller.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nTell me about a cat.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nOnce upon a time there was a cat."
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd then? \u00e9\u4e16"
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST_F(ChatServiceTest, ModelWithoutTemplateGetsChatml) {
  v1::ChatMessages chat = Conversation();
  chat.set_add_assistant_prompt(false);
  v1::ApplyChatTemplateResponse resp;
  ASSERT_THAT(Apply(plain_, chat, &resp), IsOk());
  EXPECT_EQ(resp.source(), v1::CHAT_TEMPLATE_SOURCE_DEFAULT);
  EXPECT_EQ(resp.template_name(), "chatml");
  EXPECT_EQ(resp.text(),
            "<|im_start|>system\nYou are a storyteller.<|im_end|>\n<|im_start|>user\n  Tell me "
            "about a cat.  <|im_end|>\n<|im_start|>assistant\nOnce upon a time there was a cat."
            "<|im_end|>\n<|im_start|>user\nAnd then? \u00e9\u4e16<|im_end|>\n");
}

TEST_F(ChatServiceTest, NamedTemplatesAreUsedAndNamed) {
  for (absl::string_view name : ChatTemplateNames()) {
    SCOPED_TRACE(name);
    v1::ChatMessages chat = Conversation();
    chat.set_chat_template(std::string(name));
    v1::ApplyChatTemplateResponse resp;
    grpc::Status st = Apply(l3_, chat, &resp);
    if (name == "falcon_e") {  // unreachable upstream (engine/chat/chat_template.h)
      EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("falcon_e")));
      continue;
    }
    ASSERT_THAT(st, IsOk());
    EXPECT_EQ(resp.source(), v1::CHAT_TEMPLATE_SOURCE_REQUEST);
    // Aliases render like the first name of their family.
    const std::string expected_name = name == "gemma2" ? "gemma" : std::string(name);
    EXPECT_EQ(resp.template_name(), expected_name);
  }
}

TEST_F(ChatServiceTest, UnnamedVariantHasNoName) {
  v1::ChatMessages chat = Conversation();
  chat.set_chat_template("[INST] content.strip() <<SYS>>");  // llama2 with strip: no name
  v1::ApplyChatTemplateResponse resp;
  ASSERT_THAT(Apply(l3_, chat, &resp), IsOk());
  EXPECT_EQ(resp.template_name(), "");
  EXPECT_THAT(resp.text(), HasSubstr("[INST] <<SYS>>\nYou are a storyteller.\n<</SYS>>\n\nTell me"));
}

TEST_F(ChatServiceTest, GenerateWithChatEqualsGenerateWithRenderedText) {
  for (LoopbackServer* server : {l3_, plain_}) {
    v1::ApplyChatTemplateResponse rendered;
    ASSERT_THAT(Apply(server, Conversation(), &rendered), IsOk());

    v1::GenerateRequest by_chat;
    *by_chat.mutable_input()->mutable_chat() = Conversation();
    by_chat.set_max_new_tokens(8);
    by_chat.set_ignore_eos(true);
    v1::GenerateRequest by_text = by_chat;
    by_text.mutable_input()->set_text(rendered.text());
    by_text.mutable_input()->set_parse_special(true);

    v1::GenerateResponse a, b;
    grpc::ClientContext ca, cb;
    ASSERT_THAT(server->Stub()->Generate(&ca, by_chat, &a), IsOk());
    ASSERT_THAT(server->Stub()->Generate(&cb, by_text, &b), IsOk());
    EXPECT_THAT(a.prompt_ids(), ElementsAreArray(b.prompt_ids()));
    EXPECT_THAT(a.ids(), ElementsAreArray(b.ids()));
    EXPECT_EQ(a.text(), b.text());
    EXPECT_EQ(a.ids_size(), 8);
  }
  // The markers are special tokens: one id each, where plain text would split them.
  v1::TokenizeRequest special, plain;
  special.set_text("<|eot_id|>");
  special.set_add_bos(false);
  special.set_parse_special(true);
  plain = special;
  plain.set_parse_special(false);
  v1::TokenizeResponse s, p;
  grpc::ClientContext c1, c2;
  ASSERT_THAT(l3_->Stub()->Tokenize(&c1, special, &s), IsOk());
  ASSERT_THAT(l3_->Stub()->Tokenize(&c2, plain, &p), IsOk());
  EXPECT_EQ(s.ids_size(), 1);
  EXPECT_GT(p.ids_size(), 1);
}

TEST_F(ChatServiceTest, GenerateStreamAndEvalLogitsAcceptChat) {
  v1::GenerateRequest gen;
  *gen.mutable_input()->mutable_chat() = Conversation();
  gen.set_max_new_tokens(4);
  gen.set_ignore_eos(true);
  v1::GenerateResponse unary;
  grpc::ClientContext c0;
  ASSERT_THAT(l3_->Stub()->Generate(&c0, gen, &unary), IsOk());

  grpc::ClientContext c1;
  auto reader = l3_->Stub()->GenerateStream(&c1, gen);
  v1::GenerateStreamResponse m;
  v1::GenerateResponse summary;
  while (reader->Read(&m)) {
    if (m.has_summary()) summary = m.summary();
  }
  ASSERT_THAT(reader->Finish(), IsOk());
  EXPECT_THAT(summary.ids(), ElementsAreArray(unary.ids()));

  v1::EvalLogitsRequest eval;
  *eval.mutable_input()->mutable_chat() = Conversation();
  eval.mutable_output()->set_kind(v1::LogitsOutput::NONE);
  v1::EvalLogitsResponse e;
  grpc::ClientContext c2;
  ASSERT_THAT(l3_->Stub()->EvalLogits(&c2, eval, &e), IsOk());
  EXPECT_THAT(e.token_ids(), ElementsAreArray(unary.prompt_ids()));
}

// ---------------------------------------------------------------------------
// 2. Validation
// ---------------------------------------------------------------------------

TEST_F(ChatServiceTest, RejectsEmptyConversation) {
  v1::ApplyChatTemplateResponse resp;
  EXPECT_THAT(Apply(l3_, v1::ChatMessages(), &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("chat.messages is empty")));
  v1::GenerateRequest gen;
  gen.mutable_input()->mutable_chat();
  gen.set_max_new_tokens(1);
  v1::GenerateResponse g;
  grpc::ClientContext ctx;
  EXPECT_THAT(l3_->Stub()->Generate(&ctx, gen, &g),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("input.chat.messages is empty")));
}

TEST_F(ChatServiceTest, RejectsBadRolesAndNulBytes) {
  v1::ApplyChatTemplateResponse resp;
  v1::ChatMessages chat = Conversation();
  chat.mutable_messages(1)->set_role("");
  EXPECT_THAT(Apply(l3_, chat, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("chat.messages[1].role is empty")));
  chat = Conversation();
  chat.mutable_messages(0)->set_role(std::string(kMaxChatRoleBytes + 1, 'r'));
  EXPECT_THAT(Apply(l3_, chat, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 64")));
  chat = Conversation();
  chat.mutable_messages(2)->set_content(std::string("a\0b", 3));
  EXPECT_THAT(Apply(l3_, chat, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("messages[2] contains a NUL")));
}

TEST_F(ChatServiceTest, RejectsTooManyMessages) {
  v1::ChatMessages chat;
  for (int i = 0; i <= kMaxChatMessages; ++i) {
    chat.add_messages()->set_role("user");
  }
  v1::ApplyChatTemplateResponse resp;
  EXPECT_THAT(Apply(l3_, chat, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 1024")));
}

TEST_F(ChatServiceTest, RejectsUnknownTemplateNamingIt) {
  v1::ChatMessages chat = Conversation();
  chat.set_chat_template("llama-4");
  v1::ApplyChatTemplateResponse resp;
  EXPECT_THAT(Apply(l3_, chat, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("chat.chat_template = \"llama-4\" is not a chat template")));
  v1::EvalLogitsRequest eval;
  *eval.mutable_input()->mutable_chat() = chat;
  v1::EvalLogitsResponse e;
  grpc::ClientContext ctx;
  EXPECT_THAT(l3_->Stub()->EvalLogits(&ctx, eval, &e),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("input.chat.chat_template")));
}

TEST_F(ChatServiceTest, RefusesContentThatCannotFitTheContext) {
  v1::GenerateRequest gen;
  *gen.mutable_input()->mutable_chat() = Conversation();
  gen.mutable_input()->mutable_chat()->mutable_messages(1)->set_content(std::string(1 << 20, 'x'));
  gen.set_max_new_tokens(1);
  v1::GenerateResponse g;
  grpc::ClientContext ctx;
  EXPECT_THAT(l3_->Stub()->Generate(&ctx, gen, &g),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("input.chat")));
}

// ---------------------------------------------------------------------------
// 3. Service wording and the name lists
// ---------------------------------------------------------------------------

// Recognises nothing, as bitnet.cpp does for an unknown template.
class NoTemplateBackend final : public EngineBackend {
 public:
  const BackendInfo& Info() const override { return info_; }
  int64_t SessionBytes() const override { return 0; }
  absl::StatusOr<ChatRendering> ApplyChatTemplate(absl::Span<const ChatTurn>, absl::string_view tmpl,
                                                  bool) const override {
    ChatRendering r;
    r.source = tmpl.empty() ? ChatTemplateSource::kModel : ChatTemplateSource::kRequest;
    return r;
  }
  absl::StatusOr<std::vector<int32_t>> Tokenize(absl::string_view, bool, bool) const override {
    return absl::InternalError("not reached");
  }
  absl::StatusOr<std::string> TokenPiece(int32_t) const override { return std::string(); }
  absl::StatusOr<std::string> Detokenize(absl::Span<const int32_t>) const override {
    return std::string();
  }
  absl::Status EvalLogits(absl::Span<const int32_t>, BackendEvalMode, const std::vector<int>&,
                          const LogitsRowFn&, const CancelledFn&, CallNotes*) override {
    return absl::InternalError("not reached");
  }
  absl::Status EvalTrace(absl::Span<const int32_t>, BackendEvalMode, const std::vector<int>&,
                         const ResidualFn&, const CancelledFn&, CallNotes*) override {
    return absl::InternalError("not reached");
  }
  absl::StatusOr<GenerationResult> Generate(absl::Span<const int32_t>, const GenerationSpec&,
                                            const TokenFn&, const CancelledFn&,
                                            CallNotes*) override {
    return absl::InternalError("not reached");
  }

 private:
  BackendInfo info_;
};

TEST(ChatInputTest, UnknownModelTemplateIsFailedPrecondition) {
  NoTemplateBackend backend;
  EXPECT_THAT(RenderChatInput(Conversation(), backend, "chat").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("the model's tokenizer.chat_template matches none")));
}

TEST(ChatInputTest, LongUnknownTemplateIsQuotedShort) {
  NoTemplateBackend backend;
  v1::ChatMessages chat = Conversation();
  chat.set_chat_template(std::string(500, 'z'));
  EXPECT_THAT(RenderChatInput(chat, backend, "chat").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("...\" (500 bytes)")));
}

TEST(ChatInputTest, ServiceAndEngineListTheSameNames) {
  EXPECT_THAT(ChatTemplateNames(), ElementsAreArray(chat::BuiltinTemplateNames()));
}

}  // namespace
}  // namespace bitparity
