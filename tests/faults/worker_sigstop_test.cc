// Fault: worker processes stopped with SIGSTOP (a stuck process, a debugger, a
// storm of stop/continue), behind a real loopback gRPC server. Every case runs over
// bitparity-native-worker (/native: every build) and over the real bitnet.cpp worker
// (/bitnet_cpp: bitnet-cpp-worker, skipped by name unless the build was configured
// with -DBITNET_CPP_DIR and BITNET_CPP_DIR is set, as ctest does then).
// A stopped worker answers nothing; the server must still end every request
// with a clear status (UNAVAILABLE naming the stopped worker after
// --worker-stopped-timeout, or DEADLINE_EXCEEDED at the client's deadline),
// replace the worker, and serve the next requests. Before this suite, a request
// without a deadline on a stopped worker waited forever.
#include <signal.h>

#include <atomic>
#include <map>
#include <random>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/faults/fault_util.h"
#include "tests/services/test_server.h"

namespace bitparity::faults {
namespace {

namespace v1 = ::bitnet::v1;
using worker::WorkerBackend;
using worker::WorkerBackendOptions;

// A bound so that a regression fails instead of hanging; never reached when it works.
constexpr auto kSafetyDeadline = std::chrono::seconds(120);

class WorkerSigstopTest : public ::testing::TestWithParam<WorkerKind> {
 protected:
  void SetUp() override {
    if (access(kModel.c_str(), R_OK) != 0) GTEST_SKIP() << "fixture missing: " << kModel;
    if (GetParam().name == kNativeWorkerKind.name) {
      ASSERT_EQ(access(kNativeWorker.c_str(), X_OK), 0) << kNativeWorker << " is not built";
    } else if (const std::string why = WorkerKindUnavailable(GetParam()); !why.empty()) {
      GTEST_SKIP() << why;
    }
    ASSERT_TRUE(Children().empty()) << "children before the test: " << Describe(Children());
  }

  void Start(int workers, milliseconds stopped_timeout) {
    WorkerBackendOptions o = WorkerOptions(GetParam(), kModel, workers);
    o.pool.stopped_timeout = stopped_timeout;
    auto b = WorkerBackend::Start(o);
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::shared_ptr<WorkerBackend>(std::move(*b));
    ServerOptions so;
    so.limits.max_concurrent = workers;
    so.limits.max_queue = 16;
    server_ = testing::LoopbackServer::Start(so, backend_);
    ASSERT_NE(server_, nullptr);
    stub_ = server_->Stub();
    WaitReady(workers);
  }

  void TearDown() override {
    // Resume anything still stopped, so that shutdown is a normal one.
    for (const Child& c : Children()) ::kill(c.pid, SIGCONT);
    stub_.reset();
    server_.reset();
    backend_.reset();
    EXPECT_TRUE(Children().empty()) << "leaked worker processes: " << Describe(Children());
  }

  void WaitReady(int n) {
    for (int i = 0; i < 6000 && backend_->pool().ready() < n; ++i) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    ASSERT_EQ(backend_->pool().ready(), n);
  }

  static void Bound(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + kSafetyDeadline);
  }

  grpc::Status EvalOnce() {
    grpc::ClientContext ctx;
    Bound(ctx);
    v1::EvalLogitsRequest req;
    req.mutable_input()->set_text("The quick brown fox");
    v1::EvalLogitsResponse resp;
    return stub_->EvalLogits(&ctx, req, &resp);
  }

  static v1::GenerateRequest Generation(int n) {
    v1::GenerateRequest req;
    req.mutable_input()->set_text("Once");
    req.set_max_new_tokens(n);
    req.set_ignore_eos(true);
    return req;
  }

  std::shared_ptr<WorkerBackend> backend_;
  std::unique_ptr<testing::LoopbackServer> server_;
  std::unique_ptr<v1::Engine::Stub> stub_;
};

// No client deadline: the stop is found by the supervisor, not by a clock the
// client set. The request ends UNAVAILABLE, naming the stopped worker.
TEST_P(WorkerSigstopTest, StoppedMidRequestWithoutDeadlineEndsUnavailableAndIsReplaced) {
  Start(1, milliseconds(300));
  const std::vector<int> before = backend_->pool().Pids();
  ASSERT_EQ(before.size(), 1u);

  grpc::ClientContext ctx;
  Bound(ctx);
  auto reader = stub_->GenerateStream(&ctx, Generation(480));
  v1::GenerateStreamResponse msg;
  ASSERT_TRUE(reader->Read(&msg)) << "no first token";  // mid-request now
  ASSERT_EQ(::kill(before[0], SIGSTOP), 0);
  while (reader->Read(&msg)) {
  }
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find(absl::StrCat("(pid ", before[0], ") was stopped (SIGSTOP")),
            std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("killed and is restarting"), std::string::npos)
      << st.error_message();

  for (int i = 0; i < 3; ++i) {
    grpc::Status ok = EvalOnce();
    EXPECT_TRUE(ok.ok()) << "request " << i << " after the stop: " << ok.error_message();
  }
  const std::vector<int> after = backend_->pool().Pids();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0], before[0]);
  const std::vector<Child> children = Children();
  ASSERT_EQ(children.size(), 1u) << Describe(children);  // the stopped one was reaped
  EXPECT_EQ(children[0].pid, after[0]);
}

// With a client deadline shorter than the stopped-timeout, the deadline ends it.
TEST_P(WorkerSigstopTest, StoppedMidRequestEndsAtTheClientsDeadline) {
  Start(1, std::chrono::seconds(600));
  const std::vector<int> before = backend_->pool().Pids();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  auto reader = stub_->GenerateStream(&ctx, Generation(480));
  v1::GenerateStreamResponse msg;
  ASSERT_TRUE(reader->Read(&msg)) << "no first token";
  ASSERT_EQ(::kill(before[0], SIGSTOP), 0);
  while (reader->Read(&msg)) {
  }
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  // The server kills the stopped worker (SIGKILL needs no SIGCONT) and replaces it.
  std::vector<int> after = backend_->pool().Pids();
  for (int i = 0; i < 6000 && (after.empty() || after[0] == before[0] || backend_->pool().ready() < 1); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
    after = backend_->pool().Pids();
  }
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after[0], before[0]);
  grpc::Status ok = EvalOnce();
  EXPECT_TRUE(ok.ok()) << ok.error_message();
}

// An idle worker stopped: requests go to the other worker at once, and the
// stopped one is replaced after the stopped-timeout.
TEST_P(WorkerSigstopTest, StoppedIdleWorkerIsPassedOverAndReplaced) {
  Start(2, milliseconds(500));
  const std::vector<int> before = backend_->pool().Pids();
  ASSERT_EQ(before.size(), 2u);
  ASSERT_EQ(::kill(before[0], SIGSTOP), 0);
  // kill() returns before the worker has actually stopped (on a busy machine it may
  // run a while longer); the scenario is an idle worker that IS stopped, so wait
  // (bounded) until /proc says so.
  auto stopped = [&] {
    for (const Child& c : Children()) {
      if (c.pid == before[0]) return c.state == 'T' || c.state == 't';
    }
    return false;
  };
  for (int i = 0; i < 2000 && !stopped(); ++i) std::this_thread::sleep_for(milliseconds(5));
  ASSERT_TRUE(stopped()) << "worker " << before[0] << " did not stop: " << Describe(Children());
  for (int i = 0; i < 4; ++i) {
    grpc::Status ok = EvalOnce();
    EXPECT_TRUE(ok.ok()) << "request " << i << ": " << ok.error_message();
  }
  std::vector<int> after = backend_->pool().Pids();
  for (int i = 0; i < 6000 && (after.size() != 2 || after[0] == before[0] || backend_->pool().ready() < 2); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
    after = backend_->pool().Pids();
  }
  ASSERT_EQ(after.size(), 2u);
  EXPECT_NE(after[0], before[0]) << "the stopped idle worker was not replaced";
  EXPECT_EQ(after[1], before[1]);
  for (const Child& c : Children()) EXPECT_NE(c.state, 'Z') << Describe(Children());
}

// A storm: workers stopped and continued at random (some stops outlast the
// stopped-timeout, most do not) while 3 clients send requests. Every request
// ends OK or UNAVAILABLE naming a stopped worker; afterwards every request
// succeeds and exactly 2 live workers remain.
TEST_P(WorkerSigstopTest, StopContinueStormLosesNoRequest) {
  Start(2, milliseconds(400));
  std::atomic<bool> storming{true};
  std::atomic<int> stops{0}, long_stops{0};
  std::thread storm([&] {
    std::mt19937 rng(9);
    for (int round = 0; round < 40; ++round) {
      const std::vector<int> pids = backend_->pool().Pids();
      if (pids.empty()) continue;
      const int pid = pids[rng() % pids.size()];
      // Only our own children: a replaced worker's pid is never signalled.
      bool ours = false;
      for (const Child& c : Children()) ours |= c.pid == pid;
      if (!ours || ::kill(pid, SIGSTOP) != 0) continue;
      ++stops;
      const int hold_ms = (round % 5 == 4) ? 700 : static_cast<int>(20 + rng() % 200);
      if (hold_ms > 400) ++long_stops;
      std::this_thread::sleep_for(milliseconds(hold_ms));
      ::kill(pid, SIGCONT);  // ESRCH/a zombie if it was replaced meanwhile: harmless
      std::this_thread::sleep_for(milliseconds(rng() % 100));
    }
    storming = false;
  });

  std::mutex mu;
  std::map<std::string, int> by_code;
  std::vector<std::string> unexpected;
  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back([&, c] {
      for (int n = 0; storming.load(); ++n) {
        grpc::ClientContext ctx;
        Bound(ctx);
        grpc::Status st;
        if ((n + c) % 2 == 0) {
          v1::GenerateResponse resp;
          st = stub_->Generate(&ctx, Generation(16), &resp);
          if (st.ok() && resp.ids_size() != 16) st = grpc::Status(grpc::StatusCode::DATA_LOSS, "short");
        } else {
          v1::EvalLogitsRequest req;
          req.mutable_input()->set_text("The quick brown fox");
          v1::EvalLogitsResponse resp;
          st = stub_->EvalLogits(&ctx, req, &resp);
        }
        std::lock_guard<std::mutex> lock(mu);
        ++by_code[st.ok() ? "OK" : std::to_string(st.error_code())];
        const bool clear = st.ok() || (st.error_code() == grpc::StatusCode::UNAVAILABLE &&
                                       st.error_message().find("was stopped (SIGSTOP") != std::string::npos);
        if (!clear) unexpected.push_back(absl::StrCat(st.error_code(), ": ", st.error_message()));
      }
    });
  }
  storm.join();
  for (auto& t : clients) t.join();
  for (const Child& c : Children()) ::kill(c.pid, SIGCONT);

  int total = 0;
  for (const auto& [code, n] : by_code) total += n;
  std::string summary;
  for (const auto& [code, n] : by_code) absl::StrAppend(&summary, code == "OK" ? "OK" : "code " + code, " ", n, "; ");
  std::printf("sigstop storm: %d stops (%d longer than the stopped-timeout), %d requests: %s"
              "restarts %d\n", stops.load(), long_stops.load(), total, summary.c_str(),
              backend_->pool().restarts());
  EXPECT_TRUE(unexpected.empty()) << absl::StrJoin(unexpected, "\n");
  EXPECT_GT(by_code["OK"], 0);
  EXPECT_GT(stops.load(), 0);

  WaitReady(2);
  for (int i = 0; i < 4; ++i) {
    grpc::Status ok = EvalOnce();
    EXPECT_TRUE(ok.ok()) << "after the storm, request " << i << ": " << ok.error_message();
  }
  const std::vector<Child> children = Children();
  EXPECT_EQ(children.size(), 2u) << Describe(children);
  for (const Child& c : children) EXPECT_TRUE(c.state != 'Z' && c.state != 'T') << Describe(children);
}

INSTANTIATE_TEST_SUITE_P(Workers, WorkerSigstopTest,
                         ::testing::Values(kNativeWorkerKind, kBitnetCppWorkerKind),
                         [](const ::testing::TestParamInfo<WorkerKind>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace bitparity::faults
