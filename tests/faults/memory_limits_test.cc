// Fault: requests that would need more memory than the server allows: a
// sequence past max_context, a generation past it, max_new_tokens far out of
// range, full logits or a residual trace larger than the message limit, a
// request message over the limit, too many logprobs or stop sequences. Each is
// refused with INVALID_ARGUMENT, OUT_OF_RANGE or RESOURCE_EXHAUSTED and a
// message that says what to change, before any evaluation starts: the
// FakeBackend (max_context 64, vocabulary 100, 2 layers) counts every call that
// reaches it, and none may. Then the real engines (tiny-b158, max_context 512) in
// process and in worker processes: a text of 8 MiB is refused by its length,
// without being tokenized; one just inside that bound by its exact token count.
#include <atomic>
#include <climits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/tokenizer/tokenizer.h"
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

// Forwards to a real backend and counts Tokenize calls: proves a text was refused
// without being tokenized, whichever engine (and process) would tokenize it.
class CountingBackend final : public EngineBackend {
 public:
  explicit CountingBackend(std::shared_ptr<EngineBackend> inner) : inner_(std::move(inner)) {}
  const BackendInfo& Info() const override { return inner_->Info(); }
  int64_t SessionBytes() const override { return inner_->SessionBytes(); }
  std::vector<int> WorkerPids() const override { return inner_->WorkerPids(); }
  void SetReadinessObserver(ReadinessObserver o) override { inner_->SetReadinessObserver(std::move(o)); }
  absl::StatusOr<std::vector<int32_t>> Tokenize(absl::string_view text, bool add_bos,
                                                bool parse_special) const override {
    ++tokenize_calls_;
    return inner_->Tokenize(text, add_bos, parse_special);
  }
  absl::StatusOr<std::string> TokenPiece(int32_t id) const override { return inner_->TokenPiece(id); }
  absl::StatusOr<std::string> Detokenize(absl::Span<const int32_t> ids) const override {
    return inner_->Detokenize(ids);
  }
  absl::Status EvalLogits(absl::Span<const int32_t> ids, BackendEvalMode mode,
                          const std::vector<int>& rows, const LogitsRowFn& on_row,
                          const CancelledFn& cancelled, CallNotes* notes) override {
    return inner_->EvalLogits(ids, mode, rows, on_row, cancelled, notes);
  }
  absl::Status EvalTrace(absl::Span<const int32_t> ids, BackendEvalMode mode,
                         const std::vector<int>& rows, const ResidualFn& on_residual,
                         const CancelledFn& cancelled, CallNotes* notes) override {
    return inner_->EvalTrace(ids, mode, rows, on_residual, cancelled, notes);
  }
  absl::StatusOr<GenerationResult> Generate(absl::Span<const int32_t> prompt,
                                            const GenerationSpec& spec, const TokenFn& on_token,
                                            const CancelledFn& cancelled, CallNotes* notes) override {
    return inner_->Generate(prompt, spec, on_token, cancelled, notes);
  }
  int tokenize_calls() const { return tokenize_calls_.load(); }

 private:
  std::shared_ptr<EngineBackend> inner_;
  mutable std::atomic<int> tokenize_calls_{0};
};

// `bytes` of ASCII prose (about 4.6 bytes per GPT-2 token).
std::string Prose(size_t bytes) {
  std::string text;
  while (text.size() < bytes) text += "The quick brown fox jumps over the lazy dog. ";
  text.resize(bytes);
  return text;
}

// The real engines (tiny-b158: GPT-2 vocabulary, BOS added, max_context 512): our
// engine in process (bitnet-native-server), and behind the worker protocol as
// bitparity-worker-server (bitparity-native-worker) and bitnet-cpp-server
// (bitnet-cpp-worker, skipped by name without BITNET_CPP_DIR) run it. A text that
// cannot fit max_context at max_token_bytes per token is refused OUT_OF_RANGE
// before it is tokenized (for the workers: before it is sent to one); a text just
// inside that bound is tokenized and judged by its exact token count.
class LongTextTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (access(kModel.c_str(), R_OK) != 0) GTEST_SKIP() << "fixture missing: " << kModel;
    std::shared_ptr<EngineBackend> inner;
    if (GetParam() == "in_process") {
      NativeBackendOptions no;
      no.model_path = kModel;
      no.threads = 1;
      no.max_context = 512;
      auto b = NativeBackend::Load(no);
      ASSERT_TRUE(b.ok()) << b.status();
      inner = std::shared_ptr<NativeBackend>(std::move(*b));
    } else {
      const WorkerKind& kind = GetParam() == "native_worker" ? kNativeWorkerKind : kBitnetCppWorkerKind;
      if (const std::string why = WorkerKindUnavailable(kind); !why.empty()) {
        if (kind.name == kNativeWorkerKind.name) FAIL() << why;
        GTEST_SKIP() << why;
      }
      auto b = worker::WorkerBackend::Start(WorkerOptions(kind, kModel, 1));
      ASSERT_TRUE(b.ok()) << b.status();
      inner = std::shared_ptr<worker::WorkerBackend>(std::move(*b));
    }
    backend_ = std::make_shared<CountingBackend>(inner);
    ServerOptions so;  // default 64 MiB message limit
    server_ = testing::LoopbackServer::Start(so, backend_);
    ASSERT_NE(server_, nullptr);
    stub_ = server_->Stub();
    // Our tokenizer's bound for the same vocabulary: every engine must report it.
    auto file = GgufFile::Open(kModel);
    ASSERT_TRUE(file.ok()) << file.status();
    auto tok = Tokenizer::FromGguf(**file);
    ASSERT_TRUE(tok.ok()) << tok.status();
    max_token_bytes_ = (*tok)->max_token_bytes();
    ASSERT_EQ(max_token_bytes_, 128);  // the longest GPT-2 piece
  }
  void TearDown() override {
    stub_.reset();
    server_.reset();
    backend_.reset();
  }

  grpc::Status Eval(const std::string& text) {
    v1::EvalLogitsRequest req;
    req.mutable_input()->set_text(text);
    req.mutable_output()->set_kind(v1::LogitsOutput::NONE);
    v1::EvalLogitsResponse resp;
    grpc::ClientContext ctx;
    return stub_->EvalLogits(&ctx, req, &resp);
  }

  std::shared_ptr<CountingBackend> backend_;
  std::unique_ptr<testing::LoopbackServer> server_;
  std::unique_ptr<v1::Engine::Stub> stub_;
  int max_token_bytes_ = 0;
};

TEST_P(LongTextTest, ReportsTheTokenizersByteBound) {
  v1::GetModelInfoResponse info;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.model().max_token_bytes(), max_token_bytes_);
  EXPECT_EQ(info.limits().max_context(), 512);
}

TEST_P(LongTextTest, EightMegabyteTextIsRefusedWithoutTokenizing) {
  const int64_t sessions_before = backend_->SessionBytes();
  const std::string text = Prose(8u << 20);
  auto before = ReadProcessMemory();
  ASSERT_TRUE(before.ok());
  const auto t0 = std::chrono::steady_clock::now();
  const grpc::Status eval = Eval(text);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto after = ReadProcessMemory();
  ASSERT_TRUE(after.ok());
  EXPECT_THAT(eval, StatusIs(absl::StatusCode::kOutOfRange,
                             HasSubstr("input.text has 8388608 bytes and cannot fit in 511 tokens "
                                       "(the server's max_context 512 - 1 for BOS): no token is "
                                       "longer than 128 bytes, so it is at least 65536 tokens")));
  const auto gen_refused = StatusIs(
      absl::StatusCode::kOutOfRange,
      HasSubstr("input.text has 8388608 bytes and cannot fit in 495 tokens (the server's "
                "max_context 512 - 16 new tokens - 1 for BOS): no token is longer than 128 bytes"));
  v1::GenerateRequest gen;
  gen.mutable_input()->set_text(text);
  gen.set_max_new_tokens(16);
  {
    v1::GenerateResponse resp;
    grpc::ClientContext ctx;
    EXPECT_THAT(stub_->Generate(&ctx, gen, &resp), gen_refused);
  }
  {
    grpc::ClientContext ctx;
    auto reader = stub_->GenerateStream(&ctx, gen);
    v1::GenerateStreamResponse m;
    while (reader->Read(&m)) {
    }
    EXPECT_THAT(reader->Finish(), gen_refused);
  }
  {
    v1::TokenizeRequest req;
    req.set_text(text);
    v1::TokenizeResponse resp;
    grpc::ClientContext ctx;
    EXPECT_THAT(stub_->Tokenize(&ctx, req, &resp),
                StatusIs(absl::StatusCode::kOutOfRange,
                         HasSubstr("text has 8388608 bytes and cannot fit in 511 tokens")));
  }
  EXPECT_EQ(backend_->tokenize_calls(), 0) << "a refused text was tokenized";
  EXPECT_EQ(backend_->SessionBytes(), sessions_before) << "a session was made for a refused request";
  std::printf("%s: 8 MiB text -> %s in %.1f ms; test process VmHWM %lld -> %lld MB\n",
              GetParam().c_str(), eval.error_message().substr(0, 60).c_str(), ms,
              static_cast<long long>(before->peak_resident_bytes >> 20),
              static_cast<long long>(after->peak_resident_bytes >> 20));
}

TEST_P(LongTextTest, TextJustInsideTheBoundIsTokenizedAndCountedExactly) {
  // 511 positions for the text (BOS takes one): 511 x 128 bytes may still fit.
  const size_t inside = 511 * 128;
  EXPECT_THAT(Eval(Prose(inside)),
              StatusIs(absl::StatusCode::kOutOfRange,
                       ::testing::AllOf(HasSubstr("input: "),
                                        HasSubstr(" tokens, over the server's max_context 512"))));
  EXPECT_EQ(backend_->tokenize_calls(), 1);
  EXPECT_THAT(Eval(Prose(inside + 1)),
              StatusIs(absl::StatusCode::kOutOfRange,
                       HasSubstr("input.text has 65409 bytes and cannot fit in 511 tokens")));
  EXPECT_EQ(backend_->tokenize_calls(), 1);
  // Tokenize itself returns every id of a text inside the bound, past max_context too.
  v1::TokenizeRequest req;
  req.set_text(Prose(inside));
  v1::TokenizeResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->Tokenize(&ctx, req, &resp).ok());
  EXPECT_GT(resp.ids_size(), 512);
  // And an ordinary prompt is served as before.
  EXPECT_TRUE(Eval("The quick brown fox").ok());
  EXPECT_EQ(backend_->tokenize_calls(), 3);
}

INSTANTIATE_TEST_SUITE_P(Engines, LongTextTest,
                         ::testing::Values("in_process", "native_worker", "bitnet_cpp_worker"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace bitparity::faults
