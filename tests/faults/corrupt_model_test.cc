// Fault: a corrupted model file at start. Each server binary is started on
// damaged copies of the tiny-b158 fixture (empty, not GGUF, bad magic, cut in
// the metadata, cut in the tensor data, a folder, bytes flipped in the header
// and metadata). It must never crash (die by a signal): either it exits 1 with
// a one-line JSON error naming the file, or, when the damage leaves a loadable
// model, it serves (health SERVING, a request answered) and stops cleanly on
// SIGTERM. Servers: bitnet-native-server, bitparity-worker-server (our engine in
// workers) and bitnet-cpp-server (bitnet.cpp's loader, which aborts on some
// damage: its worker dies, the server must not; skipped by name unless
// BITNET_CPP_DIR is set and the server was built).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include "gtest/gtest.h"
#include "tests/faults/fault_util.h"
#include "tests/services/test_server.h"

namespace bitparity::faults {
namespace {

namespace v1 = ::bitnet::v1;
using HealthStatus = grpc::health::v1::HealthCheckResponse;

struct Damage {
  const char* name;
  // Writes the damaged copy of `good` to `path`.
  void (*make)(const std::string& good, const std::string& path);
};

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

const Damage kDamages[] = {
    {"empty", [](const std::string&, const std::string& p) { Write(p, ""); }},
    {"not_gguf", [](const std::string&, const std::string& p) { Write(p, "this is not a model\n"); }},
    {"bad_magic",
     [](const std::string& g, const std::string& p) {
       std::string b = g;
       b[0] = 'X';
       Write(p, b);
     }},
    {"cut_in_metadata",
     [](const std::string& g, const std::string& p) { Write(p, g.substr(0, 200)); }},
    {"cut_in_tensor_data",
     [](const std::string& g, const std::string& p) { Write(p, g.substr(0, g.size() * 2 / 3)); }},
    {"folder", [](const std::string&, const std::string& p) { mkdir(p.c_str(), 0755); }},
    {"flipped_header_bytes",
     [](const std::string& g, const std::string& p) {
       // Counts and lengths live in the first bytes: version, tensor count,
       // metadata count, the first keys' lengths.
       std::string b = g;
       for (size_t i = 4; i < 40; i += 3) b[i] = static_cast<char>(b[i] ^ 0x5A);
       Write(p, b);
     }},
    {"random_metadata_bytes",
     [](const std::string& g, const std::string& p) {
       std::string b = g;
       std::mt19937 rng(20240);
       for (int i = 0; i < 64; ++i) b[8 + rng() % 4000] = static_cast<char>(rng());
       Write(p, b);
     }},
};

struct ServerKind {
  std::string name;
  std::string exe;
  std::vector<std::string> args;  // besides --model, --listen, --port-file
};

class CorruptModelTest : public ::testing::TestWithParam<std::tuple<std::string, int>> {
 protected:
  void SetUp() override {
    if (access(kModel.c_str(), R_OK) != 0) GTEST_SKIP() << "fixture missing: " << kModel;
    const std::string server = std::get<0>(GetParam());
    if (server == "native") {
      kind_ = {"native", kBinDir + "/bitnet-native-server", {"--threads", "1"}};
    } else if (server == "worker") {
      kind_ = {"worker", kBinDir + "/bitparity-worker-server",
               {"--threads", "1", "--worker-start-timeout", "5", "--worker-backoff-max", "0.5"}};
    } else {
      if (std::getenv("BITNET_CPP_DIR") == nullptr) {
        GTEST_SKIP() << "bitnet-cpp-server: BITNET_CPP_DIR is not set";
      }
      kind_ = {"cpp", kBinDir + "/bitnet-cpp-server",
               {"--threads", "1", "--worker-start-timeout", "10", "--worker-backoff-max", "0.5"}};
    }
    if (access(kind_.exe.c_str(), X_OK) != 0) {
      if (kind_.name == "cpp") GTEST_SKIP() << kind_.exe << " is not built (configure with -DBITNET_CPP_DIR)";
      FAIL() << kind_.exe << " is not built";
    }
    good_ = ReadFile(kModel);
    ASSERT_GT(good_.size(), 4096u);
  }

  ServerKind kind_;
  std::string good_;
};

TEST_P(CorruptModelTest, ExitsOneWithAMessageOrServesNeverCrashes) {
  const Damage& damage = kDamages[std::get<1>(GetParam())];
  char tmpl[] = "/tmp/bp-corrupt-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string model = dir + "/" + damage.name + ".gguf";
  const std::string port_file = dir + "/port";
  damage.make(good_, model);

  std::vector<std::string> args = {"--model", model, "--listen", "127.0.0.1:0", "--port-file", port_file};
  args.insert(args.end(), kind_.args.begin(), kind_.args.end());
  {
    ChildProcess server(kind_.exe, args);
    ASSERT_TRUE(server.spawned());
    // Either it exits (load failed) or it becomes SERVING (the damage was harmless).
    bool serving = false;
    std::optional<int> status;
    const int port = server.WaitPort(port_file);
    std::shared_ptr<grpc::Channel> channel;
    if (port > 0) {
      channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    }
    for (int i = 0; i < 6000 && !status && !serving; ++i) {
      if (server.Exited()) {
        status = server.WaitExit(milliseconds(0));
        break;
      }
      if (channel) {
        auto health = grpc::health::v1::Health::NewStub(channel);
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
        grpc::health::v1::HealthCheckRequest req;
        grpc::health::v1::HealthCheckResponse resp;
        serving = health->Check(&ctx, req, &resp).ok() && resp.status() == HealthStatus::SERVING;
      }
      if (!serving) std::this_thread::sleep_for(milliseconds(20));
    }
    const std::string log = server.Log();
    ASSERT_TRUE(status || serving) << "neither exited nor serving after 2 minutes; log:\n" << log;
    if (status) {
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1)
          << kind_.name << " on " << damage.name << ": " << DescribeWait(*status) << "\n" << log;
      EXPECT_NE(log.find("\"event\":\"error\""), std::string::npos) << log;
      EXPECT_NE(log.find(model), std::string::npos) << "the message does not name the file:\n" << log;
      std::printf("%s / %s: exit 1: %s\n", kind_.name.c_str(), damage.name,
                  log.substr(log.find("\"event\":\"error\""), 240).c_str());
    } else {
      // Loadable despite the damage: it must answer and stop cleanly.
      auto stub = v1::Engine::NewStub(channel);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      v1::GenerateRequest req;
      req.mutable_input()->mutable_ids()->add_ids(1);
      req.set_max_new_tokens(4);
      v1::GenerateResponse resp;
      grpc::Status st = stub->Generate(&ctx, req, &resp);
      EXPECT_NE(st.error_code(), grpc::StatusCode::UNKNOWN) << st.error_message();
      server.Signal(SIGTERM);
      status = server.WaitExit(std::chrono::seconds(60));
      ASSERT_TRUE(status.has_value()) << server.Log();
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << DescribeWait(*status) << "\n"
                                                                  << server.Log();
      std::printf("%s / %s: loaded and served (Generate: %s)\n", kind_.name.c_str(), damage.name,
                  st.ok() ? "OK" : st.error_message().c_str());
    }
  }
  std::system(absl::StrCat("rm -rf ", dir).c_str());
}

INSTANTIATE_TEST_SUITE_P(
    Damages, CorruptModelTest,
    ::testing::Combine(::testing::Values("native", "worker", "cpp"),
                       ::testing::Range(0, static_cast<int>(std::size(kDamages)))),
    [](const auto& info) {
      return std::get<0>(info.param) + "_" + kDamages[std::get<1>(info.param)].name;
    });

}  // namespace
}  // namespace bitparity::faults
