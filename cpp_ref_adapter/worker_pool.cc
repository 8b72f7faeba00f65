#include "cpp_ref_adapter/worker_pool.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace bitparity::worker {

namespace wpb = ::bitnet::worker::v1;

WorkerPool::Lease& WorkerPool::Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    if (pool_ != nullptr) pool_->Discard(std::move(*this), /*crashed=*/false);
    pool_ = o.pool_;
    slot_ = o.slot_;
    process_ = o.process_;
    o.pool_ = nullptr;
    o.process_ = nullptr;
    o.slot_ = -1;
  }
  return *this;
}

WorkerPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->Discard(std::move(*this), /*crashed=*/false);
}

WorkerPool::WorkerPool(const WorkerPoolOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Start(const WorkerPoolOptions& options) {
  if (options.workers < 1) return absl::InvalidArgumentError("a worker pool needs at least 1 worker");
  // A write to a worker that just died must be an EPIPE error, not our death.
  ::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<WorkerPool> pool(new WorkerPool(options));
  pool->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (pool->wake_fd_ < 0) {
    return absl::UnavailableError(absl::StrCat("eventfd: ", strerror(errno)));
  }
  {
    std::lock_guard<std::mutex> lock(pool->mu_);
    pool->slots_.resize(options.workers);
    for (Slot& s : pool->slots_) s.restart_at = Clock::now();
  }
  pool->monitor_ = std::thread([p = pool.get()] { p->Monitor(); });
  return pool;
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  Wake();
  if (monitor_.joinable()) monitor_.join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void WorkerPool::Wake() {
  if (wake_fd_ < 0) return;
  const uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));  // fails only when the count is full
  (void)ignored;
}

void WorkerPool::SetReadinessObserver(std::function<void(bool ready)> observer) {
  std::lock_guard<std::mutex> lock(observer_mu_);
  observer_ = std::move(observer);
  if (observer_) {
    reported_ready_ = ready() > 0;
    observer_(reported_ready_);
  }
}

void WorkerPool::NotifyReadiness() {
  std::lock_guard<std::mutex> lock(observer_mu_);
  if (!observer_) return;
  const bool now = ready() > 0;
  if (now == reported_ready_) return;
  reported_ready_ = now;
  observer_(now);
}

std::chrono::milliseconds WorkerPool::Backoff(int failures) const {
  if (failures <= 0) return std::chrono::milliseconds(0);
  int64_t ms = options_.backoff_initial.count();
  for (int i = 1; i < failures && ms < options_.backoff_max.count(); ++i) ms *= 2;
  return std::chrono::milliseconds(std::min<int64_t>(ms, options_.backoff_max.count()));
}

void WorkerPool::Log(const std::string& event, int slot, int pid, const std::string& detail) const {
  if (!options_.log_events) return;
  nlohmann::ordered_json j;
  j["event"] = event;
  j["worker"] = options_.label;
  j["slot"] = slot;
  if (pid > 0) j["pid"] = pid;
  if (!detail.empty()) j["detail"] = detail;
  const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void WorkerPool::Failed(Slot& slot, const std::string& why, bool at_start) {
  ++slot.consecutive_failures;
  if (at_start) ++slot.start_failures;
  slot.state = State::kWaitingRestart;
  const auto wait = Backoff(slot.consecutive_failures);
  slot.restart_at = Clock::now() + wait;
  last_failure_ = why;
  Log("worker_failed", static_cast<int>(&slot - slots_.data()), -1,
      absl::StrCat(why, " (restart in ", wait.count(), " ms)"));
}

void WorkerPool::SpawnDue(Clock::time_point now) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.state != State::kWaitingRestart || s.restart_at > now) continue;
    absl::StatusOr<std::unique_ptr<WorkerProcess>> p =
        WorkerProcess::Spawn(options_.command, static_cast<int>(i));
    if (s.ever_started) ++restarts_;
    s.ever_started = true;
    if (!p.ok()) {
      Failed(s, absl::StrCat(options_.label, " ", i, " could not start: ", p.status().message()),
             /*at_start=*/true);
      continue;
    }
    s.process = std::move(*p);
    s.state = State::kStarting;
    s.started_at = now;
    ++s.generation;
    Log("worker_started", static_cast<int>(i), s.process->pid(), "");
  }
}

// One starting or idle worker in a PollWorkers round, and what the round found.
struct WorkerPool::PolledWorker {
  int slot = -1;
  int fd = -1;              // its stdout
  int pid_fd = -1;          // its pidfd (-1: none): readable when it exits
  uint64_t generation = 0;  // the spawn polled: tells a later process from it
  bool starting = false;    // waiting for its Hello; else idle
  bool stirred = false;     // stdout readable, hung up or in error
  absl::Status received;    // starting and stirred: how reading the Hello went
  wpb::Response hello;
};

namespace {

// Why a starting worker's first answer is not a usable Hello; "" when it is one.
std::string HelloProblem(const absl::Status& st, const wpb::Response& r) {
  if (st.ok() && r.has_hello() && r.hello().protocol_version() == kProtocolVersion) return "";
  if (st.ok() && r.has_hello()) {
    return absl::StrCat("speaks protocol ", r.hello().protocol_version(), ", not ",
                        kProtocolVersion);
  }
  if (st.ok() && r.has_error()) return absl::StrCat("failed to load: ", r.error().message());
  if (st.ok()) return "sent something other than Hello first";
  return absl::StrCat("ended before Hello (", st.message(), ")");
}

}  // namespace

void WorkerPool::PollWorkers(std::unique_lock<std::mutex>& lock, Clock::time_point until) {
  std::vector<PolledWorker> polled = WorkersToPoll(&until);
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
  lock.unlock();
  WaitForOutput(polled, wait);
  ReadHellos(polled);
  lock.lock();
  const auto now = Clock::now();
  std::vector<std::unique_ptr<WorkerProcess>> dead;
  AdmitHellos(polled, now, &dead);
  std::vector<Lease> lost = TakeLostWorkers(polled);
  std::vector<Lease> hung = TakeHungWorkers(now);
  KillSilentStarters(now, &dead);
  cv_.notify_all();
  lock.unlock();
  dead.clear();  // joins stderr readers outside the lock
  // Reaped and restarted with a backoff, like a worker that dies mid-request.
  for (Lease& lease : lost) Discard(std::move(lease), /*crashed=*/true);
  for (Lease& lease : hung) Discard(std::move(lease), /*crashed=*/false);  // not its fault
  NotifyReadiness();
  lock.lock();
}

std::vector<WorkerPool::PolledWorker> WorkerPool::WorkersToPoll(Clock::time_point* until) {
  // Starting workers (for their Hello) and idle ones (an idle worker writes
  // nothing: readable stdout means it died, or broke the protocol).
  std::vector<PolledWorker> polled;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.state != State::kStarting && s.state != State::kIdle) continue;
    PolledWorker p;
    p.slot = static_cast<int>(i);
    p.fd = s.process->stdout_fd();
    p.pid_fd = s.process->pid_fd();
    p.generation = s.generation;
    p.starting = s.state == State::kStarting;
    polled.push_back(std::move(p));
    if (s.state == State::kStarting) {
      *until = std::min(*until, s.started_at + options_.hello_timeout);
    }
  }
  return polled;
}

void WorkerPool::WaitForOutput(std::vector<PolledWorker>& polled, std::chrono::milliseconds wait) {
  // Entry 0 is the wake-up eventfd; then each polled worker's stdout and its
  // pidfd (the kernel's news of its exit, the moment it happens).
  std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}};
  for (const PolledWorker& p : polled) {
    fds.push_back({p.fd, POLLIN, 0});
    fds.push_back({p.pid_fd, POLLIN, 0});  // a negative fd is ignored by poll
  }
  ::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(0, wait.count())));
  if (fds[0].revents & POLLIN) {
    uint64_t count = 0;
    ssize_t ignored = ::read(wake_fd_, &count, sizeof(count));
    (void)ignored;
  }
  constexpr short kStirred = POLLIN | POLLHUP | POLLERR;
  for (size_t k = 0; k < polled.size(); ++k) {
    polled[k].stirred =
        (fds[1 + 2 * k].revents & kStirred) != 0 || (fds[2 + 2 * k].revents & kStirred) != 0;
  }
}

void WorkerPool::ReadHellos(std::vector<PolledWorker>& polled) {
  // Hellos are read without the lock: only this thread touches a starting slot.
  for (PolledWorker& p : polled) {
    if (!p.starting || !p.stirred) continue;
    WorkerProcess* w;
    {
      std::lock_guard<std::mutex> relock(mu_);
      w = slots_[p.slot].process.get();
    }
    // The Hello is one small frame written at once; a worker that sends a
    // partial frame and stalls is caught by the hello timeout.
    const auto deadline = Clock::now() + options_.hello_timeout;
    p.received = w->Receive(&p.hello, [&] { return Clock::now() > deadline; });
  }
}

void WorkerPool::AdmitHellos(const std::vector<PolledWorker>& polled, Clock::time_point now,
                             std::vector<std::unique_ptr<WorkerProcess>>* dead) {
  for (const PolledWorker& p : polled) {
    if (!p.starting || !p.stirred) continue;
    Slot& s = slots_[p.slot];
    const std::string why = HelloProblem(p.received, p.hello);
    if (why.empty()) {
      s.state = State::kIdle;
      s.start_failures = 0;
      s.session_bytes = p.hello.hello().session_bytes();
      if (!first_hello_) first_hello_ = p.hello.hello();
      const auto load_time =
          std::chrono::duration_cast<std::chrono::milliseconds>(now - s.started_at);
      Log("worker_ready", p.slot, s.process->pid(),
          absl::StrCat("loaded in ", load_time.count(), " ms"));
      continue;
    }
    // A worker that reported its load error exits by itself (code 1); give it a
    // moment, so that the message shows its own exit code.
    std::string exit = s.process->WaitExit(std::chrono::seconds(1));
    if (exit == "still running") {
      s.process->Kill();
      exit = s.process->WaitExit(std::chrono::seconds(2));
    }
    Failed(s, absl::StrCat(options_.label, " ", p.slot, " (pid ", s.process->pid(), ") ", why,
                           "; ", exit, "; last stderr lines: ", s.process->StderrSummary()),
           /*at_start=*/true);
    dead->push_back(std::move(s.process));
  }
}

std::vector<WorkerPool::Lease> WorkerPool::TakeLostWorkers(
    const std::vector<PolledWorker>& polled) {
  // Idle workers whose stdout or pidfd stirred. A request may have taken the
  // worker meanwhile (and even given it back): only a worker idle now, still
  // the one polled, and still exited or readable under the lock (nobody can
  // lease it) is lost.
  std::vector<Lease> lost;
  for (const PolledWorker& p : polled) {
    if (p.starting || !p.stirred) continue;
    Slot& s = slots_[p.slot];
    if (s.state != State::kIdle || s.generation != p.generation) continue;
    const bool exited = s.process->Exited();
    pollfd again{s.process->stdout_fd(), POLLIN, 0};
    if (!exited && ::poll(&again, 1, 0) <= 0) continue;
    Log("worker_lost", p.slot, s.process->pid(),
        exited ? "exited between requests" : "stdout closed or written to between requests");
    lost.push_back(LeaseForDiscard(p.slot));
  }
  return lost;
}

std::vector<WorkerPool::Lease> WorkerPool::TakeHungWorkers(Clock::time_point now) {
  // Idle workers that stay stopped answer nothing: replace them.
  std::vector<Lease> hung;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.state != State::kIdle || !s.process->Stopped()) {
      s.stopped_since = {};
      continue;
    }
    if (s.stopped_since == Clock::time_point{}) s.stopped_since = now;
    if (now - s.stopped_since < options_.stopped_timeout) continue;
    Log("worker_hung", static_cast<int>(i), s.process->pid(),
        absl::StrCat("stopped (SIGSTOP or a debugger) for over ", options_.stopped_timeout.count(),
                     " ms while idle; replacing it"));
    s.stopped_since = {};
    hung.push_back(LeaseForDiscard(static_cast<int>(i)));
  }
  return hung;
}

void WorkerPool::KillSilentStarters(Clock::time_point now,
                                    std::vector<std::unique_ptr<WorkerProcess>>* dead) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (s.state == State::kStarting && now - s.started_at > options_.hello_timeout) {
      s.process->Kill();
      const std::string exit = s.process->WaitExit(std::chrono::seconds(2));
      Failed(s, absl::StrCat(options_.label, " ", i, " (pid ", s.process->pid(),
                             ") did not say Hello within ", options_.hello_timeout.count(),
                             " ms; killed (", exit, "); last stderr lines: ",
                             s.process->StderrSummary()),
             /*at_start=*/true);
      dead->push_back(std::move(s.process));
    }
  }
}

WorkerPool::Lease WorkerPool::LeaseForDiscard(int slot) {
  Slot& s = slots_[slot];
  s.state = State::kBusy;  // ours now, for Discard
  Lease lease;
  lease.pool_ = this;
  lease.slot_ = slot;
  lease.process_ = s.process.get();
  return lease;
}

void WorkerPool::Monitor() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    SpawnDue(Clock::now());
    auto until = Clock::now() + std::chrono::seconds(1);
    for (const Slot& s : slots_) {
      if (s.state == State::kWaitingRestart) until = std::min(until, s.restart_at);
      if (s.stopped_since != Clock::time_point{}) {
        until = std::min(until, s.stopped_since + options_.stopped_timeout);
      }
    }
    PollWorkers(lock, until);
  }
  // Shut down here, on the thread that forked the workers (see the header).
  std::vector<std::pair<std::unique_ptr<WorkerProcess>, bool>> all;
  for (Slot& s : slots_) {
    if (s.process != nullptr) all.emplace_back(std::move(s.process), s.state == State::kStarting);
    s.state = State::kWaitingRestart;
  }
  lock.unlock();
  for (auto& [w, loading] : all) {
    // A worker still loading does not read its stdin, and its model is of no
    // use now: kill it rather than wait out the grace period.
    if (loading) w->Kill();
    const std::string how = w->Stop(options_.stop_grace);
    Log("worker_stopped", w->index(), w->pid(), how);
  }
  all.clear();
}

absl::StatusOr<bitnet::worker::v1::Hello> WorkerPool::WaitFirstHello(
    std::chrono::milliseconds timeout, const StopFn& stop) {
  const auto until = Clock::now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  while (!first_hello_.has_value() && !stopping_ && Clock::now() < until) {
    if (stop && stop()) {
      return absl::CancelledError(
          absl::StrCat("start-up interrupted while waiting for the first ", options_.label));
    }
    cv_.wait_until(lock, std::min(until, Clock::now() + std::chrono::milliseconds(20)));
  }
  if (first_hello_) return *first_hello_;
  return absl::UnavailableError(absl::StrCat(
      "no ", options_.label, " became ready within ", timeout.count(), " ms",
      last_failure_.empty() ? "" : absl::StrCat("; last failure: ", last_failure_)));
}

absl::StatusOr<WorkerPool::Lease> WorkerPool::Acquire(const StopFn& stop) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (stopping_) return absl::UnavailableError(absl::StrCat(options_.label, " pool is shutting down"));
    bool any_alive = false, all_failing = true;
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& s = slots_[i];
      if (s.start_failures < options_.start_failures_before_unavailable) all_failing = false;
      // A worker that exited since the monitor last looked is passed over (the
      // monitor, woken, reaps and restarts it): never dispatch to the dead.
      if (s.state == State::kIdle && s.process->Exited()) {
        Wake();
        continue;
      }
      if (s.state == State::kIdle && !s.process->Stopped()) {
        s.state = State::kBusy;
        s.stopped_since = {};
        Lease lease;
        lease.pool_ = this;
        lease.slot_ = static_cast<int>(i);
        lease.process_ = s.process.get();
        return lease;
      }
      if (s.state == State::kBusy || s.state == State::kIdle) any_alive = true;
    }
    if (!any_alive && all_failing) {
      return absl::UnavailableError(absl::StrCat("no ", options_.label,
                                                 " is ready; last failure: ", last_failure_));
    }
    cv_.wait_for(lock, std::chrono::milliseconds(10));
    if (stop && stop()) {
      return absl::CancelledError(absl::StrCat("abandoned while waiting for a free ", options_.label));
    }
  }
}

void WorkerPool::Release(Lease lease, int64_t session_bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Slot& s = slots_[lease.slot_];
    s.state = State::kIdle;
    s.consecutive_failures = 0;  // it served a request: healthy again
    if (session_bytes >= 0) s.session_bytes = session_bytes;
  }
  lease.pool_ = nullptr;
  cv_.notify_all();
  Wake();  // the monitor watches idle workers
}

WorkerPool::Death WorkerPool::Discard(Lease lease, bool crashed) {
  Death d;
  WorkerProcess* w = lease.process_;
  d.slot = lease.slot_;
  d.pid = w->pid();
  lease.pool_ = nullptr;
  // Killed from outside (the OOM killer, an operator, a node drain): SIGKILL
  // before we sent ours. That is not a crash of the worker's own making.
  const bool killed_from_outside = w->Exited() && w->ExitSignal() == SIGKILL;
  w->Kill();  // it may be alive: hung, or abandoned mid-request
  d.exit = w->WaitExit(std::chrono::seconds(5));
  d.stderr_tail = w->StderrSummary();
  std::unique_ptr<WorkerProcess> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Slot& s = slots_[d.slot];
    gone = std::move(s.process);
    s.session_bytes = 0;
    const std::string why = absl::StrCat(options_.label, " ", d.slot, " (pid ", d.pid, ") ",
                                         crashed ? "died" : "was killed", ": ", d.exit,
                                         "; last stderr lines: ", d.stderr_tail);
    if (crashed && !killed_from_outside) {
      Failed(s, why, /*at_start=*/false);
    } else if (crashed) {
      // Restarted at once: backing off would make every later request wait
      // for a worker that did nothing wrong. (A start that keeps failing, or a
      // request that kills every worker, is still bounded elsewhere.)
      s.state = State::kWaitingRestart;
      s.restart_at = Clock::now();
      last_failure_ = why;
      Log("worker_killed_from_outside", d.slot, d.pid, why);
    } else {
      s.state = State::kWaitingRestart;
      s.restart_at = Clock::now();
      Log("worker_killed", d.slot, d.pid, why);
    }
  }
  cv_.notify_all();
  Wake();  // a restart is due (now, or after the backoff)
  gone.reset();  // joins its stderr reader outside the lock
  NotifyReadiness();
  return d;
}

int WorkerPool::ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) {
    return s.state == State::kIdle || s.state == State::kBusy;
  }));
}

int64_t WorkerPool::SessionBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t sum = 0;
  for (const Slot& s : slots_) sum += s.session_bytes;
  return sum;
}

int WorkerPool::restarts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return restarts_;
}

std::vector<int> WorkerPool::Pids() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int> pids;
  for (const Slot& s : slots_) {
    if (s.process != nullptr) pids.push_back(s.process->pid());
  }
  return pids;
}

}  // namespace bitparity::worker
