// End to end: real bitnet-native-server processes on loopback, the real bitparity
// binary. A synth model (bitnet-synth, 4 layers, 4096-token vocabulary) keeps it
// quick. What must hold:
//   - identical engines agree (exit 0); the JSON validates against the schema; the
//     JUnit file parses as JUnit; the HTML renders in headless Chromium without
//     console errors (a screenshot is saved under build/test-artifacts/orchestrator);
//   - each injected fault fails the comparison (exit 1) and the right layer is named;
//   - a server that is not there is exit 2; `demo` starts and stops its servers,
//     also on Ctrl-C.
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <boost/process.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/server_process.h"
#include "tests/orchestrator/json_schema_validator.h"
#include "tests/orchestrator/junit_lite.h"

namespace bitparity {
namespace {

namespace bp = boost::process;
using ::testing::HasSubstr;
using nlohmann::json;

const std::string kBin = BITPARITY_BIN_DIR;
const std::string kArtifacts = BITPARITY_TEST_ARTIFACTS;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ProcResult {
  int code = -1;
  std::string out, err;
};

// Runs a program with a time limit; stdout and stderr to files, read back.
ProcResult Exec(const std::string& exe, const std::vector<std::string>& args, const std::string& dir, double limit_s = 300) {
  static int n = 0;
  const std::string o = dir + "/out" + std::to_string(++n) + ".txt", e = dir + "/err" + std::to_string(n) + ".txt";
  ProcResult r;
  bp::child c(bp::exe = exe, bp::args = args, bp::std_in < bp::null, bp::std_out > o, bp::std_err > e);
  if (!c.wait_for(std::chrono::milliseconds(static_cast<int64_t>(limit_s * 1000)))) {
    c.terminate();
    c.wait();
    r.code = -9;
  } else {
    r.code = c.exit_code();
  }
  r.out = ReadAll(o);
  r.err = ReadAll(e);
  return r;
}

json Schema() { return json::parse(ReadAll(BITPARITY_SCHEMA_PATH)); }

bool Alive(int pid) { return pid > 0 && kill(pid, 0) == 0; }

class EndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/bitparity-e2e-XXXXXX";
    dir_ = mkdtemp(tmpl);
    model_ = dir_ + "/synth.gguf";
    ProcResult s = Exec(kBin + "/bitnet-synth", {"--shape", "tiny", "--seed", "3", "--out", model_}, dir_);
    ASSERT_EQ(s.code, 0) << s.err;
    prompts_ = dir_ + "/prompts.jsonl";
    std::ofstream(prompts_)
        << "{\"id\": \"prose\", \"text\": \"The quick brown fox jumps over the lazy dog, and then it runs into "
           "the forest to find its friends.\"}\n"
        << "{\"id\": \"code\", \"text\": \"def fibonacci(n):\\n    if n < 2:\\n        return n\\n    return\"}\n"
        << "{\"id\": \"unicode\", \"text\": \"Größenwahn und Fußgängerübergänge: Äpfel 🍕 今天天气很好\"}\n"
        << "{\"id\": \"ids\", \"ids\": [5, 17, 300, 42, 1000, 7, 7, 99, 2048, 11, 12, 13, 400, 401, 402, 3]}\n";
    b_ = StartServer("B", {});
    ASSERT_NE(b_, nullptr);
    std::unique_ptr<ServerProcess> a(StartServer("A", {}));  // only for the run below
    ASSERT_NE(a, nullptr);
    // The run most tests look at: two identical engines, every output, a small speed run.
    // Without the conformance checks: they have their own tests (conformance_test.cc, and
    // compare's refusal there), and every test process repeats this run.
    base_ = dir_ + "/same";
    same_ = Exec(kBin + "/bitparity",
                 {"compare", "--no-conformance", "--a", a->address(), "--b", b_->address(), "--prompts", prompts_, "-n", "8",
                  "--speed-runs", "2", "--speed-warmup", "1", "--speed-tokens", "8", "--concurrency", "1,2",
                  "--requests", "4", "--json", base_ + ".json", "--junit", base_ + ".junit.xml", "--html",
                  base_ + ".html", "--markdown", base_ + ".md"},
                 dir_);
  }
  static void TearDownTestSuite() {
    if (b_) b_->Stop();
    delete b_;
    b_ = nullptr;
  }

  static ServerProcess* StartServer(const std::string& label, const std::vector<std::string>& extra) {
    ServerSpec spec;
    spec.binary = kBin + "/bitnet-native-server";
    spec.args = {"--model", model_, "--threads", "1"};
    spec.args.insert(spec.args.end(), extra.begin(), extra.end());
    spec.label = label;
    spec.log_path = dir_ + "/server-" + label + ".log";
    auto s = ServerProcess::Start(spec, 60);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->release() : nullptr;
  }

  static std::string dir_, model_, prompts_, base_;
  static ServerProcess* b_;
  static ProcResult same_;
};
std::string EndToEnd::dir_, EndToEnd::model_, EndToEnd::prompts_, EndToEnd::base_;
ServerProcess* EndToEnd::b_ = nullptr;
ProcResult EndToEnd::same_;

TEST_F(EndToEnd, IdenticalEnginesAgreeAndTheJsonValidates) {
  ASSERT_EQ(same_.code, 0) << same_.out << same_.err;
  EXPECT_THAT(same_.out, HasSubstr("VERDICT: PASS agree (exit 0)"));
  const json r = json::parse(ReadAll(base_ + ".json"));
  const auto errors = testing::ValidateJson(r, Schema());
  EXPECT_TRUE(errors.empty()) << errors.size() << " violations, first: " << errors.front();
  EXPECT_EQ(r["overall"]["drift"]["max_abs"]["max"], 0.0);
  EXPECT_EQ(r["overall"]["generation"]["exact"], 4);
  EXPECT_GT(r["overall"]["noise"]["max_abs"]["max"].get<double>(), 0.0) << "batch vs sequential noise floor";
  ASSERT_TRUE(r["speed"].is_object());
  EXPECT_GT(r["speed"]["a"]["decode_tokens_per_s"]["median"].get<double>(), 0.0);
  EXPECT_EQ(r["speed"]["a"]["load"].size(), 2u);
  EXPECT_EQ(r["prompts"][3]["kind"], "ids");
  std::ofstream(kArtifacts + "/identical.json") << r.dump(1);
}

TEST_F(EndToEnd, JUnitParsesAsJUnit) {
  testing::JUnitSummary s;
  std::string error;
  ASSERT_TRUE(testing::CheckJUnit(ReadAll(base_ + ".junit.xml"), &s, &error)) << error;
  EXPECT_EQ(s.suites, 4);
  EXPECT_EQ(s.failures, 0);
  EXPECT_GE(s.cases, 4 * 3);
}

TEST_F(EndToEnd, ReportReRendersTheSameRun) {
  ProcResult r = Exec(kBin + "/bitparity", {"report", base_ + ".json", "--html", dir_ + "/again.html", "--markdown",
                                     dir_ + "/again.md"}, dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ReadAll(dir_ + "/again.html"), ReadAll(base_ + ".html"));
  EXPECT_EQ(ReadAll(dir_ + "/again.md"), ReadAll(base_ + ".md"));
  ProcResult bad = Exec(kBin + "/bitparity", {"report", prompts_, "--html", dir_ + "/x.html"}, dir_);
  EXPECT_EQ(bad.code, 2);
}

TEST_F(EndToEnd, HtmlRendersInHeadlessChromiumWithoutConsoleErrors) {
  const char* candidates[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"};
  std::string chromium;
  for (const char* c : candidates) {
    if (access(c, X_OK) == 0) chromium = c;
  }
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (Debian: apt-get install -y chromium); skipping";
  char profile[] = "/tmp/bitparity-chromium-XXXXXX";
  ASSERT_NE(mkdtemp(profile), nullptr);
  const std::string shot = kArtifacts + "/report.png";
  std::remove(shot.c_str());
  ProcResult r = Exec(chromium,
               {"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                std::string("--user-data-dir=") + profile, "--enable-logging=stderr", "--v=0",
                "--screenshot=" + shot, "--window-size=1280,2000", "file://" + base_ + ".html"},
               dir_, 120);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("Uncaught"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(":CONSOLE("), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("net::ERR_"), std::string::npos) << r.err;
  std::ifstream png(shot, std::ios::binary | std::ios::ate);
  ASSERT_TRUE(png.good()) << "no screenshot at " << shot << "\n" << r.err;
  EXPECT_GT(static_cast<int64_t>(png.tellg()), 10000);
  std::printf("[e2e] screenshot: %s\n", shot.c_str());
}

struct FaultCase {
  std::string spec;
  int layer;
};
void PrintTo(const FaultCase& c, std::ostream* os) { *os << c.spec << " (layer " << c.layer << ")"; }

class FaultTest : public EndToEnd, public ::testing::WithParamInterface<FaultCase> {};

TEST_P(FaultTest, FailsAndNamesTheLayer) {
  std::unique_ptr<ServerProcess> a(StartServer("fault", {"--inject-fault", GetParam().spec}));
  ASSERT_NE(a, nullptr);
  const std::string out = dir_ + "/fault.json";
  ProcResult r = Exec(kBin + "/bitparity", {"compare", "--no-conformance", "--a", a->address(), "--b", b_->address(),
                                     "--prompts", prompts_, "-n", "8", "--no-speed", "--json", out, "--baseline",
                                     base_ + ".json"},
               dir_);
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  const json j = json::parse(ReadAll(out));
  EXPECT_TRUE(testing::ValidateJson(j, Schema()).empty());
  const std::string layer = "layer " + std::to_string(GetParam().layer);
  EXPECT_EQ(j["overall"]["localization"]["first_diverging_layer"], GetParam().layer) << j["overall"]["localization"];
  EXPECT_THAT(r.out, HasSubstr("divergence starts at " + layer));
  EXPECT_THAT(r.out, HasSubstr("--inject-fault " + GetParam().spec));
  EXPECT_THAT(j["verdict"]["failed_checks"].dump(), HasSubstr("drift"));
  EXPECT_THAT(j["verdict"]["failed_checks"].dump(), HasSubstr("baseline"));
  std::ofstream(kArtifacts + "/fault-" + std::regex_replace(GetParam().spec, std::regex(":"), "_") + ".json")
      << j.dump(1);
  a->Stop();
}

INSTANTIATE_TEST_SUITE_P(Faults, FaultTest,
                         ::testing::Values(FaultCase{"flip-row:1:attn_q:3", 1}, FaultCase{"skip-sub-norm:2", 2},
                                           FaultCase{"rope-offset:3", 3}, FaultCase{"scale-error:2:ffn_down", 2}),
                         [](const ::testing::TestParamInfo<FaultCase>& i) {
                           return std::regex_replace(i.param.spec, std::regex("[^A-Za-z0-9]"), "_");
                         });

TEST_F(EndToEnd, ServerThatIsNotThereIsExitTwo) {
  // A port that was free a moment ago.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  close(fd);
  ProcResult r = Exec(kBin + "/bitparity", {"compare", "--a", "127.0.0.1:" + std::to_string(port), "--b", b_->address(),
                                     "--connect-timeout", "2", "--prompts", prompts_},
               dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("side A (127.0.0.1:" + std::to_string(port)));
}

TEST_F(EndToEnd, UsageErrorsAreExitTwo) {
  EXPECT_EQ(Exec(kBin + "/bitparity", {"compare", "--a", b_->address()}, dir_).code, 2);
  ProcResult r = Exec(kBin + "/bitparity", {"compare", "--a", b_->address(), "--b", b_->address(), "--set", "nope=1"}, dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown threshold"));
}

TEST_F(EndToEnd, TlsOnOneSide) {
  if (access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "openssl is not installed; skipping";
  const std::string key = dir_ + "/tls.key", cert = dir_ + "/tls.crt";
  ProcResult g = Exec("/usr/bin/openssl", {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                                    "-subj", "/CN=localhost", "-days", "1", "-addext", "subjectAltName=DNS:localhost"},
               dir_);
  ASSERT_EQ(g.code, 0) << g.err;
  std::unique_ptr<ServerProcess> a(StartServer("tls", {"--tls-cert", cert, "--tls-key", key}));
  ASSERT_NE(a, nullptr);
  ProcResult r = Exec(kBin + "/bitparity", {"compare", "--a", a->address(), "--a-ca", cert, "--a-server-name", "localhost",
                                     "--b", b_->address(), "--prompts", prompts_, "--limit", "1", "-n", "4",
                                     "--no-speed", "--json", dir_ + "/tls.json"},
               dir_);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(json::parse(ReadAll(dir_ + "/tls.json"))["sides"]["a"]["tls"].get<bool>());
  // Without the CA the handshake fails: a connection error.
  ProcResult bad = Exec(kBin + "/bitparity", {"compare", "--a", a->address(), "--a-tls", "--b", b_->address(),
                                       "--connect-timeout", "2", "--prompts", prompts_},
                 dir_);
  EXPECT_EQ(bad.code, 2);
}

std::vector<int> ServerPids(const std::string& err) {
  std::vector<int> pids;
  std::regex re("side [AB] 127\\.0\\.0\\.1:[0-9]+ \\(pid ([0-9]+)");
  for (std::sregex_iterator it(err.begin(), err.end(), re), end; it != end; ++it) pids.push_back(std::stoi((*it)[1]));
  return pids;
}

TEST_F(EndToEnd, DemoStartsComparesAndStopsItsServers) {
  ProcResult r = Exec(kBin + "/bitparity", {"demo", "--cache-dir", dir_ + "/cache", "--out-dir", dir_ + "/demo", "--limit",
                                     "3", "-n", "4", "--no-speed", "--server-threads", "1"},
               dir_);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("writing the demo model with bitnet-synth"));
  // Side B is bitnet.cpp when the build has it (configured with BITNET_CPP_DIR).
  if (access((kBin + "/bitnet-cpp-server").c_str(), X_OK) == 0) {
    EXPECT_THAT(r.err, HasSubstr("side B (the reference) is bitnet.cpp"));
  } else {
    EXPECT_THAT(r.err, HasSubstr("--kernels scalar"));
    EXPECT_THAT(r.err, HasSubstr("-DBITNET_CPP_DIR="));
  }
  EXPECT_THAT(r.out, HasSubstr("HTML report: " + dir_ + "/demo/report.html"));
  EXPECT_TRUE(testing::ValidateJson(json::parse(ReadAll(dir_ + "/demo/report.json")), Schema()).empty());
  const std::vector<int> pids = ServerPids(r.err);
  ASSERT_EQ(pids.size(), 2u) << r.err;
  for (int pid : pids) EXPECT_FALSE(Alive(pid)) << "server " << pid << " outlived the demo";
}

TEST_F(EndToEnd, DemoStopsItsServersOnCtrlC) {
  const std::string err = dir_ + "/demo-int.err";
  bp::child c(bp::exe = kBin + "/bitparity",
              bp::args = {"demo", "--cache-dir", dir_ + "/cache", "--out-dir", dir_ + "/demo-int", "--server-threads",
                          "1"},
              bp::std_in < bp::null, bp::std_out > bp::null, bp::std_err > err);
  std::vector<int> pids;
  for (int i = 0; i < 600 && pids.size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    pids = ServerPids(ReadAll(err));
  }
  ASSERT_EQ(pids.size(), 2u) << ReadAll(err);
  for (int pid : pids) EXPECT_TRUE(Alive(pid));
  // The demo prints a server's pid after registering it with its signal thread:
  // from here on, Ctrl-C must stop both, whatever the demo is doing.
  kill(c.id(), SIGINT);
  ASSERT_TRUE(c.wait_for(std::chrono::seconds(30)));
  EXPECT_EQ(c.exit_code(), 128 + SIGINT);
  EXPECT_THAT(ReadAll(err), HasSubstr("interrupted, stopping the servers"));
  for (int pid : pids) EXPECT_FALSE(Alive(pid)) << "server " << pid << " outlived Ctrl-C";
}

}  // namespace
}  // namespace bitparity
