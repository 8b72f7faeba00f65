// File: cpp_ref_adapter/worker_process.h
//
// One engine worker as a child process (Boost.Process): its three pipes, its
// stderr tail, and killing and reaping it. The pool (worker_pool.h) owns these.
//
//   ASSIGN_OR_RETURN(auto w, WorkerProcess::Spawn(command, /*index=*/0));
//   RETURN_IF_ERROR(w->Send(request));
//   RETURN_IF_ERROR(w->Receive(&response, stop));
//   w->Kill();  std::string how = w->WaitExit(std::chrono::seconds(1));
//
// Pipes are made close-on-exec, so a worker never inherits another worker's
// pipe ends (which would hide that worker's death from us: no end of file).
// The destructor kills (SIGKILL) a worker that still runs, reaps it and joins
// the stderr reader, so a WorkerProcess never leaves a zombie behind.
//
// The server process must ignore SIGPIPE (WorkerPool does), or a write to a
// dead worker would kill it.
//
// Thread safety: Send/Receive by one thread at a time (the pool's lease holder);
// Kill, Pid, Exited, StderrTail, Running and Stopped from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cpp_ref_adapter/worker.pb.h"
#include "cpp_ref_adapter/worker_protocol.h"

namespace boost::process {
class child;
}

namespace bitparity::worker {

struct WorkerCommand {
  std::string executable;         // path of the worker binary
  std::vector<std::string> args;  // e.g. --model m.gguf --threads 1 --max-context 512
  bool forward_stderr = false;    // also copy the worker's stderr to ours, prefixed
};

class WorkerProcess {
 public:
  // Starts the worker (does not wait for its Hello). Unavailable when it cannot
  // be started (no such executable, fork failure), with the reason.
  static absl::StatusOr<std::unique_ptr<WorkerProcess>> Spawn(const WorkerCommand& command,
                                                              int index);
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  int pid() const { return pid_; }
  int index() const { return index_; }
  int stdout_fd() const { return out_fd_; }
  // Readable (POLLIN) once the process has exited; -1 when the kernel has no pidfd.
  int pid_fd() const { return pid_fd_; }
  // True once the process has exited (it may not be reaped yet): its pidfd is
  // readable, or, without one, its stdout hung up. Never blocks.
  bool Exited() const;

  // Stoppable (see WriteAll): Cancelled when `stop` says so while the pipe is full.
  absl::Status Send(const bitnet::worker::v1::Request& request, const StopFn& stop = nullptr);
  // One response frame (see ReadFrame for the codes; Unavailable = end of file).
  absl::Status Receive(bitnet::worker::v1::Response* response, const StopFn& stop = nullptr);

  // SIGKILL now (idempotent; no effect once reaped).
  void Kill();
  // Closes the worker's stdin (it exits at end of input), waits up to `grace`,
  // then kills; reaps. Returns how it ended (see WaitExit).
  std::string Stop(std::chrono::milliseconds grace);
  // Waits up to `timeout` for the worker to end and reaps it. Returns "exit
  // code N", "signal N (NAME)", or "still running" after the timeout.
  std::string WaitExit(std::chrono::milliseconds timeout);
  bool Running();
  // The signal that ended the worker (SIGKILL, SIGSEGV, ...); 0 while it runs
  // or when it exited by itself.
  int ExitSignal();
  // True while the worker is stopped (SIGSTOP, SIGTSTP, a debugger's stop):
  // state T or t in /proc/<pid>/stat. It then answers nothing until resumed.
  bool Stopped();

  // The worker's last stderr lines, oldest first. After the worker ended, waits
  // up to `drain` for the reader to see end of file, so that its last words
  // (an abort message, say) are included.
  std::vector<std::string> StderrTail(std::chrono::milliseconds drain = std::chrono::milliseconds(0));
  // StderrTail joined as " | "-separated text ("(no stderr output)" if none).
  std::string StderrSummary(std::chrono::milliseconds drain = std::chrono::milliseconds(200));

 private:
  WorkerProcess() = default;
  void ReadStderr(int fd);

  static constexpr size_t kTailLines = 12;
  static constexpr size_t kMaxLineBytes = 400;

  int index_ = 0;
  int pid_ = -1;
  int in_fd_ = -1;   // our end of the worker's stdin
  int out_fd_ = -1;  // our end of its stdout
  int pid_fd_ = -1;  // pidfd_open(pid): POLLIN when it exits
  bool forward_stderr_ = false;
  std::unique_ptr<boost::process::child> child_;
  std::mutex child_mu_;  // boost's child is not thread-safe
  std::string exit_description_ ABSL_GUARDED_BY(child_mu_);
  bool reaped_ ABSL_GUARDED_BY(child_mu_) = false;
  int exit_signal_ ABSL_GUARDED_BY(child_mu_) = 0;

  std::thread stderr_reader_;
  std::mutex tail_mu_;
  std::condition_variable tail_cv_;
  std::deque<std::string> tail_ ABSL_GUARDED_BY(tail_mu_);
  std::string partial_line_ ABSL_GUARDED_BY(tail_mu_);
  bool stderr_eof_ ABSL_GUARDED_BY(tail_mu_) = false;
};

}  // namespace bitparity::worker
