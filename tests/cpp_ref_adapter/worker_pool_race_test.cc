// The supervisor under concurrency, without gRPC (so that ThreadSanitizer, which
// cannot see inside Debian's uninstrumented gRPC, checks all of it): a 2-worker
// WorkerBackend over bitparity-native-worker called from 4 threads at once
// while another thread SIGKILLs and SIGSTOPs the workers. Every call must end
// OK or UNAVAILABLE (a worker died or stayed stopped), never anything else;
// afterwards both workers serve again and no process is leaked.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/faults/fault_util.h"

namespace bitparity::faults {
namespace {

TEST(WorkerPoolRaceTest, ConcurrentCallsWhileWorkersAreKilledAndStopped) {
  if (access(kModel.c_str(), R_OK) != 0) GTEST_SKIP() << "fixture missing: " << kModel;
  ASSERT_EQ(access(kNativeWorker.c_str(), X_OK), 0) << kNativeWorker << " is not built";
  worker::WorkerBackendOptions o = NativeWorkerOptions(kModel, 2);
  o.pool.stopped_timeout = milliseconds(300);
  auto started = worker::WorkerBackend::Start(o);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<worker::WorkerBackend> backend = std::move(*started);
  for (int i = 0; i < 6000 && backend->pool().ready() < 2; ++i) std::this_thread::sleep_for(milliseconds(5));
  ASSERT_EQ(backend->pool().ready(), 2);
  auto ids = backend->Tokenize("The quick brown fox", true, false);
  ASSERT_TRUE(ids.ok()) << ids.status();

  std::atomic<bool> done{false};
  std::atomic<int> kills{0}, stops{0};
  std::thread chaos([&] {
    std::mt19937 rng(5);
    for (int round = 0; round < 24; ++round) {
      std::this_thread::sleep_for(milliseconds(40 + rng() % 80));
      // Strike ready workers only: a worker killed while loading is a failed
      // start, and with both slots failing calls are refused at once (by design).
      for (int i = 0; i < 6000 && backend->pool().ready() < 2; ++i) std::this_thread::sleep_for(milliseconds(5));
      const std::vector<int> pids = backend->pool().Pids();
      if (pids.empty()) continue;
      const int pid = pids[rng() % pids.size()];
      bool ours = false;
      for (const Child& c : Children()) ours |= c.pid == pid && c.state != 'Z';
      if (!ours) continue;
      if (round % 2 == 0) {
        if (::kill(pid, SIGKILL) == 0) ++kills;
      } else if (::kill(pid, SIGSTOP) == 0) {
        ++stops;
        std::this_thread::sleep_for(milliseconds(round % 4 == 1 ? 500 : 50));
        ::kill(pid, SIGCONT);
      }
    }
    done = true;
  });

  std::mutex mu;
  std::map<std::string, int> by_code;
  std::vector<std::string> unexpected;
  std::map<std::string, int> kinds;
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int n = 0; !done.load(); ++n) {
        absl::Status st;
        if ((n + t) % 2 == 0) {
          GenerationSpec spec;
          spec.max_new_tokens = 12;
          spec.ignore_eos = true;
          auto r = backend->Generate(*ids, spec, nullptr, nullptr, nullptr);
          st = r.status();
        } else {
          st = backend->EvalLogits(*ids, BackendEvalMode::kBatch, {static_cast<int>(ids->size()) - 1},
                                   [](int, absl::Span<const float>) { return absl::OkStatus(); },
                                   nullptr, nullptr);
        }
        std::lock_guard<std::mutex> lock(mu);
        ++by_code[absl::StatusCodeToString(st.code())];
        if (!st.ok() && !absl::IsUnavailable(st)) unexpected.push_back(st.ToString());
        if (absl::IsUnavailable(st)) {
          // Kinds of UNAVAILABLE, by their wording without pids.
          std::string kind(st.message().substr(0, 80));
          for (char& ch : kind) if (ch >= '0' && ch <= '9') ch = '#';
          ++kinds[kind];
        }
      }
    });
  }
  chaos.join();
  for (auto& c : callers) c.join();
  for (const Child& c : Children()) ::kill(c.pid, SIGCONT);

  std::string summary;
  for (const auto& [code, n] : by_code) absl::StrAppend(&summary, code, " ", n, "; ");
  std::printf("worker pool race: %d kills, %d stops; calls: %srestarts %d\n", kills.load(),
              stops.load(), summary.c_str(), backend->pool().restarts());
  for (const auto& [kind, n] : kinds) std::printf("  %6d x %s\n", n, kind.c_str());
  EXPECT_TRUE(unexpected.empty()) << absl::StrJoin(unexpected, "\n");
  EXPECT_GT(by_code["OK"], 0);

  for (int i = 0; i < 6000 && backend->pool().ready() < 2; ++i) std::this_thread::sleep_for(milliseconds(5));
  ASSERT_EQ(backend->pool().ready(), 2);
  for (int i = 0; i < 4; ++i) {
    absl::Status st = backend->EvalLogits(*ids, BackendEvalMode::kBatch, {0},
                                          [](int, absl::Span<const float>) { return absl::OkStatus(); },
                                          nullptr, nullptr);
    EXPECT_TRUE(st.ok()) << "after the chaos, call " << i << ": " << st;
  }
  backend.reset();
  EXPECT_TRUE(Children().empty()) << "leaked worker processes: " << Describe(Children());
}

}  // namespace
}  // namespace bitparity::faults
