// Fault: a client that disappears mid-stream (its process killed: the kernel
// closes the TCP connection, no gRPC cancel is sent). The client is this test
// binary run again as a child process (with BP_DISCONNECT_TARGET set it is the
// client, before main): it opens a stream, reads one message,
// says so in a file and waits to be SIGKILLed. The server must end the request
// (request log: CANCELLED), free its admission slot, and serve the next request;
// a worker server must also kill and replace the worker that was streaming.
// EvalLogitsStream (full rows of 50,257 floats: the stream cannot finish while
// the client does not read, whatever the machine's speed) runs on the native
// engine and on bitparity-native-worker; GenerateStream (small messages) on the
// test FakeBackend, held after its first token so that it cannot finish first.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/native/native_backend.h"
#include "tests/faults/fault_util.h"
#include "tests/services/test_server.h"
#include "tests/services/fake_backend.h"

namespace bitparity::faults {
namespace {

namespace v1 = ::bitnet::v1;

// --- the client, in the child process ------------------------------------------

// Runs before main when BP_DISCONNECT_TARGET is set (this binary started again
// as the client): opens the stream, reads one message, writes the mark file and
// waits to be killed. Never returns then.
bool RunDisconnectingClientIfAsked() {
  const char* target = std::getenv("BP_DISCONNECT_TARGET");
  if (target == nullptr) return false;
  const std::string rpc = std::getenv("BP_DISCONNECT_RPC");
  const std::string mark = std::getenv("BP_DISCONNECT_MARK");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto stub = v1::Engine::NewStub(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-request-id", "disconnecting-client");
  bool got = false;
  std::unique_ptr<grpc::ClientReaderInterface<v1::GenerateStreamResponse>> gen;
  std::unique_ptr<grpc::ClientReaderInterface<v1::EvalLogitsStreamResponse>> eval;
  if (rpc == "GenerateStream") {
    v1::GenerateRequest req;
    req.mutable_input()->set_text("Once");
    req.set_max_new_tokens(40);
    req.set_ignore_eos(true);
    gen = stub->GenerateStream(&ctx, req);
    v1::GenerateStreamResponse m;
    got = gen->Read(&m);
  } else {
    v1::EvalLogitsRequest req;
    std::string text;
    for (int i = 0; i < 30; ++i) text += "The quick brown fox jumps over the lazy dog. ";
    req.mutable_input()->set_text(text);
    req.mutable_positions()->set_kind(v1::Positions::ALL);
    eval = stub->EvalLogitsStream(&ctx, req);
    v1::EvalLogitsStreamResponse m;
    got = eval->Read(&m);
  }
  if (!got) _exit(3);
  std::ofstream(mark) << "reading\n";
  // Wait to be killed, without reading: the server keeps writing into a
  // connection whose other end will vanish.
  for (;;) pause();
}
const bool kIsDisconnectingClient = RunDisconnectingClientIfAsked();

// --- the server side ------------------------------------------------------------

class ClientDisconnectTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const std::string kind = GetParam();
    if (kind != "fake" && access(kModel.c_str(), R_OK) != 0) GTEST_SKIP() << "fixture missing: " << kModel;
    ServerOptions so;
    so.limits.max_concurrent = 1;  // a leaked slot would block every later request
    so.limits.max_queue = 0;
    if (kind == "worker") {
      ASSERT_EQ(access(kNativeWorker.c_str(), X_OK), 0) << kNativeWorker << " is not built";
      auto b = worker::WorkerBackend::Start(NativeWorkerOptions(kModel, 1));
      ASSERT_TRUE(b.ok()) << b.status();
      worker_ = std::shared_ptr<worker::WorkerBackend>(std::move(*b));
      backend_ = worker_;
    } else if (kind == "native") {
      NativeBackendOptions no;
      no.model_path = kModel;
      no.threads = 1;
      no.max_context = 512;
      auto b = NativeBackend::Load(no);
      ASSERT_TRUE(b.ok()) << b.status();
      backend_ = std::shared_ptr<EngineBackend>(std::move(*b));
    } else {
      fake_ = std::make_shared<testing::FakeBackend>();
      fake_->HoldAfterSteps(1);
      backend_ = fake_;
    }
    server_ = testing::LoopbackServer::Start(so, backend_);
    ASSERT_NE(server_, nullptr);
  }

  void TearDown() override {
    if (fake_) fake_->Release();
    server_.reset();
    worker_.reset();
    fake_.reset();
    backend_.reset();
    EXPECT_TRUE(Children().empty()) << "leaked processes: " << Describe(Children());
  }

  // Runs the child client on `rpc`, kills it once it has read a message, and
  // returns the request's line from the server's log ("" if none came).
  std::string DisconnectMidStream(const std::string& rpc) {
    char tmpl[] = "/tmp/bp-disconnect-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return "";
    const std::string mark = std::string(tmpl) + "/mark";
    std::vector<std::string> env_strings = {
        "BP_DISCONNECT_TARGET=" + server_->address(), "BP_DISCONNECT_RPC=" + rpc,
        "BP_DISCONNECT_MARK=" + mark};
    std::vector<char*> env;
    for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
    for (std::string& s : env_strings) env.push_back(s.data());
    env.push_back(nullptr);
    std::string exe = "/proc/self/exe";
    char* argv[] = {exe.data(), nullptr};
    pid_t pid = -1;
    if (posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv, env.data()) != 0) return "";
    bool reading = false;
    for (int i = 0; i < 6000 && !reading; ++i) {
      reading = access(mark.c_str(), F_OK) == 0;
      if (!reading) std::this_thread::sleep_for(milliseconds(10));
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    std::system(absl::StrCat("rm -rf ", tmpl).c_str());
    EXPECT_TRUE(reading) << "the child client never read a first message";
    // The server notices the closed connection at its next write or poll.
    for (int i = 0; i < 3000; ++i) {
      for (const std::string& line : server_->LogLines()) {
        if (line.find("\"id\":\"disconnecting-client\"") != std::string::npos) return line;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    return "";
  }

  void ExpectSlotFreedAndNextRequestServed() {
    AdmissionGate& gate = server_->server().service().gate();
    for (int i = 0; i < 3000 && gate.running() > 0; ++i) std::this_thread::sleep_for(milliseconds(10));
    EXPECT_EQ(gate.running(), 0) << "the admission slot of the vanished client was not freed";
    EXPECT_EQ(gate.waiting(), 0);
    auto stub = server_->Stub();
    for (int i = 0; i < 2; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
      v1::GenerateRequest req;
      req.mutable_input()->set_text("Once");
      req.set_max_new_tokens(8);
      v1::GenerateResponse resp;
      grpc::Status st = stub->Generate(&ctx, req, &resp);
      EXPECT_TRUE(st.ok()) << "request " << i << " after the disconnect: " << st.error_message();
    }
  }

  std::shared_ptr<EngineBackend> backend_;
  std::shared_ptr<worker::WorkerBackend> worker_;
  std::shared_ptr<testing::FakeBackend> fake_;
  std::unique_ptr<testing::LoopbackServer> server_;
};

class GenerateStreamDisconnectTest : public ClientDisconnectTest {};
class EvalStreamDisconnectTest : public ClientDisconnectTest {};

TEST_P(GenerateStreamDisconnectTest, ClientKilledMidStream) {
  const std::string line = DisconnectMidStream("GenerateStream");
  ASSERT_FALSE(line.empty()) << "the server never logged the request:\n"
                             << absl::StrJoin(server_->LogLines(), "\n");
  EXPECT_EQ(nlohmann::json::parse(line).value("code", ""), "CANCELLED") << line;
  fake_->Release();
  fake_->HoldAfterSteps(INT_MAX);
  ExpectSlotFreedAndNextRequestServed();
}

TEST_P(EvalStreamDisconnectTest, ClientKilledMidStream) {
  const std::vector<int> workers_before = worker_ ? worker_->pool().Pids() : std::vector<int>{};
  const std::string line = DisconnectMidStream("EvalLogitsStream");
  ASSERT_FALSE(line.empty()) << "the server never logged the request:\n"
                             << absl::StrJoin(server_->LogLines(), "\n");
  EXPECT_EQ(nlohmann::json::parse(line).value("code", ""), "CANCELLED") << line;
  ExpectSlotFreedAndNextRequestServed();
  if (worker_) {
    const std::vector<int> after = worker_->pool().Pids();
    ASSERT_EQ(after.size(), 1u);
    EXPECT_NE(after[0], workers_before[0]) << "the streaming worker was not replaced";
    EXPECT_EQ(Children().size(), 1u) << Describe(Children());
  }
}

auto Name = [](const auto& info) { return std::string(info.param); };
INSTANTIATE_TEST_SUITE_P(Fake, GenerateStreamDisconnectTest, ::testing::Values("fake"), Name);
INSTANTIATE_TEST_SUITE_P(Servers, EvalStreamDisconnectTest, ::testing::Values("native", "worker"),
                         Name);

}  // namespace
}  // namespace bitparity::faults
