#include "cpp_ref_adapter/worker_mux.h"

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cpp_ref_adapter/worker_codec.h"

namespace bitparity::worker {

namespace wpb = ::bitnet::worker::v1;
using Clock = WorkerPool::Clock;

WorkerMux::WorkerMux(WorkerPool* pool) : pool_(pool) {
  thread_ = std::thread([this] { Run(); });
}

WorkerMux::~WorkerMux() {
  closing_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void WorkerMux::Run() {
  const std::string& label = pool_->options().label;
  while (!closing_) {
    absl::StatusOr<WorkerPool::Lease> leased = pool_->Acquire([this] { return closing_.load(); });
    if (!leased.ok()) {
      if (closing_) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        unavailable_ = std::string(leased.status().message());
      }
      cv_.notify_all();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    WorkerProcess* w = &leased->process();
    uint64_t generation;
    {
      std::lock_guard<std::mutex> lock(mu_);
      lease_ = *std::move(leased);
      process_ = w;
      generation = ++generation_;
      unavailable_.clear();
    }
    cv_.notify_all();

    bool hung = false;
    const absl::Status st = ReadFrames(w, &hung);
    const bool closed = closing_ && absl::IsCancelled(st) && !hung;
    // A sender blocked on a full pipe is freed by the worker's death (EPIPE),
    // so the write lock below cannot wait forever.
    if (!closed) w->Kill();
    WorkerPool::Lease gone;
    {
      std::lock_guard<std::mutex> write_lock(write_mu_);
      std::lock_guard<std::mutex> lock(mu_);
      gone = std::move(lease_);
      process_ = nullptr;
    }
    if (closed) {
      pool_->Release(std::move(gone));
      break;
    }
    const bool died = !hung && (absl::IsUnavailable(st) ||
                                (absl::IsDataLoss(st) &&
                                 absl::StartsWith(st.message(), "truncated frame: end of file")));
    WorkerPool::Death d = pool_->Discard(std::move(gone), /*crashed=*/!hung);
    std::string how;
    if (hung) {
      how = absl::StrCat("was stopped (SIGSTOP or a debugger) for over ",
                         pool_->options().stopped_timeout.count(),
                         " ms; it was killed and is restarting");
    } else if (died) {
      how = absl::StrCat("died: ", d.exit);
    } else {
      how = absl::StrCat("broke the protocol (", st.message(), "); it was replaced (", d.exit, ")");
    }
    int failed = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [id, p] : calls_) failed += p->generation == generation && !p->failed;
      const std::string message =
          absl::StrCat(label, " ", d.slot, " (pid ", d.pid, ") ", how, "; last stderr lines: ",
                       d.stderr_tail, " (", failed, " request(s) in flight on it failed)");
      const absl::Status failure =
          died || hung ? absl::UnavailableError(message) : absl::InternalError(message);
      for (auto& [id, p] : calls_) {
        if (p->generation == generation && !p->failed) p->failed = failure;
      }
    }
    cv_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, p] : calls_) {
    if (!p->failed) p->failed = absl::UnavailableError(absl::StrCat(label, " pool is shutting down"));
  }
  cv_.notify_all();
}

absl::Status WorkerMux::ReadFrames(WorkerProcess* w, bool* hung) {
  // As WorkerBackend::CallOnce: a worker stopped for stopped_timeout is hung.
  // /proc is read at most every 100 ms.
  const auto stopped_timeout = pool_->options().stopped_timeout;
  Clock::time_point stopped_since{}, next_look = Clock::now();
  const StopFn watch = [&] {
    if (closing_) return true;
    const auto now = Clock::now();
    if (now < next_look) return false;
    next_look = now + std::chrono::milliseconds(100);
    if (!w->Stopped()) {
      stopped_since = {};
      return false;
    }
    if (stopped_since == Clock::time_point{}) stopped_since = now;
    *hung = now - stopped_since >= stopped_timeout;
    return *hung;
  };
  for (;;) {
    wpb::Response resp;
    if (absl::Status st = w->Receive(&resp, watch); !st.ok()) return st;
    if (resp.has_hello() || resp.kind_case() == wpb::Response::KIND_NOT_SET) {
      return absl::InternalError("sent an unexpected frame");
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(resp.id());
    if (it == calls_.end()) continue;  // a call given up on (cancelled): dropped
    it->second->frames.push_back(std::move(resp));
    cv_.notify_all();
  }
}

absl::Status WorkerMux::SendTo(uint64_t generation, const wpb::Request& request, const StopFn& stop) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  WorkerProcess* w;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (process_ == nullptr || generation_ != generation) {
      return absl::FailedPreconditionError("the worker was replaced");
    }
    w = process_;
  }
  return w->Send(request, stop);
}

absl::Status WorkerMux::Call(const char* what, wpb::Request& request, const StopFn& stop,
                             const PartialFn& on_partial, wpb::Response* final_frame,
                             Outcome* outcome) {
  const std::string& label = pool_->options().label;
  Pending p;
  request.set_id(next_id_.fetch_add(1));
  const uint64_t id = request.id();
  int pid = -1;
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (process_ == nullptr) {
      if (!unavailable_.empty()) return absl::UnavailableError(unavailable_);
      if (closing_) return absl::UnavailableError(absl::StrCat(label, " pool is shutting down"));
      if (stop && stop()) {
        return absl::CancelledError(absl::StrCat(what, " abandoned while waiting for a ", label));
      }
      cv_.wait_for(lock, std::chrono::milliseconds(10));
    }
    p.generation = generation_;
    pid = process_->pid();
    calls_[id] = &p;
  }
  auto unregister = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.erase(id);
  };
  // Best effort: a worker that is gone needs no Cancel.
  auto cancel = [&] {
    wpb::Request c;
    c.mutable_cancel()->set_id(id);
    (void)SendTo(p.generation, c, nullptr);
  };
  // No stop while writing: half a frame would break the stream for every
  // request on the worker. A full pipe drains (the worker reads its stdin on
  // a thread of its own) or the worker is found stopped and killed (EPIPE).
  if (absl::Status st = SendTo(p.generation, request, nullptr); !st.ok()) {
    if (absl::IsFailedPrecondition(st)) {
      unregister();
      outcome->worker_died = true;
      return absl::UnavailableError(
          absl::StrCat(what, ": ", label, " (pid ", pid, ") was replaced before the request reached it"));
    }
    // Otherwise it died (EPIPE): the mux thread fails this call below.
  }
  for (;;) {
    std::deque<wpb::Response> got;
    std::optional<absl::Status> failed;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(10),
                   [&] { return !p.frames.empty() || p.failed.has_value(); });
      got.swap(p.frames);
      failed = p.failed;
    }
    for (wpb::Response& resp : got) {
      switch (resp.kind_case()) {
        case wpb::Response::kLogitsRow:
        case wpb::Response::kResidualRow:
        case wpb::Response::kToken: {
          absl::Status st = on_partial ? on_partial(resp)
                                       : absl::InternalError(absl::StrCat(
                                             label, " sent an unexpected partial frame during ", what));
          ++outcome->partials;
          if (!st.ok()) {
            unregister();
            cancel();
            return st;
          }
          continue;
        }
        case wpb::Response::kError:
          unregister();
          return FromProto(resp.error());
        default:
          unregister();
          *final_frame = std::move(resp);
          return absl::OkStatus();
      }
    }
    if (failed) {
      unregister();
      outcome->worker_died = absl::IsUnavailable(*failed);
      return absl::Status(failed->code(), absl::StrCat(what, ": ", failed->message()));
    }
    if (stop && stop()) {
      unregister();
      cancel();
      return absl::CancelledError(absl::StrCat(what, " abandoned; its sequence on ", label, " (pid ",
                                               pid, ") was cancelled; the worker goes on serving "
                                               "the others"));
    }
  }
}

}  // namespace bitparity::worker
