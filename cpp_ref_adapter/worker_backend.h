// File: cpp_ref_adapter/worker_backend.h
//
// An EngineBackend whose engine runs in worker processes: each call leases a
// worker from a WorkerPool, sends it one request frame and turns the answer
// frames back into the EngineBackend results. The same class serves
// bitnet-cpp-server (workers: bitnet-cpp-worker) and bitparity-worker-server
// (workers: bitparity-native-worker); only the worker command differs.
//
//   WorkerBackendOptions o;
//   o.pool.command = {bin_dir + "/bitnet-cpp-worker",
//                     {"--model", path, "--threads", "1", "--max-context", "512"}};
//   o.model_path = path;
//   ASSIGN_OR_RETURN(std::unique_ptr<WorkerBackend> b, WorkerBackend::Start(o));
//
// A request is only dispatched to a live worker: one that exited while idle
// (its pidfd or stdout says so) is passed over and restarted. A worker can still
// die between being leased and reading the frame (killed a moment before), or
// in the middle of the call. Then the call is run again on a fresh worker when
// nothing is lost by it (max_worker_retries bounds the retries in a row that
// bring no new frame):
//   - nothing reached the caller yet (no partial frame: every call kind), or
//   - what did can be replayed: EvalLogits and EvalTrace rows, and the tokens
//     of a Generate whose tokens are collected rather than streamed (the
//     service's unary Generate). The retry skips the frames the caller has,
//     after checking that they are the same bytes (the calls are
//     deterministic; a retry that disagrees is Internal). EvalLogits resumes
//     instead: the fresh worker evaluates the same rows but sends only those
//     from the last delivered one on (which is checked), so a long evaluation
//     makes progress even when its workers keep dying.
// A streaming Generate that has sent tokens cannot take them back: Unavailable.
// Every retry is counted (CallNotes, PoolStats) and logged as a JSON line
// ("event":"request_retried").
//
// Failures, as the request that was in flight sees them:
//   the worker died (crash, abort, SIGKILL from outside), and the call cannot
//   be retried (or its retries are spent)
//        -> Unavailable: "<label> <slot> (pid P) died during EvalLogits: signal 6
//           (SIGABRT); last stderr lines: ... (after 2 retries on a fresh
//           worker)"; the worker restarts (with backoff when it keeps dying)
//   the request was abandoned (deadline, client cancel, shutdown)
//        -> the worker is killed (SIGKILL) and restarted at once; eval returns
//           Cancelled, which EngineService reports as DEADLINE_EXCEEDED or
//           CANCELLED; Generate returns what it had, finish reason CANCELLED;
//           either way the message names the killed worker and its last
//           stderr lines (GenerationResult::cancel_detail for Generate)
//   the worker stayed stopped (SIGSTOP, a debugger) for pool.stopped_timeout
//        -> Unavailable: "<label> <slot> (pid P) was stopped ... during Generate";
//           the worker is killed and restarted at once
//   the worker answered with an error frame -> that status, worker kept
//   the worker broke the protocol (bad frame) -> Internal, worker replaced
//   no worker is ready (all failing to start) -> Unavailable with the last failure
// Tokenize, Detokenize and TokenPiece get no caller deadline through the
// interface, so they are bounded by `quick_timeout` (DeadlineExceeded).
//
// With options.parallel > 1 (bitnet-cpp-server --parallel N) every call goes
// through a WorkerMux over the single worker instead (worker_mux.h): a death
// fails every call in flight on it (Unavailable, with the worker's stderr), and
// a call is run again only when it had received no partial frame yet; a
// deadline or cancel sends Cancel{id} and the worker keeps serving the others.
//
// Thread safety: as EngineBackend; calls beyond the number of workers (times
// parallel) wait for a free one.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>
#include <string>

#include "absl/status/statusor.h"
#include "cpp_ref_adapter/worker.pb.h"
#include "cpp_ref_adapter/worker_mux.h"
#include "cpp_ref_adapter/worker_pool.h"
#include "services/common/engine_backend.h"

namespace bitparity::worker {

struct WorkerBackendOptions {
  WorkerPoolOptions pool;
  // The model file, hashed here once when the workers leave BackendInfo.sha256
  // empty (bitnet-cpp-worker does, so that N workers do not hash it N times).
  std::string model_path;
  // How long the first worker may take to become ready.
  std::chrono::milliseconds start_timeout{std::chrono::seconds(120)};
  // Bound on Tokenize / Detokenize / TokenPiece.
  std::chrono::milliseconds quick_timeout{std::chrono::seconds(30)};
  // How many times one call is run again on a fresh worker after the worker
  // serving it died (see the top of the file). 0 turns retries off.
  int max_worker_retries = 2;
  // > 1: the one worker (pool.workers must be 1) serves this many requests at
  // once, multiplexed (worker_mux.h; bitnet-cpp-worker --parallel N). A call
  // then runs again after a death only when it had received no partial frame:
  // batched outputs depend on the batch, so nothing is replayed.
  int parallel = 1;
};

class WorkerBackend final : public EngineBackend {
 public:
  // Starts the pool and waits for the first worker's Hello (its model facts).
  // Unavailable, with the workers' exit status and stderr lines, when none
  // became ready within start_timeout; Cancelled as soon as `stop` (may be
  // null; polled every few ms) says so, after the starting workers are killed
  // and reaped.
  static absl::StatusOr<std::unique_ptr<WorkerBackend>> Start(const WorkerBackendOptions& options,
                                                              const StopFn& stop = nullptr);

  const BackendInfo& Info() const override { return info_; }
  int64_t SessionBytes() const override { return pool_->SessionBytes(); }
  std::vector<int> WorkerPids() const override { return pool_->Pids(); }
  // Ready while at least one worker is (idle or busy): false while every
  // worker is dead and waiting for its restart, or still loading.
  void SetReadinessObserver(ReadinessObserver observer) override {
    pool_->SetReadinessObserver(std::move(observer));
  }

  // A quick call, like Tokenize: the worker's engine renders.
  absl::StatusOr<ChatRendering> ApplyChatTemplate(absl::Span<const ChatTurn> chat,
                                                  absl::string_view tmpl,
                                                  bool add_assistant) const override;
  absl::StatusOr<std::vector<int32_t>> Tokenize(absl::string_view text, bool add_bos,
                                                bool parse_special) const override;
  absl::StatusOr<std::string> TokenPiece(int32_t id) const override;
  absl::StatusOr<std::string> Detokenize(absl::Span<const int32_t> ids) const override;
  absl::Status EvalLogits(absl::Span<const int32_t> ids, BackendEvalMode mode,
                          const std::vector<int>& rows, const LogitsRowFn& on_row,
                          const CancelledFn& cancelled, CallNotes* notes) override;
  absl::Status EvalTrace(absl::Span<const int32_t> ids, BackendEvalMode mode,
                         const std::vector<int>& rows, const ResidualFn& on_residual,
                         const CancelledFn& cancelled, CallNotes* notes) override;
  absl::StatusOr<GenerationResult> Generate(absl::Span<const int32_t> prompt,
                                            const GenerationSpec& spec, const TokenFn& on_token,
                                            const CancelledFn& cancelled, CallNotes* notes) override;

  std::optional<WorkerPoolStats> PoolStats() const override;

  WorkerPool& pool() const { return *pool_; }

 private:
  using PartialFn = std::function<absl::Status(const bitnet::worker::v1::Response& part)>;
  // Whether a retry may send again partial frames the caller already has
  // (they are checked and skipped): kNever once they left the server
  // (streamed tokens).
  enum class Replay { kNever, kAll };
  // Rewrites a request after a death so that the fresh worker sends only the
  // frames from index `delivered - n` on; returns n (the frames sent again).
  using ResumeFn = std::function<size_t(size_t delivered, bitnet::worker::v1::Request* request)>;
  struct RetryPlan {
    Replay replay = Replay::kNever;
    ResumeFn resume;  // null: a retry starts over
  };
  // A bound on attempts even for a call that makes progress each time.
  static constexpr int kMaxAttempts = 64;

  WorkerBackend() = default;
  // One request: partial frames to `on_partial` (may be null), the final frame
  // into `*final_frame`; run again on a fresh worker when its worker dies and
  // `replay` allows it (see the top of the file), counted in `notes` (may be
  // null). `what` names the call in messages.
  absl::Status Call(const char* what, bitnet::worker::v1::Request& request, const StopFn& stop,
                    const PartialFn& on_partial, const RetryPlan& plan, CallNotes* notes,
                    bitnet::worker::v1::Response* final_frame) const;
  // One attempt on one leased worker. `delivered` holds a hash per partial
  // frame already handed on; the attempt's first `repeats` frames are copies of
  // its last `repeats` (checked, skipped), later ones are handed on and
  // appended. `*worker_died` is set when the worker died before the final frame.
  absl::Status CallOnce(const char* what, bitnet::worker::v1::Request& request, const StopFn& stop,
                        const PartialFn& on_partial, size_t repeats,
                        std::vector<size_t>* delivered, bool* worker_died,
                        bitnet::worker::v1::Response* final_frame) const;
  absl::Status QuickCall(const char* what, bitnet::worker::v1::Request& request,
                         bitnet::worker::v1::Response* final_frame) const;

  WorkerBackendOptions options_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<WorkerMux> mux_;  // parallel > 1 only; goes before pool_
  BackendInfo info_;
  mutable std::atomic<uint64_t> next_id_{1};
  mutable std::atomic<int64_t> retried_calls_{0};
};

}  // namespace bitparity::worker
