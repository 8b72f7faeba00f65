// The supervisor (WorkerBackend, WorkerPool, WorkerProcess) with real worker
// processes: bitparity-native-worker on the tiny-b158 fixture, behind a real
// loopback gRPC server (the shared EngineService). Checks that the process
// boundary changes nothing (logits bit for bit equal to the in-process engine)
// and that failures are contained: a worker SIGKILLed mid-stream or while
// idle (health NOT_SERVING until it is back), a deadline overrun (the status
// keeps the worker's words), a model that cannot load, a stop signal during a
// slow start-up; that GetModelInfo reports the workers' memory; and that no
// worker process is leaked. Retries after a worker death: worker_retry_test.cc.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/cpp_ref_adapter/supervisor_fixture.h"

namespace bitparity::worker {
namespace {

using namespace testing_fixture;  // NOLINT: the fixture and its helpers

TEST_F(SupervisorTest, EvalLogitsEqualsInProcessEngineBitForBit) {
  StartServer(1);
  NativeBackendOptions no;
  no.model_path = kModel;
  no.threads = 1;
  no.max_context = 512;
  auto native = NativeBackend::Load(no);
  ASSERT_TRUE(native.ok()) << native.status();
  auto ids = (*native)->Tokenize(kPrompt, true, false);
  ASSERT_TRUE(ids.ok());
  std::vector<int> rows(ids->size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int>(i);

  for (auto [mode, backend_mode] :
       {std::pair{v1::EVAL_MODE_BATCH, BackendEvalMode::kBatch},
        std::pair{v1::EVAL_MODE_SEQUENTIAL, BackendEvalMode::kSequential}}) {
    std::vector<std::string> expected;
    ASSERT_TRUE((*native)
                    ->EvalLogits(*ids, backend_mode, rows,
                                 [&](int, absl::Span<const float> l) {
                                   expected.push_back(FloatsToBytes(l));
                                   return absl::OkStatus();
                                 },
                                 [] { return false; }, nullptr)
                    .ok());
    grpc::ClientContext ctx;
    v1::EvalLogitsResponse resp;
    grpc::Status st = stub_->EvalLogits(&ctx, FullLogits(*ids, mode), &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(resp.positions_size(), static_cast<int>(ids->size()));
    for (int i = 0; i < resp.positions_size(); ++i) {
      EXPECT_EQ(resp.positions(i).logits(), expected[i])
          << "mode " << v1::EvalMode_Name(mode) << " position " << i << " differs";
    }
  }
}

TEST_F(SupervisorTest, GenerateEqualsInProcessEngine) {
  StartServer(1);
  NativeBackendOptions no;
  no.model_path = kModel;
  no.threads = 1;
  no.max_context = 512;
  auto native = NativeBackend::Load(no);
  ASSERT_TRUE(native.ok()) << native.status();
  auto ids = (*native)->Tokenize(kPrompt, true, false);
  ASSERT_TRUE(ids.ok());
  GenerationSpec spec;
  spec.max_new_tokens = 24;
  spec.ignore_eos = true;
  auto expected = (*native)->Generate(*ids, spec, nullptr, [] { return false; }, nullptr);
  ASSERT_TRUE(expected.ok()) << expected.status();

  grpc::ClientContext ctx;
  v1::GenerateRequest req;
  req.mutable_input()->set_text(kPrompt);
  req.set_max_new_tokens(24);
  req.set_ignore_eos(true);
  v1::GenerateResponse resp;
  grpc::Status st = stub_->Generate(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(std::vector<int32_t>(resp.ids().begin(), resp.ids().end()), expected->ids);
  EXPECT_EQ(resp.raw_text(), expected->text);
}

TEST_F(SupervisorTest, WorkerErrorKeepsTheWorker) {
  StartServer(1);
  const std::vector<int> before = backend_->pool().Pids();
  // Past the service's validation, straight to the worker: its engine says no.
  absl::Status st = backend_->EvalLogits(
      std::vector<int32_t>{1, 99999999}, BackendEvalMode::kBatch, {0},
      [](int, absl::Span<const float>) { return absl::OkStatus(); }, nullptr, nullptr);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_EQ(backend_->pool().Pids(), before);
  EXPECT_EQ(backend_->pool().restarts(), 0);
}

TEST_F(SupervisorTest, WorkerKilledMidRequestAnswersUnavailableAndNextRequestsSucceed) {
  StartServer(1);
  const std::vector<int> before = backend_->pool().Pids();
  ASSERT_EQ(before.size(), 1u);

  grpc::ClientContext ctx;
  auto reader = stub_->GenerateStream(&ctx, LongGeneration(480));
  v1::GenerateStreamResponse msg;
  ASSERT_TRUE(reader->Read(&msg)) << "no first token";  // the worker is mid-request now
  ASSERT_EQ(::kill(before[0], SIGKILL), 0);
  while (reader->Read(&msg)) {
  }
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("died during Generate"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("SIGKILL"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("last stderr lines"), std::string::npos) << st.error_message();

  for (int i = 0; i < 3; ++i) {
    v1::EvalLogitsResponse resp;
    grpc::Status ok = EvalOnce(&resp);
    EXPECT_TRUE(ok.ok()) << "request " << i << " after the kill: " << ok.error_message();
  }
  ExpectReplacedOnce(before);
}

TEST_F(SupervisorTest, DeadlineOverrunAnswersDeadlineExceededAndReplacesTheWorker) {
  StartServer(1);
  // The whole generation first, unbounded: the deadline is then a quarter of it,
  // so that it surely passes while the worker is busy, on any machine.
  double full_ms = 0;
  {
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(stub_->Generate(&ctx, LongGeneration(480), &resp).ok());
    full_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_EQ(resp.ids_size(), 480);
  }
  const std::vector<int> before = backend_->pool().Pids();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::microseconds(static_cast<int64_t>(full_ms * 250)));
  v1::GenerateResponse resp;
  const auto t0 = std::chrono::steady_clock::now();
  grpc::Status st = stub_->Generate(&ctx, LongGeneration(480), &resp);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  EXPECT_LT(ms, full_ms / 4 + 1000) << "the overrun was not stopped promptly (full run: " << full_ms << " ms)";

  // The client sees its deadline pass a moment before the server does.
  std::vector<int> after = backend_->pool().Pids();
  for (int i = 0; i < 1000 && (after.empty() || after == before || backend_->pool().ready() < 1); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
    after = backend_->pool().Pids();
  }
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0], before[0]) << "the overrunning worker was not replaced; full run " << full_ms
                                 << " ms; server log:\n" << absl::StrJoin(server_->LogLines(), "\n");
  EXPECT_EQ(backend_->pool().restarts(), 1);
  v1::EvalLogitsResponse ok_resp;
  grpc::Status ok = EvalOnce(&ok_resp);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(Children().size(), 1u) << Describe(Children());

  // The client's own clock ends its call with gRPC's bare "Deadline Exceeded";
  // the server's status, in its log, says why and keeps the worker's words.
  std::string logged;
  for (int i = 0; i < 500 && logged.empty(); ++i) {
    for (const std::string& line : server_->LogLines()) {
      if (line.find("\"code\":\"DEADLINE_EXCEEDED\"") != std::string::npos) logged = line;
    }
    if (logged.empty()) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_FALSE(logged.empty()) << absl::StrJoin(server_->LogLines(), "\n");
  const std::string message = nlohmann::json::parse(logged).value("message", "");
  EXPECT_NE(message.find("deadline exceeded after"), std::string::npos) << message;
  EXPECT_NE(message.find(absl::StrCat("(pid ", before[0], ") was killed and is restarting")),
            std::string::npos) << message;
  EXPECT_NE(message.find("last stderr lines"), std::string::npos) << message;
}

// Health follows the pool after start-up: a 1-worker pool whose worker dies
// while idle (nobody asks it anything) of a signal that counts as a crash
// reports NOT_SERVING for the backoff, then SERVING once the restarted worker
// has loaded. SIGTERM stands in for SIGSEGV / SIGABRT (no core file); a SIGKILL
// from outside restarts it at once (worker_retry_test.cc).
TEST_F(SupervisorTest, HealthIsNotServingWhileNoWorkerIsReady) {
  StartServer(1, [](WorkerBackendOptions& o) {
    // A backoff far longer than a health poll, so that NOT_SERVING is seen.
    o.pool.backoff_initial = std::chrono::seconds(3);
    o.pool.backoff_max = std::chrono::seconds(3);
  });
  ASSERT_TRUE(WaitHealth(HealthStatus::SERVING, std::chrono::seconds(20)));
  const std::vector<int> before = backend_->pool().Pids();
  ASSERT_EQ(before.size(), 1u);

  ASSERT_EQ(::kill(before[0], SIGTERM), 0);
  EXPECT_TRUE(WaitHealth(HealthStatus::NOT_SERVING, std::chrono::seconds(20)))
      << "health did not go NOT_SERVING after the only worker died";
  EXPECT_TRUE(WaitHealth(HealthStatus::SERVING, std::chrono::seconds(60)))
      << "health did not come back after the restart";

  ExpectReplacedOnce(before);
  v1::EvalLogitsResponse resp;
  grpc::Status ok = EvalOnce(&resp);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  // Down and up again, each logged once.
  int down = 0, up = 0;
  for (const std::string& line : server_->LogLines()) {
    if (line.find("\"event\":\"health\",\"status\":\"NOT_SERVING\"") != std::string::npos) ++down;
    if (line.find("\"event\":\"health\",\"status\":\"SERVING\"") != std::string::npos) ++up;
  }
  EXPECT_EQ(down, 1);
  EXPECT_EQ(up, 2);  // installed, restarted
}

// GetModelInfo: the server's own memory, plus each live worker's, read from
// /proc/<pid>/status; a restarted worker shows up under its new pid.
TEST_F(SupervisorTest, ModelInfoReportsTheWorkersMemory) {
  StartServer(2);
  WaitReady(2);
  std::vector<int> pids = backend_->pool().Pids();
  ASSERT_EQ(pids.size(), 2u);
  auto check = [&](const v1::GetModelInfoResponse& info, const std::vector<int>& expected) {
    const v1::MemoryUsage& m = info.memory();
    EXPECT_GT(m.resident_bytes(), 0);
    ASSERT_EQ(m.workers_size(), static_cast<int>(expected.size()));
    int64_t rss = 0, peak = 0;
    for (int i = 0; i < m.workers_size(); ++i) {
      EXPECT_EQ(m.workers(i).pid(), expected[i]);
      EXPECT_GT(m.workers(i).resident_bytes(), 0);
      EXPECT_GE(m.workers(i).peak_resident_bytes(), m.workers(i).resident_bytes());
      rss += m.workers(i).resident_bytes();
      peak += m.workers(i).peak_resident_bytes();
    }
    EXPECT_EQ(m.worker_resident_bytes(), rss);
    EXPECT_EQ(m.worker_peak_resident_bytes(), peak);
  };
  v1::GetModelInfoResponse info;
  ASSERT_TRUE(ModelInfo(&info).ok());
  check(info, pids);

  ASSERT_EQ(::kill(pids[0], SIGKILL), 0);
  std::vector<int> after = backend_->pool().Pids();
  for (int i = 0; i < 2000 && (after.size() != 2 || after[0] == pids[0] ||
                               backend_->pool().ready() < 2);
       ++i) {
    std::this_thread::sleep_for(milliseconds(5));
    after = backend_->pool().Pids();
  }
  ASSERT_EQ(after.size(), 2u);
  ASSERT_NE(after[0], pids[0]) << "the killed worker was not replaced";
  EXPECT_EQ(after[1], pids[1]);
  v1::GetModelInfoResponse again;
  ASSERT_TRUE(ModelInfo(&again).ok());
  check(again, after);
}

// A stop signal while the workers are still loading ends the server at once
// (exit 0), instead of after the load; the loading worker is killed and reaped.
TEST_F(SupervisorTest, SigtermDuringSlowWorkerStartExitsPromptly) {
  ASSERT_EQ(access(kServer.c_str(), X_OK), 0) << kServer << " is not built";
  ServerProcess server({"--model", kModel, "--threads", "1", "--worker-start-timeout", "900",
                        // Hello would come after 10 minutes: only the signal can end this.
                        "--worker-arg=--startup-delay-ms=600000"});
  ASSERT_TRUE(server.spawned());
  const int port = server.WaitPort();
  ASSERT_GT(port, 0) << server.Log();
  const std::string started = server.WaitLogLine("\"event\":\"worker_started\"");
  ASSERT_FALSE(started.empty()) << server.Log();
  const int worker_pid = nlohmann::json::parse(started.substr(started.find('{'))).value("pid", -1);
  ASSERT_GT(worker_pid, 0) << started;
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  EXPECT_EQ(CheckHealth(channel), HealthStatus::NOT_SERVING);

  server.Signal(SIGTERM);
  const std::optional<int> status = server.WaitExit(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "the server still waits for its workers; log:\n" << server.Log();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "status " << *status;
  const std::string log = server.Log();
  EXPECT_NE(log.find("\"event\":\"interrupted\",\"stage\":\"load\",\"signal\":\"SIGTERM\""),
            std::string::npos) << log;
  EXPECT_NE(log.find("\"load\":\"interrupted\""), std::string::npos) << log;
  EXPECT_NE(log.find(absl::StrCat("\"event\":\"worker_stopped\",\"worker\":\"bitparity worker\","
                                  "\"slot\":0,\"pid\":", worker_pid)),
            std::string::npos) << log;
  // The server reaped it before it exited: the pid is gone, not an orphan.
  EXPECT_EQ(::kill(worker_pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST_F(SupervisorTest, TwoWorkersServeTwoRequestsAtOnce) {
  StartServer(2);
  WaitReady(2);
  std::vector<std::thread> threads;
  std::vector<grpc::Status> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      v1::EvalLogitsResponse resp;
      results[i] = EvalOnce(&resp);
    });
  }
  for (auto& t : threads) t.join();
  for (const grpc::Status& st : results) EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(Children().size(), 2u) << Describe(Children());
}

TEST_F(SupervisorTest, BadModelPathFailsStartWithTheWorkersWords) {
  WorkerBackendOptions o = Options("/nonexistent/model.gguf", 2);
  o.start_timeout = milliseconds(1500);
  auto b = WorkerBackend::Start(o);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnavailable) << b.status();
  EXPECT_NE(b.status().message().find("/nonexistent/model.gguf"), std::string::npos) << b.status();
  EXPECT_NE(b.status().message().find("exit code 1"), std::string::npos) << b.status();
}

// The server binary itself: health NOT_SERVING while no worker can start, every
// RPC UNAVAILABLE, then exit 1 with the reason when the start timeout passes.
TEST_F(SupervisorTest, ServerHealthIsNotServingWhileWorkersCannotStart) {
  ASSERT_EQ(access(kServer.c_str(), X_OK), 0) << kServer << " is not built";
  ServerProcess server({"--model", "/nonexistent/model.gguf", "--worker-start-timeout", "4",
                        "--threads", "1"});
  ASSERT_TRUE(server.spawned());
  const int port = server.WaitPort();
  ASSERT_GT(port, 0) << "no port file; log:\n" << server.Log();
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  EXPECT_EQ(CheckHealth(channel), HealthStatus::NOT_SERVING);
  {
    auto stub = v1::Engine::NewStub(channel);
    grpc::ClientContext ctx;
    v1::GetModelInfoResponse resp;
    EXPECT_EQ(stub->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &resp).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }
  const std::optional<int> status = server.WaitExit(std::chrono::seconds(15));
  ASSERT_TRUE(status.has_value()) << "the server did not give up after --worker-start-timeout";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << "status " << *status;
  const std::string log = server.Log();
  EXPECT_NE(log.find("no bitparity worker became ready"), std::string::npos) << log;
  EXPECT_NE(log.find("/nonexistent/model.gguf"), std::string::npos) << log;
}

}  // namespace
}  // namespace bitparity::worker
