// File: cpp_ref_adapter/worker_pool.h
//
// A fixed number of engine worker processes (worker_process.h), kept alive: each
// request leases one idle worker; a worker that died or had to be killed is
// reaped and started again, after an exponential backoff when it keeps failing.
//
//   WorkerPoolOptions o;  o.command = {"/path/bitnet-cpp-worker", {"--model", m}};  o.workers = 2;
//   ASSIGN_OR_RETURN(auto pool, WorkerPool::Start(o));
//   ASSIGN_OR_RETURN(Hello hello, pool->WaitFirstHello(std::chrono::seconds(60)));
//   ASSIGN_OR_RETURN(WorkerPool::Lease lease, pool->Acquire(stop));
//   ... lease.process().Send / Receive ...
//   pool->Release(std::move(lease), session_bytes);           // healthy
//   WorkerPool::Death d = pool->Discard(std::move(lease), true);  // crashed: restart with backoff
//
// Life of a slot:
//   waiting-restart --(backoff over, spawn)--> starting --(Hello)--> idle <--> busy
//        ^                                         |                         |
//        +----- start failed / no Hello in time ---+---- died / killed ------+
// A worker that completes a request resets its slot's failure count; a start
// failure or a crash doubles the wait before the next start (backoff_initial,
// 2x, ... up to backoff_max). A worker that was not at fault restarts at once:
// one killed because its request was abandoned (deadline, cancel), and one
// SIGKILLed from outside after its Hello (the OOM killer, an operator, a node
// drain: a crash loop shows as SIGSEGV, SIGABRT or an exit code instead). The
// monitor also watches idle workers through their pidfd and stdout: one that
// dies between requests is reaped and restarted as soon as the kernel says so,
// not when the next request finds it dead; one that stays stopped (SIGSTOP) for
// stopped_timeout is killed and restarted. Acquire passes over exited and
// stopped idle workers.
//
// Readiness: the pool is ready while at least one worker is idle or busy; a
// readiness observer hears every change (a server's health follows it).
//
// Every spawn happens on the pool's own monitor thread, because a worker asks to
// be killed when the thread that forked it ends (PR_SET_PDEATHSIG); the monitor
// lives as long as the pool. The destructor kills workers still loading, closes
// every other worker's stdin (they exit 0), kills what still runs after a grace
// period, and reaps everything.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "cpp_ref_adapter/worker.pb.h"
#include "cpp_ref_adapter/worker_process.h"

namespace bitparity::worker {

struct WorkerPoolOptions {
  WorkerCommand command;
  int workers = 1;
  // A started worker must say Hello (load its model) within this.
  std::chrono::milliseconds hello_timeout{std::chrono::seconds(120)};
  // Acquire fails at once (Unavailable, with the last failure) when no worker
  // is alive and every slot's last this many starts failed: the workers cannot
  // start. Fewer failures (a worker killed while it loaded) are waited out.
  int start_failures_before_unavailable = 3;
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{std::chrono::seconds(10)};
  // A worker found stopped (SIGSTOP, a debugger) this long is treated as hung:
  // an idle one is replaced, a busy one's request fails UNAVAILABLE and it is
  // replaced. Shorter stops are waited out.
  std::chrono::milliseconds stopped_timeout{std::chrono::seconds(5)};
  // On destruction, how long workers get to exit after their stdin closes.
  std::chrono::milliseconds stop_grace{std::chrono::seconds(1)};
  // Names the workers in messages, e.g. "bitnet.cpp worker".
  std::string label = "worker";
  // Write one JSON line per worker start, exit and restart to stderr.
  bool log_events = true;
};

class WorkerPool {
 public:
  using Clock = std::chrono::steady_clock;

  static absl::StatusOr<std::unique_ptr<WorkerPool>> Start(const WorkerPoolOptions& options);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // The first Hello any worker sent. Unavailable (with the last failure: exit
  // status and stderr lines) when none arrived within `timeout`; Cancelled as
  // soon as `stop` (may be null; polled about every 20 ms) returns true.
  absl::StatusOr<bitnet::worker::v1::Hello> WaitFirstHello(std::chrono::milliseconds timeout,
                                                           const StopFn& stop = nullptr);

  // `observer(ready())` now and on every later change of ready() > 0, one call
  // at a time (from the monitor or a request thread, never under the pool's
  // lock). nullptr removes it; after this returns the old one is not called.
  void SetReadinessObserver(std::function<void(bool ready)> observer);

  // Exclusive use of one ready worker. Move-only; a Lease dropped without
  // Release or Discard discards its worker (killed, restarted).
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& o) noexcept { *this = std::move(o); }
    Lease& operator=(Lease&& o) noexcept;
    ~Lease();
    WorkerProcess& process() const { return *process_; }
    int slot() const { return slot_; }
    explicit operator bool() const { return pool_ != nullptr; }

   private:
    friend class WorkerPool;
    WorkerPool* pool_ = nullptr;
    int slot_ = -1;
    WorkerProcess* process_ = nullptr;
  };

  // An idle ready worker that is alive and not stopped; waits while all are
  // busy, starting or stopped, polling `stop` (may be null) about every 10 ms:
  // Cancelled when it says stop. Unavailable at once when no worker is ready and
  // every slot's last start_failures_before_unavailable starts failed (the
  // message has the last failure), and while the pool shuts down. A worker
  // restarting after a crash is waited for: its next start is expected to work.
  absl::StatusOr<Lease> Acquire(const StopFn& stop);

  // Gives a healthy worker back; `session_bytes` is what it last reported
  // (-1: unchanged).
  void Release(Lease lease, int64_t session_bytes = -1);

  struct Death {
    int pid = -1;
    int slot = -1;
    std::string exit;         // "exit code 1", "signal 9 (SIGKILL)"
    std::string stderr_tail;  // last lines, " | "-joined
  };
  // The leased worker is dead or must go: kill it (if alive), reap it, and
  // schedule its restart (after a backoff when `crashed`).
  Death Discard(Lease lease, bool crashed);

  // Workers that said Hello and are alive (idle or busy).
  int ready() const;
  int64_t SessionBytes() const;
  // Workers started after the first round (restarts), since the pool started.
  int restarts() const;
  // Pids of every live worker process, starting ones included, in slot order
  // (tests count them; GetModelInfo reads their memory).
  std::vector<int> Pids() const;
  const WorkerPoolOptions& options() const { return options_; }

 private:
  enum class State { kWaitingRestart, kStarting, kIdle, kBusy };
  struct Slot {
    State state = State::kWaitingRestart;
    std::unique_ptr<WorkerProcess> process;
    Clock::time_point restart_at;
    Clock::time_point started_at;
    int consecutive_failures = 0;  // starts and crashes since the last served request
    int start_failures = 0;        // starts since the last Hello that failed
    bool ever_started = false;
    int64_t session_bytes = 0;
    uint64_t generation = 0;  // spawns so far: tells a new process from the one polled
    Clock::time_point stopped_since{};  // idle and seen stopped since then; {} = not
  };

  explicit WorkerPool(const WorkerPoolOptions& options);
  void Monitor();
  void SpawnDue(Clock::time_point now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits (without the lock) until a starting worker speaks, an idle worker's
  // stdout shows it died, Wake(), or `until`; then acts on what it saw.
  void PollWorkers(std::unique_lock<std::mutex>& lock, Clock::time_point until)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // PollWorkers' steps, in order. One entry per starting or idle worker.
  struct PolledWorker;
  // The workers to watch; `until` moves up to the first hello deadline.
  std::vector<PolledWorker> WorkersToPoll(Clock::time_point* until)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Without mu_: polls their stdout and the wake-up eventfd for up to `wait`.
  void WaitForOutput(std::vector<PolledWorker>& polled, std::chrono::milliseconds wait);
  // Without mu_ (taken only to find each process): reads the Hellos that arrived.
  void ReadHellos(std::vector<PolledWorker>& polled);
  // Starting workers that answered: idle if they said Hello, else failed (into `dead`).
  void AdmitHellos(const std::vector<PolledWorker>& polled, Clock::time_point now,
                   std::vector<std::unique_ptr<WorkerProcess>>* dead)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Idle workers whose stdout shows they died, leased for Discard.
  std::vector<Lease> TakeLostWorkers(const std::vector<PolledWorker>& polled)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Idle workers stopped for stopped_timeout, leased for Discard.
  std::vector<Lease> TakeHungWorkers(Clock::time_point now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starting workers past hello_timeout: killed, failed (into `dead`).
  void KillSilentStarters(Clock::time_point now, std::vector<std::unique_ptr<WorkerProcess>>* dead)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks an idle slot busy and leases its worker, so that Discard can replace it.
  Lease LeaseForDiscard(int slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Interrupts the monitor's poll (its wait set or wake-up time changed).
  void Wake();
  // Tells the observer when ready() > 0 changed. Not under mu_.
  void NotifyReadiness();
  // Marks a slot failed (start failure or crash): backoff, last_failure_.
  void Failed(Slot& slot, const std::string& why, bool at_start) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::chrono::milliseconds Backoff(int failures) const;
  void Log(const std::string& event, int slot, int pid, const std::string& detail) const;

  const WorkerPoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::optional<bitnet::worker::v1::Hello> first_hello_ ABSL_GUARDED_BY(mu_);
  std::string last_failure_ ABSL_GUARDED_BY(mu_);
  int restarts_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int wake_fd_ = -1;  // eventfd the monitor polls beside the workers' stdout
  std::thread monitor_;

  std::mutex observer_mu_;  // taken before mu_, never under it
  std::function<void(bool)> observer_ ABSL_GUARDED_BY(observer_mu_);
  bool reported_ready_ ABSL_GUARDED_BY(observer_mu_) = false;
};

}  // namespace bitparity::worker
