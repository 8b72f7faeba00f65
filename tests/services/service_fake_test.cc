// EngineService over real loopback gRPC with a controllable fake backend
// (fake_backend.h): the behaviour that must not depend on engine speed.
// Admission limits and RESOURCE_EXHAUSTED, queueing, deadlines while queued and
// while running, client cancellation, draining, health, metrics, TLS and mutual
// TLS, message-size limits, request ids and the request log.
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <utility>

#include "base/logits.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/common/conversion.h"
#include "tests/services/fake_backend.h"
#include "tests/services/status_matchers.h"
#include "tests/services/test_server.h"

namespace bitparity {
namespace {

namespace v1 = bitnet::v1;
using ::bitparity::testing::FakeBackend;
using ::bitparity::testing::LoopbackServer;
using ::bitparity::testing::StatusIs;
using ::bitparity::testing::TestCertificates;
using ::testing::HasSubstr;
using HealthStatus = grpc::health::v1::HealthCheckResponse;

v1::GenerateRequest GenerateText(const std::string& text, int n) {
  v1::GenerateRequest r;
  r.mutable_input()->set_text(text);
  r.set_max_new_tokens(n);
  return r;
}

void SetDeadlineMs(grpc::ClientContext* ctx, int ms) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(ms));
}

class ServiceFakeTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}, int max_token_bytes = 0) {
    backend_ = std::make_shared<FakeBackend>();
    backend_->set_max_token_bytes(max_token_bytes);
    server_ = LoopbackServer::Start(options, backend_);
    ASSERT_NE(server_, nullptr);
    stub_ = server_->Stub();
  }

  // rpc's logged (code, message) once its handler has returned with DEADLINE_EXCEEDED
  // or CANCELLED ({} and a failure naming the log after 5 s). When the client's timer
  // fires first, the server may see the call cancelled a moment before its own copy of
  // the deadline (which gRPC derives from the time the request arrived), and logs
  // CANCELLED instead. The line is written as the handler returns, a moment after the
  // backend stops.
  std::pair<std::string, std::string> LoggedDeadlineOrCancel(const std::string& rpc) {
    for (int i = 0; i < 500; ++i) {
      for (const std::string& line : server_->LogLines()) {
        const nlohmann::json j = nlohmann::json::parse(line);
        const std::string code = j.value("code", "");
        if (j.value("rpc", "") == rpc && (code == "DEADLINE_EXCEEDED" || code == "CANCELLED")) {
          return {code, j.value("message", "")};
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::string all;
    for (const std::string& line : server_->LogLines()) all += line + "\n";
    ADD_FAILURE() << rpc << " was not logged as DEADLINE_EXCEEDED or CANCELLED; the log:\n" << all;
    return {};
  }

  std::shared_ptr<FakeBackend> backend_;
  std::unique_ptr<LoopbackServer> server_;
  std::unique_ptr<v1::Engine::Stub> stub_;
};

TEST_F(ServiceFakeTest, EvalLogitsReturnsTheBackendsRowsAndDerivedFigures) {
  StartServer();
  v1::EvalLogitsRequest req;
  req.mutable_input()->set_text("abc");  // BOS + 3 tokens
  req.mutable_positions()->set_kind(v1::Positions::ALL);
  v1::EvalLogitsResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->EvalLogits(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.token_ids_size(), 4);
  ASSERT_EQ(resp.positions_size(), 4);
  EXPECT_EQ(resp.mode(), v1::EVAL_MODE_BATCH);
  EXPECT_EQ(resp.n_vocab(), FakeBackend::kVocab);
  for (int p = 0; p < 4; ++p) {
    const v1::PositionLogits& pl = resp.positions(p);
    auto row = UnpackFloats(pl.logits(), v1::FLOAT_FORMAT_F32);
    ASSERT_TRUE(row.ok());
    ASSERT_EQ(row->size(), 100u);
    for (int v = 0; v < 100; ++v) {
      ASSERT_EQ((*row)[v], FakeBackend::Logit(p, resp.token_ids(p), v)) << p << " " << v;
    }
    EXPECT_EQ(pl.argmax_id(), ArgMax(*row));
    EXPECT_EQ(pl.has_next_token_logprob(), p < 3);
    if (p < 3) {
      EXPECT_DOUBLE_EQ(pl.next_token_logprob(), LogSoftmaxAt(*row, resp.token_ids(p + 1)));
    }
  }
}

TEST_F(ServiceFakeTest, ResponseOverTheMessageLimitIsRefusedUpFront) {
  ServerOptions options;
  options.limits.max_message_bytes = 1000;  // one f32 row of 100 is ~464 bytes
  StartServer(options);
  v1::EvalLogitsRequest req;
  req.mutable_input()->set_text("abcdef");
  req.mutable_positions()->set_kind(v1::Positions::ALL);
  v1::EvalLogitsResponse resp;
  grpc::ClientContext ctx;
  EXPECT_THAT(stub_->EvalLogits(&ctx, req, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("over the server's max message size of 1000 bytes; use EvalLogitsStream")));
  // The stream sends one position per message, which fits.
  grpc::ClientContext sctx;
  auto reader = stub_->EvalLogitsStream(&sctx, req);
  v1::EvalLogitsStreamResponse m;
  int n = 0;
  while (reader->Read(&m)) ++n;
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(n, 7);
}

TEST_F(ServiceFakeTest, RequestOverTheMessageLimitIsResourceExhausted) {
  ServerOptions options;
  options.limits.max_message_bytes = 1 << 20;
  StartServer(options);
  v1::TokenizeRequest req;
  req.set_text(std::string(2 << 20, 'x'));
  v1::TokenizeResponse resp;
  grpc::ClientContext ctx;
  EXPECT_THAT(stub_->Tokenize(&ctx, req, &resp),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("")));
}

// A text that cannot fit max_context even at max_token_bytes per token is refused
// OUT_OF_RANGE by every RPC that takes text, and the backend never tokenizes it; the
// bound is reported in GetModelInfo.
TEST_F(ServiceFakeTest, TextPastTheByteBoundIsRefusedBeforeTokenizing) {
  StartServer({}, /*max_token_bytes=*/1);  // one token per byte: the fake's true bound
  {
    v1::GetModelInfoResponse info;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
    EXPECT_EQ(info.model().max_token_bytes(), 1);
  }
  const std::string text(8 << 20, 'x');
  const auto refused = StatusIs(
      absl::StatusCode::kOutOfRange,
      HasSubstr("input.text has 8388608 bytes and cannot fit in 63 tokens (the server's "
                "max_context 64 - 1 for BOS): no token is longer than 1 bytes"));
  v1::EvalLogitsRequest eval;
  eval.mutable_input()->set_text(text);
  {
    v1::EvalLogitsResponse resp;
    grpc::ClientContext ctx;
    EXPECT_THAT(stub_->EvalLogits(&ctx, eval, &resp), refused);
  }
  {
    grpc::ClientContext ctx;
    auto reader = stub_->EvalLogitsStream(&ctx, eval);
    v1::EvalLogitsStreamResponse m;
    while (reader->Read(&m)) {
    }
    EXPECT_THAT(reader->Finish(), refused);
  }
  {
    v1::EvalTraceRequest req;
    req.mutable_input()->set_text(text);
    v1::EvalTraceResponse resp;
    grpc::ClientContext ctx;
    EXPECT_THAT(stub_->EvalTrace(&ctx, req, &resp), refused);
  }
  const v1::GenerateRequest gen = GenerateText(text, 16);
  const auto gen_refused = StatusIs(
      absl::StatusCode::kOutOfRange,
      HasSubstr("input.text has 8388608 bytes and cannot fit in 47 tokens (the server's "
                "max_context 64 - 16 new tokens - 1 for BOS)"));
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
                         HasSubstr("text has 8388608 bytes and cannot fit in 63 tokens")));
  }
  EXPECT_EQ(backend_->tokenize_calls(), 0);
  EXPECT_EQ(backend_->max_running_seen(), 0);

  // Just inside the bound: tokenized, then judged by the exact count (which, with
  // a tight bound, fits); Tokenize returns every id.
  {
    v1::GenerateResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(stub_->Generate(&ctx, GenerateText(std::string(47, 'x'), 16), &resp).ok());
    EXPECT_EQ(resp.usage().prompt_tokens(), 48);
  }
  {
    v1::TokenizeRequest req;
    req.set_text(std::string(63, 'x'));
    v1::TokenizeResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(stub_->Tokenize(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.ids_size(), 64);
  }
  EXPECT_EQ(backend_->tokenize_calls(), 2);
}

// Without a bound (max_token_bytes 0) every text is tokenized and judged by its
// exact count, as before; Tokenize has no limit but the message size.
TEST_F(ServiceFakeTest, WithoutAByteBoundTextIsTokenizedAndCounted) {
  StartServer();
  v1::GenerateResponse resp;
  grpc::ClientContext ctx;
  EXPECT_THAT(stub_->Generate(&ctx, GenerateText(std::string(1000, 'x'), 16), &resp),
              StatusIs(absl::StatusCode::kOutOfRange,
                       HasSubstr("input: 1001 input tokens + 16 new tokens = 1017 positions")));
  v1::TokenizeRequest req;
  req.set_text(std::string(1000, 'x'));
  v1::TokenizeResponse tresp;
  grpc::ClientContext tctx;
  EXPECT_TRUE(stub_->Tokenize(&tctx, req, &tresp).ok());
  EXPECT_EQ(tresp.ids_size(), 1001);
  EXPECT_EQ(backend_->tokenize_calls(), 2);
}

// The byte bound of the worker backends relies on this: text that is not
// well-formed UTF-8 (bitnet.cpp would re-encode an overlong form into fewer bytes)
// never reaches a backend, because a proto3 string is checked when it is parsed.
TEST_F(ServiceFakeTest, IllFormedUtf8TextNeverReachesTheBackend) {
  StartServer();
  for (const std::string& bad : {std::string("\xC0\xAF"), std::string("ab\xF0\x80\x80\xAF" "cd"),
                                std::string("\xED\xA0\x80"), std::string("x\x80")}) {
    v1::TokenizeRequest req;
    req.set_text(bad);
    v1::TokenizeResponse resp;
    grpc::ClientContext ctx;
    EXPECT_FALSE(stub_->Tokenize(&ctx, req, &resp).ok());
    v1::GenerateResponse gresp;
    grpc::ClientContext gctx;
    EXPECT_FALSE(stub_->Generate(&gctx, GenerateText(bad, 1), &gresp).ok());
  }
  EXPECT_EQ(backend_->tokenize_calls(), 0);
}

TEST_F(ServiceFakeTest, FullQueueIsResourceExhaustedWithAMessage) {
  ServerOptions options;
  options.limits.max_concurrent = 1;
  options.limits.max_queue = 1;
  StartServer(options);
  backend_->Hold();
  // One runs (held inside the backend), one waits in the queue.
  auto run = [&] {
    auto stub = server_->Stub();
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    return stub->Generate(&ctx, GenerateText("a", 2), &resp);
  };
  auto first = std::async(std::launch::async, run);
  ASSERT_TRUE(backend_->WaitRunning(1));
  auto second = std::async(std::launch::async, run);
  for (int i = 0; i < 1000 && server_->server().service().gate().waiting() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(server_->server().service().gate().waiting(), 1);

  grpc::ClientContext ctx;
  v1::GenerateResponse resp;
  EXPECT_THAT(stub_->Generate(&ctx, GenerateText("a", 2), &resp),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("server busy: 1 requests running (max_concurrent 1) and 1 waiting")));
  // Ungated RPCs still answer while the gate is full.
  grpc::ClientContext info_ctx;
  v1::GetModelInfoResponse info;
  EXPECT_TRUE(stub_->GetModelInfo(&info_ctx, {}, &info).ok());

  backend_->Release();
  EXPECT_TRUE(first.get().ok());
  EXPECT_TRUE(second.get().ok());
  EXPECT_EQ(backend_->max_running_seen(), 1);
}

TEST_F(ServiceFakeTest, ConcurrentRequestsRunUpToTheLimit) {
  ServerOptions options;
  options.limits.max_concurrent = 3;
  options.limits.max_queue = 16;
  StartServer(options);
  backend_->set_step_ms(5);
  std::vector<std::future<grpc::Status>> calls;
  for (int i = 0; i < 8; ++i) {
    calls.push_back(std::async(std::launch::async, [&] {
      auto stub = server_->Stub();
      grpc::ClientContext ctx;
      v1::GenerateResponse resp;
      return stub->Generate(&ctx, GenerateText("ab", 6), &resp);
    }));
  }
  for (auto& c : calls) EXPECT_TRUE(c.get().ok());
  EXPECT_EQ(backend_->max_running_seen(), 3);
}

TEST_F(ServiceFakeTest, DeadlineWhileRunningStopsTheBackend) {
  StartServer();
  backend_->Hold();
  grpc::ClientContext ctx;
  // Long enough for a busy machine to start the handler, which then logs the call (see
  // DeadlineKeepsTheBackendsOwnDetail).
  constexpr int kDeadlineMs = 1000;
  SetDeadlineMs(&ctx, kDeadlineMs);
  v1::GenerateResponse resp;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THAT(stub_->Generate(&ctx, GenerateText("a", 4), &resp),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("")));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(kDeadlineMs + 2000));
  // The server side stops within a step, not after the whole generation.
  for (int i = 0; i < 500 && backend_->running() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(backend_->running(), 0);
  // The log says why.
  EXPECT_FALSE(LoggedDeadlineOrCancel("Generate").first.empty());
}

// The status names the deadline and keeps what the backend said when it stopped
// (for a worker backend: the killed worker and its last stderr lines). The
// client's own clock ends its call first, with gRPC's bare "Deadline Exceeded",
// so the server's status is read from its request log.
TEST_F(ServiceFakeTest, DeadlineKeepsTheBackendsOwnDetail) {
  constexpr int kHeldCallDeadlineMs = 1000;
  StartServer();
  backend_->Hold();
  // Whichever code the server logs (LoggedDeadlineOrCancel), the backend's own words
  // must survive. Each call waits for the one before it to be logged. The deadline
  // leaves a busy machine time to start the handler: a call that expires before gRPC
  // hands it over is answered by gRPC alone and never logged (seen with 150 ms under load).
  auto why = [](const std::string& code) {
    return code == "DEADLINE_EXCEEDED" ? "deadline exceeded after" : "cancelled by the client";
  };
  {
    grpc::ClientContext ctx;
    SetDeadlineMs(&ctx, kHeldCallDeadlineMs);
    v1::EvalLogitsRequest req;
    req.mutable_input()->set_text("abc");
    v1::EvalLogitsResponse resp;
    EXPECT_THAT(stub_->EvalLogits(&ctx, req, &resp),
                StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("")));
  }
  const auto [eval_code, eval_message] = LoggedDeadlineOrCancel("EvalLogits");
  EXPECT_THAT(eval_message, ::testing::AllOf(HasSubstr(why(eval_code)), HasSubstr("; fake: cancelled")));
  {
    grpc::ClientContext ctx;
    SetDeadlineMs(&ctx, kHeldCallDeadlineMs);
    v1::GenerateResponse resp;
    EXPECT_THAT(stub_->Generate(&ctx, GenerateText("a", 4), &resp),
                StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("")));
  }
  const auto [gen_code, gen_message] = LoggedDeadlineOrCancel("Generate");
  EXPECT_THAT(gen_message, ::testing::AllOf(HasSubstr(why(gen_code)),
                                            HasSubstr("; fake: generation cancelled after 0 tokens")));
}

TEST_F(ServiceFakeTest, DeadlineWhileQueuedLeavesTheQueue) {
  ServerOptions options;
  options.limits.max_concurrent = 1;
  options.limits.max_queue = 4;
  StartServer(options);
  backend_->Hold();
  auto holder = std::async(std::launch::async, [&] {
    auto stub = server_->Stub();
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    return stub->Generate(&ctx, GenerateText("a", 1), &resp);
  });
  ASSERT_TRUE(backend_->WaitRunning(1));
  grpc::ClientContext ctx;
  SetDeadlineMs(&ctx, 100);
  v1::EvalLogitsRequest req;
  req.mutable_input()->set_text("a");
  v1::EvalLogitsResponse resp;
  EXPECT_THAT(stub_->EvalLogits(&ctx, req, &resp),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("")));
  for (int i = 0; i < 500 && server_->server().service().gate().waiting() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(server_->server().service().gate().waiting(), 0);
  backend_->Release();
  EXPECT_TRUE(holder.get().ok());
}

TEST_F(ServiceFakeTest, ClientCancelStopsStreamingGeneration) {
  StartServer();
  backend_->set_step_ms(10);
  grpc::ClientContext ctx;
  auto reader = stub_->GenerateStream(&ctx, GenerateText("a", 60));  // ~600 ms of work
  v1::GenerateStreamResponse m;
  ASSERT_TRUE(reader->Read(&m));
  ASSERT_TRUE(m.has_token());
  ctx.TryCancel();
  while (reader->Read(&m)) {
  }
  EXPECT_THAT(reader->Finish(), StatusIs(absl::StatusCode::kCancelled, HasSubstr("")));
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 500 && backend_->running() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(backend_->running(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(300));
}

TEST_F(ServiceFakeTest, StreamsOneMessagePerTokenThenASummary) {
  StartServer();
  grpc::ClientContext ctx;
  auto reader = stub_->GenerateStream(&ctx, GenerateText("ab", 5));
  v1::GenerateStreamResponse m;
  std::vector<int32_t> streamed;
  v1::GenerateResponse summary;
  int summaries = 0;
  while (reader->Read(&m)) {
    if (m.has_token()) {
      EXPECT_EQ(summaries, 0) << "token after the summary";
      EXPECT_EQ(m.token().index(), static_cast<int>(streamed.size()));
      streamed.push_back(m.token().id());
    } else {
      ASSERT_TRUE(m.has_summary());
      summary = m.summary();
      ++summaries;
    }
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(summaries, 1);
  EXPECT_EQ(streamed.size(), 5u);
  EXPECT_EQ(std::vector<int32_t>(summary.ids().begin(), summary.ids().end()), streamed);
  EXPECT_EQ(summary.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(summary.usage().prompt_tokens(), 3);
  EXPECT_EQ(summary.usage().completion_tokens(), 5);
  EXPECT_EQ(summary.usage().total_tokens(), 8);
  EXPECT_EQ(summary.tokens_size(), 0);
}

TEST_F(ServiceFakeTest, GenerateRequestReachesTheBackendAsValidated) {
  StartServer();
  v1::GenerateRequest r = GenerateText("a", 3);
  r.mutable_sampling()->set_temperature(0.7f);
  r.mutable_sampling()->set_top_k(5);
  r.mutable_sampling()->set_top_p(0.9f);
  r.mutable_sampling()->set_seed(42);
  r.add_stop_sequences("xyz");
  r.add_stop_token_ids(7);
  r.set_ignore_eos(true);
  r.set_logprobs(true);
  r.set_top_logprobs(2);
  r.set_prefill_mode(v1::EVAL_MODE_SEQUENTIAL);
  grpc::ClientContext ctx;
  v1::GenerateResponse resp;
  ASSERT_TRUE(stub_->Generate(&ctx, r, &resp).ok());
  const GenerationSpec spec = backend_->last_spec();
  EXPECT_EQ(spec.max_new_tokens, 3);
  EXPECT_EQ(spec.sampling.temperature, 0.7f);
  EXPECT_EQ(spec.sampling.top_k, 5);
  EXPECT_EQ(spec.sampling.top_p, 0.9f);
  EXPECT_EQ(spec.sampling.seed, 42u);
  EXPECT_EQ(spec.stop_sequences, std::vector<std::string>{"xyz"});
  EXPECT_EQ(spec.stop_token_ids, std::vector<int32_t>{7});
  EXPECT_TRUE(spec.ignore_eos);
  EXPECT_EQ(spec.logprobs_top_n, 2);
  EXPECT_EQ(spec.prefill_mode, BackendEvalMode::kSequential);
  ASSERT_EQ(resp.tokens_size(), 3);
  EXPECT_TRUE(resp.tokens(0).has_logprob());
}

TEST_F(ServiceFakeTest, EvalTraceOrdersByPositionThenLayer) {
  StartServer();
  v1::EvalTraceRequest req;
  req.mutable_input()->set_text("ab");
  req.mutable_positions()->set_kind(v1::Positions::LIST);
  req.mutable_positions()->add_list(0);
  req.mutable_positions()->add_list(2);
  req.add_layers(1);
  req.add_layers(2);
  grpc::ClientContext ctx;
  v1::EvalTraceResponse resp;
  ASSERT_TRUE(stub_->EvalTrace(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.residuals_size(), 4);
  EXPECT_EQ(resp.n_layer(), 2);
  EXPECT_EQ(resp.n_embd(), 4);
  const int expect[4][2] = {{0, 1}, {0, 2}, {2, 1}, {2, 2}};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(resp.residuals(i).position(), expect[i][0]);
    EXPECT_EQ(resp.residuals(i).layer(), expect[i][1]);
    auto h = UnpackFloats(resp.residuals(i).hidden(), v1::FLOAT_FORMAT_F32);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ((*h)[1], expect[i][1] * 100 + expect[i][0] + 0.25f);
  }
}

TEST_F(ServiceFakeTest, HealthIsNotServingWhileLoadingAndDraining) {
  auto backend = std::make_shared<FakeBackend>();
  auto server = LoopbackServer::Start({}, backend, /*install_backend=*/false);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->Health(), HealthStatus::NOT_SERVING);
  EXPECT_EQ(server->Health("bitnet.v1.Engine"), HealthStatus::NOT_SERVING);
  auto stub = server->Stub();
  {
    grpc::ClientContext ctx;
    v1::GetModelInfoResponse info;
    EXPECT_THAT(stub->GetModelInfo(&ctx, {}, &info),
                StatusIs(absl::StatusCode::kUnavailable, HasSubstr("still loading")));
  }
  server->server().SetBackend(backend);
  EXPECT_EQ(server->Health(), HealthStatus::SERVING);
  EXPECT_EQ(server->Health("bitnet.v1.Engine"), HealthStatus::SERVING);

  server->server().BeginDrain();
  EXPECT_EQ(server->Health(), HealthStatus::NOT_SERVING);
  EXPECT_EQ(server->Health("bitnet.v1.Engine"), HealthStatus::NOT_SERVING);
  grpc::ClientContext ctx;
  v1::GenerateResponse resp;
  EXPECT_THAT(stub->Generate(&ctx, GenerateText("a", 1), &resp),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("shutting down")));
}

// After load, health follows the backend's readiness; a drain wins over it.
TEST_F(ServiceFakeTest, HealthFollowsBackendReadinessUntilTheDrain) {
  StartServer();
  EXPECT_EQ(server_->Health("bitnet.v1.Engine"), HealthStatus::SERVING);
  backend_->SetReady(false);
  EXPECT_EQ(server_->Health(), HealthStatus::NOT_SERVING);
  EXPECT_EQ(server_->Health("bitnet.v1.Engine"), HealthStatus::NOT_SERVING);
  backend_->SetReady(true);
  EXPECT_EQ(server_->Health(), HealthStatus::SERVING);
  EXPECT_EQ(server_->Health("bitnet.v1.Engine"), HealthStatus::SERVING);

  server_->server().BeginDrain();
  EXPECT_EQ(server_->Health("bitnet.v1.Engine"), HealthStatus::NOT_SERVING);
  backend_->SetReady(false);
  backend_->SetReady(true);
  EXPECT_EQ(server_->Health("bitnet.v1.Engine"), HealthStatus::NOT_SERVING);

  int changes = 0;
  for (const std::string& line : server_->LogLines()) {
    if (line.find("\"event\":\"health\"") != std::string::npos) ++changes;
  }
  // Up (installed), down, up, down (drain); the calls after the drain change nothing.
  EXPECT_EQ(changes, 4);
}

// A backend that is not ready when installed keeps the server NOT_SERVING.
TEST_F(ServiceFakeTest, BackendNotReadyWhenInstalledIsNotServing) {
  auto backend = std::make_shared<FakeBackend>();
  backend->SetReady(false);
  auto server = LoopbackServer::Start({}, backend);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->Health("bitnet.v1.Engine"), HealthStatus::NOT_SERVING);
  backend->SetReady(true);
  EXPECT_EQ(server->Health("bitnet.v1.Engine"), HealthStatus::SERVING);
  server.reset();
  // The stopped server removed its observer: this must not call into it.
  backend->SetReady(false);
}

TEST_F(ServiceFakeTest, ShutdownCancelsLongGenerationWhichKeepsItsTokens) {
  StartServer();
  backend_->set_step_ms(20);
  auto call = std::async(std::launch::async, [&] {
    auto stub = server_->Stub();
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    grpc::Status st = stub->Generate(&ctx, GenerateText("a", 60), &resp);  // ~1.2 s
    return std::make_pair(st, resp);
  });
  // Tokens are being made: a shutdown now must cut the generation short (its
  // 0.2 s grace is far less than the ~1.2 s it needs) and answer with them.
  ASSERT_TRUE(backend_->WaitSteps(3));
  server_->server().Shutdown(/*grace_seconds=*/0.2);
  auto [st, resp] = call.get();
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.finish_reason(), v1::FINISH_REASON_CANCELLED);
  EXPECT_GT(resp.ids_size(), 0);
  EXPECT_LT(resp.ids_size(), 60);
}

TEST_F(ServiceFakeTest, ShutdownLetsShortWorkFinish) {
  StartServer();
  backend_->set_step_ms(20);
  auto call = std::async(std::launch::async, [&] {
    auto stub = server_->Stub();
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    grpc::Status st = stub->Generate(&ctx, GenerateText("a", 5), &resp);  // ~100 ms
    return std::make_pair(st, resp);
  });
  ASSERT_TRUE(backend_->WaitRunning(1));
  server_->server().Shutdown(/*grace_seconds=*/5);
  auto [st, resp] = call.get();
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(resp.ids_size(), 5);
}

TEST_F(ServiceFakeTest, RequestIdIsEchoedAndLogged) {
  StartServer();
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-request-id", "test-id-42");
  v1::TokenizeRequest req;
  req.set_text("hello");
  v1::TokenizeResponse resp;
  ASSERT_TRUE(stub_->Tokenize(&ctx, req, &resp).ok());
  auto md = ctx.GetServerInitialMetadata();
  auto it = md.find("x-request-id");
  ASSERT_NE(it, md.end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), "test-id-42");

  nlohmann::json line;
  for (const std::string& l : server_->LogLines()) {
    auto j = nlohmann::json::parse(l);
    if (j.value("id", "") == "test-id-42") line = j;
  }
  ASSERT_FALSE(line.is_null());
  EXPECT_EQ(line["event"], "request");
  EXPECT_EQ(line["rpc"], "Tokenize");
  EXPECT_EQ(line["code"], "OK");
  EXPECT_EQ(line["text_bytes"], 5);
  EXPECT_EQ(line["tokens"], 6);
  EXPECT_TRUE(line.contains("total_ms"));
  EXPECT_TRUE(line.contains("ts"));
}

std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return "";
  }
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

TEST_F(ServiceFakeTest, MetricsCountRequestsByCodeAndTokens) {
  ServerOptions options;
  options.metrics_port = 0;
  StartServer(options);
  ASSERT_GT(server_->server().metrics_port(), 0);
  {
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    ASSERT_TRUE(stub_->Generate(&ctx, GenerateText("ab", 4), &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    EXPECT_FALSE(stub_->Generate(&ctx, GenerateText("ab", 0), &resp).ok());
  }
  const std::string page = HttpGet(server_->server().metrics_port(), "/metrics");
  EXPECT_THAT(page, HasSubstr("bitnet_requests_total{code=\"OK\",rpc=\"Generate\"} 1"));
  EXPECT_THAT(page, HasSubstr("bitnet_requests_total{code=\"INVALID_ARGUMENT\",rpc=\"Generate\"} 1"));
  EXPECT_THAT(page, HasSubstr("bitnet_request_errors_total{code=\"INVALID_ARGUMENT\",rpc=\"Generate\"} 1"));
  EXPECT_THAT(page, HasSubstr("bitnet_generated_tokens_total 4"));
  EXPECT_THAT(page, HasSubstr("bitnet_prompt_tokens_total 3"));
  EXPECT_THAT(page, HasSubstr("bitnet_queue_depth 0"));
  EXPECT_THAT(page, HasSubstr("bitnet_requests_in_flight 0"));
  EXPECT_THAT(page, HasSubstr("bitnet_decode_tokens_per_second_count 1"));
}

// --- TLS ---------------------------------------------------------------------

std::shared_ptr<grpc::ChannelCredentials> TlsCreds(const TestCertificates& c, bool client_cert,
                                                   const std::string& ca) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = ::bitparity::testing::ReadWholeFile(ca);
  if (client_cert) {
    o.pem_cert_chain = ::bitparity::testing::ReadWholeFile(c.client_pem);
    o.pem_private_key = ::bitparity::testing::ReadWholeFile(c.client_key);
  }
  return grpc::SslCredentials(o);
}

grpc::Status CallInfo(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = v1::Engine::NewStub(channel);
  grpc::ClientContext ctx;
  SetDeadlineMs(&ctx, 5000);
  v1::GetModelInfoResponse info;
  return stub->GetModelInfo(&ctx, {}, &info);
}

TEST_F(ServiceFakeTest, TlsServesTlsClientsOnly) {
  if (!::bitparity::testing::HaveOpensslTool()) {
    GTEST_SKIP() << "the openssl command-line tool (Debian package openssl) is needed to make "
                    "test certificates";
  }
  auto certs = TestCertificates::Make();
  ASSERT_NE(certs, nullptr);
  ServerOptions options;
  options.tls_cert_file = certs->server_pem;
  options.tls_key_file = certs->server_key;
  StartServer(options);
  EXPECT_TRUE(CallInfo(server_->Channel(TlsCreds(*certs, false, certs->ca_pem))).ok());
  EXPECT_FALSE(CallInfo(server_->Channel(grpc::InsecureChannelCredentials())).ok());
  // A client that trusts another CA refuses the server.
  EXPECT_FALSE(CallInfo(server_->Channel(TlsCreds(*certs, false, certs->other_ca_pem))).ok());
}

TEST_F(ServiceFakeTest, MutualTlsRequiresAClientCertificate) {
  if (!::bitparity::testing::HaveOpensslTool()) {
    GTEST_SKIP() << "the openssl command-line tool (Debian package openssl) is needed to make "
                    "test certificates";
  }
  auto certs = TestCertificates::Make();
  ASSERT_NE(certs, nullptr);
  ServerOptions options;
  options.tls_cert_file = certs->server_pem;
  options.tls_key_file = certs->server_key;
  options.tls_client_ca_file = certs->ca_pem;
  StartServer(options);
  EXPECT_TRUE(CallInfo(server_->Channel(TlsCreds(*certs, true, certs->ca_pem))).ok());
  EXPECT_FALSE(CallInfo(server_->Channel(TlsCreds(*certs, false, certs->ca_pem))).ok());
}

TEST(EngineServerStart, RejectsIncompleteTlsOptions) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.tls_cert_file = "/nonexistent.pem";
  EXPECT_THAT(EngineServer::Start(options, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tls-cert and --tls-key go together")));
  options.tls_key_file = "/nonexistent.key";
  EXPECT_THAT(EngineServer::Start(options, nullptr),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent.pem")));
  ServerOptions ca_only;
  ca_only.listen = "127.0.0.1:0";
  ca_only.tls_client_ca_file = "/x.pem";
  EXPECT_THAT(EngineServer::Start(ca_only, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tls-client-ca needs")));
}

TEST(EngineServerStart, ReportsAnAddressInUse) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  auto first = EngineServer::Start(options, nullptr);
  ASSERT_TRUE(first.ok());
  ServerOptions again;
  again.listen = absl::StrCat("127.0.0.1:", (*first)->port());
  EXPECT_THAT(EngineServer::Start(again, nullptr),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot serve on")));
}

}  // namespace
}  // namespace bitparity
