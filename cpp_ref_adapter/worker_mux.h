// File: cpp_ref_adapter/worker_mux.h
//
// Many requests at once over ONE worker that serves several (bitnet-cpp-worker
// --parallel N): the multiplexed conversation of worker.proto (protocol 4).
//
//   WorkerMux mux(pool);  // pool of 1 worker; the mux leases it for good
//   WorkerMux::Outcome o;
//   absl::Status st = mux.Call("Generate", request, stop, on_partial, &final_frame, &o);
//
// A mux thread leases the pool's worker, reads every response frame and hands
// it to the call whose id it carries (frames of calls given up on are dropped).
// Callers write their request frames themselves, one at a time (write_mu_).
// When the worker dies (end of file, a truncated frame), breaks the protocol,
// or stays stopped (SIGSTOP) for the pool's stopped_timeout, the mux thread
// discards it (the pool restarts it) and fails EVERY call in flight on it:
// Unavailable naming the worker, how it ended and its last stderr lines
// (Internal for a protocol break); then it leases the fresh worker.
// A call whose `stop` says stop (deadline, client cancel) sends Cancel{id}:
// the worker frees that sequence's slot and keeps serving the others; the call
// returns Cancelled at once, without waiting for the worker's answer.
//
// Thread safety: Call from any number of threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "cpp_ref_adapter/worker.pb.h"
#include "cpp_ref_adapter/worker_pool.h"

namespace bitparity::worker {

class WorkerMux {
 public:
  using PartialFn = std::function<absl::Status(const bitnet::worker::v1::Response& part)>;

  explicit WorkerMux(WorkerPool* pool);
  ~WorkerMux();
  WorkerMux(const WorkerMux&) = delete;
  WorkerMux& operator=(const WorkerMux&) = delete;

  struct Outcome {
    bool worker_died = false;  // the worker went before the final frame
    size_t partials = 0;       // partial frames handed to on_partial
  };
  // Sends `request` (its id is set here) and waits for its final frame
  // (into *final_frame), handing partial frames to `on_partial` (may be null)
  // in order. An Error frame becomes its status. `what` names the call in
  // messages. Waits for a worker while none is leased (a restart), up to
  // `stop`; Unavailable at once while the pool cannot start one.
  absl::Status Call(const char* what, bitnet::worker::v1::Request& request, const StopFn& stop,
                    const PartialFn& on_partial, bitnet::worker::v1::Response* final_frame,
                    Outcome* outcome);

 private:
  // One call in flight.
  struct Pending {
    uint64_t generation = 0;  // of the worker it was sent to
    std::deque<bitnet::worker::v1::Response> frames;
    std::optional<absl::Status> failed;  // the worker went: how (a message without `what`)
  };

  void Run();
  // Reads frames from the leased worker until it goes (or the mux closes);
  // returns why it stopped reading.
  absl::Status ReadFrames(WorkerProcess* w, bool* hung);
  // Writes `request` to the current worker if it is still `generation`.
  absl::Status SendTo(uint64_t generation, const bitnet::worker::v1::Request& request,
                      const StopFn& stop);

  WorkerPool* pool_;
  std::atomic<bool> closing_{false};
  std::atomic<uint64_t> next_id_{1};

  std::mutex write_mu_;  // one request frame at a time; taken before mu_
  std::mutex mu_;
  std::condition_variable cv_;
  WorkerPool::Lease lease_ ABSL_GUARDED_BY(mu_);
  WorkerProcess* process_ ABSL_GUARDED_BY(mu_) = nullptr;  // lease_'s, null while none
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;           // leases so far
  std::string unavailable_ ABSL_GUARDED_BY(mu_);  // the pool's last Acquire error; "" once leased
  std::map<uint64_t, Pending*> calls_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace bitparity::worker
