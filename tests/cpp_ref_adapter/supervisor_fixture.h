// File: tests/cpp_ref_adapter/supervisor_fixture.h
//
// The fixture of the supervisor tests: a WorkerBackend over
// bitparity-native-worker processes on the tiny-b158 fixture, behind a real
// loopback gRPC server (the shared EngineService), and a bitparity-worker-server
// child process; every test ends checking that no worker process leaked.
#pragma once

#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cpp_ref_adapter/worker_backend.h"
#include "cpp_ref_adapter/worker_codec.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/native/native_backend.h"
#include "tests/common/child_process.h"
#include "tests/services/test_server.h"

namespace bitparity::worker {
namespace testing_fixture {

namespace v1 = ::bitnet::v1;
using std::chrono::milliseconds;

const std::string kModel = std::string(BITPARITY_FIXTURES_DIR) + "/models/tiny-b158.gguf";
const std::string kWorker = std::string(BITPARITY_BIN_DIR) + "/bitparity-native-worker";
const std::string kServer = std::string(BITPARITY_BIN_DIR) + "/bitparity-worker-server";
constexpr char kPrompt[] = "The quick brown fox jumps over the lazy dog.";

using testing::Child;
using testing::Children;
using testing::Describe;

inline WorkerBackendOptions Options(const std::string& model, int workers) {
  WorkerBackendOptions o;
  o.pool.command.executable = kWorker;
  o.pool.command.args = {"--model", model, "--threads", "1", "--max-context", "512"};
  o.pool.workers = workers;
  o.pool.label = "bitparity worker";
  o.pool.backoff_initial = milliseconds(50);
  o.pool.backoff_max = milliseconds(400);
  o.pool.hello_timeout = std::chrono::seconds(60);
  o.model_path = model;
  o.start_timeout = std::chrono::seconds(60);
  return o;
}

using HealthStatus = grpc::health::v1::HealthCheckResponse;

// A bitparity-worker-server child process (tests/common/child_process.h) listening on
// a free loopback port that it writes to a file.
class ServerProcess {
 public:
  explicit ServerProcess(const std::vector<std::string>& extra_args)
      : port_file_(::testing::TempDir() + "/worker_server_port_" + std::to_string(getpid()) + "_" +
                   std::to_string(next_id_++)),
        child_(kServer, WithListen(extra_args, port_file_)) {}

  bool spawned() const { return child_.spawned(); }
  void Signal(int sig) { child_.Signal(sig); }
  // The bound port once the port file is there; 0 after 20 s or if the server ended.
  int WaitPort() { return child_.WaitPort(port_file_, std::chrono::seconds(20)); }
  std::optional<int> WaitExit(milliseconds timeout) { return child_.WaitExit(timeout); }
  std::string WaitLogLine(const std::string& needle) { return child_.WaitLogLine(needle); }
  std::string Log() const { return child_.Log(); }

 private:
  static std::vector<std::string> WithListen(std::vector<std::string> args, const std::string& port_file) {
    args.insert(args.begin(), {"--listen", "127.0.0.1:0", "--port-file", port_file});
    return args;
  }
  static inline int next_id_ = 0;
  std::string port_file_;
  testing::ChildProcess child_;
};

inline HealthStatus::ServingStatus CheckHealth(const std::shared_ptr<grpc::Channel>& channel) {
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("bitnet.v1.Engine");
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status st = health->Check(&ctx, req, &resp);
  return st.ok() ? resp.status() : HealthStatus::UNKNOWN;
}

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kModel.c_str(), R_OK) != 0) GTEST_SKIP() << "fixture missing: " << kModel;
    ASSERT_EQ(access(kWorker.c_str(), X_OK), 0) << kWorker << " is not built";
    ASSERT_TRUE(Children().empty()) << "children before the test: " << Describe(Children());
  }

  void StartServer(int workers, const std::function<void(WorkerBackendOptions&)>& tweak = nullptr) {
    WorkerBackendOptions o = Options(kModel, workers);
    if (tweak) tweak(o);
    auto b = WorkerBackend::Start(o);
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::shared_ptr<WorkerBackend>(std::move(*b));
    ServerOptions so;
    so.limits.max_concurrent = workers;
    server_ = testing::LoopbackServer::Start(so, backend_);
    ASSERT_NE(server_, nullptr);
    stub_ = server_->Stub();
  }

  void StopServer() {
    stub_.reset();
    server_.reset();
    backend_.reset();  // the pool closes the workers' stdin, kills leftovers, reaps
  }

  void TearDown() override {
    StopServer();
    EXPECT_TRUE(Children().empty()) << "leaked worker processes: " << Describe(Children());
  }

  // Waits until the pool has `n` ready workers.
  void WaitReady(int n) {
    for (int i = 0; i < 2000 && backend_->pool().ready() < n; ++i) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    ASSERT_EQ(backend_->pool().ready(), n);
  }

  // A 1-worker pool whose worker `before` was replaced, once: the new one is
  // our only child, alive, and the dead one was reaped.
  void ExpectReplacedOnce(const std::vector<int>& before) {
    const std::vector<int> after = backend_->pool().Pids();
    ASSERT_EQ(after.size(), 1u);
    EXPECT_NE(after[0], before[0]);
    EXPECT_EQ(backend_->pool().restarts(), 1);
    const std::vector<Child> children = Children();
    ASSERT_EQ(children.size(), 1u) << Describe(children);
    EXPECT_EQ(children[0].pid, after[0]);
    EXPECT_NE(children[0].state, 'Z');
  }

  // Polls the server's health until it is `want` (true) or `timeout` passed.
  bool WaitHealth(HealthStatus::ServingStatus want, milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (server_->Health("bitnet.v1.Engine") != want) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return true;
  }

  grpc::Status ModelInfo(v1::GetModelInfoResponse* info) {
    grpc::ClientContext ctx;
    return stub_->GetModelInfo(&ctx, v1::GetModelInfoRequest(), info);
  }

  static v1::EvalLogitsRequest FullLogits(const std::vector<int32_t>& ids, v1::EvalMode mode) {
    v1::EvalLogitsRequest req;
    req.mutable_input()->mutable_ids()->mutable_ids()->Add(ids.begin(), ids.end());
    req.set_mode(mode);
    req.mutable_positions()->set_kind(v1::Positions::ALL);
    req.mutable_output()->set_kind(v1::LogitsOutput::FULL);
    req.mutable_output()->set_format(v1::FLOAT_FORMAT_F32);
    return req;
  }

  static v1::GenerateRequest LongGeneration(int max_new_tokens) {
    v1::GenerateRequest req;
    req.mutable_input()->set_text("Once");
    req.set_max_new_tokens(max_new_tokens);
    req.set_ignore_eos(true);
    return req;
  }

  grpc::Status EvalOnce(v1::EvalLogitsResponse* resp) {
    grpc::ClientContext ctx;
    v1::EvalLogitsRequest req;
    req.mutable_input()->set_text(kPrompt);
    return stub_->EvalLogits(&ctx, req, resp);
  }

  std::shared_ptr<WorkerBackend> backend_;
  std::unique_ptr<testing::LoopbackServer> server_;
  std::unique_ptr<v1::Engine::Stub> stub_;
};

}  // namespace testing_fixture
}  // namespace bitparity::worker
