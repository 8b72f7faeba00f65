#include "benchmarks/end_to_end/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

extern char** environ;

namespace bitparity::bench {
namespace {

// An unlinked temporary file; the child writes into it through an inherited fd.
class TempCapture {
 public:
  absl::Status Open() {
    const char* tmp = std::getenv("TMPDIR");
    std::string path = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/bitnet-bench-XXXXXX");
    fd_ = ::mkstemp(path.data());
    if (fd_ < 0) return absl::InternalError(absl::StrCat("mkstemp(", path, "): ", std::strerror(errno)));
    ::unlink(path.c_str());
    return absl::OkStatus();
  }
  ~TempCapture() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  std::string ReadAll() const {
    std::string s;
    char buf[65536];
    ::lseek(fd_, 0, SEEK_SET);
    for (ssize_t n; (n = ::read(fd_, buf, sizeof buf)) > 0;) s.append(buf, n);
    return s;
  }

 private:
  int fd_ = -1;
};

}  // namespace

std::string ChildResult::Describe() const {
  std::string what = term_signal != 0 ? absl::StrCat("killed by signal ", term_signal)
                                      : absl::StrCat("exit ", exit_code);
  // The last few stderr lines usually say why.
  std::vector<std::string> lines = absl::StrSplit(err, '\n', absl::SkipWhitespace());
  const size_t first = lines.size() > 4 ? lines.size() - 4 : 0;
  for (size_t i = first; i < lines.size(); ++i) absl::StrAppend(&what, "\n    ", lines[i]);
  return what;
}

absl::StatusOr<ChildResult> RunChild(const std::vector<std::string>& argv, double timeout_s,
                                     const std::vector<std::string>& env) {
  if (argv.empty()) return absl::InvalidArgumentError("RunChild: empty argv");
  TempCapture out, err;
  if (absl::Status s = out.Open(); !s.ok()) return s;
  if (absl::Status s = err.Open(); !s.ok()) return s;

  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (const std::string& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out.fd(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.fd(), STDERR_FILENO);
  pid_t pid = 0;
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, cargv.data(),
                               env.empty() ? environ : cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    const std::string msg = absl::StrCat("cannot run ", argv[0], ": ", std::strerror(rc));
    if (rc == ENOENT) return absl::NotFoundError(msg);
    if (rc == EACCES) return absl::PermissionDeniedError(msg);
    return absl::InternalError(msg);
  }

  // Poll rather than block so a hung child can be killed; the parent stays idle
  // (10 ms sleeps) and so does not compete with the engine for cores.
  int status = 0;
  struct rusage ru {};
  bool timed_out = false;
  for (;;) {
    const pid_t w = ::wait4(pid, &status, WNOHANG, &ru);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) return absl::InternalError(absl::StrCat("wait4: ", std::strerror(errno)));
    if (!timed_out && std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > timeout_s) {
      ::kill(pid, SIGKILL);
      timed_out = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ChildResult r;
  r.wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  r.out = out.ReadAll();
  r.err = err.ReadAll();
  r.peak_rss_kib = ru.ru_maxrss;  // Linux: KiB
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
  if (timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(argv[0], " still running after ", timeout_s, " s; killed"));
  }
  return r;
}

absl::StatusOr<std::string> SelfExecutable() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return absl::InternalError(absl::StrCat("readlink(/proc/self/exe): ", std::strerror(errno)));
  return std::string(buf, n);
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace bitparity::bench
