// Chaos: a nightly comparison survives worker deaths (issue 17). The real
// bitparity binary compares the built-in prompts, bitnet-native-server (A)
// against a worker server (B: bitparity-worker-server, and bitnet-cpp-server
// where BITNET_CPP_DIR is set, skipped by name otherwise), first undisturbed,
// then while a thread SIGKILLs one of B's workers, chosen at random, every
// 300-700 ms (stretched in sanitizer builds, see kSlowdown). What must hold:
//   - the disturbed report is complete: every prompt present, none missing;
//   - its verdict and each prompt's drift and generation verdicts equal the
//     undisturbed run's (worker deaths change no number);
//   - the deaths are counted: B's worker restarts equal the kills, and the
//     retries (the server's, and bitparity's own) are reported;
//   - no zombie and no leaked process: B's workers stay its live children, and
//     after B stops, none of them is left.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <boost/process.hpp>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "orchestrator/server_process.h"
#include "tests/common/child_process.h"

namespace bitparity {
namespace {

namespace bp = boost::process;
using nlohmann::json;
using testing::ChildrenOf;

const std::string kBin = BITPARITY_BIN_DIR;

// The kill interval is 300-700 ms of a normal build's work. A sanitizer build
// runs everything (servers and workers included) several times slower, so the
// interval stretches with it: the same deaths per unit of work, not a storm
// that no call outlives.
#if !defined(__has_feature)
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
constexpr int kSlowdown = 8;
#elif defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
constexpr int kSlowdown = 3;
#else
constexpr int kSlowdown = 1;
#endif

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct CompareRunResult {
  int code = -1;
  json report;
  std::string err;
};

class ChaosTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    worker_server_ = kBin + "/" + GetParam();
    if (GetParam() == "bitnet-cpp-server") {
      if (std::getenv("BITNET_CPP_DIR") == nullptr) {
        GTEST_SKIP() << "BITNET_CPP_DIR is not set: the chaos test of bitnet-cpp-server needs a built "
                        "bitnet.cpp checkout (configure with -DBITNET_CPP_DIR=<checkout> and run with "
                        "BITNET_CPP_DIR=<checkout> in the environment)";
      }
      ASSERT_EQ(access(worker_server_.c_str(), X_OK), 0) << worker_server_ << " is not built";
    }
    char tmpl[] = "/tmp/bitparity-chaos-XXXXXX";
    dir_ = mkdtemp(tmpl);
    // The demo's model (4 layers, a 4096-token vocabulary): quick, and both
    // engines run it.
    model_ = dir_ + "/synth.gguf";
    bp::child synth(bp::exe = kBin + "/bitnet-synth", bp::args = {"--shape", "tiny", "--seed", "1", "--out", model_},
                    bp::std_in < bp::null, bp::std_out > bp::null, bp::std_err > bp::null);
    synth.wait();
    ASSERT_EQ(synth.exit_code(), 0) << "bitnet-synth failed";
    a_ = Start(kBin + "/bitnet-native-server", {"--threads", "1"}, "A");
    b_ = Start(worker_server_, {"--threads", "1", "--workers", "2"}, "B");
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
  }

  void TearDown() override {
    if (a_) a_->Stop();
    if (b_) b_->Stop();
  }

  std::unique_ptr<ServerProcess> Start(const std::string& binary, std::vector<std::string> args,
                                       const std::string& label) {
    ServerSpec spec;
    spec.binary = binary;
    spec.args = {"--model", model_};
    spec.args.insert(spec.args.end(), args.begin(), args.end());
    spec.label = label;
    spec.log_path = dir_ + "/server-" + label + ".log";
    auto s = ServerProcess::Start(spec, 120);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // `bitparity compare` of the built-in prompts, A against B, no speed phase
  // (speed under chaos measures the chaos). --retries 5, as a run under chaos
  // would set it: a stream whose worker is killed after its first token cannot
  // be retried by the server, and the conformance check of deadlines streams
  // hundreds of tokens, which kills every 300-700 ms hit more than twice in a
  // row now and then (seen once, on bitnet-cpp-server, in the full suite).
  CompareRunResult Compare(const std::string& name) {
    const std::string json_path = dir_ + "/" + name + ".json", err = dir_ + "/" + name + ".err";
    bp::child c(bp::exe = kBin + "/bitparity",
                bp::args = {"compare", "--a", a_->address(), "--b", b_->address(), "-n", "8", "--no-speed",
                            "--jobs", "2", "--retries", "5", "--json", json_path},
                bp::std_in < bp::null, bp::std_out > bp::null, bp::std_err > err);
    CompareRunResult r;
    if (!c.wait_for(std::chrono::minutes(10))) {
      c.terminate();
      c.wait();
    } else {
      r.code = c.exit_code();
    }
    r.err = ReadAll(err);
    r.report = json::parse(ReadAll(json_path), nullptr, /*allow_exceptions=*/false);
    return r;
  }

  // B's worker processes: its live children.
  std::vector<int> Workers() {
    std::vector<int> pids;
    for (const testing::Child& c : ChildrenOf(b_->pid())) {
      if (c.state != 'Z') pids.push_back(c.pid);
    }
    return pids;
  }

  std::string worker_server_, dir_, model_;
  std::unique_ptr<ServerProcess> a_, b_;
};

TEST_P(ChaosTest, ComparisonSurvivesWorkersKilledAtRandom) {
  const CompareRunResult calm = Compare("calm");
  ASSERT_TRUE(calm.report.is_object()) << calm.err;
  ASSERT_EQ(calm.code, 0) << calm.err;
  ASSERT_EQ(calm.report["resilience"]["b"]["worker_restarts"], 0) << "restarts without chaos";

  // The chaos: a random worker of B, SIGKILLed every 300-700 ms.
  std::atomic<bool> done{false};
  std::atomic<int> kills{0};
  std::thread chaos([&] {
    std::mt19937 rng(17);
    while (!done.load()) {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(kSlowdown * std::uniform_int_distribution<int>(300, 700)(rng)));
      if (done.load()) break;
      const std::vector<int> workers = Workers();
      if (workers.empty()) continue;  // all restarting
      const int victim = workers[std::uniform_int_distribution<size_t>(0, workers.size() - 1)(rng)];
      if (::kill(victim, SIGKILL) == 0) ++kills;
    }
  });
  const CompareRunResult stormy = Compare("stormy");
  done = true;
  chaos.join();
  ASSERT_TRUE(stormy.report.is_object()) << stormy.err;
  std::printf("chaos (%s): %d workers killed during the run; resilience: %s\n", GetParam().c_str(), kills.load(),
              stormy.report["resilience"].dump().c_str());
  ASSERT_GE(kills.load(), 3) << "the run ended before the chaos began: the test tests nothing";

  // Complete, and the same verdicts as without the chaos.
  EXPECT_EQ(stormy.code, calm.code) << stormy.err;
  EXPECT_EQ(stormy.report["verdict"]["summary"], calm.report["verdict"]["summary"]);
  EXPECT_TRUE(stormy.report["resilience"]["failed_prompts"].empty()) << stormy.report["resilience"].dump();
  const json& ps = stormy.report["prompts"];
  const json& pc = calm.report["prompts"];
  ASSERT_EQ(ps.size(), pc.size());
  ASSERT_GT(ps.size(), 10u);
  for (size_t i = 0; i < ps.size(); ++i) {
    SCOPED_TRACE(ps[i]["id"].get<std::string>());
    EXPECT_TRUE(ps[i]["error"].is_null()) << ps[i]["error"].dump();
    EXPECT_EQ(ps[i]["checks"]["drift"]["status"], pc[i]["checks"]["drift"]["status"]);
    EXPECT_EQ(ps[i]["checks"]["generation"]["status"], pc[i]["checks"]["generation"]["status"]);
    // Deaths change no number: drift and greedy ids are those of the calm run.
    EXPECT_EQ(ps[i]["drift"]["summary"], pc[i]["drift"]["summary"]);
    EXPECT_EQ(ps[i]["generation"], pc[i]["generation"]);
  }

  // Counted: every kill restarted a worker. B's log has a start per worker
  // and per restart; besides our kills, B itself kills a worker whose request
  // was abandoned (the conformance checks of deadlines and cancellation), and
  // the last kill's restart may still be under way.
  auto logged = [&](const std::string& event) {
    const std::string log = ReadAll(dir_ + "/server-B.log");
    const std::string needle = "\"event\":\"" + event + "\"";
    int n = 0;
    for (size_t at = 0; (at = log.find(needle, at)) != std::string::npos; ++at) ++n;
    return n;
  };
  auto restarts_by_chaos = [&] { return logged("worker_started") - 2 - logged("worker_killed"); };
  for (int i = 0; i < 2000 && restarts_by_chaos() < kills.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(restarts_by_chaos(), kills.load()) << "restarts in B's log against kills";
  // The report counts the restarts from its start (after the conformance
  // checks) to its end, and the retries.
  const json& res = stormy.report["resilience"]["b"];
  EXPECT_LE(res["worker_restarts"].get<int>(), kills.load()) << res.dump();
  EXPECT_GT(res["worker_restarts"].get<int>(), 0) << res.dump();
  EXPECT_GT(res["server_retries"].get<int>() + res["prompt_retries"].get<int>(), 0) << res.dump();
  EXPECT_EQ(stormy.report["resilience"]["a"]["worker_restarts"], nullptr) << "A runs no worker pool";

  // No zombie: B's workers are live children (2, once the last restart is
  // through).
  std::vector<int> workers;
  for (int i = 0; i < 2000 && (workers = Workers()).size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(workers.size(), 2u);

  for (const testing::Child& c : ChildrenOf(b_->pid())) EXPECT_NE(c.state, 'Z') << "zombie worker " << c.pid;
  b_->Stop();
  for (int pid : workers) EXPECT_NE(::kill(pid, 0), 0) << "worker " << pid << " outlived its server";
}

INSTANTIATE_TEST_SUITE_P(WorkerServers, ChaosTest,
                         ::testing::Values("bitparity-worker-server", "bitnet-cpp-server"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           return p.param == "bitparity-worker-server" ? std::string("BitparityWorkerServer")
                                                                       : std::string("BitnetCppServer");
                         });

}  // namespace
}  // namespace bitparity
