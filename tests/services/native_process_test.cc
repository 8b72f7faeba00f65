// bitnet-native-server as a real process: it serves health and reflection,
// drains on SIGTERM/SIGINT (a running generation ends with finish reason
// CANCELLED and keeps its tokens) and exits 0; a bad model or flag exits 1 with
// a JSON error line. This binary does not link the service library, so it can
// carry its own reflection client stubs (see proto/CMakeLists.txt).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bitnet/v1/engine.grpc.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"

extern char** environ;

namespace bitparity {
namespace {

namespace v1 = bitnet::v1;
namespace refl = grpc::reflection::v1alpha;
using ::testing::HasSubstr;
using ::testing::Contains;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One bitnet-native-server child process with its stderr in a file.
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> extra_args,
                         const std::string& listen = "127.0.0.1:0") {
    char tmpl[] = "/tmp/bitparity-proc-XXXXXX";
    dir_ = mkdtemp(tmpl);
    port_file_ = dir_ + "/port";
    stderr_file_ = dir_ + "/stderr";
    std::vector<std::string> args = {std::string(BITPARITY_BIN_DIR) + "/bitnet-native-server",
                                     "--listen", listen, "--port-file", port_file_};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, stderr_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    spawned_ = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) == 0;
    posix_spawn_file_actions_destroy(&actions);
  }

  ~ServerProcess() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty() && std::system(("rm -rf " + dir_).c_str()) != 0) {
      ADD_FAILURE() << "could not remove " << dir_;
    }
  }

  bool spawned() const { return spawned_; }

  // The port the server bound, once it wrote the port file (0 on timeout).
  int WaitPort(int timeout_ms = 20000) {
    for (int i = 0; i < timeout_ms / 10; ++i) {
      std::ifstream in(port_file_);
      int port = 0;
      if (in >> port && port > 0) return port;
      if (Exited()) return 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 0;
  }

  void Signal(int sig) { kill(pid_, sig); }

  bool Exited() {
    if (reaped_) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      status_ = status;
    }
    return reaped_;
  }

  // Exit code, or -1 if it did not exit within the time (or died by a signal).
  int WaitExit(int timeout_ms) {
    for (int i = 0; i < timeout_ms / 10 && !Exited(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!Exited()) return -1;
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
  }

  std::string Stderr() const { return ReadAll(stderr_file_); }

 private:
  std::string dir_, port_file_, stderr_file_;
  pid_t pid_ = -1;
  bool spawned_ = false;
  bool reaped_ = false;
  int status_ = 0;
};

std::shared_ptr<grpc::Channel> Channel(int port) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials(), args);
}

bool WaitServing(const std::shared_ptr<grpc::Channel>& channel, int timeout_ms = 20000) {
  auto health = grpc::health::v1::Health::NewStub(channel);
  for (int i = 0; i < timeout_ms / 20; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("bitnet.v1.Engine");
    grpc::health::v1::HealthCheckResponse resp;
    if (health->Check(&ctx, req, &resp).ok() &&
        resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// One request/response on the reflection stream.
refl::ServerReflectionResponse Reflect(refl::ServerReflection::Stub* stub,
                                       const refl::ServerReflectionRequest& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  auto stream = stub->ServerReflectionInfo(&ctx);
  refl::ServerReflectionResponse resp;
  EXPECT_TRUE(stream->Write(req));
  EXPECT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Read(&resp));
  refl::ServerReflectionResponse extra;
  while (stream->Read(&extra)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
  return resp;
}

class NativeProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_FIXTURES();
    struct stat st;
    binary_ = std::string(BITPARITY_BIN_DIR) + "/bitnet-native-server";
    ASSERT_EQ(::stat(binary_.c_str(), &st), 0) << binary_ << " is not built";
    model_ = ::bitparity::testing::FixturePath("models/tiny-b158.gguf");
  }
  std::string binary_, model_;
};

TEST_F(NativeProcessTest, ServesReflectionAndHealth) {
  ServerProcess server({"--model", model_, "--threads", "1"});
  ASSERT_TRUE(server.spawned());
  const int port = server.WaitPort();
  ASSERT_GT(port, 0) << server.Stderr();
  auto channel = Channel(port);
  ASSERT_TRUE(WaitServing(channel)) << server.Stderr();

  auto stub = refl::ServerReflection::NewStub(channel);
  refl::ServerReflectionRequest list;
  list.set_list_services("*");
  refl::ServerReflectionResponse services = Reflect(stub.get(), list);
  std::vector<std::string> names;
  for (const auto& s : services.list_services_response().service()) names.push_back(s.name());
  EXPECT_THAT(names, Contains("bitnet.v1.Engine"));
  EXPECT_THAT(names, Contains("grpc.health.v1.Health"));

  refl::ServerReflectionRequest file;
  file.set_file_containing_symbol("bitnet.v1.Engine");
  refl::ServerReflectionResponse files = Reflect(stub.get(), file);
  ASSERT_GE(files.file_descriptor_response().file_descriptor_proto_size(), 1);
  google::protobuf::FileDescriptorProto fd;
  ASSERT_TRUE(fd.ParseFromString(files.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(fd.name(), "bitnet/v1/engine.proto");
  EXPECT_EQ(fd.package(), "bitnet.v1");
  ASSERT_EQ(fd.service_size(), 1);
  std::vector<std::string> methods;
  for (const auto& m : fd.service(0).method()) methods.push_back(m.name());
  EXPECT_EQ(methods, (std::vector<std::string>{"GetModelInfo", "Tokenize", "Detokenize",
                                               "EvalLogits", "EvalLogitsStream", "EvalTrace",
                                               "Generate", "GenerateStream", "ApplyChatTemplate"}));

  server.Signal(SIGINT);
  EXPECT_EQ(server.WaitExit(10000), 0) << server.Stderr();
}

TEST_F(NativeProcessTest, SigtermDrainsCancelsLongGenerationAndExitsZero) {
  // A grace of 20 ms: 500 tokens take ~15x that even on the fastest head
  // (the screened head decodes tiny-b158 at ~1,600 tokens/s here).
  ServerProcess server({"--model", model_, "--threads", "1", "--drain-seconds", "0.02"});
  ASSERT_TRUE(server.spawned());
  const int port = server.WaitPort();
  ASSERT_GT(port, 0) << server.Stderr();
  auto channel = Channel(port);
  ASSERT_TRUE(WaitServing(channel)) << server.Stderr();

  auto stub = v1::Engine::NewStub(channel);
  v1::GenerateRequest req;
  req.mutable_input()->mutable_ids()->add_ids(50256);
  req.set_max_new_tokens(500);  // far longer than the drain grace
  req.set_ignore_eos(true);
  grpc::ClientContext ctx;
  auto reader = stub->GenerateStream(&ctx, req);
  v1::GenerateStreamResponse m;
  ASSERT_TRUE(reader->Read(&m));
  ASSERT_TRUE(m.has_token());

  const auto t0 = std::chrono::steady_clock::now();
  server.Signal(SIGTERM);
  int tokens = 1;
  v1::GenerateResponse summary;
  while (reader->Read(&m)) {
    if (m.has_token()) ++tokens;
    if (m.has_summary()) summary = m.summary();
  }
  const grpc::Status st = reader->Finish();
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(summary.finish_reason(), v1::FINISH_REASON_CANCELLED);
  EXPECT_EQ(summary.ids_size(), tokens);
  EXPECT_LT(tokens, 500);

  EXPECT_EQ(server.WaitExit(10000), 0) << server.Stderr();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  const std::string log = server.Stderr();
  EXPECT_THAT(log, HasSubstr("\"event\":\"draining\",\"signal\":\"SIGTERM\""));
  EXPECT_THAT(log, HasSubstr("\"event\":\"cancelling\""));
  EXPECT_THAT(log, HasSubstr("\"finish\":\"FINISH_REASON_CANCELLED\""));
  EXPECT_THAT(log, HasSubstr("\"event\":\"stopped\""));
}

TEST_F(NativeProcessTest, MissingModelExitsOneWithAJsonError) {
  ServerProcess server({"--model", "/nonexistent/model.gguf"});
  ASSERT_TRUE(server.spawned());
  EXPECT_EQ(server.WaitExit(10000), 1);
  EXPECT_THAT(server.Stderr(), HasSubstr("\"event\":\"error\",\"stage\":\"load\""));
  EXPECT_THAT(server.Stderr(), HasSubstr("/nonexistent/model.gguf"));
}

TEST_F(NativeProcessTest, BadFaultSpecExitsOne) {
  ServerProcess server({"--model", model_, "--inject-fault", "melt:3"});
  ASSERT_TRUE(server.spawned());
  EXPECT_EQ(server.WaitExit(10000), 1);
  EXPECT_THAT(server.Stderr(), HasSubstr("INVALID_ARGUMENT"));
}

TEST_F(NativeProcessTest, BusyPortExitsOne) {
  ServerProcess first({"--model", model_, "--threads", "1"});
  const int port = first.WaitPort();
  ASSERT_GT(port, 0);
  ServerProcess second({"--model", model_}, "127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(second.WaitExit(10000), 1);
  EXPECT_THAT(second.Stderr(), HasSubstr("cannot serve on"));
}

}  // namespace
}  // namespace bitparity
