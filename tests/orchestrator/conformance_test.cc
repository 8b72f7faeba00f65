// bitparity conformance against live servers on 127.0.0.1: the real servers
// (the native engine in process; bitparity-worker-server and, with
// BITNET_CPP_DIR, bitnet-cpp-server as processes) pass every check, and each
// planted fake (tests/orchestrator/fake_engine.h) fails exactly the checks meant
// to catch it, by name. Also the CLI: `bitparity conformance` writes its reports
// and `bitparity compare` refuses a side that fails, naming the check.
// No timing assertions: speed.wall_clock's factors are generous by design.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "orchestrator/conformance.h"
#include "orchestrator/conformance_report.h"
#include "orchestrator/server_process.h"
#include "services/native/native_backend.h"
#include "tests/common/fixtures.h"
#include "tests/orchestrator/fake_engine.h"
#include "tests/orchestrator/native_loopback.h"
#include "tests/services/test_server.h"

namespace bitparity {
namespace {

using ::bitparity::testing::Defect;
using ::bitparity::testing::FakeEngineServer;
using ::bitparity::testing::FixturePath;
using ::bitparity::testing::LoopbackServer;
using ::bitparity::testing::ReadWholeFile;
using ::testing::HasSubstr;

constexpr char kModel[] = "models/tiny-b158.gguf";
const std::string kBin = BITPARITY_BIN_DIR;
const std::string kArtifacts = BITPARITY_TEST_ARTIFACTS;

std::set<std::string> Names(const ConformanceResult& r, ConformanceStatus s) {
  std::set<std::string> out;
  for (const ConformanceCheck& c : r.checks) {
    if (c.status == s) out.insert(c.name);
  }
  return out;
}

// Every FAIL, explained, for assertion messages.
std::string Failures(const ConformanceResult& r) {
  std::string out;
  for (const ConformanceCheck& c : r.checks) {
    if (c.status != ConformanceStatus::kFail) continue;
    out += c.name + "\n  request:  " + c.request + "\n  expected: " + c.expected + "\n  observed: " + c.observed + "\n";
  }
  return out;
}

ConformanceResult RunAgainst(const std::string& address) {
  Endpoint e;
  e.address = address;
  auto client = EngineClient::Connect(e, {});
  EXPECT_TRUE(client.ok()) << client.status();
  if (!client.ok()) return {};
  return RunConformance(**client, {});
}

// One real native server in process for the whole suite (loading is the slow part).
class ConformanceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::bitparity::testing::HaveFixtures()) return;
    server_ = ::bitparity::testing::StartNativeLoopback().release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    REQUIRE_FIXTURES();
    ASSERT_NE(server_, nullptr);
  }

  // The checks an honest server passes, less the ones it skips.
  static std::set<std::string> HonestPasses() {
    static const std::set<std::string> passes = Names(RunAgainst(server_->address()), ConformanceStatus::kPass);
    return passes;
  }

  // Runs the suite against a fake of `defect` in front of the real server and
  // expects exactly `expected` to fail.
  void ExpectFakeFails(Defect defect, const std::set<std::string>& expected) {
    FakeEngineServer fake(server_->address(), defect);
    const ConformanceResult r = RunAgainst(fake.address());
    EXPECT_EQ(Names(r, ConformanceStatus::kFail), expected) << Failures(r);
    EXPECT_FALSE(r.Conforms());
    for (const ConformanceCheck& c : r.checks) {
      if (c.status != ConformanceStatus::kFail) continue;
      EXPECT_FALSE(c.request.empty()) << c.name;
      EXPECT_FALSE(c.expected.empty()) << c.name;
      EXPECT_FALSE(c.observed.empty()) << c.name;
    }
  }

  static LoopbackServer* server_;
};
LoopbackServer* ConformanceTest::server_ = nullptr;

TEST_F(ConformanceTest, NativeServerPassesEveryCheck) {
  const ConformanceResult r = RunAgainst(server_->address());
  EXPECT_TRUE(r.Conforms()) << Failures(r);
  EXPECT_EQ(r.Count(ConformanceStatus::kFail), 0) << Failures(r);
  // The native server implements every RPC: nothing is skipped but what the
  // model cannot exercise (a check's note says why).
  for (const ConformanceCheck& c : r.checks) {
    if (c.status == ConformanceStatus::kSkip) {
      EXPECT_FALSE(c.note.empty()) << c.name;
    }
  }
  EXPECT_GT(r.checks.size(), 40u);
  std::printf("conformance of the native server: %zu checks in %.2f s\n", r.checks.size(), r.wall_s);
}

TEST_F(ConformanceTest, FaithfulProxyPassesEveryCheck) {
  FakeEngineServer proxy(server_->address(), Defect::kNone);
  const ConformanceResult r = RunAgainst(proxy.address());
  EXPECT_EQ(r.Count(ConformanceStatus::kFail), 0) << Failures(r);
}

TEST_F(ConformanceTest, Tokens100PlusIFailGenerateChecks) {
  ExpectFakeFails(Defect::kTokens100PlusI,
                  {"consistency.greedy_matches_logits", "consistency.logprobs_match_logits",
                   "consistency.generate_text_matches_ids"});
}

TEST_F(ConformanceTest, LogitsUnrelatedToGenerateFailGreedyAndLogprobs) {
  ExpectFakeFails(Defect::kUnrelatedLogits, {"consistency.greedy_matches_logits", "consistency.logprobs_match_logits"});
}

TEST_F(ConformanceTest, TenfoldTimingsFailWallClock) { ExpectFakeFails(Defect::kLyingTimings, {"speed.wall_clock"}); }

TEST_F(ConformanceTest, EmptyModelFailsModelInfo) { ExpectFakeFails(Defect::kEmptyModel, {"contract.model_info"}); }

TEST_F(ConformanceTest, SloppyErrorCodesFailEveryRuleAndLimit) {
  std::set<std::string> rules;
  for (const std::string& name : HonestPasses()) {
    if (name.rfind("contract.validation.", 0) == 0 || name.rfind("contract.limits.", 0) == 0) rules.insert(name);
  }
  EXPECT_GT(rules.size(), 30u);
  ExpectFakeFails(Defect::kSloppyErrors, rules);
}

TEST_F(ConformanceTest, ReportsExplainEveryFailure) {
  FakeEngineServer fake(server_->address(), Defect::kTokens100PlusI);
  const nlohmann::json j = ConformanceJson(RunAgainst(fake.address()));
  EXPECT_EQ(j["schema"], "bitparity.conformance");
  EXPECT_FALSE(j["conforms"].get<bool>());
  EXPECT_EQ(j["first_failure"], "consistency.greedy_matches_logits");
  const std::string text = RenderConformanceText(j);
  EXPECT_THAT(text, HasSubstr("FAIL  consistency.greedy_matches_logits"));
  EXPECT_THAT(text, HasSubstr("expected: generated token 0 = argmax"));
  EXPECT_THAT(text, HasSubstr("observed: 100"));
  const std::string junit = RenderConformanceJUnit(j);
  EXPECT_THAT(junit, HasSubstr("name=\"consistency.greedy_matches_logits\""));
  EXPECT_THAT(junit, HasSubstr("failures=\"3\""));
  EXPECT_THAT(RenderConformanceHtml(j), HasSubstr("does NOT conform"));
}

// Runs a command line; its exit code, and its output in *out.
int Shell(const std::string& cmd, std::string* out) {
  const std::string log = kArtifacts + "/conformance_cmd.log";
  const int rc = std::system((cmd + " >" + log + " 2>&1").c_str());
  *out = ReadWholeFile(log);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST_F(ConformanceTest, CliWritesReportsAndExitsZero) {
  const std::string base = kArtifacts + "/conformance_native";
  std::string out;
  const int rc = Shell(kBin + "/bitparity conformance --a " + server_->address() + " --json " + base + ".json --junit " +
                           base + ".xml --html " + base + ".html",
                       &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("the server conforms"));
  const auto j = nlohmann::json::parse(ReadWholeFile(base + ".json"));
  EXPECT_TRUE(j["conforms"].get<bool>());
  EXPECT_THAT(ReadWholeFile(base + ".xml"), HasSubstr("<testsuites name=\"bitparity.conformance\""));
  EXPECT_THAT(ReadWholeFile(base + ".html"), HasSubstr("The server conforms."));
}

TEST_F(ConformanceTest, CliExitsOneNamingTheFailedCheck) {
  FakeEngineServer fake(server_->address(), Defect::kLyingTimings);
  std::string out;
  EXPECT_EQ(Shell(kBin + "/bitparity conformance --a " + fake.address(), &out), 1) << out;
  EXPECT_THAT(out, HasSubstr("FAIL  speed.wall_clock"));
}

TEST_F(ConformanceTest, CompareRefusesASideThatFails) {
  FakeEngineServer fake(server_->address(), Defect::kTokens100PlusI);
  std::string out;
  const std::string cmd = kBin + "/bitparity compare --a " + fake.address() + " --b " + server_->address() +
                          " --limit 1 --no-speed --no-localize -n 2 --progress never";
  EXPECT_EQ(Shell(cmd, &out), 2) << out;
  EXPECT_THAT(out, HasSubstr("side A (" + fake.address() + ") fails the conformance check consistency.greedy_matches_logits"));
  // --no-conformance compares anyway (and finds the fake's tokens differ).
  const int rc = Shell(cmd + " --no-conformance", &out);
  EXPECT_NE(rc, 2) << out;
}

// The same suite against the servers whose engine runs in worker processes.
void ExpectServerProcessConforms(const std::string& binary, const std::string& label) {
  auto s = ServerProcess::Start({.binary = binary,
                                 .args = {"--model", FixturePath(kModel), "--threads", "1"},
                                 .label = label,
                                 .log_path = kArtifacts + "/conformance_" + label + ".log"},
                                120);
  ASSERT_TRUE(s.ok()) << s.status();
  const ConformanceResult r = RunAgainst((*s)->address());
  EXPECT_TRUE(r.Conforms()) << Failures(r);
  EXPECT_EQ(r.Count(ConformanceStatus::kFail), 0) << Failures(r);
  std::printf("conformance of %s: %zu checks in %.2f s\n", label.c_str(), r.checks.size(), r.wall_s);
}

TEST_F(ConformanceTest, WorkerServerProcessPassesEveryCheck) {
  ExpectServerProcessConforms(kBin + "/bitparity-worker-server", "bitparity-worker-server");
}

TEST_F(ConformanceTest, BitnetCppServerPassesEveryCheck) {
  const char* dir = std::getenv("BITNET_CPP_DIR");
  if (dir == nullptr || *dir == '\0') {
    GTEST_SKIP() << "bitnet-cpp-server: BITNET_CPP_DIR is not set (configure with -DBITNET_CPP_DIR=<checkout> and run "
                    "with BITNET_CPP_DIR=<checkout> in the environment)";
  }
  const std::string exe = kBin + "/bitnet-cpp-server";
  if (access(exe.c_str(), X_OK) != 0) GTEST_SKIP() << exe << " is not built (configure with -DBITNET_CPP_DIR)";
  ExpectServerProcessConforms(exe, "bitnet-cpp-server");
}

}  // namespace
}  // namespace bitparity
