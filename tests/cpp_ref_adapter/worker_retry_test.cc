// A dead worker never costs a request that can be served again (issue 17):
// each path of WorkerBackend's retry rule with real bitparity-native-worker
// processes behind a real loopback gRPC server.
//   - a worker SIGKILLed while idle, then a request at once (Tokenize,
//     EvalLogits, GenerateStream, Generate): answered OK, the worker replaced;
//   - a worker that dies mid-EvalLogits / mid-EvalLogitsStream / mid-unary
//     Generate: answered OK by a fresh worker, rows and tokens equal to an
//     undisturbed run, each delivered once, and the retry visible (trailer,
//     request log, GetModelInfo.worker_pool, CallNotes);
//   - a worker that dies mid-GenerateStream after sending tokens: UNAVAILABLE,
//     with exactly the tokens already sent;
//   - a request that kills every worker it meets: UNAVAILABLE after the
//     bounded retries.
// Mid-request deaths happen at an exact frame: the worker SIGKILLs itself
// after its Nth partial frame (bitparity-native-worker --test-crash-after-frames),
// once per marker file, so no test depends on timing.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cpp_ref_adapter/worker_codec.h"
#include "tests/cpp_ref_adapter/supervisor_fixture.h"

namespace bitparity::worker {
namespace {

using namespace testing_fixture;  // NOLINT: the fixture and its helpers

// The `retried_after_worker_crash` trailer of a finished call ("" when absent).
std::string RetryTrailer(const grpc::ClientContext& ctx) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find("retried_after_worker_crash");
  return it == trailers.end() ? "" : std::string(it->second.data(), it->second.size());
}

class WorkerRetryTest : public SupervisorTest {
 protected:
  // A 1-worker server whose workers SIGKILL themselves after their `frames`th
  // partial frame of a request: only the first to get there when `once`.
  void StartCrashingServer(int frames, bool once) {
    marker_ = ::testing::TempDir() + "/crash_marker_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ::unlink(marker_.c_str());
    StartServer(1, [&](WorkerBackendOptions& o) {
      o.pool.command.args.push_back("--test-crash-after-frames");
      o.pool.command.args.push_back(std::to_string(frames));
      if (once) {
        o.pool.command.args.push_back("--test-crash-once-marker");
        o.pool.command.args.push_back(marker_);
      }
    });
  }
  void TearDown() override {
    if (!marker_.empty()) ::unlink(marker_.c_str());
    SupervisorTest::TearDown();
  }
  bool Crashed() const { return ::access(marker_.c_str(), F_OK) == 0; }

  v1::WorkerPoolStatus PoolStatus() {
    v1::GetModelInfoResponse info;
    EXPECT_TRUE(ModelInfo(&info).ok());
    EXPECT_TRUE(info.has_worker_pool());
    return info.worker_pool();
  }

  // The request log's lines that say a request was retried.
  std::vector<std::string> RetriedLogLines() {
    std::vector<std::string> out;
    for (const std::string& line : server_->LogLines()) {
      if (line.find("\"retried_after_worker_crash\":1") != std::string::npos) out.push_back(line);
    }
    return out;
  }

  // Kills the only worker while it is idle and returns at once.
  void KillIdleWorker() {
    WaitReady(1);
    const std::vector<int> pids = backend_->pool().Pids();
    ASSERT_EQ(pids.size(), 1u);
    ASSERT_EQ(::kill(pids[0], SIGKILL), 0);
  }

  static v1::GenerateRequest Greedy(int n) {
    v1::GenerateRequest req;
    req.mutable_input()->set_text(kPrompt);
    req.set_max_new_tokens(n);
    req.set_ignore_eos(true);
    return req;
  }

  std::string marker_;
};

// ---------------------------------------------------------------------------
// Idle death, then a request at once: the dead worker is passed over (or, when
// it was leased in the instant before it died, the request runs again).
// ---------------------------------------------------------------------------

TEST_F(WorkerRetryTest, IdleDeathThenImmediateTokenizeSucceeds) {
  StartServer(1);
  for (int round = 0; round < 5; ++round) {
    KillIdleWorker();
    grpc::ClientContext ctx;
    v1::TokenizeRequest req;
    req.set_text(kPrompt);
    v1::TokenizeResponse resp;
    grpc::Status st = stub_->Tokenize(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.error_message();
    EXPECT_GT(resp.ids_size(), 5);
  }
  EXPECT_EQ(backend_->pool().restarts(), 5);
}

TEST_F(WorkerRetryTest, IdleDeathThenImmediateEvalLogitsSucceeds) {
  StartServer(1);
  v1::EvalLogitsResponse reference;
  ASSERT_TRUE(EvalOnce(&reference).ok());
  for (int round = 0; round < 5; ++round) {
    KillIdleWorker();
    v1::EvalLogitsResponse resp;
    grpc::Status st = EvalOnce(&resp);
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.error_message();
    ASSERT_EQ(resp.positions_size(), reference.positions_size());
    EXPECT_EQ(resp.positions(0).logits(), reference.positions(0).logits());
  }
  EXPECT_EQ(backend_->pool().restarts(), 5);
}

TEST_F(WorkerRetryTest, IdleDeathThenImmediateGenerateStreamSucceeds) {
  StartServer(1);
  for (int round = 0; round < 5; ++round) {
    KillIdleWorker();
    grpc::ClientContext ctx;
    auto reader = stub_->GenerateStream(&ctx, Greedy(8));
    v1::GenerateStreamResponse msg;
    int tokens = 0;
    while (reader->Read(&msg)) tokens += msg.has_token() ? 1 : 0;
    grpc::Status st = reader->Finish();
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.error_message();
    EXPECT_EQ(tokens, 8);
  }
  EXPECT_EQ(backend_->pool().restarts(), 5);
}

TEST_F(WorkerRetryTest, IdleDeathThenImmediateGenerateSucceeds) {
  StartServer(1);
  for (int round = 0; round < 5; ++round) {
    KillIdleWorker();
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    grpc::Status st = stub_->Generate(&ctx, Greedy(8), &resp);
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.error_message();
    EXPECT_EQ(resp.ids_size(), 8);
  }
  EXPECT_EQ(backend_->pool().restarts(), 5);
}

// ---------------------------------------------------------------------------
// Death mid-request.
// ---------------------------------------------------------------------------

// Killed from outside while blocked writing a row (a full logits row is 201 KB,
// more than the pipe holds): the call goes on with a fresh worker; each row
// reaches the caller once, in order, equal to an undisturbed run.
TEST_F(WorkerRetryTest, DeathMidEvalLogitsIsRetriedAndCounted) {
  StartServer(1);
  const std::vector<int> before = backend_->pool().Pids();
  ASSERT_EQ(before.size(), 1u);
  auto ids = backend_->Tokenize(kPrompt, true, false);
  ASSERT_TRUE(ids.ok());
  std::vector<int> rows(ids->size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int>(i);
  auto run = [&](bool kill_after_first, std::vector<int>* seen_rows, std::vector<std::string>* logits,
                 CallNotes* notes) {
    return backend_->EvalLogits(
        *ids, BackendEvalMode::kBatch, rows,
        [&](int row, absl::Span<const float> l) {
          seen_rows->push_back(row);
          logits->push_back(FloatsToBytes(l));
          if (kill_after_first && seen_rows->size() == 1) {
            // Let the worker block half-way through writing the next row, then kill it.
            std::this_thread::sleep_for(milliseconds(200));
            ::kill(before[0], SIGKILL);
          }
          return absl::OkStatus();
        },
        nullptr, notes);
  };
  std::vector<int> seen;
  std::vector<std::string> logits;
  CallNotes notes;
  absl::Status st = run(true, &seen, &logits, &notes);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(seen, rows);
  EXPECT_EQ(notes.worker_retries, 1);
  EXPECT_NE(notes.retry_reason.find("SIGKILL"), std::string::npos) << notes.retry_reason;
  EXPECT_EQ(backend_->PoolStats()->retried_calls, 1);

  std::vector<int> seen_again;
  std::vector<std::string> undisturbed;
  CallNotes none;
  ASSERT_TRUE(run(false, &seen_again, &undisturbed, &none).ok());
  EXPECT_EQ(none.worker_retries, 0);
  EXPECT_EQ(logits, undisturbed) << "the retried rows differ from an undisturbed run";
  ExpectReplacedOnce(before);
}

TEST_F(WorkerRetryTest, DeathMidEvalLogitsStreamIsRetriedWithATrailer) {
  StartCrashingServer(/*frames=*/2, /*once=*/true);
  auto ids = backend_->Tokenize(kPrompt, true, false);
  ASSERT_TRUE(ids.ok());
  auto stream = [&](std::vector<std::string>* rows) {
    grpc::ClientContext ctx;
    auto reader = stub_->EvalLogitsStream(&ctx, FullLogits(*ids, v1::EVAL_MODE_SEQUENTIAL));
    v1::EvalLogitsStreamResponse msg;
    while (reader->Read(&msg)) rows->push_back(msg.position().logits());
    grpc::Status st = reader->Finish();
    EXPECT_TRUE(st.ok()) << st.error_message();
    return RetryTrailer(ctx);
  };
  std::vector<std::string> first, second;
  EXPECT_EQ(stream(&first), "1");
  ASSERT_TRUE(Crashed()) << "the worker did not crash: the test tests nothing";
  EXPECT_EQ(stream(&second), "");
  ASSERT_EQ(first.size(), ids->size());
  EXPECT_EQ(first, second) << "the retried stream differs from an undisturbed one";

  const v1::WorkerPoolStatus pool = PoolStatus();
  EXPECT_EQ(pool.workers(), 1);
  EXPECT_EQ(pool.restarts(), 1);
  EXPECT_EQ(pool.retried_after_worker_crash(), 1);
  const std::vector<std::string> logged = RetriedLogLines();
  ASSERT_EQ(logged.size(), 1u) << absl::StrJoin(server_->LogLines(), "\n");
  EXPECT_NE(logged[0].find("\"rpc\":\"EvalLogitsStream\""), std::string::npos) << logged[0];
  EXPECT_NE(logged[0].find("\"code\":\"OK\""), std::string::npos) << logged[0];
  EXPECT_NE(logged[0].find("SIGKILL"), std::string::npos) << logged[0];
}

TEST_F(WorkerRetryTest, DeathMidUnaryGenerateIsRetried) {
  StartCrashingServer(/*frames=*/3, /*once=*/true);
  auto generate = [&](v1::GenerateResponse* resp) {
    grpc::ClientContext ctx;
    v1::GenerateRequest req = Greedy(16);
    req.set_logprobs(true);
    req.set_top_logprobs(3);
    grpc::Status st = stub_->Generate(&ctx, req, resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return RetryTrailer(ctx);
  };
  v1::GenerateResponse first, second;
  EXPECT_EQ(generate(&first), "1");
  ASSERT_TRUE(Crashed());
  EXPECT_EQ(generate(&second), "");
  EXPECT_EQ(first.ids_size(), 16);
  EXPECT_EQ(first.tokens_size(), 16) << "a replayed token was delivered twice, or lost";
  EXPECT_EQ(std::vector<int32_t>(first.ids().begin(), first.ids().end()),
            std::vector<int32_t>(second.ids().begin(), second.ids().end()));
  EXPECT_EQ(first.raw_text(), second.raw_text());
  for (int i = 0; i < first.tokens_size() && i < second.tokens_size(); ++i) {
    EXPECT_EQ(first.tokens(i).SerializeAsString(), second.tokens(i).SerializeAsString()) << i;
  }
  EXPECT_EQ(PoolStatus().retried_after_worker_crash(), 1);
}

// Tokens already streamed cannot be taken back: the stream ends UNAVAILABLE
// after exactly the tokens sent, and nothing is retried.
TEST_F(WorkerRetryTest, DeathMidGenerateStreamAnswersUnavailableWithTheTokensSent) {
  StartCrashingServer(/*frames=*/3, /*once=*/true);
  grpc::ClientContext ctx;
  auto reader = stub_->GenerateStream(&ctx, Greedy(16));
  v1::GenerateStreamResponse msg;
  std::vector<int32_t> streamed;
  while (reader->Read(&msg)) {
    ASSERT_TRUE(msg.has_token()) << "a summary after the worker died";
    streamed.push_back(msg.token().id());
  }
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("died during Generate"), std::string::npos) << st.error_message();
  EXPECT_EQ(RetryTrailer(ctx), "");
  ASSERT_EQ(streamed.size(), 3u);

  grpc::ClientContext again_ctx;
  v1::GenerateResponse again;
  ASSERT_TRUE(stub_->Generate(&again_ctx, Greedy(16), &again).ok());
  for (size_t i = 0; i < streamed.size(); ++i) EXPECT_EQ(streamed[i], again.ids(i)) << i;
  EXPECT_EQ(PoolStatus().retried_after_worker_crash(), 0);
}

// A request that kills every worker it meets costs 1 + max_worker_retries
// workers, then fails; the pool serves the next request.
TEST_F(WorkerRetryTest, RequestThatKillsEveryWorkerFailsAfterTheRetries) {
  StartCrashingServer(/*frames=*/1, /*once=*/false);
  v1::EvalLogitsResponse resp;
  grpc::Status st = EvalOnce(&resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("after 2 retries on a fresh worker"), std::string::npos)
      << st.error_message();
  EXPECT_EQ(PoolStatus().retried_after_worker_crash(), 2);
  WaitReady(1);
  EXPECT_EQ(backend_->pool().restarts(), 3);
  grpc::ClientContext ctx;
  v1::TokenizeRequest req;
  req.set_text(kPrompt);
  v1::TokenizeResponse tokens;
  EXPECT_TRUE(stub_->Tokenize(&ctx, req, &tokens).ok());  // no partial frames: no crash
}

TEST_F(WorkerRetryTest, RetriesCanBeTurnedOff) {
  marker_ = ::testing::TempDir() + "/crash_marker_off_" + std::to_string(::getpid());
  ::unlink(marker_.c_str());
  StartServer(1, [&](WorkerBackendOptions& o) {
    o.max_worker_retries = 0;
    o.pool.command.args.insert(o.pool.command.args.end(),
                               {"--test-crash-after-frames", "1", "--test-crash-once-marker", marker_});
  });
  v1::EvalLogitsResponse resp;
  grpc::Status st = EvalOnce(&resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_EQ(st.error_message().find("retr"), std::string::npos) << st.error_message();
  EXPECT_TRUE(EvalOnce(&resp).ok());
}

}  // namespace
}  // namespace bitparity::worker
