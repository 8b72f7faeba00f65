#include "cpp_ref_adapter/worker_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "boost/process/args.hpp"
#include "boost/process/child.hpp"
#include "boost/process/exe.hpp"
#include "boost/process/posix.hpp"

namespace bitparity::worker {
namespace bp = boost::process;

namespace {

// A pipe whose both ends are close-on-exec and >= 3 (so that binding them onto
// 0, 1 or 2 in the child is always a real dup2, which clears close-on-exec).
absl::Status MakePipe(int fds[2]) {
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return absl::UnavailableError(absl::StrCat("pipe2: ", strerror(errno)));
  }
  for (int i = 0; i < 2; ++i) {
    if (fds[i] < 3) {
      const int moved = ::fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
      ::close(fds[i]);
      fds[i] = moved;
    }
  }
  if (fds[0] < 0 || fds[1] < 0) return absl::UnavailableError("cannot move a pipe above fd 2");
  return absl::OkStatus();
}

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return absl::StrCat("signal ", sig, " (SIG", name != nullptr ? name : "?", ")");
  }
  return absl::StrCat("wait status ", status);
}

}  // namespace

absl::StatusOr<std::unique_ptr<WorkerProcess>> WorkerProcess::Spawn(const WorkerCommand& command,
                                                                    int index) {
  if (::access(command.executable.c_str(), X_OK) != 0) {
    return absl::UnavailableError(absl::StrCat("worker executable '", command.executable,
                                               "' cannot be run: ", strerror(errno)));
  }
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  absl::Status st = MakePipe(in);
  if (st.ok()) st = MakePipe(out);
  if (st.ok()) st = MakePipe(err);
  auto close_all = [&] {
    for (int* p : {in, out, err}) {
      CloseFd(p[0]);
      CloseFd(p[1]);
    }
  };
  if (!st.ok()) {
    close_all();
    return st;
  }

  std::unique_ptr<WorkerProcess> w(new WorkerProcess());
  w->index_ = index;
  w->forward_stderr_ = command.forward_stderr;
  std::error_code ec;
  try {
    w->child_ = std::make_unique<bp::child>(
        bp::exe = command.executable, bp::args = command.args, bp::posix::fd.bind(0, in[0]),
        bp::posix::fd.bind(1, out[1]), bp::posix::fd.bind(2, err[1]), ec);
  } catch (const std::exception& e) {  // Boost.Process throws; nothing escapes this file
    close_all();
    return absl::UnavailableError(absl::StrCat("cannot start worker '", command.executable,
                                               "': ", e.what()));
  }
  if (ec || w->child_ == nullptr || !w->child_->valid()) {
    close_all();
    if (w->child_ != nullptr) {
      std::error_code ignored;
      w->child_->terminate(ignored);
      w->child_->wait(ignored);
    }
    {
      std::lock_guard<std::mutex> lock(w->child_mu_);
      w->reaped_ = true;  // nothing left to reap
    }
    return absl::UnavailableError(absl::StrCat("cannot start worker '", command.executable,
                                               "': ", ec ? ec.message() : "invalid child"));
  }
  w->pid_ = w->child_->id();
  // The kernel's word on the worker's end: readable as soon as it exits, even
  // when a grandchild still holds its stdout open. -1 where the kernel has no
  // pidfd_open (before Linux 5.3): end of file on stdout is then the sign.
  w->pid_fd_ = static_cast<int>(::syscall(SYS_pidfd_open, w->pid_, 0));
  if (w->pid_fd_ >= 0) ::fcntl(w->pid_fd_, F_SETFD, FD_CLOEXEC);
  // The child's ends now live in the child only.
  CloseFd(in[0]);
  CloseFd(out[1]);
  CloseFd(err[1]);
  w->in_fd_ = in[1];
  w->out_fd_ = out[0];
  // Our end only (the worker's end is its own open file): a full pipe to a
  // stopped worker must not block Send past its stop function.
  ::fcntl(w->in_fd_, F_SETFL, ::fcntl(w->in_fd_, F_GETFL) | O_NONBLOCK);
  const int err_fd = err[0];
  w->stderr_reader_ = std::thread([raw = w.get(), err_fd] { raw->ReadStderr(err_fd); });
  return w;
}

WorkerProcess::~WorkerProcess() {
  Kill();
  WaitExit(std::chrono::seconds(5));
  {
    // SIGKILL cannot be ignored; if the wait above timed out, block for the reap.
    std::lock_guard<std::mutex> lock(child_mu_);
    if (!reaped_ && child_ != nullptr) {
      std::error_code ec;
      child_->wait(ec);
      reaped_ = true;
    }
  }
  CloseFd(in_fd_);
  CloseFd(out_fd_);
  CloseFd(pid_fd_);
  if (stderr_reader_.joinable()) stderr_reader_.join();
}

bool WorkerProcess::Exited() const {
  if (pid_fd_ >= 0) {
    pollfd p{pid_fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }
  pollfd p{out_fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)) != 0;
}

absl::Status WorkerProcess::Send(const bitnet::worker::v1::Request& request, const StopFn& stop) {
  if (in_fd_ < 0) return absl::UnavailableError("the worker's input is closed");
  return WriteFrame(in_fd_, request, stop);
}

bool WorkerProcess::Stopped() {
  std::lock_guard<std::mutex> lock(child_mu_);
  // Only while unreaped: after the reap, the pid may belong to someone else.
  if (reaped_ || pid_ <= 0) return false;
  char path[32];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", pid_);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // "pid (comm) S ...": the state follows the last ')' (comm may hold one).
  const char* paren = std::strrchr(buf, ')');
  if (paren == nullptr || paren[1] != ' ') return false;
  return paren[2] == 'T' || paren[2] == 't';
}

absl::Status WorkerProcess::Receive(bitnet::worker::v1::Response* response, const StopFn& stop) {
  ReadOptions o;
  o.stop = stop;
  return ReadMessage(out_fd_, response, o);
}

void WorkerProcess::Kill() {
  std::lock_guard<std::mutex> lock(child_mu_);
  // Only while unreaped: after the reap, the pid may belong to someone else.
  if (!reaped_ && pid_ > 0) ::kill(pid_, SIGKILL);
}

bool WorkerProcess::Running() {
  std::lock_guard<std::mutex> lock(child_mu_);
  if (reaped_ || child_ == nullptr) return false;
  std::error_code ec;
  if (child_->running(ec)) return true;
  reaped_ = true;
  exit_description_ = ec ? absl::StrCat("unknown (", ec.message(), ")")
                         : DescribeStatus(child_->native_exit_code());
  if (!ec && WIFSIGNALED(child_->native_exit_code())) {
    exit_signal_ = WTERMSIG(child_->native_exit_code());
  }
  return false;
}

int WorkerProcess::ExitSignal() {
  Running();  // reaps it when it has ended
  std::lock_guard<std::mutex> lock(child_mu_);
  return exit_signal_;
}

std::string WorkerProcess::WaitExit(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (!Running()) {
      std::lock_guard<std::mutex> lock(child_mu_);
      return exit_description_;
    }
    if (std::chrono::steady_clock::now() >= until) return "still running";
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string WorkerProcess::Stop(std::chrono::milliseconds grace) {
  CloseFd(in_fd_);  // end of input: a worker between requests exits 0
  std::string how = WaitExit(grace);
  if (how == "still running") {
    Kill();
    how = WaitExit(std::chrono::seconds(5));
  }
  return how;
}

void WorkerProcess::ReadStderr(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (forward_stderr_) {
      // Whole chunks, prefixed once: enough to tell workers apart in a log.
      std::fprintf(stderr, "[worker %d pid %d] %.*s", index_, pid_, static_cast<int>(n), buf);
    }
    std::lock_guard<std::mutex> lock(tail_mu_);
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == '\n') {
        if (!partial_line_.empty()) tail_.push_back(std::move(partial_line_));
        partial_line_.clear();
        while (tail_.size() > kTailLines) tail_.pop_front();
      } else if (partial_line_.size() < kMaxLineBytes) {
        partial_line_ += buf[i];
      }
    }
  }
  ::close(fd);
  std::lock_guard<std::mutex> lock(tail_mu_);
  if (!partial_line_.empty()) tail_.push_back(std::move(partial_line_));
  while (tail_.size() > kTailLines) tail_.pop_front();
  stderr_eof_ = true;
  tail_cv_.notify_all();
}

std::vector<std::string> WorkerProcess::StderrTail(std::chrono::milliseconds drain) {
  std::unique_lock<std::mutex> lock(tail_mu_);
  if (drain.count() > 0) tail_cv_.wait_for(lock, drain, [this] { return stderr_eof_; });
  std::vector<std::string> lines(tail_.begin(), tail_.end());
  if (!partial_line_.empty()) lines.push_back(partial_line_);
  return lines;
}

std::string WorkerProcess::StderrSummary(std::chrono::milliseconds drain) {
  std::vector<std::string> lines = StderrTail(drain);
  if (lines.empty()) return "(no stderr output)";
  return absl::StrJoin(lines, " | ");
}

}  // namespace bitparity::worker
