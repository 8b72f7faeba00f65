// File: services/common/admission_gate.h
//
// Bounds the evaluating work of a server: at most `max_running` requests run at
// once and at most `max_waiting` wait, first come first served. A request that
// finds the queue full is refused at once with ResourceExhausted (the caller may
// retry later), so a flood of requests cannot pile up threads and memory.
//
//   ASSIGN_OR_RETURN(AdmissionGate::Ticket ticket, gate.Enter(abandoned));
//   ... run ...   // the slot is released when `ticket` goes out of scope
//
// While waiting, `abandoned` is polled (every few milliseconds): a non-OK return
// (the client cancelled, the deadline passed) leaves the queue with that status.
// Close() refuses every later Enter and wakes the waiters with Unavailable; the
// requests already running keep their slots (draining).
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <condition_variable>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"

namespace bitparity {

class AdmissionGate {
 public:
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept : gate_(other.gate_), queue_ms_(other.queue_ms_) {
      other.gate_ = nullptr;
    }
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { Release(); }
    // Time spent waiting for the slot.
    double queue_ms() const { return queue_ms_; }
    void Release();

   private:
    friend class AdmissionGate;
    Ticket(AdmissionGate* gate, double queue_ms) : gate_(gate), queue_ms_(queue_ms) {}
    AdmissionGate* gate_ = nullptr;
    double queue_ms_ = 0;
  };

  AdmissionGate(int max_running, int max_waiting);

  // Waits for a slot. ResourceExhausted when max_waiting requests already wait
  // (or max_waiting is 0 and every slot is busy), Unavailable after Close(), or
  // the status `abandoned` returned.
  absl::StatusOr<Ticket> Enter(const std::function<absl::Status()>& abandoned);

  void Close();
  bool closed() const;
  int running() const;
  int waiting() const;
  // Blocks until no request runs or `timeout_ms` passed; true if idle.
  bool WaitIdle(int64_t timeout_ms);

  // Called with (running, waiting) after every change, under the gate's lock (so
  // it must not call back into the gate); for metrics. Set before first use.
  std::function<void(int running, int waiting)> on_change;

 private:
  void Leave();
  void Notify() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int max_running_;
  const int max_waiting_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::list<uint64_t> queue_ ABSL_GUARDED_BY(mu_);  // waiting requests, oldest first
};

}  // namespace bitparity
