// Chat template rendering through the worker protocol, compared with the
// native server's, over real gRPC on 127.0.0.1:
//   NativeWorkerChatTest  bitparity-native-worker (protocol 3 round trip of
//                         engine/chat) against the in-process native backend.
//   BitnetCppChatTest     bitnet-cpp-worker, i.e. bitnet.cpp's own
//                         llama_chat_apply_template, against the native server.
//                         Needs BITNET_CPP_DIR (as bitnet_cpp_golden_test.cc);
//                         skipped by name without it.
// Each compares, for both fixture models (one with LLaMA 3's template, one with
// none), every built-in name, the model's own template and a few template texts,
// on a fixed set of conversations with the assistant prompt on and off: the
// status code and message, the text, the template name and the source must be
// equal. Then Generate with a chat must give the same prompt and greedy ids.
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cpp_ref_adapter/worker_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/chat_input.h"
#include "services/native/native_backend.h"
#include "tests/services/test_server.h"

namespace bitparity::worker {
namespace {

namespace v1 = ::bitnet::v1;
using ::testing::ElementsAreArray;

const std::string kFixtures = BITPARITY_FIXTURES_DIR;
const std::string kBin = BITPARITY_BIN_DIR;

std::string Model(const std::string& name) { return kFixtures + "/models/" + name + ".gguf"; }

// The conversations every template renders: system + user, multi-turn with
// padding to trim, unicode, a lone user turn, an unusual role, an empty content.
std::vector<v1::ChatMessages> Conversations() {
  auto chat = [](std::vector<std::pair<const char*, const char*>> turns) {
    v1::ChatMessages c;
    for (const auto& [role, content] : turns) {
      v1::ChatMessage* m = c.add_messages();
      m->set_role(role);
      m->set_content(content);
    }
    return c;
  };
  return {
      chat({{"system", "You are a helpful assistant"}, {"user", "Hello"}}),
      chat({{"system", "You are a helpful assistant"},
            {"user", "Hello"},
            {"assistant", "Hi there"},
            {"user", "Who are you"},
            {"assistant", "   I am an assistant   "},
            {"user", "Another question"}}),
      chat({{"user", u8"  Ça va? 世界 🌍\n"}, {"assistant", u8"Très bien.\t"}, {"user", u8"Ünïcödé"}}),
      chat({{"user", "just one turn"}}),
      chat({{"system", ""}, {"tool", "{\"result\": 42}"}, {"user", "and?"}}),
  };
}

// "" is the model's own; then every name; then template texts to detect.
std::vector<std::string> Templates() {
  std::vector<std::string> t = {""};
  for (absl::string_view n : ChatTemplateNames()) t.emplace_back(n);
  t.push_back("{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}");
  t.push_back("{{ bos_token + '[INST] ' }} <<SYS>> ' ' + eos_token content.strip()");
  t.push_back("{{ 'BITNETAssistant: ' }}");
  t.push_back("<|user|> <|assistant|> <|end|>");
  t.push_back("{% unknown template %}");
  t.push_back("LLAMA3");
  return t;
}

struct Outcome {
  grpc::Status status;
  v1::ApplyChatTemplateResponse resp;
};

Outcome Apply(v1::Engine::Stub& stub, const v1::ChatMessages& chat) {
  v1::ApplyChatTemplateRequest req;
  *req.mutable_chat() = chat;
  grpc::ClientContext ctx;
  Outcome o;
  o.status = stub.ApplyChatTemplate(&ctx, req, &o.resp);
  return o;
}

// Two servers on one model: `ref` (the worker under test) and the native one.
class ChatParityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void StartBoth(const std::string& worker) {
    const std::string model = Model(GetParam());
    if (access(model.c_str(), R_OK) != 0) GTEST_SKIP() << "fixture missing: " << model;

    WorkerBackendOptions o;
    o.pool.command.executable = worker;
    o.pool.command.args = {"--model", model, "--threads", "1", "--max-context", "512"};
    o.pool.label = "chat worker";
    o.pool.log_events = false;
    o.pool.hello_timeout = std::chrono::seconds(60);
    o.model_path = model;
    o.start_timeout = std::chrono::seconds(60);
    auto ref = WorkerBackend::Start(o);
    ASSERT_TRUE(ref.ok()) << ref.status();
    ref_ = testing::LoopbackServer::Start({}, std::shared_ptr<EngineBackend>(std::move(*ref)));
    ASSERT_NE(ref_, nullptr);

    NativeBackendOptions no;
    no.model_path = model;
    no.threads = 1;
    no.max_context = 512;
    auto native = NativeBackend::Load(no);
    ASSERT_TRUE(native.ok()) << native.status();
    native_ = testing::LoopbackServer::Start({}, std::shared_ptr<EngineBackend>(std::move(*native)));
    ASSERT_NE(native_, nullptr);
  }

  // Every conversation x template x add_assistant through both servers.
  void ExpectSameRenderings() {
    auto ref = ref_->Stub();
    auto native = native_->Stub();
    int same = 0, total = 0, rendered = 0;
    for (const std::string& tmpl : Templates()) {
      int tmpl_same = 0, tmpl_total = 0;
      for (v1::ChatMessages chat : Conversations()) {
        for (bool add : {true, false}) {
          chat.set_chat_template(tmpl);
          chat.set_add_assistant_prompt(add);
          const Outcome a = Apply(*ref, chat);
          const Outcome b = Apply(*native, chat);
          const bool equal = a.status.error_code() == b.status.error_code() &&
                             a.status.error_message() == b.status.error_message() &&
                             a.resp.text() == b.resp.text() &&
                             a.resp.template_name() == b.resp.template_name() &&
                             a.resp.source() == b.resp.source();
          EXPECT_TRUE(equal) << "template \"" << tmpl << "\" add_assistant=" << add
                             << " conversation " << chat.ShortDebugString() << "\n  ref:    "
                             << a.status.error_message() << " [" << a.resp.template_name()
                             << "] " << a.resp.text() << "\n  native: "
                             << b.status.error_message() << " [" << b.resp.template_name()
                             << "] " << b.resp.text();
          tmpl_same += equal;
          ++tmpl_total;
          rendered += a.status.ok();
        }
      }
      same += tmpl_same == tmpl_total;
      ++total;
    }
    std::printf("%s: %d of %d templates render the same (%d renderings succeeded)\n",
                GetParam().c_str(), same, total, rendered);
    EXPECT_GT(rendered, 0);
  }

  // Generate with a chat: the same prompt ids and greedy ids on both servers.
  void ExpectSameGeneration() {
    v1::GenerateRequest req;
    *req.mutable_input()->mutable_chat() = Conversations()[1];
    req.set_max_new_tokens(8);
    req.set_ignore_eos(true);
    v1::GenerateResponse a, b;
    grpc::ClientContext ca, cb;
    ASSERT_TRUE(ref_->Stub()->Generate(&ca, req, &a).ok());
    ASSERT_TRUE(native_->Stub()->Generate(&cb, req, &b).ok());
    EXPECT_THAT(a.prompt_ids(), ElementsAreArray(b.prompt_ids()));
    EXPECT_THAT(a.ids(), ElementsAreArray(b.ids()));
  }

  std::unique_ptr<testing::LoopbackServer> ref_;
  std::unique_ptr<testing::LoopbackServer> native_;
};

class NativeWorkerChatTest : public ChatParityTest {
 protected:
  void SetUp() override { StartBoth(kBin + "/bitparity-native-worker"); }
};

class BitnetCppChatTest : public ChatParityTest {
 protected:
  void SetUp() override {
    const char* dir = std::getenv("BITNET_CPP_DIR");
    if (dir == nullptr || *dir == '\0') {
      GTEST_SKIP() << "BITNET_CPP_DIR is not set: comparing chat templates with bitnet.cpp needs "
                      "a built bitnet.cpp checkout (configure with -DBITNET_CPP_DIR=<checkout> "
                      "and run with BITNET_CPP_DIR=<checkout> in the environment)";
    }
    const std::string worker = kBin + "/bitnet-cpp-worker";
    ASSERT_EQ(access(worker.c_str(), X_OK), 0)
        << "BITNET_CPP_DIR=" << dir << " is set but " << worker << " is not built";
    StartBoth(worker);
  }
};

TEST_P(NativeWorkerChatTest, RendersLikeTheInProcessEngine) {
  ExpectSameRenderings();
  ExpectSameGeneration();
}

TEST_P(BitnetCppChatTest, RendersLikeBitnetCpp) {
  ExpectSameRenderings();
  ExpectSameGeneration();
}

INSTANTIATE_TEST_SUITE_P(Models, NativeWorkerChatTest,
                         ::testing::Values("tiny-b158-l3", "tiny-b158"));
INSTANTIATE_TEST_SUITE_P(Models, BitnetCppChatTest, ::testing::Values("tiny-b158-l3", "tiny-b158"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

}  // namespace
}  // namespace bitparity::worker
