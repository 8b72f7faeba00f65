// Security: no request can make a server open a file. Both server binaries run
// as child processes (bitparity-worker-server with its worker processes too);
// every RPC is sent with every string a client controls (text, stop sequences,
// the x-request-id metadata) set to paths of a canary file and folder, in
// several spellings. An inotify watch on the canary folder sees any open by any
// process; there must be none. The watch itself is checked at the end: opening
// the canary from the test must be seen, so the test can fail.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "gtest/gtest.h"
#include "tests/faults/fault_util.h"
#include "tests/services/test_server.h"

namespace bitparity::faults {
namespace {

namespace v1 = ::bitnet::v1;

class NoFileOpenTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (access(kModel.c_str(), R_OK) != 0) GTEST_SKIP() << "fixture missing: " << kModel;
    char tmpl[] = "/tmp/bp-canary-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    canary_ = dir_ + "/secret.gguf";
    // A copy of the real model: a server tricked into loading it would succeed.
    std::ofstream(canary_, std::ios::binary) << ReadFile(kModel);
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    ASSERT_GE(fd_, 0);
    ASSERT_GE(inotify_add_watch(fd_, dir_.c_str(), IN_OPEN | IN_ACCESS | IN_CREATE | IN_MODIFY), 0);
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
    if (!dir_.empty()) std::system(("rm -rf " + dir_).c_str());
  }

  // Events seen on the canary folder since the last call.
  int DrainEvents() {
    int n = 0;
    alignas(inotify_event) char buf[4096];
    for (;;) {
      const ssize_t got = read(fd_, buf, sizeof(buf));
      if (got <= 0) return n;
      for (char* p = buf; p < buf + got;) {
        auto* e = reinterpret_cast<inotify_event*>(p);
        ++n;
        p += sizeof(inotify_event) + e->len;
      }
    }
  }

  std::string dir_, canary_;
  int fd_ = -1;
};

TEST_P(NoFileOpenTest, NoRequestFieldOpensAFile) {
  const std::string kind = GetParam();
  const std::string exe = kBinDir + (kind == "native" ? "/bitnet-native-server" : "/bitparity-worker-server");
  ASSERT_EQ(access(exe.c_str(), X_OK), 0) << exe << " is not built";
  char tmpl[] = "/tmp/bp-nofile-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string port_file = std::string(tmpl) + "/port";
  std::vector<std::string> args = {"--model", kModel, "--listen", "127.0.0.1:0", "--port-file",
                                   port_file, "--threads", "1"};
  if (kind == "worker") args.insert(args.end(), {"--workers", "2"});
  ChildProcess server(exe, args);
  ASSERT_TRUE(server.spawned());
  const int port = server.WaitPort(port_file);
  ASSERT_GT(port, 0) << server.Log();
  auto stub = v1::Engine::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  // Wait until it serves (the model loads).
  for (int i = 0; i < 600; ++i) {
    grpc::ClientContext ctx;
    v1::GetModelInfoResponse info;
    if (stub->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok()) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_EQ(DrainEvents(), 0) << "something touched the canary before any request";

  const std::vector<std::string> paths = {
      canary_, "file://" + canary_, dir_, dir_ + "/", "../../../../.." + canary_,
      "@" + canary_, canary_ + "\n", "--model=" + canary_, "/proc/self/environ", "/etc/passwd"};
  int requests = 0, ok = 0;
  auto count = [&](const grpc::Status& st) {
    ++requests;
    ok += st.ok();
    EXPECT_NE(st.error_code(), grpc::StatusCode::UNKNOWN) << st.error_message();
  };
  auto context = [](grpc::ClientContext& ctx, const std::string& p) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    // Metadata values must be printable ASCII without newlines.
    std::string id = p;
    for (char& c : id) if (c < 0x20 || c > 0x7e) c = '_';
    ctx.AddMetadata("x-request-id", id);
  };
  for (const std::string& p : paths) {
    {
      grpc::ClientContext ctx;
      context(ctx, p);
      v1::TokenizeRequest req;
      req.set_text(p);
      req.set_return_pieces(true);
      req.set_parse_special(true);
      v1::TokenizeResponse resp;
      count(stub->Tokenize(&ctx, req, &resp));
    }
    {
      grpc::ClientContext ctx;
      context(ctx, p);
      v1::EvalLogitsRequest req;
      req.mutable_input()->set_text(p);
      req.mutable_output()->set_kind(v1::LogitsOutput::TOP_K);
      req.mutable_output()->set_top_k(3);
      v1::EvalLogitsResponse resp;
      count(stub->EvalLogits(&ctx, req, &resp));
    }
    {
      grpc::ClientContext ctx;
      context(ctx, p);
      v1::EvalTraceRequest req;
      req.mutable_input()->set_text(p);
      v1::EvalTraceResponse resp;
      count(stub->EvalTrace(&ctx, req, &resp));
    }
    {
      grpc::ClientContext ctx;
      context(ctx, p);
      v1::GenerateRequest req;
      req.mutable_input()->set_text(p);
      req.set_max_new_tokens(4);
      req.add_stop_sequences(p.substr(0, 200));
      v1::GenerateResponse resp;
      count(stub->Generate(&ctx, req, &resp));
    }
    {
      grpc::ClientContext ctx;
      context(ctx, p);
      v1::GenerateRequest req;
      req.mutable_input()->set_text(p);
      req.set_max_new_tokens(4);
      auto reader = stub->GenerateStream(&ctx, req);
      v1::GenerateStreamResponse m;
      while (reader->Read(&m)) {
      }
      count(reader->Finish());
    }
    {
      grpc::ClientContext ctx;
      context(ctx, p);
      v1::GetModelInfoResponse resp;
      count(stub->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &resp));
    }
  }
  EXPECT_GT(ok, 0);
  // Give any stray open a moment to show (inotify is asynchronous but prompt).
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(DrainEvents(), 0) << "a request made the " << kind << " server touch " << dir_;
  std::printf("%s server: %d requests (%d OK) with path-like fields, 0 opens of the canary\n",
              kind.c_str(), requests, ok);

  // The detector works: our own open is seen.
  { std::ifstream touch(canary_); }
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_GT(DrainEvents(), 0) << "the inotify watch saw nothing: the test is blind";
  server.Signal(SIGTERM);
  auto status = server.WaitExit(std::chrono::seconds(60));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << server.Log();
  std::system(absl::StrCat("rm -rf ", tmpl).c_str());
}

INSTANTIATE_TEST_SUITE_P(Servers, NoFileOpenTest, ::testing::Values("native", "worker"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace bitparity::faults
