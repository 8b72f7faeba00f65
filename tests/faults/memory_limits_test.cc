// Fault: requests that would need more memory than the server allows: a
// sequence past max_context, a generation past it, max_new_tokens far out of
// range, full logits or a residual trace larger than the message limit, a
// request message over the limit, too many logprobs or stop sequences. Each is
// refused with INVALID_ARGUMENT, OUT_OF_RANGE or RESOURCE_EXHAUSTED and a
// message that says what to change, before any evaluation starts: the
// FakeBackend (max_context 64, vocabulary 100, 2 layers) counts every call that
// reaches it, and none may. Then the same on the real engine (tiny-b158,
// max_context 512), including a text of 8 MiB that tokenizes far past the context.
#include <climits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/process_memory.h"
#include "services/native/native_backend.h"
#include "tests/faults/fault_util.h"
#include "tests/services/test_server.h"
#include "tests/services/fake_backend.h"
#include "tests/services/status_matchers.h"

namespace bitparity::faults {
namespace {

namespace v1 = ::bitnet::v1;
using ::bitparity::testing::StatusIs;
using ::testing::HasSubstr;

v1::Input Ids(int n) {
  v1::Input in;
  for (int i = 0; i < n; ++i) in.mutable_ids()->add_ids(10 + i % 80);
  return in;
}

class MemoryLimitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = std::make_shared<testing::FakeBackend>();
    ServerOptions so;
    so.limits.max_message_bytes = 16 << 10;  // 16 KiB: 60 full f32 rows of 100 (~28 KB) do not fit
    server_ = testing::LoopbackServer::Start(so, backend_);
    ASSERT_NE(server_, nullptr);
    stub_ = server_->Stub();
  }
  void TearDown() override {
    EXPECT_EQ(backend_->max_running_seen(), 0) << "a refused request reached the engine";
  }

  std::shared_ptr<testing::FakeBackend> backend_;
  std::unique_ptr<testing::LoopbackServer> server_;
  std::unique_ptr<v1::Engine::Stub> stub_;
};

TEST_F(MemoryLimitsTest, SequencePastMaxContextIsOutOfRange) {
  v1::EvalLogitsRequest req;
  *req.mutable_input() = Ids(65);
  v1::EvalLogitsResponse resp;
  grpc::ClientContext ctx;
  EXPECT_THAT(stub_->EvalLogits(&ctx, req, &resp),
              StatusIs(absl::StatusCode::kOutOfRange,
                       HasSubstr("65 tokens, over the server's max_context 64")));
}

TEST_F(MemoryLimitsTest, GenerationPastMaxContextIsOutOfRange) {
  v1::GenerateRequest req;
  *req.mutable_input() = Ids(10);
  req.set_max_new_tokens(60);
  v1::GenerateResponse resp;
  grpc::ClientContext ctx;
  EXPECT_THAT(stub_->Generate(&ctx, req, &resp),
              StatusIs(absl::StatusCode::kOutOfRange,
                       HasSubstr("10 input tokens + 60 new tokens = 70 positions, over the "
                                 "server's max_context 64")));
}

TEST_F(MemoryLimitsTest, HugeMaxNewTokensIsInvalidArgument) {
  v1::GenerateRequest req;
  *req.mutable_input() = Ids(2);
  req.set_max_new_tokens(INT_MAX);
  v1::GenerateResponse resp;
  grpc::ClientContext ctx;
  EXPECT_THAT(stub_->Generate(&ctx, req, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("max_new_tokens = 2147483647 must be in [1, 64]")));
}

TEST_F(MemoryLimitsTest, FullLogitsOverTheMessageLimitAreRefusedWithAHint) {
  v1::EvalLogitsRequest req;
  *req.mutable_input() = Ids(60);
  req.mutable_positions()->set_kind(v1::Positions::ALL);
  v1::EvalLogitsResponse resp;
  grpc::ClientContext ctx;
  EXPECT_THAT(stub_->EvalLogits(&ctx, req, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("over the server's max message size of 16384 bytes; use "
                                 "EvalLogitsStream")));
}

TEST_F(MemoryLimitsTest, TraceOverTheMessageLimitIsRefused) {
  // 64 positions x 3 layers x 4 floats is small: shrink the limit instead.
  ServerOptions so;
  so.limits.max_message_bytes = 1 << 10;
  auto server = testing::LoopbackServer::Start(so, backend_);
  ASSERT_NE(server, nullptr);
  v1::EvalTraceRequest req;
  *req.mutable_input() = Ids(60);
  req.mutable_positions()->set_kind(v1::Positions::ALL);
  v1::EvalTraceResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = server->Stub()->EvalTrace(&ctx, req, &resp);
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument,
                           HasSubstr("over the server's max message size of 1024 bytes")));
}

TEST_F(MemoryLimitsTest, RequestOverTheMessageLimitIsResourceExhausted) {
  v1::GenerateRequest req;
  req.mutable_input()->set_text(std::string(128 << 10, 'x'));
  req.set_max_new_tokens(1);
  v1::GenerateResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = stub_->Generate(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
}

TEST_F(MemoryLimitsTest, TooManyLogprobsOrStopSequencesAreInvalidArgument) {
  const ServiceLimits limits;
  {
    v1::GenerateRequest req;
    *req.mutable_input() = Ids(2);
    req.set_max_new_tokens(4);
    req.set_logprobs(true);
    req.set_top_logprobs(limits.max_top_logprobs + 1);
    v1::GenerateResponse resp;
    grpc::ClientContext ctx;
    EXPECT_THAT(stub_->Generate(&ctx, req, &resp),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_logprobs")));
  }
  {
    v1::GenerateRequest req;
    *req.mutable_input() = Ids(2);
    req.set_max_new_tokens(4);
    for (int i = 0; i <= limits.max_stop_sequences; ++i) req.add_stop_sequences("s" + std::to_string(i));
    v1::GenerateResponse resp;
    grpc::ClientContext ctx;
    EXPECT_THAT(stub_->Generate(&ctx, req, &resp),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stop_sequences")));
  }
  {
    v1::GenerateRequest req;
    *req.mutable_input() = Ids(2);
    req.set_max_new_tokens(4);
    req.add_stop_sequences(std::string(limits.max_stop_sequence_bytes + 1, 'a'));
    v1::GenerateResponse resp;
    grpc::ClientContext ctx;
    EXPECT_THAT(stub_->Generate(&ctx, req, &resp),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stop_sequences")));
  }
}

// The real engine: a long text is refused after tokenizing, before any
// session (KV cache) is made; the figures are printed for the record.
TEST(MemoryLimitsNativeTest, LongTextPastTheContextIsOutOfRangeBeforeEvaluation) {
  if (access(kModel.c_str(), R_OK) != 0) GTEST_SKIP() << "fixture missing: " << kModel;
  NativeBackendOptions no;
  no.model_path = kModel;
  no.threads = 1;
  no.max_context = 512;
  auto b = NativeBackend::Load(no);
  ASSERT_TRUE(b.ok()) << b.status();
  std::shared_ptr<NativeBackend> backend(std::move(*b));
  ServerOptions so;  // default 64 MiB message limit
  auto server = testing::LoopbackServer::Start(so, backend);
  ASSERT_NE(server, nullptr);
  auto stub = server->Stub();
  const int64_t sessions_before = backend->SessionBytes();
  std::string text;
  while (text.size() < (8u << 20)) text += "The quick brown fox jumps over the lazy dog. ";
  auto before = ReadProcessMemory();
  ASSERT_TRUE(before.ok());
  const auto t0 = std::chrono::steady_clock::now();
  v1::EvalLogitsRequest req;
  req.mutable_input()->set_text(text);
  v1::EvalLogitsResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = stub->EvalLogits(&ctx, req, &resp);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto after = ReadProcessMemory();
  ASSERT_TRUE(after.ok());
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("over the server's max_context 512")));
  EXPECT_EQ(backend->SessionBytes(), sessions_before) << "a session was made for a refused request";
  std::printf("8 MiB text -> %s in %.0f ms; test process VmHWM %lld -> %lld MB\n",
              st.error_message().substr(0, 60).c_str(), ms,
              static_cast<long long>(before->peak_resident_bytes >> 20),
              static_cast<long long>(after->peak_resident_bytes >> 20));
}

}  // namespace
}  // namespace bitparity::faults
